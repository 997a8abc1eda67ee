"""Floating-point methods: the FP32 reference itself, and its FP16 / BF16 casts.

FP16 and BF16 are plain casts of every weight and every operation (``model.half()`` /
``model.to(torch.bfloat16)``), as sentence-transformers does with ``model.half()``: nothing is kept
in FP32 except the pooling and normalisation of the final embedding. Whether a CPU runs them fast
depends on its instructions (AVX512-BF16 / AMX-BF16 for BF16, AVX512-FP16 / AMX-FP16 for FP16);
where it has none, PyTorch converts on the fly and the speed is what the grid measures.

On CUDA both run on their fast path by default: attention through ``scaled_dot_product_attention`` held to its
flash and memory-efficient kernels (``attn="sdpa"``), so FP16 and BF16 take the same kernel for the same inputs,
the kernel recorded in the encoder's ``info``. ``attn="eager"`` keeps transformers' matmul + softmax attention
as a variant, and ``compile=True`` runs the model through ``torch.compile`` (Inductor), measured beside them.
Padding: a batch is padded to its longest text and the padded positions are computed (transformers' BERT has
no variable-length attention); ``encode`` sorts texts by length so a batch holds similar lengths, and the speed
grid's batches are full to their length, so its tokens/s counts only real tokens.
"""
from __future__ import annotations

import copy

from bgeq_utils.core import env, vocab
from bgeq_utils.inputs import data
from bgeq_utils.methods.encoders import TorchEncoder
from bgeq_utils.methods.registry import register
from bgeq_utils.methods.torch_int8 import CompiledEncoder, _FrozenCompiled, _last_hidden

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
    enc = TorchEncoder(reference, model, device=device)
    if vocab.device_kind(device) == "cuda":
        enc.info = {"attn_implementation": model.config._attn_implementation, "attention": attention_kernels(enc)}
    return enc


#: attention implementations of the half-precision methods (transformers' names)
ATTENTION = ("sdpa", "eager")
#: aten operators of scaled_dot_product_attention's kernels, and the names a Result records for them
SDPA_KERNELS = {
    "aten::_scaled_dot_product_flash_attention_for_cpu": "flash (CPU)",
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_efficient_attention": "memory-efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_fused_attention_overrideable": "fused (overrideable)",
    "aten::_scaled_dot_product_attention_math": "math",
}


def kernel_of(op_names) -> str:
    """The attention kernel a forward pass ran, from the aten operators the profiler saw."""
    names = set(op_names)
    for op, kernel in SDPA_KERNELS.items():
        if op in names:
            return kernel
    if names & {"aten::softmax", "aten::_softmax"}:
        return "eager (matmul + softmax)"
    return "not seen"


def attention_kernels(enc) -> dict:
    """The attention kernel of one forward pass on a batch without padding and on one with padding (a padding
    mask rules the flash kernel out), read from the operators the profiler records."""
    from torch.profiler import ProfilerActivity, profile


    long_text = data.benchmark_texts(1)[0]
    batches = {"unpadded": [long_text, long_text], "padded": [long_text, "a short text"]}
    out = {}
    for what, texts in batches.items():
        feats = enc.tokenize(texts, max_length=min(64, enc.max_seq_length))
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            enc.embed_features(feats)
        out[what] = kernel_of(e.name for e in prof.events())
    return out


class HalfEncoder(TorchEncoder):
    """A cast model whose forward runs inside an attention-backend context (CUDA: flash or memory-efficient)."""

    def __init__(self, reference, model, device="cpu", attention=None):
        super().__init__(reference, model, device)
        self.attention = attention

    def _forward(self, features):
        if self.attention is None:
            return super()._forward(features)
        with self.attention():
            return super()._forward(features)


def sdpa_fast_kernels(device: str):
    """A context factory holding scaled_dot_product_attention to its flash and memory-efficient kernels on CUDA
    (the same choice for FP16 and BF16: cuDNN attention and the math fallback are left out); None on CPU."""
    if vocab.device_kind(device) != "cuda":
        return None
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return lambda: sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION])


def _set_attention(model, attn: str) -> None:
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(attn)
    else:
        model.config._attn_implementation = attn


def _half(reference, device: str, precision: str, attn: str = "sdpa", compile: bool = False):
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    if attn not in ATTENTION:
        raise ValueError(f"{precision}: attn={attn!r} is not one of {ATTENTION}")
    # Copy first: the reference must stay FP32. The cast happens on the target device.
    model = copy.deepcopy(reference.model).to(device=device, dtype=dtype).eval()
    _set_attention(model, attn)
    context = sdpa_fast_kernels(device) if attn == "sdpa" else None
    enc = HalfEncoder(reference, model, device=device, attention=context)
    attention = attention_kernels(enc) if vocab.device_kind(device) == "cuda" else None
    if compile:
        compile_layers(model)
        enc.runtime = "inductor"
        warm_up(enc)
    enc.compute_precision = precision
    kind = vocab.device_kind(device)
    info = {"api": "model.half()" if precision == "fp16" else "model.to(torch.bfloat16)",
            "weights_dtype": str(dtype).replace("torch.", ""), "device_kind": kind,
            "attn_implementation": attn, "compiled": bool(compile),
            "sdpa_backends": "flash, memory-efficient" if context is not None else "torch's default choice",
            "padding": "computed: batches are padded to their longest text (encode sorts texts by length)"}
    if compile:
        info["compile"] = COMPILE_NOTE
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
        info["attention"] = attention   # read before compiling, under the context the compiled layers run in
    enc.info = info
    return enc


#: guard entries a compiled code object may hold before torch.compile falls back to eager
RECOMPILE_LIMIT = 64
COMPILE_NOTE = ("torch.compile(dynamic=True) of each encoder layer (regional: the layers share one compiled graph), "
                "Inductor defaults; compiled at build")


def compile_layers(model) -> int:
    """Compile each encoder layer in place (``torch.compile(dynamic=True)``): the layers hold nearly all the work
    and share their code, so one compiled graph serves all of them and compiling costs one layer, not the model.
    Every compiled copy of the model adds guard entries to the same code object; past torch's recompile limit
    (8) the rest would run eagerly without an error, so the limit is raised. Returns the layers compiled."""
    import torch._dynamo.config as dynamo_config

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(dynamo_config, name) and getattr(dynamo_config, name) < RECOMPILE_LIMIT:
            setattr(dynamo_config, name, RECOMPILE_LIMIT)
    layers = model.encoder.layer
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)


def warm_up(enc) -> None:
    """Compile now, at build time, so that build time includes it and no measured call pays it: the graphs a
    dynamic-shape compilation specializes (a full batch, a padded one, a single text)."""

    long_text = data.benchmark_texts(1)[0]
    for texts in ([long_text, long_text], [long_text, "a short text"], [long_text]):
        enc.embed_features(enc.tokenize(texts, max_length=min(64, enc.max_seq_length)))


@register("fp16", precision="fp16", library="torch",
          summary="FP16 cast of the whole model (model.half()), SDPA attention (CUDA: flash / memory-efficient)")
def fp16(reference, device="cpu", calibration=None, attn: str = "sdpa", compile: bool = False):
    """Every weight and operation in IEEE half precision (range +-65504)."""
    return _half(reference, device, "fp16", attn, compile)


@register("bf16", precision="bf16", library="torch",
          summary="BF16 cast of the whole model (model.to(bfloat16)), SDPA attention (CUDA: flash / memory-efficient)")
def bf16(reference, device="cpu", calibration=None, attn: str = "sdpa", compile: bool = False):
    """Every weight and operation in bfloat16 (FP32's range, 8 bits of mantissa)."""
    return _half(reference, device, "bf16", attn, compile)


@register("fp32-inductor", precision="fp32", library="torch", runtime="inductor",
          summary="FP32 compiled by torch.compile (Inductor, freezing): the same-runtime baseline of compiled INT8")
def fp32_inductor(reference, device="cpu", calibration=None, freezing: bool = True):
    """FP32 through Inductor with the settings of the compiled INT8 methods, so that a compiled INT8 method's
    speed-up over it is what INT8 adds, not what the compiler adds. On CUDA those are torchao_gpu's (each layer
    compiled, attention held to SDPA's memory-efficient kernel, no freezing: ``freezing`` is for CPU's PT2E
    INT8); on CPU the PT2E methods' (the whole model, Inductor freezing)."""
    import torch


    model = copy.deepcopy(reference.model).to(device).eval()
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    if vocab.device_kind(device) == "cuda":
        enc = HalfEncoder(reference, model, device=device, attention=sdpa_fast_kernels(device))
        attention = attention_kernels(enc)
        compile_layers(model)
        enc.runtime = "inductor"
        warm_up(enc)
        enc.info = {"api": COMPILE_NOTE, "compiled": True, "attention": attention,
                    "sdpa_backends": "flash, memory-efficient"}
        return enc
    module = _last_hidden(model).eval()
    runner = _FrozenCompiled(module) if freezing else torch.compile(module, dynamic=True)
    enc = CompiledEncoder(reference, module, runner, device=device)
    enc.encode(["compile now, so that build time includes it"] * 2)
    enc.info = {"api": "torch.compile(dynamic=True)" + (", Inductor freezing" if freezing else ""),
                "compiled": True}
    return enc
