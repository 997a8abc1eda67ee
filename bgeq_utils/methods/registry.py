"""One registry of methods: a function each, registered under a stable name with its metadata."""
from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass, field
from typing import Callable


class UnknownMethodError(KeyError):
    def __str__(self):  # KeyError would print the message quoted
        return self.args[0]


class MethodUnavailable(RuntimeError):
    """The method cannot run here (no CUDA, missing kernel or package): recorded as skipped."""


@dataclass(frozen=True)
class MethodSpec:
    name: str
    precision: str                 # fp32 | fp16 | bf16 | int8 | int4 | nf4 | fp4
    library: str                   # torch | onnxruntime | bitsandbytes | torchao | openvino | ...
    builder: Callable = field(repr=False, compare=False)
    devices: tuple[str, ...] = ("cpu", "cuda")
    needs: tuple[str, ...] = ()    # "calibration", "training", "package:<module>"
    weight_bits: float = 32.0      # nominal bits per weight of the quantized layers
    summary: str = ""

    def unavailable_reason(self, device: str) -> str | None:
        kind = "cuda" if str(device).startswith("cuda") else "cpu"
        if kind not in self.devices:
            return f"{self.name} runs on {'/'.join(self.devices)} only; this run is on {kind}"
        if kind == "cuda":
            from ..env import has_cuda
            if not has_cuda():
                return "no CUDA GPU visible on this machine"
        for need in self.needs:
            if need.startswith("package:"):
                mod = need.split(":", 1)[1]
                if importlib.util.find_spec(mod) is None:
                    return f"Python package '{mod}' is not installed (pip install {mod})"
        return None


_REGISTRY: dict[str, MethodSpec] = {}


def register(name: str, *, precision: str, library: str, devices=("cpu", "cuda"), needs=(),
             weight_bits: float | None = None, summary: str = ""):
    """Decorator: ``@register("int8-dynamic-torch", precision="int8", library="torch")``."""
    bits = weight_bits if weight_bits is not None else {
        "fp32": 32, "fp16": 16, "bf16": 16, "int8": 8, "int4": 4, "nf4": 4, "fp4": 4}.get(precision, 32)

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is registered twice")
        _REGISTRY[name] = MethodSpec(name, precision, library, fn, tuple(devices), tuple(needs), float(bits),
                                     summary or (fn.__doc__ or "").strip().split("\n")[0])
        return fn
    return deco


def get(name: str) -> MethodSpec:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownMethodError(
            f"unknown method {name!r}.{hint} Known methods: {', '.join(sorted(_REGISTRY))} "
            "(bgeq_utils.methods.table() describes each).")
    return _REGISTRY[name]


def names() -> list[str]:
    return list(_REGISTRY)


def specs() -> list[MethodSpec]:
    return list(_REGISTRY.values())


def build(name: str, reference, device: str = "cpu", calibration: list[str] | None = None, **options):
    """Build the Encoder of a method from the FP32 reference."""
    spec = get(name)
    reason = spec.unavailable_reason(device)
    if reason:
        raise MethodUnavailable(reason)
    if "calibration" in spec.needs and not calibration:
        raise ValueError(f"method {name!r} needs calibration texts (pass calibration=data.calibration_texts(n))")
    enc = spec.builder(reference, device=device, calibration=calibration, **options)
    enc.method = name
    return enc


def table():
    import pandas as pd
    return pd.DataFrame([{"method": s.name, "precision": s.precision, "library": s.library,
                          "devices": "/".join(s.devices), "needs": ", ".join(s.needs),
                          "bits/weight": s.weight_bits, "summary": s.summary} for s in specs()])
