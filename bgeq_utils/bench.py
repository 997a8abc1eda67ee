"""Speed, memory and size, measured honestly.

Speed: warm-up, repeats, medians, inputs padded to exactly the sequence length so tokens/s is
exact. Memory: a fresh process per method (see memory_worker.py). Throughput is also read as a
share of a same-precision GEMM ceiling measured here, the best of several libraries.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import lru_cache

import numpy as np

from . import data as data_mod


# --- model arithmetic ---------------------------------------------------------------------------
def flops_per_token(config, seq_len: int) -> float:
    """Multiply-adds x2 of a BERT encoder forward, per token (embeddings and pooling are negligible)."""
    h, i, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = 4 * h * h + 2 * h * i          # QKV + output projection + FFN
    attention = 2 * seq_len * h             # QK^T and AV
    return float(n * 2 * (linear + attention))


# --- throughput ---------------------------------------------------------------------------------
def _inputs(encoder, batch_size: int, seq_len: int, texts: list[str]) -> dict:
    picked = [texts[i % len(texts)] for i in range(batch_size)]
    return encoder.tokenize(picked, max_length=seq_len, pad_to_max=True)


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


def speed_grid(encoder, batch_sizes=(1, 32), seq_lens=(128,), texts: list[str] | None = None,
               warmup: int = 1, repeats: int = 5, max_seconds: float = 30.0, config=None,
               progress: bool = True) -> list[dict]:
    """Median throughput per (batch size, sequence length); latency percentiles at batch 1."""
    texts = texts or data_mod.benchmark_texts(64)
    grid = [(b, L) for L in seq_lens for b in batch_sizes]
    it = grid
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(grid, desc=f"speed {getattr(encoder, 'method', '')}", leave=False)
    rows = []
    for b, L in it:
        L_eff = min(L, encoder.max_seq_length)
        feats = _inputs(encoder, b, L_eff, texts)
        reps = max(repeats, 20) if b == 1 else repeats
        times = _time_calls(lambda: encoder.embed_features(feats), warmup, reps, max_seconds)
        med = statistics.median(times)
        row = {"batch_size": b, "seq_len": L_eff, "median_s": med, "sentences_per_s": b / med,
               "tokens_per_s": b * L_eff / med, "repeats": len(times),
               "latency_ms_p50": float(np.percentile(times, 50) * 1e3),
               "latency_ms_p95": float(np.percentile(times, 95) * 1e3)}
        if config is not None:
            row["gflops"] = row["tokens_per_s"] * flops_per_token(config, L_eff) / 1e9
        rows.append(row)
    return rows


# --- GEMM ceilings ------------------------------------------------------------------------------
def _best(fn, repeats=5) -> float:
    fn()
    return min(_time_calls(fn, 0, repeats, 10.0))


def _torch_gemm(dtype_name: str, device: str, n: int) -> float | None:
    import torch
    dev = torch.device(device)
    try:
        if dtype_name == "int8":
            a = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=dev)
            b = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=dev)
            fn = lambda: torch._int_mm(a, b)  # noqa: E731
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
        import onnx
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
    precision = {"int4": "fp32", "nf4": "fp32", "fp4": "fp32"}.get(precision, precision)
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    n = n or (8192 if kind == "cuda" else 2048)
    found = {f"torch": _torch_gemm(precision, device, n)}
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


# --- memory in a fresh process ------------------------------------------------------------------
def measure_memory(method: str, reference_spec: dict, device: str = "cpu", options: dict | None = None,
                   calibration: int | list[str] | None = None, batch_size: int = 32, seq_len: int = 128,
                   timeout: float = 1800) -> dict:
    """Build the method in a new Python process and read its resident and peak memory there."""
    args = {"method": method, "reference": reference_spec, "device": device, "options": options or {},
            "batch_size": batch_size, "seq_len": seq_len}
    tmp = None
    if isinstance(calibration, list):
        fd, tmp = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(calibration, f)
        args["calibration_file"] = tmp
    else:
        args["calibration_n"] = calibration
    try:
        proc = subprocess.run([sys.executable, "-m", "bgeq_utils.memory_worker", json.dumps(args)],
                              capture_output=True, text=True, timeout=timeout)
    finally:
        if tmp:
            os.unlink(tmp)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"memory worker for {method} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1])
