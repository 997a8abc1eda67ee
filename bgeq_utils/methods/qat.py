"""INT8 quantization-aware training (QAT) by embedding distillation, with torchao.

1. A copy of the FP32 model gets fake quantization on every Linear (torchao ``QATConfig`` prepare
   step): activations int8 per token, asymmetric; weights int8 per output channel, symmetric. The
   forward pass rounds like the INT8 model will, the backward pass goes straight through.
2. The student is fine-tuned so that its pooled, normalized sentence embeddings reproduce the FP32
   teacher's on the calibration texts (unlabelled background news, never evaluation documents);
   loss ``cosine`` (1 - cos) or ``mse``.
3. ``QATConfig(step="convert")`` removes the fake quantizers and
   ``Int8DynamicActivationInt8WeightConfig(act_mapping_type=ASYMMETRIC)`` turns the trained weights
   into a real INT8 model: int8 weights with per-channel scales, activations quantized per token at
   run time, int8 x int8 -> int32 matrix products (``torch._int_mm``).

``steps=0`` skips training and gives post-training quantization with exactly the same scheme and
code path: the fair baseline for what training adds.
"""
from __future__ import annotations

import copy
import time

from bgeq_utils.core import vocab
from bgeq_utils.methods import training
from bgeq_utils.methods.registry import MethodUnavailable, register
from bgeq_utils.methods.torch_int4 import QuantizedTorchEncoder, footprint

DEFAULTS = dict(steps=20, lr=2e-6, batch_size=8, max_length=64, seed=0, loss="cosine")
SCHEME = ("int8 weights per output channel (symmetric) + int8 activations per token (asymmetric, "
          "computed at run time); torchao Int8DynamicActivationInt8WeightConfig")


def _torchao():
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, MappingType, quantize_
        from torchao.quantization.qat import IntxFakeQuantizeConfig, QATConfig
    except Exception as e:
        raise MethodUnavailable(f"torchao QAT does not import here: {type(e).__name__}: {e}") from e
    return Int8DynamicActivationInt8WeightConfig, MappingType, quantize_, IntxFakeQuantizeConfig, QATConfig


def int8_config():
    """The INT8 scheme the student is converted to (also the post-training baseline)."""
    Int8DynamicActivationInt8WeightConfig, MappingType, *_ = _torchao()
    return Int8DynamicActivationInt8WeightConfig(act_mapping_type=MappingType.ASYMMETRIC, set_inductor_config=False)


def fake_quant_configs():
    """(activation, weight) fake-quantization configs that simulate int8_config()."""
    *_, IntxFakeQuantizeConfig, _ = _torchao()
    import torch
    act = IntxFakeQuantizeConfig(torch.int8, "per_token", is_symmetric=False)
    weight = IntxFakeQuantizeConfig(torch.int8, "per_channel", is_symmetric=True)
    return act, weight


def prepare(model):
    """Insert fake quantization into every Linear of `model` (in place)."""
    _, _, quantize_, _, QATConfig = _torchao()
    act, weight = fake_quant_configs()
    quantize_(model, QATConfig(activation_config=act, weight_config=weight, step="prepare"))
    return model


def convert(model):
    """Remove fake quantization (if any) and quantize every Linear to real INT8 (in place)."""
    _, _, quantize_, _, QATConfig = _torchao()
    from torchao.quantization.qat import FakeQuantizedLinear
    if any(isinstance(m, FakeQuantizedLinear) for m in model.modules()):
        quantize_(model, QATConfig(step="convert"))
    quantize_(model, int8_config())
    return model


def int8_layers(model) -> dict:
    """Count Linear layers by weight type: a real INT8 model has only int8 Int8Tensor weights."""
    import torch
    out = {}
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            w = m.weight
            key = f"{type(w).__name__}[{getattr(w, 'qdata', w).dtype}]".replace("torch.", "")
            out[key] = out.get(key, 0) + 1
    return out


@register("int8-qat", precision="int8", library="torchao", devices=("cpu",),
          needs=("calibration", "training",), packages=("torchao",),
          summary="INT8 quantization-aware training: distil FP32 embeddings into a fake-quantized copy, "
                  "then convert (torchao)")
def int8_qat(reference, device="cpu", calibration=None, steps: int = DEFAULTS["steps"], lr: float = DEFAULTS["lr"],
             batch_size: int = DEFAULTS["batch_size"], max_length: int = DEFAULTS["max_length"],
             seed: int = DEFAULTS["seed"], loss: str = DEFAULTS["loss"], **options):
    """Quantization-aware training to INT8 (``steps=0``: post-training INT8 of the same scheme)."""
    if options:
        raise TypeError(f"int8-qat: unknown option(s) {sorted(options)}; options are "
                        f"{', '.join(DEFAULTS)}")
    training.check_options(steps, lr, batch_size, max_length, loss, seed)
    if not calibration:
        raise ValueError("int8-qat needs training texts: pass calibration=data.calibration_texts(n) "
                         "(unlabelled, never evaluation documents)")
    import torch
    texts = list(calibration)
    max_length = min(int(max_length), reference.max_seq_length)
    t0 = time.perf_counter()
    teacher = training.embed(reference.model, reference.tokenizer, texts, reference.pooling, max_length,
                             device=str(next(reference.model.parameters()).device))
    student = copy.deepcopy(reference.model).to(device).eval()
    for p in student.parameters():
        p.requires_grad_(False)
    info = {"api": "torchao.quantization.qat.QATConfig(activation_config=IntxFakeQuantizeConfig(torch.int8, "
                   "'per_token', is_symmetric=False), weight_config=IntxFakeQuantizeConfig(torch.int8, "
                   "'per_channel', is_symmetric=True), step='prepare'|'convert') + "
                   "quantize_(model, Int8DynamicActivationInt8WeightConfig(act_mapping_type=ASYMMETRIC))",
            "scheme": SCHEME, "steps": int(steps), "lr": float(lr), "batch_size": int(batch_size),
            "max_length": max_length, "seed": int(seed), "loss": loss, "train_texts": len(texts),
            "trained": "encoder Linear weights and biases, LayerNorm (embedding tables frozen)",
            "curve": []}
    if steps > 0:
        prepare(student)
        fake_before = training.embed(student, reference.tokenizer, texts, reference.pooling, max_length, device)
        # The embedding tables are not quantized and hold half of a small model's weights: freezing
        # them keeps the update on what quantization perturbs.
        trainable = [p for n, p in student.named_parameters() if not n.startswith("embeddings.")]
        for p in trainable:
            p.requires_grad_(True)
        curve = training.distill(student, teacher, reference.tokenizer, texts, reference.pooling, steps=int(steps),
                                 lr=float(lr), batch_size=int(batch_size), max_length=max_length, loss=loss,
                                 seed=int(seed), device=device, trainable=trainable)
        fake_after = training.embed(student, reference.tokenizer, texts, reference.pooling, max_length, device)
        first, last = training.curve_trend(curve)
        info.update({"curve": [{"step": c["step"], "loss": round(c["loss"], 8)} for c in curve],
                     "train_seconds": round(curve[-1]["seconds"], 2), "loss_first_third": first,
                     "loss_last_third": last,
                     "train_cos_fake_before": float((fake_before * teacher).sum(1).mean()),
                     "train_cos_fake_after": float((fake_after * teacher).sum(1).mean())})
    convert(student)
    real = training.embed(student, reference.tokenizer, texts, reference.pooling, max_length, device)
    info["train_cos_int8"] = float((real * teacher).sum(1).mean())
    info["linear_weights"] = int8_layers(student)
    fp = footprint(student)
    info.update({k: fp[k] for k in ("bits_per_weight_effective", "weight_containers", "float_bytes",
                                    "param_bytes_by_dtype")})
    info["build_seconds"] = round(time.perf_counter() - t0, 2)
    del teacher
    if vocab.device_kind(device) == "cuda":
        torch.cuda.empty_cache()
    return QuantizedTorchEncoder(reference, student, device=device, serializer="torch", info=info,
                                 compute_precision="int8")
