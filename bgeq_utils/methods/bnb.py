"""bitsandbytes through transformers: LLM.int8() (8-bit) and 4-bit NF4 / FP4.

The model is loaded again from the reference folder with a ``BitsAndBytesConfig``, as a user of
transformers would do; every ``nn.Linear`` of the encoder becomes a ``Linear8bitLt`` or ``Linear4bit``,
embeddings and LayerNorms stay in their original precision (counted in ``param_bytes``).

* LLM.int8(): weights INT8 per output row; activations quantized per token at run time; input
  feature columns with any value above ``threshold`` (default 6.0, the paper's) go through a 16-bit
  matmul instead ("outlier decomposition"); ``threshold=0.0`` turns the decomposition off.
* 4-bit: blocks of 64 weights share one absmax scale; ``double_quant`` quantizes those scales again
  (8-bit, blocks of 256); weights are dequantized to ``compute_dtype`` for the matmul.

bitsandbytes 0.50 ships CPU kernels (used here when the device is the CPU). On a CPU with AVX512-BF16, 4-bit
layers are repacked at the first inference for a fused BF16 kernel: activations run in BF16 whatever
``compute_dtype`` says, and double-quantized scales are expanded back to one BF16 scale per block. ``info`` records it.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

from bgeq_utils.core import vocab
from bgeq_utils.methods.encoders import TorchEncoder
from bgeq_utils.methods.registry import MethodUnavailable, register

COMPUTE_DTYPES = ("float32", "bfloat16", "float16")
_PRECISION_OF = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


class _DropCastNotice(logging.Filter):
    """LLM.int8() logs 'inputs will be cast ... to float16' at every call on FP32 inputs: said once in info."""

    def filter(self, record):
        return "inputs will be cast from" not in record.getMessage()


def _quiet_bnb_logs():
    lg = logging.getLogger("bitsandbytes.autograd._functions")
    if not any(isinstance(f, _DropCastNotice) for f in lg.filters):
        lg.addFilter(_DropCastNotice())


def _device_map(device: str):
    if vocab.device_kind(device) == "cuda":
        return {"": device if ":" in str(device) else "cuda:0"}
    return {"": "cpu"}


def held_bytes(model) -> dict:
    """Bytes the model holds, split into quantized weights, quantization constants and the rest.

    Counts each storage once (scales shared between a weight and a layer's state are not doubled).
    """
    import torch

    seen: set = set()
    out = {"quantized_weights": 0, "quantization_constants": 0, "higher_precision": 0}
    by_dtype: dict[str, int] = {}

    def add(t, bucket):
        if not isinstance(t, torch.Tensor) or t.device.type == "meta":
            return
        key = (t.device.type, t.untyped_storage().data_ptr(), t.storage_offset(), t.nbytes)
        if key in seen:
            return
        seen.add(key)
        out[bucket] += t.nbytes
        k = str(t.dtype).replace("torch.", "")
        by_dtype[k] = by_dtype.get(k, 0) + t.nbytes

    def add_quant_state(qs):
        if qs is None:
            return
        for name in ("absmax", "code", "offset"):
            add(getattr(qs, name, None), "quantization_constants")
        s2 = getattr(qs, "state2", None) if getattr(qs, "nested", False) else None
        if s2 is not None:
            for name in ("absmax", "code"):
                add(getattr(s2, name, None), "quantization_constants")

    for mod in model.modules():
        quantized = type(mod).__name__ in ("Linear8bitLt", "Linear4bit", "LinearNF4", "LinearFP4")
        for pname, p in mod.named_parameters(recurse=False):
            if quantized and pname == "weight":
                add(p.data, "quantized_weights")
                add(getattr(p, "SCB", None), "quantization_constants")
                add_quant_state(getattr(p, "quant_state", None))
            else:
                add(p.data, "higher_precision")
        for _, b in mod.named_buffers(recurse=False):
            add(b, "higher_precision")
        state = getattr(mod, "state", None)
        if quantized and state is not None:
            add(getattr(state, "SCB", None), "quantization_constants")
            add(getattr(state, "CB", None), "quantized_weights")
    out["total"] = sum(out.values())
    out["by_dtype"] = by_dtype
    return out


def _cpu_repacked(model) -> bool:
    return any(getattr(getattr(m.weight, "quant_state", None), "packing_format_for_cpu", False)
               for m in model.modules() if type(m).__name__ == "Linear4bit")


class BnbEncoder(TorchEncoder):
    """A transformers model loaded with a BitsAndBytesConfig."""

    def __init__(self, reference, model, device="cpu", config=None):
        super().__init__(reference, model, device)
        self._config = config
        self._folder = reference.folder

    def _forward(self, features):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return super()._forward(features)

    def param_bytes(self) -> int:
        return held_bytes(self.model)["total"]

    def save(self, folder):
        """save_pretrained: bitsandbytes' serialized form (packed weights + quantization state).

        4-bit layers repacked for the CPU BF16 kernel are not saved from the running model: serializing
        them converts them back in place, and bitsandbytes 0.50 gets that inverse wrong (the reloaded
        checkpoint gives embeddings with cosine ~0.15 to FP32, and the running model is corrupted too).
        The same quantization is loaded again from the reference folder and saved before any inference:
        the bytes bitsandbytes writes for this model and configuration.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if _cpu_repacked(self.model):
                import torch
                from transformers import AutoModel
                fresh = AutoModel.from_pretrained(self._folder, quantization_config=self._config,
                                                  device_map={"": "cpu"}, dtype=torch.float32)
                fresh.save_pretrained(folder)
                del fresh
            else:
                self.model.save_pretrained(folder)
        return folder


def _load(reference, device: str, config, what: str):
    import torch
    try:
        import bitsandbytes as bnb
        from transformers import AutoModel
    except ImportError as e:
        raise MethodUnavailable(f"bitsandbytes is not importable ({e}); pip install bitsandbytes") from e
    _quiet_bnb_logs()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AutoModel.from_pretrained(reference.folder, quantization_config=config,
                                              device_map=_device_map(device), dtype=torch.float32)
    except Exception as e:
        raise MethodUnavailable(f"bitsandbytes {bnb.__version__}: loading the model {what} on "
                                f"{'cuda' if str(device).startswith('cuda') else 'cpu'} failed: "
                                f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}") from e
    model.eval()
    return model, bnb


def _probe(enc, device: str, what: str):
    """One small forward: bitsandbytes must really run here (kernels exist for this device)."""
    import bitsandbytes as bnb
    try:
        enc.encode(["a short probe sentence", "and a second, slightly longer probe sentence"], batch_size=2)
    except Exception as e:
        raise MethodUnavailable(f"bitsandbytes {bnb.__version__} {what} does not run on "
                                f"{'cuda' if str(device).startswith('cuda') else 'cpu'} here: {type(e).__name__}: "
                                f"{str(e).splitlines()[0][:300] if str(e) else ''}") from e


def _layers(model):
    lin = [n for n, m in model.named_modules() if type(m).__name__ == "Linear"]
    q = [n for n, m in model.named_modules() if type(m).__name__ in ("Linear8bitLt", "Linear4bit")]
    return q, lin


@register("int8-bnb", precision="int8", library="bitsandbytes", packages=("bitsandbytes",),
          summary="bitsandbytes LLM.int8(): INT8 weights, outlier features in 16-bit (transformers load_in_8bit)")
def int8_bnb(reference, device="cpu", calibration=None, threshold: float = 6.0, **options):
    """LLM.int8() via transformers' BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold)."""
    from transformers import BitsAndBytesConfig

    if options:
        raise TypeError(f"int8-bnb: unknown option(s) {sorted(options)}; the option is threshold (float, >= 0)")
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"int8-bnb: threshold={threshold!r} must be a number >= 0 (6.0 = the paper's; "
                         "0.0 = no outlier decomposition)") from None
    if threshold < 0:
        raise ValueError(f"int8-bnb: threshold={threshold} must be >= 0 (0.0 turns the outlier decomposition off)")
    config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold)
    model, bnb = _load(reference, device, config, "in 8-bit (LLM.int8)")
    enc = BnbEncoder(reference, model, device=device, config=config)
    enc.compute_precision = "int8"
    _probe(enc, device, "LLM.int8()")
    q, kept = _layers(model)
    held = held_bytes(model)
    enc.info = {
        "api": "transformers AutoModel.from_pretrained(quantization_config=BitsAndBytesConfig(load_in_8bit=True))",
        "bitsandbytes": bnb.__version__, "threshold": threshold,
        "outlier_decomposition": threshold > 0,
        "activations": "cast to float16, quantized to int8 per token at run time"
                       + ("; feature columns with |x| > threshold multiplied in float16" if threshold > 0 else ""),
        "quantized_linear_layers": len(q), "linear_layers_kept": kept,
        "bytes": {k: v for k, v in held.items() if k != "total"},
    }
    return enc


def _four_bit(reference, device, quant_type: str, double_quant: bool, compute_dtype: str, options: dict):
    import torch
    from transformers import BitsAndBytesConfig

    name = f"{quant_type}-bnb"
    if options:
        raise TypeError(f"{name}: unknown option(s) {sorted(options)}; options are double_quant (bool) and "
                        f"compute_dtype {COMPUTE_DTYPES}")
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"{name}: compute_dtype={compute_dtype!r} is not one of {COMPUTE_DTYPES}")
    if not isinstance(double_quant, bool):
        raise ValueError(f"{name}: double_quant={double_quant!r} must be True or False")
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type,
                                bnb_4bit_use_double_quant=double_quant,
                                bnb_4bit_compute_dtype=getattr(torch, compute_dtype))
    model, bnb = _load(reference, device, config, f"in 4-bit ({quant_type})")
    enc = BnbEncoder(reference, model, device=device, config=config)
    enc.compute_precision = _PRECISION_OF[compute_dtype]
    _probe(enc, device, f"4-bit {quant_type}")  # also triggers the CPU repacking, so bytes are as run
    q, kept = _layers(model)
    cpu_packed = _cpu_repacked(model)
    held = held_bytes(model)
    info = {
        "api": f"transformers AutoModel.from_pretrained(quantization_config=BitsAndBytesConfig(load_in_4bit=True, "
               f"bnb_4bit_quant_type={quant_type!r}))",
        "bitsandbytes": bnb.__version__, "quant_type": quant_type, "double_quant": double_quant,
        "compute_dtype": compute_dtype, "blocksize": 64,
        "quantized_linear_layers": len(q), "linear_layers_kept": kept,
        "bytes": {k: v for k, v in held.items() if k != "total"},
        "cpu_bf16_repacked": cpu_packed,
    }
    if cpu_packed:
        enc.compute_precision = "bf16"
        info["note"] = ("CPU with AVX512-BF16: bitsandbytes repacked the 4-bit weights for its fused BF16 kernel "
                        "at the first inference; activations run in bfloat16 whatever compute_dtype says"
                        + (", and the double-quantized scales were expanded to one bfloat16 scale per block"
                           if double_quant else ""))
        info["save"] = ("save() re-loads the same quantization and saves it before any inference: bitsandbytes "
                        f"{bnb.__version__} corrupts CPU-repacked 4-bit layers when serializing them")
    enc.info = info
    return enc


@register("nf4-bnb", precision="nf4", library="bitsandbytes", packages=("bitsandbytes",),
          summary="bitsandbytes 4-bit NormalFloat (NF4) weights, blocks of 64 (transformers load_in_4bit)")
def nf4_bnb(reference, device="cpu", calibration=None, double_quant: bool = False, compute_dtype: str = "float32",
            **options):
    """4-bit NormalFloat weights (QLoRA's data type), dequantized to compute_dtype for each matmul."""
    return _four_bit(reference, device, "nf4", double_quant, compute_dtype, options)


@register("fp4-bnb", precision="fp4", library="bitsandbytes", packages=("bitsandbytes",),
          summary="bitsandbytes 4-bit float (FP4) weights, blocks of 64 (transformers load_in_4bit)")
def fp4_bnb(reference, device="cpu", calibration=None, double_quant: bool = False, compute_dtype: str = "float32",
            **options):
    """4-bit floating-point weights, dequantized to compute_dtype for each matmul."""
    return _four_bit(reference, device, "fp4", double_quant, compute_dtype, options)
