"""The speed suite: methods side by side, in one process, on one machine (``make bench``).

Prints throughput at each batch size, the ratio to sentence-transformers FP32 and to the best FP32
backend measured in the same run, the share of the same-precision GEMM ceiling, size and memory; saves
a Result per method under outputs/<run>/results. Figures are printed, never asserted.
"""
from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from . import data, env, methods, models, pipeline

DEFAULT_METHODS = ["fp32-st", "fp32", "fp32-onnx", "fp32-openvino", "bf16", "fp16", "int8-dynamic-torch",
                   "int8-static-torch", "int8-dynamic-onnx", "int8-static-onnx", "int8-static-openvino",
                   "int8-bnb", "int4-onnx", "int4-torchao", "nf4-bnb"]


def ratios(res: list, batch_size: int, seq_len: int) -> pd.DataFrame:
    rows = []
    def tps(r):
        s = r.speed_at(batch_size, seq_len) if r.status == "ok" else None
        return s["tokens_per_s"] if s else None
    # the baseline of published speed-ups: FP32 through sentence-transformers' own modules
    st = next((tps(r) for r in res if r.precision == "fp32" and r.library == "sentence-transformers"), None)
    fp32 = [tps(r) for r in res if r.precision == "fp32" and tps(r)]
    best_fp32 = max(fp32) if fp32 else None
    for r in res:
        t = tps(r)
        s1 = r.speed_at(1, seq_len) if r.status == "ok" else None
        sb = r.speed_at(batch_size, seq_len) if r.status == "ok" else None
        rows.append({
            "method": r.label, "precision": r.precision, "status": r.status,
            "tok/s b1": s1["tokens_per_s"] if s1 else None,
            f"tok/s b{batch_size}": t,
            "x ST fp32": t / st if t and st else None,
            "x best fp32": t / best_fp32 if t and best_fp32 else None,
            "% GEMM ceiling": 100 * sb["share_of_ceiling"] if sb and sb.get("share_of_ceiling") is not None else None,
            "p50 ms b1": s1["latency_ms_p50"] if s1 else None,
            "size MB": r.size.get("disk_bytes", 0) / 1e6 or None,
            "resident MB": r.memory.get("model_rss_bytes", 0) / 1e6 or None,
            "peak MB": (r.memory.get("peak_cuda_bytes") or r.memory.get("peak_rss_bytes") or 0) / 1e6 or None,
            "cos mean": (r.fidelity or {}).get("cos_mean"),
            "reason": r.reason[:80] if r.status != "ok" else "",
        })
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bge-large")
    ap.add_argument("--weights", default="random")
    ap.add_argument("--methods", nargs="*", default=DEFAULT_METHODS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-sizes", nargs="*", type=int, default=[1, 32])
    ap.add_argument("--seq-lens", nargs="*", type=int, default=[128])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--calibration", type=int, default=64)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--fidelity-docs", type=int, default=20, help="Lee documents for the fidelity check (0: none)")
    ap.add_argument("--run", default="bge-large-random", help="the same run the bge-large-random notebooks write to")
    a = ap.parse_args(argv)
    unknown = [m for m in a.methods if m not in methods.names()]
    if unknown:
        print(f"not registered here, left out: {unknown}", file=sys.stderr)
    t0 = time.perf_counter()
    ref = models.load_reference(a.model, weights=a.weights, device="cpu")
    ev = data.load_evalset("lee", max_docs=a.fidelity_docs) if a.fidelity_docs else None
    if ev is not None and not ref.has_quality:
        ev.pairs, ev.pair_scores = [], None
    remb = pipeline.reference_embeddings(ref, ev, run=a.run) if ev is not None else None
    cfg = pipeline.BenchConfig(batch_sizes=tuple(a.batch_sizes), seq_lens=tuple(a.seq_lens), repeats=a.repeats,
                               memory=not a.no_memory, memory_batch=max(a.batch_sizes), memory_seq=max(a.seq_lens))
    out = []
    for m in [m for m in a.methods if m in methods.names()]:
        t = time.perf_counter()
        spec = methods.get(m)
        r = pipeline.run_method(m, ref, ev, run=a.run, device=a.device, bench_config=cfg, reference_emb=remb,
                                calibration=a.calibration if "calibration" in spec.needs else None)
        out.append(r)
        print(f"{m:24s} {r.status:8s} {time.perf_counter() - t:6.0f}s {r.reason[:100]}", flush=True)
    df = ratios(out, max(a.batch_sizes), max(a.seq_lens))
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(f"\n{ref.model_id}, seq {max(a.seq_lens)}; {env.label(env.describe(a.device))}")
    print(df.round(2).to_string(index=False))
    ok = df[df["status"] == "ok"]
    int8 = ok[ok["precision"] == "int8"]
    if not int8.empty and int8["x ST fp32"].notna().any():
        best = int8.loc[int8[f"tok/s b{max(a.batch_sizes)}"].idxmax()]
        print(f"\nbest INT8 at batch {max(a.batch_sizes)}: {best['method']}: {best['x ST fp32']:.2f}x "
              f"sentence-transformers FP32, {best['x best fp32']:.2f}x the best FP32 backend measured here")
    print(f"results: outputs/{a.run}/results  ({time.perf_counter() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
