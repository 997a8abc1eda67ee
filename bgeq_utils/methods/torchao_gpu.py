"""GPU INT8 and FP8 on the tensor cores: torchao's dynamic quantization of the Linear layers, compiled.

* ``int8-torchao-cuda``: ``Int8DynamicActivationInt8WeightConfig`` on a BF16 copy of the model (INT8 weights
  per output channel, activations quantized to INT8 per token at each call), compiled by ``torch.compile``,
  which lowers each quantized Linear to ``torch._int_mm`` (an INT8 x INT8 -> INT32 tensor-core GEMM) with the
  scales fused around it. Eagerly the same tensors dequantize instead: the path ``int8-dynamic-torch`` measures.
* ``fp8-torchao-cuda``: ``Float8DynamicActivationFloat8WeightConfig`` (float8 e4m3 weights and activations,
  one scale per row by default), run by ``torch._scaled_mm``: FP8 tensor cores exist from compute capability
  8.9 (Ada, Hopper) on, and below that the method is recorded as skipped.

Both start from BF16 (the layers torchao leaves alone, attention included, run in BF16 on the same flash or
memory-efficient attention as ``bf16``), run on CUDA only, and are timed beside compiled FP32 (their runtime's
baseline) as well as eager FP32; BF16 in the same window tells what the 8-bit matrix products add over it.
"""
from __future__ import annotations

import copy

import numpy as np

from bgeq_utils.core import vocab
from bgeq_utils.methods.fp import (
    COMPILE_NOTE,
    HalfEncoder,
    _set_attention,
    attention_kernels,
    compile_layers,
    sdpa_fast_kernels,
    warm_up,
)
from bgeq_utils.methods.registry import MethodUnavailable, register
from bgeq_utils.methods.torch_int8 import QuantizedTorchEncoder

#: float8 matrix products (torch._scaled_mm) need this compute capability or newer
FP8_MIN_CAPABILITY = (8, 9)
FP8_GRANULARITY = ("row", "tensor")
#: torch._int_mm on CUDA needs more than 16 rows (tokens): a shorter batch is padded to 17 with masked positions
#: (kept out of attention and pooling by the mask, as in any padded batch)
INT_MM_MIN_ROWS = 17


def fp8_unavailable_reason(capability: tuple[int, int], name: str = "") -> str | None:
    """Why float8 matrix products cannot run on a GPU of this compute capability (None if they can)."""
    if tuple(capability) >= FP8_MIN_CAPABILITY:
        return None
    need = ".".join(map(str, FP8_MIN_CAPABILITY))
    return (f"float8 tensor cores need compute capability {need} or newer (Ada, Hopper); "
            f"{name or 'this GPU'} has {capability[0]}.{capability[1]}")


def _torchao():
    try:
        import torchao  # noqa: F401
        from torchao import quantization
    except ImportError as e:
        raise MethodUnavailable(f"torchao is not importable ({e}); pip install torchao") from e
    return quantization


def _cuda_only(name: str, device: str) -> None:
    if vocab.device_kind(device) != "cuda":  # the registry says so first; a direct call is told the same
        raise MethodUnavailable(f"{name} runs on CUDA only (tensor-core INT8/FP8 kernels)")


def _quantized_encoder(reference, device: str, config, compile: bool, precision: str, min_tokens: int = 0):
    """A BF16 copy quantized by ``config``, its attention read, then its layers compiled and warmed up at build."""
    import torch

    q = _torchao()
    model = copy.deepcopy(reference.model).to(device=device, dtype=torch.bfloat16).eval()
    _set_attention(model, "sdpa")
    if getattr(model, "pooler", None) is not None:
        model.pooler = None                       # unused by the embedding (mean / CLS of the last hidden state)
    q.quantize_(model, config)
    n_lin = sum(1 for m in model.modules()
                if isinstance(m, torch.nn.Linear) and type(m.weight).__name__ != "Parameter")
    enc = TorchaoGpuEncoder(reference, model, device=device, attention=sdpa_fast_kernels(device))
    enc.compute_precision = precision
    enc.min_tokens = min_tokens
    info = {"quantized_linear_layers": n_lin, "compiled": bool(compile), "base_dtype": "bfloat16",
            "min_tokens": min_tokens,
            "attention": attention_kernels(enc),
            "sdpa_backends": "flash, memory-efficient" if enc.attention is not None else "torch's default choice"}
    enc.runtime = "torch"
    if compile:
        compile_layers(model)
        enc.runtime = "inductor"
        warm_up(enc)
        info["compile"] = COMPILE_NOTE
    return enc, info


@register("int8-torchao-cuda", precision="int8", library="torchao", devices=("cuda",), packages=("torchao",),
          runtime="inductor",
          summary="torchao INT8 dynamic activations x INT8 weights on BF16, compiled: INT8 tensor cores (_int_mm)")
def int8_torchao_cuda(reference, device="cuda", calibration=None, compile: bool = True):
    """INT8 x INT8 matrix products on the tensor cores: the path the guide's 'INT8 2-4x faster on newer GPUs'
    needs (LLM.int8 and eager dynamic INT8 dequantize to 16-bit instead)."""
    _cuda_only("int8-torchao-cuda", device)
    q = _torchao()
    if compile:
        import torch._inductor.config as inductor_config

        # torchao's one Inductor setting that matters here (the scale multiply fused into the INT8 GEMM), set
        # alone: its recommended set also turns on coordinate-descent tuning, process-wide, which would lengthen
        # every later compilation and compile other methods under other settings
        inductor_config.force_fuse_int_mm_with_mul = True
    config = q.Int8DynamicActivationInt8WeightConfig(set_inductor_config=False)
    enc, info = _quantized_encoder(reference, device, config, compile, "int8", min_tokens=INT_MM_MIN_ROWS)
    enc.info = {"api": "torchao.quantization.quantize_(Int8DynamicActivationInt8WeightConfig)",
                "weights": "int8 per output channel", "activations": "int8, one scale per token, per call",
                "matmul": "torch._int_mm (INT8 tensor cores) once compiled" if compile else
                          "eager: dequantized to bf16 before each matmul", **info}
    return enc


@register("fp8-torchao-cuda", precision="fp8", library="torchao", devices=("cuda",), packages=("torchao",),
          runtime="inductor",
          summary="torchao float8 (e4m3) dynamic activations and weights on BF16, compiled: FP8 tensor cores")
def fp8_torchao_cuda(reference, device="cuda", calibration=None, granularity: str = "row", compile: bool = True):
    """Float8 weights and activations with dynamic scales (per row by default), run by torch._scaled_mm:
    the 8-bit route Hopper's tensor cores take."""
    import torch

    _cuda_only("fp8-torchao-cuda", device)
    if granularity not in FP8_GRANULARITY:
        raise ValueError(f"fp8-torchao-cuda: granularity={granularity!r} is not one of {FP8_GRANULARITY}")
    props = torch.cuda.get_device_properties(torch.device(device))
    reason = fp8_unavailable_reason((props.major, props.minor), props.name)
    if reason:
        raise MethodUnavailable(reason)
    q = _torchao()
    gran = q.PerRow() if granularity == "row" else q.PerTensor()
    config = q.Float8DynamicActivationFloat8WeightConfig(granularity=gran, set_inductor_config=False)
    enc, info = _quantized_encoder(reference, device, config, compile, "fp8")
    enc.info = {"api": f"torchao.quantization.quantize_(Float8DynamicActivationFloat8WeightConfig(granularity="
                       f"{type(gran).__name__}()))",
                "weights": f"float8_e4m3fn, one scale per {granularity}",
                "activations": f"float8_e4m3fn, one scale per {granularity}, per call",
                "matmul": "torch._scaled_mm (FP8 tensor cores)", "gpu_capability": f"{props.major}.{props.minor}",
                **info}
    return enc


class TorchaoGpuEncoder(HalfEncoder, QuantizedTorchEncoder):
    """The quantized model run inside its attention context; saved as its state dict (torchao's INT8/FP8 tensors
    and their scales) and config, its bytes counted as stored."""

    #: fewest tokens (batch x length) one forward pass may hold; shorter batches get masked padding positions
    min_tokens: int = 0

    def _forward(self, features):
        n, length = features["input_ids"].shape
        if n * length < self.min_tokens:
            extra = -(-self.min_tokens // n) - length
            pad = {"input_ids": self.tokenizer.pad_token_id or 0}
            features = {k: np.pad(v, ((0, 0), (0, extra)), constant_values=pad.get(k, 0))
                        for k, v in features.items()}
        return super()._forward(features)
