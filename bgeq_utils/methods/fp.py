"""Floating-point methods: the FP32 reference itself, and its FP16 / BF16 casts.

FP16 and BF16 are plain casts of every weight and every operation (``model.half()`` /
``model.to(torch.bfloat16)``), as sentence-transformers does with ``model.half()``: nothing is kept
in FP32 except the pooling and normalisation of the final embedding. Whether a CPU runs them fast
depends on its instructions (AVX512-BF16 / AMX-BF16 for BF16, AVX512-FP16 / AMX-FP16 for FP16);
where it has none, PyTorch converts on the fly and the speed is what the grid measures.
"""
from __future__ import annotations

import copy

from bgeq_utils.core import env, vocab
from bgeq_utils.methods.encoders import TorchEncoder
from bgeq_utils.methods.registry import register

# CPU instructions that give each half-precision format native arithmetic.
NATIVE_CPU_FLAGS = {
    "bf16": ("avx512_bf16", "amx_bf16"),
    "fp16": ("avx512_fp16", "amx_fp16"),
}


@register("fp32", precision="fp32", library="torch", summary="FP32 reference, PyTorch eager")
def fp32(reference, device="cpu", calibration=None, **_):
    """The reference model as loaded: every other method is compared against it."""
    model = reference.model if str(next(reference.model.parameters()).device) == str(device) \
        else copy.deepcopy(reference.model).to(device)
    return TorchEncoder(reference, model, device=device)


def _half(reference, device: str, precision: str, **options):
    import torch

    if options:
        raise TypeError(f"{precision} takes no options (got {sorted(options)}); it casts every weight "
                        f"and operation of the model to {precision}")
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    # Copy first: the reference must stay FP32. The cast happens on the target device.
    model = copy.deepcopy(reference.model).to(device=device, dtype=dtype).eval()
    enc = TorchEncoder(reference, model, device=device)
    enc.compute_precision = precision
    kind = vocab.device_kind(device)
    info = {"api": "model.half()" if precision == "fp16" else "model.to(torch.bfloat16)",
            "weights_dtype": str(dtype).replace("torch.", ""), "device_kind": kind}
    if kind == "cpu":
        flags = env.cpu_flags()
        native = [f for f in NATIVE_CPU_FLAGS[precision] if f in flags]
        info["cpu_native_flags"] = native
        info["cpu_native"] = bool(native)
    else:
        p = torch.cuda.get_device_properties(torch.device(device))
        info["gpu_capability"] = f"{p.major}.{p.minor}"
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            info["note"] = "this GPU has no native BF16 arithmetic"
    enc.info = info
    return enc


@register("fp16", precision="fp16", library="torch",
          summary="FP16 cast of the whole model (model.half()), PyTorch eager")
def fp16(reference, device="cpu", calibration=None, **options):
    """Every weight and operation in IEEE half precision (range +-65504)."""
    return _half(reference, device, "fp16", **options)


@register("bf16", precision="bf16", library="torch",
          summary="BF16 cast of the whole model (model.to(bfloat16)), PyTorch eager")
def bf16(reference, device="cpu", calibration=None, **options):
    """Every weight and operation in bfloat16 (FP32's range, 8 bits of mantissa)."""
    return _half(reference, device, "bf16", **options)


@register("fp32-inductor", precision="fp32", library="torch", runtime="inductor",
          summary="FP32 compiled by torch.compile (Inductor, freezing): the same-runtime baseline of compiled INT8")
def fp32_inductor(reference, device="cpu", calibration=None, freezing: bool = True):
    """FP32 through Inductor with the settings of the compiled INT8 methods, so that a compiled INT8 method's
    speed-up over it is what INT8 adds, not what the compiler adds."""
    import torch

    from bgeq_utils.methods.torch_int8 import CompiledEncoder, _FrozenCompiled, _last_hidden

    model = copy.deepcopy(reference.model).to(device).eval()
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    module = _last_hidden(model).eval()
    runner = _FrozenCompiled(module) if freezing else torch.compile(module, dynamic=True)
    enc = CompiledEncoder(reference, module, runner, device=device)
    enc.encode(["compile now, so that build time includes it"] * 2)
    enc.info = {"api": "torch.compile(dynamic=True)" + (", Inductor freezing" if freezing else ""),
                "compiled": True}
    return enc
