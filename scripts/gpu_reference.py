"""Reference GPU results: every GPU method timed in ONE interleaved window with eager FP32 and BF16, one pass.

    python scripts/gpu_reference.py [--out DIR] [--archive FILE] [--device cuda] [--seconds S] [--methods ...]

bge-large's architecture with random weights (its true size, memory and speed; fidelity is the agreement with
that model's own FP32 output; quality is not applicable). All configurations go to ``pipeline.run_methods`` as
one list of jobs with one grid and budget, so each grid cell is a single window in which every method, its
variants and the baselines alternate call by call: any two of them (FP16 against BF16, INT8 against BF16) are
compared round by round, never across windows. Memory is measured in fresh processes for each method's default
configuration (NVML device memory over a CUDA baseline process, torch's peak allocated beside it). After the
window each encoder's CUDA kernels for one batch are profiled (the attention and GEMM kernels it really ran) and
recorded in its Result. Bounded to a few minutes on one H200: batch 32 and 128 at 128 tokens, seconds per cell.

Results go under <out>/gpu-bge-large-random/results/ (and into --archive, a tarball, when given); the committed
copy lives in outputs/gpu-reference/ and 09_comparison reads it.
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import time

RUN = "gpu-bge-large-random"
#: (method, options, memory measured) in window order: eager FP32 and BF16 first (the baselines every other
#: configuration is read against), FP16 beside BF16 on the same attention kernel, their eager-attention and
#: compiled variants, then INT8 / FP8 on the tensor cores and the other GPU methods
CONFIGURATIONS = [
    ("fp32", {}, True),
    ("bf16", {}, True),
    ("fp16", {}, True),
    ("bf16", {"attn": "eager"}, False),
    ("fp16", {"attn": "eager"}, False),
    ("bf16", {"compile": True}, False),
    ("int8-torchao-cuda", {}, True),
    ("fp8-torchao-cuda", {}, True),
    ("int8-bnb", {}, True),
    ("fp32-onnx", {}, True),
    ("int4-onnx", {}, True),
]
#: the baselines every configuration is also read against, by label
EAGER_FP32, BF16 = "fp32", "bf16"
#: comparisons printed from the window's rounds: FP16 against BF16 on each attention path, compiled BF16 against
#: eager BF16
PAIRS = [(("fp16", {}), ("bf16", {})), (("fp16", {"attn": "eager"}), ("bf16", {"attn": "eager"})),
         (("bf16", {"compile": True}), ("bf16", {})), (("bf16", {}), ("bf16", {"attn": "eager"}))]


def window_config(seconds: float, batch_sizes=(32, 128), seq_lens=(128,), memory: bool = True,
                  memory_repeats: int = 1):
    """One grid and budget for every job, so that run_methods times them all in one window per cell."""
    from bgeq_utils.measure import pipeline
    return pipeline.BenchConfig(batch_sizes=tuple(batch_sizes), seq_lens=tuple(seq_lens), seconds=seconds,
                                min_repeats=8, max_repeats=60, target=0.02, memory=memory,
                                memory_repeats=memory_repeats, memory_batch=32, memory_seq=128)


def jobs(configurations, seconds: float, methods=None, memory: bool = True, **grid) -> list[dict]:
    """run_methods jobs: one window for all (the same BenchConfig values), memory only where asked."""
    from dataclasses import replace

    from bgeq_utils.measure import pipeline
    base = window_config(seconds, memory=memory, **grid)
    out = []
    for name, options, with_memory in configurations:
        if methods and name not in methods:
            continue
        cfg = replace(base, memory=memory and with_memory)
        out.append(pipeline.Job(name, dict(options), label=pipeline.variant_label(name, options), bench_config=cfg))
    return out


def pair(row, other) -> dict | None:
    """Speed of ``row``'s method over ``other``'s in the same cell of the same window: the median of per-round
    ratios (other's time / this one's) with its interval; None where the rows carry no rounds or differ in
    window or cell."""
    from bgeq_utils.core import uncertainty as stats
    if row is None or other is None or not row.get("rounds_s") or not other.get("rounds_s"):
        return None
    if (row["batch_size"], row["seq_len"]) != (other["batch_size"], other["seq_len"]) \
            or row.get("window") != other.get("window") or len(row["rounds_s"]) != len(other["rounds_s"]):
        return None
    ratio = getattr(stats, "window_ratio", stats.paired_ratio)
    return ratio(other["rounds_s"], row["rounds_s"]).to_dict()


def row_at(res, batch_size: int, seq_len: int = 128):
    return next((r for r in res.speed or [] if r["batch_size"] == batch_size and r["seq_len"] == seq_len), None)


def cuda_kernels(enc, batch_size: int = 32, seq_len: int = 128, top: int = 8) -> list[dict]:
    """The CUDA kernels one batch ran, by GPU time (name, share of the batch's kernel time, calls)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from bgeq_utils.inputs import data
    feats = enc.tokenize(data.benchmark_texts(batch_size), max_length=seq_len, pad_to_max=True)
    enc.embed_features(feats)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        enc.embed_features(feats)
        torch.cuda.synchronize()
    by = {}
    for e in prof.events():
        if "CUDA" not in str(getattr(e, "device_type", "")):
            continue                                 # CPU operators: their kernels are listed as CUDA events
        t = e.time_range.elapsed_us()
        if t:
            k = by.setdefault(e.name, [0.0, 0])
            k[0] += t
            k[1] += 1
    total = sum(v[0] for v in by.values()) or 1.0
    ranked = sorted(by.items(), key=lambda kv: -kv[1][0])[:top]
    return [{"kernel": n[:160], "share": round(v[0] / total, 4), "calls": v[1]} for n, v in ranked]


def _fmt(est) -> str:
    if not est:
        return "n/a"
    if est.get("low") is None:
        return f"{est['value']:.2f}"
    return f"{est['value']:.2f} [{est['low']:.2f}, {est['high']:.2f}]"


def summary(results: list, batch_sizes, seq_len: int = 128) -> list[dict]:
    """Per configuration and batch size: tokens/s, speed over eager FP32 and over BF16 (same window, with
    intervals), share of the GEMM ceiling, attention kernel, NVML and torch peak memory, cosine to FP32."""
    by_label = {r.label: r for r in results}
    rows = []
    for res in results:
        if res.status != "ok":
            rows.append({"label": res.label, "status": res.status, "reason": res.reason[:140]})
            continue
        for b in batch_sizes:
            me = row_at(res, b, seq_len)
            if me is None:
                continue
            mem = res.memory or {}
            rows.append({
                "label": res.label, "batch": b, "tok/s": round(me["tokens_per_s"]),
                "x eager fp32": _fmt(pair(me, row_at(by_label.get(EAGER_FP32), b, seq_len)) or me.get("vs_eager")),
                "x bf16": _fmt(pair(me, row_at(by_label.get(BF16), b, seq_len))),
                "% ceiling": round(100 * me["share_of_ceiling"], 1) if me.get("share_of_ceiling") else None,
                "attention": (res.extra.get("attention") or {}).get("unpadded"),
                "NVML MB": round(mem["peak"]["value"] / 1e6) if mem.get("nvml_scope") else None,
                "torch peak MB": round(mem["torch_peak_allocated"]["value"] / 1e6)
                if mem.get("torch_peak_allocated") else None,
                "cos": round(res.fidelity.get("cos_mean"), 5) if res.fidelity.get("cos_mean") is not None else None})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None, help="outputs root (default: the project's outputs/)")
    ap.add_argument("--archive", default=None, help="also write the Results as this tarball")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--methods", nargs="*", default=None, help="only these methods of CONFIGURATIONS")
    ap.add_argument("--batch-sizes", nargs="*", type=int, default=[32, 128])
    ap.add_argument("--seq-lens", nargs="*", type=int, default=[128])
    ap.add_argument("--seconds", type=float, default=1.5, help="budget per configuration and cell (summed)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--fidelity-docs", type=int, default=50)
    ap.add_argument("--model", default="bge-large",
                    help="architecture preset (random weights), or 'default' (the bundled model, quality on Lee)")
    a = ap.parse_args(argv)
    if a.out:
        os.environ["BGEQ_OUTPUTS"] = a.out
    import pandas as pd

    from bgeq_utils import methods
    from bgeq_utils.core import env, paths, results
    from bgeq_utils.inputs import data, models
    from bgeq_utils.measure import pipeline

    unknown = sorted(set(a.methods or []) - set(methods.names()))
    if unknown:
        print(f"unknown methods {unknown}; known: {', '.join(methods.names())}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()

    def stamp(what):
        print(f"[{time.perf_counter() - t0:5.0f}s] {what}", flush=True)

    stamp(f"device: {env.label(env.describe(a.device))} | packages {env.package_versions()}")
    run = RUN if a.model != "default" else "gpu-default"
    if a.model == "default":
        ref, ev = models.load_reference("default", device="cpu"), data.load_evalset("lee")
    else:
        ref = models.load_reference(a.model, weights="random", device="cpu")
        ev = data.load_evalset("lee", max_docs=a.fidelity_docs)
        ev.pairs, ev.pair_scores = [], None   # random weights: fidelity only
    remb = pipeline.reference_embeddings(ref, ev, run=run)
    todo = jobs(CONFIGURATIONS, a.seconds, a.methods, memory=not a.no_memory,
                batch_sizes=a.batch_sizes, seq_lens=a.seq_lens)
    stamp(f"reference loaded; {len(todo)} configurations in one window: {[j['label'] for j in todo]}")
    out = pipeline.run_methods(todo, ref, ev, run=run, device=a.device, reference_emb=remb, progress=False,
                               keep_encoders=True)
    stamp("window and memory done")
    res_list = []
    for res, enc in out:
        if res.status == "ok" and enc is not None and a.device.startswith("cuda"):
            try:
                res.extra["cuda_kernels_b32xL128"] = cuda_kernels(enc)
            except Exception as e:  # a profile that cannot be read leaves the figures as they are
                res.extra["cuda_kernels_b32xL128"] = f"not read: {type(e).__name__}: {e}"[:300]
        if enc is not None:
            enc.close()
        results.save(res)
        res_list.append(res)
    pipeline.release_baselines()
    stamp("kernels profiled, Results saved")
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_colwidth", 60)
    print(pd.DataFrame(summary(res_list, a.batch_sizes, a.seq_lens[0])).to_string(index=False), flush=True)
    by_label = {r.label: r for r in res_list}
    for b in a.batch_sizes:
        for x, y in PAIRS:
            rx, ry = by_label.get(pipeline.variant_label(*x)), by_label.get(pipeline.variant_label(*y))
            if rx and ry and rx.status == ry.status == "ok":
                print(f"b{b}xL{a.seq_lens[0]} {rx.label} over {ry.label}, same window: "
                      f"{_fmt(pair(row_at(rx, b, a.seq_lens[0]), row_at(ry, b, a.seq_lens[0])))}", flush=True)
    for r in res_list:
        if r.status == "ok":
            kern = r.extra.get("cuda_kernels_b32xL128")
            top = [f"{k['kernel'][:70]} {100 * k['share']:.0f}%" for k in kern[:4]] if isinstance(kern, list) else kern
            print(f"{r.label:24s} attention {r.extra.get('attention')} | top kernels: {top}", flush=True)
    if a.archive:
        with tarfile.open(a.archive, "w:gz") as tf:
            for f in sorted(paths.results_dir(run).rglob("*.json")):
                tf.add(f, arcname=f"{run}/results/{f.relative_to(paths.results_dir(run))}")
    stamp(f"results: {paths.shown(paths.results_dir(run))}" + (f", archive {a.archive}" if a.archive else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
