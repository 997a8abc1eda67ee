"""Reference GPU results: every GPU-capable method on bge-large's architecture, in one short run.

    python scripts/gpu_reference.py [--out DIR] [--methods ...] [--device cuda]

Runs the registered methods on ``bge-large`` with random weights (true size, memory and speed of the
real model; fidelity is the numerical agreement with that model's own FP32 output; quality is not
applicable), over a batch x sequence-length grid, memory in a fresh process each, and writes Result
files under <out>/gpu-reference/results plus a tarball of them. The committed copy lives in
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None, help="outputs root (default: the project's outputs/)")
    ap.add_argument("--methods", nargs="*", default=METHODS)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch-sizes", nargs="*", type=int, default=[1, 32, 128])
    ap.add_argument("--seq-lens", nargs="*", type=int, default=[128, 512])
    ap.add_argument("--fidelity-docs", type=int, default=50)
    ap.add_argument("--run", default="gpu-reference")
    a = ap.parse_args(argv)
    if a.out:
        os.environ["BGEQ_OUTPUTS"] = a.out
    from bgeq_utils import data, env, methods, models, paths, pipeline, tables

    t0 = time.perf_counter()
    info = env.describe(a.device)
    print("device:", env.label(info), "| torch", env.package_versions().get("torch"), flush=True)
    ref = models.load_reference("bge-large", weights="random", device=a.device)
    ev = data.load_evalset("lee", max_docs=a.fidelity_docs)
    ev.pairs, ev.pair_scores = [], None
    remb = pipeline.reference_embeddings(ref, ev, run=a.run)
    cfg = pipeline.BenchConfig(batch_sizes=tuple(a.batch_sizes), seq_lens=tuple(a.seq_lens), repeats=10,
                               max_seconds=10, memory=True, memory_batch=32, memory_seq=128)
    out = []
    for m in a.methods:
        if m not in methods.names():
            print(f"{m}: not registered, left out", flush=True)
            continue
        t = time.perf_counter()
        r = pipeline.run_method(m, ref, ev, run=a.run, device=a.device, bench_config=cfg, reference_emb=remb,
                                progress=False, calibration=64 if "calibration" in methods.get(m).needs else None)
        out.append(r)
        s = r.speed_at(32, 128)
        print(f"{m:20s} {r.status:8s} {time.perf_counter() - t:5.0f}s  tok/s b32xL128="
              f"{s['tokens_per_s'] if s else float('nan'):10.0f}  cos={r.fidelity.get('cos_mean', float('nan')):.5f}"
              f"  {r.reason[:120]}", flush=True)
    df = tables.rounded(tables.summary(out, batch_sizes=(1, 32), seq_len=128))
    print(df.to_string(index=False))
    folder = paths.results_dir(a.run)
    tar = paths.run_dir(a.run) / f"{a.run}.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        for f in sorted(folder.glob("*.json")):
            tf.add(f, arcname=f"results/{f.name}")
    print(f"results: {folder}  archive: {tar}  ({time.perf_counter() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
