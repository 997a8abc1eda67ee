"""Reference GPU results: every GPU-capable method on bge-large's architecture, in one short run.

    python scripts/gpu_reference.py [--out DIR] [--methods ...] [--device cuda]

Runs the registered methods on ``bge-large`` with random weights (true size, memory and speed of the
real model; fidelity is the numerical agreement with that model's own FP32 output; quality is not
applicable), over a batch x sequence-length grid, memory in a fresh process each, and writes Result
files under <out>/gpu-default/ (the default model on Lee: quality and fidelity on the GPU) and
<out>/gpu-bge-large-random/, plus a tarball of both. The committed copy lives in
outputs/gpu-reference/ and 09_comparison reads it.
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import time
from pathlib import Path

METHODS = ["fp32", "fp32-st", "fp16", "bf16", "int8-bnb", "nf4-bnb", "fp4-bnb", "int8-dynamic-torch",
           "int4-torchao", "fp32-onnx"]


def _run_all(run, ref, ev, cfg, method_names, device):
    from bgeq_utils import methods, pipeline
    remb = pipeline.reference_embeddings(ref, ev, run=run)
    out = []
    for m in method_names:
        if m not in methods.names():
            print(f"{m}: not registered, left out", flush=True)
            continue
        t = time.perf_counter()
        r = pipeline.run_method(m, ref, ev, run=run, device=device, bench_config=cfg, reference_emb=remb,
                                progress=False, calibration=64 if "calibration" in methods.get(m).needs else None)
        out.append(r)
        s = r.speed_at(32, 128)
        print(f"{run:22s} {m:20s} {r.status:8s} {time.perf_counter() - t:5.0f}s  tok/s b32xL128="
              f"{s['tokens_per_s'] if s else float('nan'):10.0f}  cos={r.fidelity.get('cos_mean', float('nan')):.5f}"
              f"  {r.reason[:120]}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None, help="outputs root (default: the project's outputs/)")
    ap.add_argument("--methods", nargs="*", default=METHODS)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--phases", nargs="*", default=["default", "bge-large"])
    ap.add_argument("--batch-sizes", nargs="*", type=int, default=[1, 32, 128])
    ap.add_argument("--seq-lens", nargs="*", type=int, default=[128, 512])
    ap.add_argument("--fidelity-docs", type=int, default=50)
    a = ap.parse_args(argv)
    if a.out:
        os.environ["BGEQ_OUTPUTS"] = a.out
    from bgeq_utils import data, env, models, paths, pipeline, tables

    t0 = time.perf_counter()
    print("device:", env.label(env.describe(a.device)), "| torch", env.package_versions().get("torch"), flush=True)
    runs = []
    if "default" in a.phases:
        # The default model on Lee: quality and fidelity of each GPU method against FP32 on the same GPU.
        ref = models.load_reference("default", device=a.device)
        ev = data.load_evalset("lee")
        cfg = pipeline.BenchConfig(batch_sizes=(1, 32), seq_lens=(128,), repeats=10, max_seconds=5, memory=False)
        res = _run_all("gpu-default", ref, ev, cfg, a.methods, a.device)
        runs.append("gpu-default")
        print(tables.rounded(tables.summary(res)).to_string(index=False), flush=True)
        del ref
    if "bge-large" in a.phases:
        # bge-large's architecture (random weights): its true size, memory and speed on this GPU.
        ref = models.load_reference("bge-large", weights="random", device=a.device)
        ev = data.load_evalset("lee", max_docs=a.fidelity_docs)
        ev.pairs, ev.pair_scores = [], None
        cfg = pipeline.BenchConfig(batch_sizes=tuple(a.batch_sizes), seq_lens=tuple(a.seq_lens), repeats=10,
                                   max_seconds=10, memory=True, memory_batch=32, memory_seq=128)
        res = _run_all("gpu-bge-large-random", ref, ev, cfg, a.methods, a.device)
        runs.append("gpu-bge-large-random")
        print(tables.rounded(tables.summary(res, batch_sizes=(1, 32, 128))).to_string(index=False), flush=True)
    tar = paths.outputs_dir() / "gpu-reference.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        for run in runs:
            for f in sorted(paths.results_dir(run).glob("*.json")):
                tf.add(f, arcname=f"{run}/results/{f.name}")
    print(f"results: {[str(paths.results_dir(r)) for r in runs]}  archive: {tar}  ({time.perf_counter() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
