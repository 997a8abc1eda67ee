"""Which Linear layers lose most to INT8: a per-layer sensitivity scan in one FP32 pass.

Static INT8 quantizes each Linear's input with one range fitted on calibration texts (asymmetric, per
tensor) and its weights per output channel (symmetric). Layers whose inputs carry outliers lose most: the
range stretches and every other value gets few levels. The scan fits the ranges on the calibration texts,
then, on other texts, computes each layer's output from fake-quantized input and weights beside its FP32
output and reports the relative error. Keeping the k worst layers in FP32 (NNCF's ignored scope) is the
lever it feeds; the scan is local, so the end-to-end effect is then measured, not assumed.
"""
from __future__ import annotations

import re

import pandas as pd

#: tokens per text in the scan: enough to rank layers, cheap on bge-large's shape (512 would cost 4x)
SCAN_LENGTH = 128


def _fake_quant_activation(x, lo: float, hi: float):
    import torch
    scale = max(hi - lo, 1e-12) / 255.0
    zero = torch.round(torch.tensor(-lo / scale)).clamp(0, 255)
    return (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale


def _fake_quant_weight(w):
    import torch
    scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
    return torch.clamp(torch.round(w / scale), -127, 127) * scale


def _linears(model):
    import torch
    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "pooler" not in n]


def _batches(tokenizer, texts, batch_size, max_length):
    for i in range(0, len(texts), batch_size):
        yield tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")


def linear_sensitivity(model, tokenizer, calibration_texts: list[str], texts: list[str], batch_size: int = 16,
                       max_length: int = SCAN_LENGTH) -> pd.DataFrame:
    """Per Linear layer: relative L2 error of its output when its input (range from ``calibration_texts``)
    and weights are quantized to INT8, on ``texts``; sorted worst first. Padding positions are left out."""
    import torch
    if not calibration_texts or not texts:
        raise ValueError("the sensitivity scan needs calibration texts and evaluation texts")
    layers = _linears(model)
    ranges = {n: [float("inf"), float("-inf")] for n, _ in layers}
    err = {n: [0.0, 0.0] for n, _ in layers}
    state = {}

    def observe(name):
        def f(mod, args):
            x = args[0][state["mask"]]
            r = ranges[name]
            r[0], r[1] = min(r[0], float(x.min())), max(r[1], float(x.max()))
        return f

    def compare(name):
        def f(mod, args):
            x = args[0][state["mask"]].float()
            lo, hi = ranges[name]
            y = torch.nn.functional.linear(x, mod.weight.float())
            yq = torch.nn.functional.linear(_fake_quant_activation(x, min(lo, 0.0), max(hi, 0.0)),
                                            _fake_quant_weight(mod.weight.float()))
            err[name][0] += float(((yq - y) ** 2).sum())
            err[name][1] += float((y ** 2).sum())
        return f

    for hook_of, data in ((observe, calibration_texts), (compare, texts)):
        hooks = [m.register_forward_pre_hook(hook_of(n)) for n, m in layers]
        try:
            with torch.inference_mode():
                for enc in _batches(tokenizer, list(data), batch_size, max_length):
                    state["mask"] = enc["attention_mask"].bool()
                    model(**enc)
        finally:
            for h in hooks:
                h.remove()
    rows = [{"layer": n, "kind": re.sub(r"^.*layer\.\d+\.", "", n),
             "input_min": ranges[n][0], "input_max": ranges[n][1],
             "relative_error": (err[n][0] / err[n][1]) ** 0.5 if err[n][1] else float("nan")} for n, _ in layers]
    return pd.DataFrame(rows).sort_values("relative_error", ascending=False, ignore_index=True)


def most_sensitive(scan: pd.DataFrame, k: int) -> list[str]:
    """The ``k`` layers with the largest error (module names as in the PyTorch model)."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"k={k!r}: use a whole number >= 0")
    return list(scan["layer"][:k])


def graph_node(module_name: str, prefix: str = "/model/") -> str:
    """The MatMul node an exported graph gives a Linear module: ``encoder.layer.3.output.dense`` ->
    ``/model/encoder/layer.3/output/dense/MatMul`` (dots that precede an index stay)."""
    return prefix + re.sub(r"\.(?!\d)", "/", module_name) + "/MatMul"
