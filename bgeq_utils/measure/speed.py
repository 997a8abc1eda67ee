"""Speed, measured side by side and with its uncertainty.

Each method is timed in one window with its baselines (eager PyTorch FP32 and FP32 in its own runtime), and
methods measured together share one window (each baseline timed once per round), alternating call by call,
warm-up first; medians with 95% intervals, and each speed-up as the median of
per-round ratios with its interval. A time budget per cell, not a fixed count of repeats. Inputs are
padded to exactly the sequence length, so tokens/s is exact. Throughput is also read as a share of a
same-precision GEMM ceiling measured here, the best of several libraries.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bgeq_utils.core import uncertainty as stats
from bgeq_utils.core import vocab
from bgeq_utils.inputs import data as data_mod


# --- model arithmetic ---------------------------------------------------------------------------
def linear_flops_per_token(config) -> float:
    """Multiply-adds x2 of a BERT encoder's Linear layers per token: QKV, output projection, FFN."""
    h, i, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return float(n * 2 * (4 * h * h + 2 * h * i))


def flops_per_token(config, seq_len: int) -> float:
    """Multiply-adds x2 of a BERT encoder forward, per token (embeddings and pooling are negligible)."""
    attention = 2 * seq_len * config.hidden_size            # QK^T and AV
    return linear_flops_per_token(config) + float(config.num_hidden_layers * 2 * attention)


# --- throughput, side by side -----------------------------------------------------------------------
def _inputs(encoder, batch_size: int, seq_len: int, texts: list[str]) -> dict:
    picked = [texts[i % len(texts)] for i in range(batch_size)]
    return encoder.tokenize(picked, max_length=seq_len, pad_to_max=True)


@dataclass
class Budget:
    """How long one (batch, sequence length) cell of the grid is timed. ``seconds`` is the budget: rounds go on
    until every ratio's interval is within ``target`` of its value (relative half-width) or the budget is
    spent, at most ``max_repeats``. ``min_repeats`` (the fewest for a 95% interval of a median) are taken
    when they fit in ``MIN_REPEATS_OVERRUN`` times the budget, judged from the cheapest measured round (never
    the warm-up, whose first-call costs would cut cells that are fast); a cell too slow for that (FP16 on a
    CPU without FP16 arithmetic, a large model at a large batch) gets as many rounds as fit, at least one,
    and no interval: a short measurement, recorded as such, rather than minutes of a known-slow path."""
    warmup: int = 1
    min_repeats: int = stats.MIN_REPEATS_FOR_CI
    max_repeats: int = 60
    seconds: float = 20.0
    target: float = 0.03


#: how far past its budget a cell may run to reach the rounds an interval needs: a cell whose minimum rounds
#: would take longer (FP16 emulated on a CPU: about 4x FP32) gets a short measurement instead
MIN_REPEATS_OVERRUN = 3.0


class Timings(dict):
    """Seconds per call by name, paired by round; ``stopped`` says why the rounds ended."""
    stopped: str = ""


#: why a cell's rounds ended, as recorded in its speed row
STOP_INTERVAL, STOP_BUDGET, STOP_MAX, STOP_TOO_SLOW = ("interval tight enough", "time budget spent",
                                                       "max repeats", "minimum repeats do not fit the budget")


def interleaved(calls: dict, budget: Budget = Budget(), progress=None) -> Timings:
    """Time several callables in one window, alternating (A B C, B C A, C A B, ...): a ratio between any
    two of them is then measured under the same machine conditions. Returns seconds per call, by name,
    paired by round."""
    names = list(calls)
    for _ in range(budget.warmup):
        for n in names:
            calls[n]()
    times = Timings({n: [] for n in names})
    times.stopped = STOP_MAX
    round_cost = None
    start = time.perf_counter()
    r = 0
    while r < budget.max_repeats:
        order = names[r % len(names):] + names[:r % len(names)]
        t_round = time.perf_counter()
        for n in order:
            t0 = time.perf_counter()
            calls[n]()
            times[n].append(time.perf_counter() - t0)
        r += 1
        # the cheapest measured round: no first-call costs (without a warm-up, the first round pays them)
        round_cost = min(round_cost or math.inf, time.perf_counter() - t_round)
        if progress is not None:
            progress.update(1)
        elapsed = time.perf_counter() - start
        if r < budget.min_repeats:
            if (budget.min_repeats * round_cost <= MIN_REPEATS_OVERRUN * budget.seconds
                    or elapsed + round_cost <= budget.seconds
                    or (r < 2 and not budget.warmup)):
                continue
            times.stopped = STOP_TOO_SLOW
            break
        if elapsed > budget.seconds:
            times.stopped = STOP_BUDGET
            break
        first = times[names[0]]
        if len(names) == 1:
            if stats.relative_halfwidth(stats.median(first)) <= budget.target:
                times.stopped = STOP_INTERVAL
                break
        elif all(stats.relative_halfwidth(stats.paired_ratio(times[n], first)) <= budget.target
                 for n in names[1:]):
            times.stopped = STOP_INTERVAL
            break
    return times


def _throughput(samples, batch_size: int, seq_len: int, stopped: str) -> dict:
    """Rounds, why they stopped, median seconds per call and tokens/s with its 95% interval."""
    t = stats.median(samples)
    out = {"repeats": len(samples), "stopped": stopped, "median_s": t.value,
           "tokens_per_s": batch_size * seq_len / t.value}
    if t.has_interval:
        out["tokens_per_s_low"], out["tokens_per_s_high"] = batch_size * seq_len / t.high, batch_size * seq_len / t.low
    return out


def speed_grid(encoder, baselines: dict | None = None, batch_sizes=(1, 32), seq_lens=(128,),
               budget: Budget = Budget(), texts: list[str] | None = None, config=None,
               progress: bool = True) -> list[dict]:
    """Throughput of ``encoder`` per (batch size, sequence length), each cell timed side by side with the
    ``baselines`` ({role: (method name, encoder)}, e.g. eager FP32 and FP32 in the same runtime).

    A row holds tokens/s and sentences/s (median with a 95% interval), latency percentiles, repeats, and
    for each role the speed-up over that baseline timed in the same window (median of per-round ratios
    with its 95% interval). A role whose baseline is the encoder itself gets exactly 1."""
    rows = speed_grid_many({"method": (encoder, baselines or {})}, batch_sizes, seq_lens, budget, texts, config,
                           progress)["method"]
    if isinstance(rows, Exception):
        raise rows
    return rows


class WindowCallFailed(RuntimeError):
    """A configuration of a shared window could not run on the window's inputs (it is left out of the window)."""


def speed_grid_many(entries: dict, batch_sizes=(1, 32), seq_lens=(128,), budget: Budget = Budget(),
                    texts: list[str] | None = None, config=None, progress: bool = True) -> dict:
    """:func:`speed_grid` for several methods at once ({key: (encoder, baselines)}): every cell is one window
    holding all the methods and the union of their baselines (each encoder once), so a baseline shared by
    several methods is timed once per round and every ratio, between any two of them, is paired by round.

    The cell's budget is the sum of the methods' budgets (``budget.seconds`` each): sharing saves the repeated
    baseline calls, not a method's time. A method whose encoder fails on the cell's inputs gets a
    :class:`WindowCallFailed` instead of its rows; the others are timed without it. Returns {key: rows}."""
    texts = texts or data_mod.benchmark_texts(64)
    grid = [(b, L) for L in seq_lens for b in batch_sizes]
    it = grid
    if progress:
        from tqdm.auto import tqdm
        desc = " ".join(getattr(e, "method", "") for e, _ in entries.values())
        it = tqdm(grid, desc=f"speed {desc}"[:60], leave=False)
    out: dict = {k: [] for k in entries}
    # the trial call of each encoder below is its first warm-up call
    window_budget = Budget(warmup=max(0, budget.warmup - 1), min_repeats=budget.min_repeats,
                           max_repeats=budget.max_repeats, seconds=budget.seconds * max(1, len(entries)),
                           target=budget.target)
    for b, L in it:
        live = {k: v for k, v in entries.items() if not isinstance(out[k], Exception)}
        if not live:
            break
        L_eff = min(L, *(enc.max_seq_length for enc, _ in live.values()))
        feats = _inputs(next(iter(live.values()))[0], b, L_eff, texts)
        names, calls, failed = {}, {}, {}  # encoder id -> call name; name -> call; name -> error

        def add(name: str, enc) -> str:
            if id(enc) not in names:
                while name in calls:
                    name += "'"
                names[id(enc)] = name
                calls[name] = (lambda e: (lambda: e.embed_features(feats)))(enc)
            return names[id(enc)]

        for k, (enc, base) in live.items():
            add("method" if len(entries) == 1 else str(k), enc)
            for name, benc in base.values():
                if benc is not None:
                    add(name, benc)
        for name, call in list(calls.items()):  # a trial call each: one broken encoder must not end the window
            try:
                call()
            except Exception as e:
                failed[name] = e
                del calls[name]
        times = interleaved(calls, window_budget) if calls else Timings()
        for k, (enc, base) in live.items():
            me = names[id(enc)]
            if me in failed:
                e = failed[me]
                out[k] = WindowCallFailed(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:400])
                out[k].__cause__ = e
                continue
            row = {"batch_size": b, "seq_len": L_eff, **_throughput(times[me], b, L_eff, times.stopped),
                   "sentences_per_s": b / float(np.median(times[me])),
                   "latency_ms_p50": float(np.percentile(times[me], 50) * 1e3),
                   "latency_ms_p95": float(np.percentile(times[me], 95) * 1e3),
                   "window": sorted(calls), "rounds_s": [round(x, 6) for x in times[me]]}
            for role, (name, benc) in base.items():
                if benc is None:
                    row[f"vs_{role}"] = {"baseline": name, "missing": "baseline could not be built here"}
                elif benc is enc:
                    row[f"vs_{role}"] = {"baseline": name, **stats.Estimate.exact(
                        1.0, "the method is its own baseline").to_dict()}
                elif names[id(benc)] in failed:
                    row[f"vs_{role}"] = {"baseline": name, "missing": f"baseline failed: {failed[names[id(benc)]]}"}
                else:
                    bn = names[id(benc)]
                    e = stats.window_ratio(times[bn], times[me])
                    row[f"vs_{role}"] = {"baseline": name, **e.to_dict()}
                    row.setdefault("baseline_tokens_per_s", {})[name] = b * L_eff / float(np.median(times[bn]))
                    row.setdefault("baseline_rounds_s", {})[name] = [round(x, 6) for x in times[bn]]
            if config is not None:
                row["gflops"] = row["tokens_per_s"] * flops_per_token(config, L_eff) / 1e9
            out[k].append(row)
    return out


def _time_calls(fn, warmup: int, repeats: int, max_seconds: float) -> list[float]:
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < repeats or (len(times) < 3 * repeats and time.perf_counter() - start < 0.5):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > max_seconds and len(times) >= 3:
            break
    return times


# --- GEMM ceilings ------------------------------------------------------------------------------
def _best(fn, repeats=5) -> float:
    fn()
    return min(_time_calls(fn, 0, repeats, 10.0))


def _torch_gemm(dtype_name: str, device: str, n: int) -> float | None:
    import torch
    dev = torch.device(device)
    if n > 512 and dev.type == "cpu":
        # a type without native arithmetic here (FP16 on most CPUs) runs at a few GFLOP/s: a 512 GEMM measures
        # that emulated rate in a fraction of a second, where n=2048 would take minutes
        probe = _torch_gemm(dtype_name, device, 512)
        if probe is not None and 2 * n ** 3 / (probe * 1e9) > 2.0:
            return probe
    try:
        if dtype_name == "int8":
            a = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=dev)
            b = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=dev)
            fn = lambda: torch._int_mm(a, b)  # noqa: E731
        elif dtype_name == "fp8":
            # float8 e4m3 x e4m3 -> bf16 through torch._scaled_mm (what torchao's FP8 Linear runs), unit scales
            a = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn)
            b = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn).t()  # the second operand column-major
            one = torch.ones((), device=dev)
            fn = lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)  # noqa: E731
        else:
            dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
            a = torch.randn(n, n, device=dev).to(dt)
            b = torch.randn(n, n, device=dev).to(dt)
            fn = lambda: torch.mm(a, b)  # noqa: E731
        if dev.type == "cuda":
            def run():
                fn()
                torch.cuda.synchronize()
        else:
            run = fn
        return 2 * n ** 3 / _best(run) / 1e9
    except Exception:
        return None


def _numpy_gemm(n: int) -> float | None:
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    return 2 * n ** 3 / _best(lambda: a @ b) / 1e9


def _ort_gemm(dtype_name: str, n: int) -> float | None:
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    if dtype_name == "fp32":
        node = helper.make_node("MatMul", ["A", "B"], ["C"])
        ins = [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n]),
               helper.make_tensor_value_info("B", TensorProto.FLOAT, [n, n])]
        out = helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])
        feeds = {"A": np.random.rand(n, n).astype(np.float32), "B": np.random.rand(n, n).astype(np.float32)}
    elif dtype_name == "int8":
        # u8 x s8: the combination VNNI accelerates and ORT's dynamic quantization uses.
        node = helper.make_node("MatMulInteger", ["A", "B"], ["C"])
        ins = [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n]),
               helper.make_tensor_value_info("B", TensorProto.INT8, [n, n])]
        out = helper.make_tensor_value_info("C", TensorProto.INT32, [n, n])
        feeds = {"A": np.random.randint(0, 255, (n, n), dtype=np.uint8),
                 "B": np.random.randint(-127, 127, (n, n), dtype=np.int8)}
    else:
        return None
    model = helper.make_model(helper.make_graph([node], "gemm", ins, [out]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 10)
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:
        return None
    return 2 * n ** 3 / _best(lambda: sess.run(None, feeds)) / 1e9


@lru_cache(maxsize=None)
def gemm_ceiling(precision: str = "fp32", device: str = "cpu", n: int | None = None) -> dict:
    """Best measured GFLOP/s (or GOP/s for int8) of a square GEMM, over the libraries available."""
    precision = vocab.compute_precision(precision)
    kind = vocab.device_kind(device)
    n = n or (8192 if kind == "cuda" else 2048)
    found = {"torch": _torch_gemm(precision, device, n)}
    if kind == "cpu":
        if precision == "fp32":
            found["numpy"] = _numpy_gemm(n)
        found["onnxruntime"] = _ort_gemm(precision, n)
    found = {k: v for k, v in found.items() if v}
    if not found:
        return {"precision": precision, "gflops": None, "library": None, "n": n, "by_library": {}}
    lib = max(found, key=found.get)
    return {"precision": precision, "gflops": found[lib], "library": lib, "n": n,
            "by_library": {k: round(v, 1) for k, v in found.items()}}


def add_ceiling_share(rows: list[dict], ceiling: dict) -> list[dict]:
    """Share of the ceiling, capped at 100% (a cap is flagged: the ceiling under-reads this machine)."""
    g = ceiling.get("gflops")
    for r in rows:
        if g and r.get("gflops"):
            share = r["gflops"] / g
            r["share_of_ceiling"] = min(share, 1.0)
            r["share_capped"] = share > 1.0
    return rows


def window(encoders: dict, batch_size: int = 32, seq_len: int = 128, budget: Budget = Budget(),
           texts: list[str] | None = None, config=None, precisions: dict | None = None) -> list[dict]:
    """Several configurations ({label: encoder}) timed in one interleaved window on the same inputs: every
    ratio between two of them is paired by round. One row per label: tokens/s with its interval, the speed-up
    over the first label and over the fastest FP32 label of the window (``precisions``: label -> precision),
    and GFLOP/s against the same-precision GEMM ceiling when ``config`` is given."""
    if not encoders:
        raise ValueError("a window needs at least one encoder")
    texts = texts or data_mod.benchmark_texts(64)
    labels = list(encoders)
    L = min(seq_len, *(e.max_seq_length for e in encoders.values()))
    feats = _inputs(encoders[labels[0]], batch_size, L, texts)
    times = interleaved({lab: (lambda e: (lambda: e.embed_features(feats)))(e) for lab, e in encoders.items()},
                        budget)
    precisions = precisions or {}
    fp32 = [lab for lab in labels if precisions.get(lab) == "fp32"]
    best_fp32 = min(fp32, key=lambda lab: float(np.median(times[lab]))) if fp32 else None
    rows = []
    for lab in labels:
        row = {"label": lab, "batch_size": batch_size, "seq_len": L,
               **_throughput(times[lab], batch_size, L, times.stopped)}
        for role, base in (("first", labels[0]), ("best_fp32", best_fp32)):
            if base is not None:
                e = stats.Estimate.exact(1.0, "itself") if base == lab else stats.window_ratio(times[base], times[lab])
                row[f"vs_{role}"] = {"baseline": base, **e.to_dict()}
        if config is not None:
            row["gflops"] = row["tokens_per_s"] * flops_per_token(config, L) / 1e9
            if precisions.get(lab):
                add_ceiling_share([row], gemm_ceiling(precisions[lab]))
        rows.append(row)
    return rows
