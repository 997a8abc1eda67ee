"""The speed suite (``make bench``): every method on bge-large's shape, each timed side by side with its
baselines (eager PyTorch FP32 and FP32 in its own runtime) in one window, with 95% intervals.

Prints the speed-ups, tokens/s, share of the same-precision GEMM ceiling, size and memory; saves a Result
per method under outputs/<run>/results (the run the bge-large-random notebooks write to). Figures are
printed, never asserted.
"""
from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from bgeq_utils import methods
from bgeq_utils.compare import tables, tabulate
from bgeq_utils.core import env, paths, results
from bgeq_utils.inputs import data, models
from bgeq_utils.measure import pipeline, speed

DEFAULT_METHODS = ["fp32", "fp32-st", "fp32-onnx", "fp32-openvino", "fp32-inductor", "bf16", "fp16",
                   "int8-dynamic-torch", "int8-static-torch", "int8-dynamic-onnx", "int8-static-onnx",
                   "int8-static-openvino", "int8-bnb", "int4-onnx", "int4-torchao", "nf4-bnb"]


#: corpus throughput by default: eager FP32, the fastest INT8 path measured here, and BF16
CORPUS_METHODS = ["fp32", "int8-static-openvino", "bf16"]


def corpus_texts(name: str, max_texts: int | None) -> list[str]:
    if name == "lee_background":
        return data.background_corpus(max_texts)
    ev = data.load_texts(name, max_docs=max_texts)
    return list(ev.corpus.values())


def parse_spec(spec: str) -> tuple[str, dict, str]:
    """``name`` or ``name:option=value,option=value`` (values read as YAML) -> (name, options, label)."""
    import yaml
    name, _, rest = spec.partition(":")
    options = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--window {spec!r}: write options as name:option=value,option=value")
        options[key.strip()] = yaml.safe_load(value)
    if name not in methods.names():
        raise ValueError(f"--window {spec!r}: unknown method {name!r}; known: {', '.join(methods.names())}")
    try:
        methods.get(name).normalize_options(options)
    except methods.UnknownOptionError as e:
        raise ValueError(f"--window {spec!r}: {e}") from e
    return name, options, pipeline.variant_label(name, options)


def run_window(ref, specs: list[str], a) -> list[dict]:
    """Every spec built, then timed in one interleaved window per (batch, length) cell; saved and printed."""
    parsed = [parse_spec(s) for s in specs]
    t = time.perf_counter()
    encoders, precisions, skipped = pipeline.build_configurations(ref, [(n, o) for n, o, _ in parsed], a.device,
                                                                  a.calibration)
    for label, why in skipped.items():
        print(f"{label:48s} skipped: {why}", flush=True)
    print(f"built {len(encoders)} configurations in {time.perf_counter() - t:.0f}s", flush=True)
    budget = pipeline.BenchConfig(seconds=a.seconds, min_repeats=a.min_repeats).budget()
    rows = []
    for L in a.seq_lens:
        for b in a.batch_sizes:
            rows += speed.window(encoders, b, L, budget, config=ref.model.config, precisions=precisions)
    for e in encoders.values():
        e.close()
    record = {"run": a.run, "model": ref.info(), "device": env.describe(a.device), "specs": specs,
              "precisions": precisions, "rows": rows, "budget": vars(budget).copy()}
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = results.write_json(record, paths.run_dir(a.run) / "windows" / f"window-{stamp}.json")
    df = tables.window(rows)
    print(f"\n{df.attrs['note']}\n{df.to_string(index=False)}\n{paths.shown(path)}", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bge-large")
    ap.add_argument("--weights", default="random")
    ap.add_argument("--methods", nargs="*", default=DEFAULT_METHODS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-sizes", nargs="*", type=int, default=[1, 32])
    ap.add_argument("--seq-lens", nargs="*", type=int, default=[128])
    ap.add_argument("--seconds", type=float, default=60.0, help="time budget per (batch, length) cell and method")
    ap.add_argument("--min-repeats", type=int, default=6)
    ap.add_argument("--calibration", type=int, default=pipeline.DEFAULT_CALIBRATION)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--fidelity-docs", type=int, default=20, help="Lee documents for the fidelity check (0: none)")
    ap.add_argument("--run", default="bge-large-random", help="the same run the bge-large-random notebooks write to")
    ap.add_argument("--window", nargs="*", default=None, metavar="SPEC",
                    help="time these configurations in ONE interleaved window instead of each method beside its "
                         "baselines: name or name:option=value,... (e.g. int8-static-openvino:keep_fp32_layers=6)")
    ap.add_argument("--corpus", default=None,
                    help="also time whole passes over a corpus of real lengths in length-sorted batches: "
                         "'lee_background' (bundled, 300 news documents) or a file of texts (.txt / .jsonl)")
    ap.add_argument("--corpus-methods", nargs="*", default=CORPUS_METHODS,
                    help="methods timed side by side on the corpus; the first is the baseline of the ratios")
    ap.add_argument("--corpus-texts", type=int, default=None, help="the first N texts of the corpus (default: all)")
    ap.add_argument("--corpus-batch-size", type=int, default=32, help="texts per length-sorted batch")
    ap.add_argument("--corpus-max-length", type=int, default=None,
                    help="cut texts at this many tokens (default: the model's maximum)")
    a = ap.parse_args(argv)
    unknown = [m for m in a.methods + (a.corpus_methods if a.corpus else []) if m not in methods.names()]
    if unknown:
        print(f"unknown methods: {unknown}; known: {', '.join(methods.names())}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    ref = models.load_reference(a.model, weights=a.weights, device="cpu")
    ev = data.load_evalset("lee", max_docs=a.fidelity_docs) if a.fidelity_docs else None
    if ev is not None and not ref.has_quality:
        ev.pairs, ev.pair_scores = [], None
    remb = pipeline.reference_embeddings(ref, ev, run=a.run) if ev is not None else None
    cfg = pipeline.BenchConfig(batch_sizes=tuple(a.batch_sizes), seq_lens=tuple(a.seq_lens), seconds=a.seconds,
                               min_repeats=a.min_repeats, memory=not a.no_memory)
    out = []
    if a.window:
        try:
            run_window(ref, a.window, a)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if a.corpus:
        texts = corpus_texts(a.corpus, a.corpus_texts)
        budget = pipeline.BenchConfig(seconds=a.seconds, min_repeats=a.min_repeats).budget()
        rec = pipeline.measure_corpus(ref, a.corpus_methods, texts, a.corpus, a.run, device=a.device,
                                    batch_size=a.corpus_batch_size, max_length=a.corpus_max_length, budget=budget,
                                    calibration=a.calibration)
        df = tables.corpus_throughput(rec)
        print(f"\ncorpus throughput: {df.attrs['note']}\n{df.to_string(index=False)}\n{rec['path']}", flush=True)
    for m in a.methods:
        t = time.perf_counter()
        spec = methods.get(m)
        r = pipeline.run_method(m, ref, ev, run=a.run, device=a.device, bench_config=cfg, reference_emb=remb,
                                calibration=a.calibration if "calibration" in spec.needs else None, progress=False)
        out.append(r)
        print(f"{m:24s} {r.status:8s} {time.perf_counter() - t:6.0f}s {r.reason[:100]}", flush=True)
    pipeline.release_baselines()
    if not out:
        return 0
    mt = tabulate(out, max(a.batch_sizes), max(a.seq_lens))
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(f"\n{ref.model_id} ({ref.weights}); {env.label(env.describe(a.device))}")
    for view in (tables.speed, tables.footprint):
        df = view(mt).drop(columns=["group"], errors="ignore")
        print(f"\n{df.attrs.get('note', '')}\n{df.to_string(index=False)}")
    print(f"results: outputs/{a.run}/results  ({time.perf_counter() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
