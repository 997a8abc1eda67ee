"""PyTorch INT8: dynamic (weights INT8, activations quantized on the fly) and static (both, calibrated).

Dynamic, two APIs:

* ``torch.ao``: ``torch.ao.quantization.quantize_dynamic`` swaps every ``nn.Linear`` for a
  ``DynamicQuantizedLinear`` whose INT8 weights are pre-packed for FBGEMM/oneDNN; each call
  quantizes its input with one scale per tensor and runs an INT8 GEMM. Runs eagerly, no compiler.
  Weights per output channel by default (``per_channel=True``); ``per_channel=False`` is the
  one-scale-per-tensor recipe of the guide.
* ``torchao``: ``quantize_(model, Int8DynamicActivationInt8WeightConfig())`` stores the weights as
  ``Int8Tensor`` (per channel) and quantizes activations per token. Eagerly it has no fused CPU
  kernel; ``compile=True`` hands it to ``torch.compile`` (Inductor), which does.

``api="auto"`` picks ``torch.ao`` on CPU while it exists: its fused kernels run eagerly, where torchao's
per-token path has no fused CPU kernel without ``torch.compile`` (and compiling costs about a minute per
shape family on two cores). torchao's per-token activation scales are the more faithful of the two;
``api="torchao"`` measures it. On CUDA ``auto`` means torchao. Notebook 03 shows the measured speed and
fidelity of both on the machine at hand.

Static: PT2E (``torch.export`` -> ``prepare_pt2e`` with ``X86InductorQuantizer`` -> calibration ->
``convert_pt2e``), the flow that replaces eager/FX static quantization. The converted graph holds INT8
weights and quantize/dequantize pairs around every Linear (activation scales fixed by calibration);
``torch.compile`` with freezing lowers those patterns to oneDNN INT8 kernels. Without compilation
(``compile=False``) the same graph runs with FP32 GEMMs: the INT8 numerics, not the INT8 speed.
Calibration (HistogramObserver, about two minutes for bge-large on two cores) runs once per model, texts and
settings: the calibrated observers are cached on disk like the ONNX graphs, so the fresh process that
measures memory, and every later build, load them and convert to the same INT8 graph without calibrating.
"""
from __future__ import annotations

import copy
import hashlib
import warnings
from pathlib import Path

from bgeq_utils.core import paths, vocab
from bgeq_utils.methods import onnx_export as ox
from bgeq_utils.methods.encoders import FEATURES, TorchEncoder, pool_torch
from bgeq_utils.methods.registry import MethodUnavailable, register

DYNAMIC_APIS = ("auto", "torch.ao", "torchao")


# --- bytes actually held ------------------------------------------------------------------------
def tensor_bytes(t) -> int:
    """Bytes a tensor holds: INT8 storage plus scales and zero points for quantized tensors, the
    inner tensors of tensor subclasses (torchao), plain ``nbytes`` otherwise."""
    import torch
    if t is None:
        return 0
    if isinstance(t, torch.Tensor) and t.is_quantized:
        n = t.int_repr().nbytes if t.device.type == "cpu" else t.numel() * t.element_size()
        if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric,
                           torch.per_channel_affine_float_qparams):
            n += t.q_per_channel_scales().nbytes + t.q_per_channel_zero_points().nbytes
        else:
            n += 16  # one float64 scale + one int64 zero point
        return n
    if isinstance(t, torch.Tensor) and type(t) not in (torch.Tensor, torch.nn.Parameter) \
            and hasattr(t, "__tensor_flatten__"):
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names)
    if isinstance(t, torch.Tensor):
        return t.nbytes
    if isinstance(t, (tuple, list)):
        return sum(tensor_bytes(x) for x in t)
    return 0


def state_dict_bytes(state_dict) -> tuple[int, dict]:
    """(total bytes, bytes by dtype) of a state dict, quantized/packed entries included."""
    import torch
    total, by = 0, {}

    def add(x):
        nonlocal total
        if isinstance(x, (tuple, list)):
            for y in x:
                add(y)
            return
        if not isinstance(x, torch.Tensor):
            return
        n = tensor_bytes(x)
        key = "int8" if x.is_quantized else str(getattr(x, "dtype", "?")).replace("torch.", "")
        if type(x) not in (torch.Tensor, torch.nn.Parameter) and hasattr(x, "__tensor_flatten__"):
            key = f"{type(x).__name__}"
        by[key] = by.get(key, 0) + n
        total += n

    for v in state_dict.values():
        add(v)
    return total, by


# --- encoders -----------------------------------------------------------------------------------
class QuantizedTorchEncoder(TorchEncoder):
    """A quantized copy of the reference: saved as its state dict (what it really stores) + config."""

    def param_bytes(self) -> int:
        return state_dict_bytes(self.model.state_dict())[0]

    def save(self, folder):
        import torch
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), folder / "quantized_state_dict.pt")
        cfg = getattr(self.model, "config", None)
        if cfg is not None:
            cfg.to_json_file(folder / "config.json")
        return folder


@register("int8-dynamic-torch", precision="int8", library="torch",
          summary="PyTorch dynamic INT8 of the Linear layers (weights INT8, activations quantized per call)")
def int8_dynamic_torch(reference, device="cpu", calibration=None, api: str = "auto", per_channel: bool = True,
                       compile: bool = False, **options):
    """Dynamic INT8: Linear weights stored in INT8, activations quantized on the fly."""
    import torch

    if options:
        raise TypeError(f"int8-dynamic-torch: unknown option(s) {sorted(options)}; "
                        "options are api ('auto', 'torch.ao', 'torchao'), per_channel (torch.ao), compile (torchao)")
    if api not in DYNAMIC_APIS:
        raise ValueError(f"int8-dynamic-torch: api={api!r} is not one of {DYNAMIC_APIS}")
    kind = vocab.device_kind(device)
    has_torch_ao = hasattr(torch, "ao") and hasattr(torch.ao, "quantization") \
        and hasattr(torch.ao.quantization, "quantize_dynamic")
    chosen = api
    if api == "auto":
        chosen = "torch.ao" if has_torch_ao and kind == "cpu" else "torchao"
    if chosen == "torch.ao":
        if kind == "cuda":
            raise MethodUnavailable("torch.ao.quantization.quantize_dynamic has CPU kernels only (FBGEMM/oneDNN); "
                                    "use api='torchao' (or 'auto') on CUDA")
        if not has_torch_ao:
            raise MethodUnavailable(f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic; "
                                    "use api='torchao'")
        return _dynamic_torch_ao(reference, per_channel, api, compile)
    return _dynamic_torchao(reference, device, api, compile, per_channel)


def _dynamic_torch_ao(reference, per_channel: bool, requested: str, compile: bool):
    import torch
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig

    if compile:
        raise ValueError("int8-dynamic-torch: compile=True applies to api='torchao' only "
                         "(torch.ao's quantized Linear already runs fused FBGEMM/oneDNN kernels)")
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        model = torch.ao.quantization.quantize_dynamic(copy.deepcopy(reference.model).cpu().eval(),
                                                       {torch.nn.Linear: qconfig}, dtype=torch.qint8)
    n_lin = sum(1 for m in model.modules() if type(m).__name__ == "Linear" and "quantized" in type(m).__module__)
    enc = QuantizedTorchEncoder(reference, model, device="cpu")
    enc.compute_precision = "int8"
    enc.info = {
        "api": "torch.ao.quantization.quantize_dynamic", "requested_api": requested,
        "why": ("api='auto' on CPU: torch.ao's DynamicQuantizedLinear runs fused FBGEMM/oneDNN INT8 kernels "
                "eagerly; torchao's per-token path needs torch.compile for fused kernels"
                if requested == "auto" else "requested"),
        "weights": "int8 per output channel" if per_channel else "int8 per tensor",
        "activations": "quint8, one scale per tensor, computed per call (reduce_range on x86)",
        "quantized_engine": torch.backends.quantized.engine,
        "quantized_linear_layers": n_lin,
        "deprecated": "torch.ao.quantization is deprecated upstream in favour of torchao",
    }
    return enc


def _dynamic_torchao(reference, device: str, requested: str, compile: bool, per_channel: bool):
    import torch
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError as e:
        raise MethodUnavailable(f"torchao is not importable ({e}); pip install torchao") from e
    if not per_channel:
        raise ValueError("int8-dynamic-torch: torchao's Int8DynamicActivationInt8WeightConfig quantizes weights "
                         "per channel; per_channel=False applies to api='torch.ao' only")
    model = copy.deepcopy(reference.model).to(device).eval()
    quantize_(model, Int8DynamicActivationInt8WeightConfig())
    n_lin = sum(1 for n, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and type(m.weight).__name__ != "Parameter")
    runner = torch.compile(model, dynamic=True) if compile else model
    enc = _TorchaoEncoder(reference, runner, device=device, stored=model)
    enc.compute_precision = "int8"
    enc.runtime = "inductor" if compile else "torch"
    enc.info = {
        "api": "torchao.quantization.quantize_(Int8DynamicActivationInt8WeightConfig)",
        "requested_api": requested, "compiled": bool(compile),
        "why": "requested" if requested == "torchao" else "torch.ao quantize_dynamic unavailable on this device",
        "weights": "int8 per output channel (torchao Int8Tensor)",
        "activations": "int8, one scale per token, computed per call",
        "quantized_linear_layers": n_lin,
    }
    return enc


class _TorchaoEncoder(QuantizedTorchEncoder):
    def __init__(self, reference, model, device="cpu", stored=None):
        super().__init__(reference, model, device)
        self.stored = stored if stored is not None else model

    def param_bytes(self) -> int:
        return state_dict_bytes(self.stored.state_dict())[0]

    def save(self, folder):
        import torch
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.stored.state_dict(), folder / "quantized_state_dict.pt")
        if getattr(self.stored, "config", None) is not None:
            self.stored.config.to_json_file(folder / "config.json")
        return folder

    def close(self):
        self.stored = None
        super().close()


# --- static INT8 (PT2E) -------------------------------------------------------------------------
def _last_hidden(model):
    """The model with positional int64 inputs and the last hidden state as its only output (exportable)."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    return LastHidden(model)


def _used_attrs(gm) -> set[str]:
    return {n.target for n in gm.graph.nodes if n.op == "get_attr"}


def _drop_unused_tensors(gm) -> int:
    """convert_pt2e leaves the FP32 originals of the quantized weights attached: drop what no node reads."""
    used, dropped = _used_attrs(gm), 0
    for name, _ in list(gm.named_parameters()) + list(gm.named_buffers()):
        if name not in used:
            owner, _, leaf = name.rpartition(".")
            mod = gm.get_submodule(owner) if owner else gm
            delattr(mod, leaf)
            dropped += 1
    return dropped


def _attr(gm, target):
    obj = gm
    for p in target.split("."):
        obj = getattr(obj, p)
    return obj


class _FrozenCompiled:
    """``torch.compile`` of a PT2E graph with Inductor's freezing on (needed to lower its q/dq patterns
    to oneDNN INT8). Freezing is read when a graph is compiled, which happens at the first call of
    each new shape family, so it is switched on around every call rather than once."""

    def __init__(self, gm):
        import torch
        self.compiled = torch.compile(gm, dynamic=True)

    def __call__(self, *args):
        import torch._inductor.config as inductor_config
        with inductor_config.patch(freezing=True):
            return self.compiled(*args)


class CompiledEncoder(TorchEncoder):
    """An exportable module (positional token ids -> last hidden state) run through a callable that may be
    compiled: ``model`` is the module as stored, ``runner`` what executes it."""

    def __init__(self, reference, module, runner, device="cpu"):
        super().__init__(reference, module, device)
        self.runner = runner

    def _forward(self, features):
        import torch
        feats = [torch.from_numpy(features[k]).to(self.device) for k in FEATURES]
        with torch.no_grad():
            hidden = self.runner(*feats)
        return pool_torch(hidden, feats[1], self.pooling)

    def close(self):
        self.runner = None
        super().close()


class StaticInt8Encoder(CompiledEncoder):
    """A PT2E-converted graph (INT8 weights, calibrated activation scales), compiled or not."""

    def __init__(self, reference, converted, runner, example, dynamic_shapes, device="cpu"):
        super().__init__(reference, converted, runner, device)
        self.example = example
        self.dynamic_shapes = dynamic_shapes

    @property
    def converted(self):
        return self.model

    def param_bytes(self) -> int:
        return sum(_attr(self.converted, t).nbytes for t in _used_attrs(self.converted)
                   if hasattr(_attr(self.converted, t), "nbytes"))

    def bytes_by_dtype(self) -> dict:
        out = {}
        for t in _used_attrs(self.converted):
            x = _attr(self.converted, t)
            if hasattr(x, "nbytes"):
                k = str(x.dtype).replace("torch.", "")
                out[k] = out.get(k, 0) + x.nbytes
        return out

    def save(self, folder):
        """The converted program (INT8 weights + activation scales) as a torch.export archive."""
        import torch
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = torch.export.export(self.converted, self.example, dynamic_shapes=self.dynamic_shapes)
            torch.export.save(ep, folder / "model_int8_static.pt2")
        return folder


OBSERVERS_FILE = "observers.pt"


def _observer_state(prepared) -> dict:
    """The observers' buffers of a prepared PT2E graph (activation ranges, histograms, weight ranges)."""
    return {k: v for k, v in prepared.state_dict().items() if k.startswith("activation_post_process_")}


def _calibrate(reference, prepared, texts: list[str], batch_size: int, reduce_range: bool, feats) -> dict:
    """Run the calibration texts through ``prepared``, or load the observers a previous identical build saved.

    The cache key holds the weights (path, size, mtime), the prepared graph's code (which names its observers), the
    texts, the settings and the library versions; the cached file is checked against its SHA-256 like every
    cached artifact. Loaded observers give the same scales as calibrating again, so the INT8 graph is the
    same."""
    import torch

    keys = sorted(_observer_state(prepared))
    parts = {"model": ox.model_fingerprint(reference.folder),
             "graph": hashlib.sha256(prepared.code.encode()).hexdigest(),
             "calibration": ox.texts_hash(texts),
             "batch_size": int(batch_size), "reduce_range": bool(reduce_range),
             "max_length": reference.max_seq_length, "versions": ox._versions("torch", "torchao", "transformers")}
    ran = []

    def build(out: Path) -> dict:
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                prepared(*feats(texts[i:i + batch_size]))
        torch.save(_observer_state(prepared), out / OBSERVERS_FILE)
        ran.append(True)
        return {"observers": len(keys), "calibration_texts": len(texts)}

    folder = ox.cached_artifact("pt2e-observers", parts, build, main_file=OBSERVERS_FILE,
                                root=paths.cache_dir() / "pt2e")
    if not ran:
        state = torch.load(folder / OBSERVERS_FILE, weights_only=True)
        if sorted(state) != keys:
            raise ox.OnnxCacheError(f"{folder / OBSERVERS_FILE} holds other observers than this graph has "
                                    f"({len(state)} saved, {len(keys)} expected). Delete {folder} to calibrate again.")
        prepared.load_state_dict(state, strict=False)
    return {"calibration_run": bool(ran), "calibration_cache": folder.name}


@register("int8-static-torch", precision="int8", library="torch", devices=("cpu",), needs=("calibration",),
          runtime="inductor",
          summary="PyTorch static INT8 (PT2E + X86InductorQuantizer, calibrated), compiled to oneDNN kernels")
def int8_static_torch(reference, device="cpu", calibration=None, compile: bool = True, batch_size: int = 8,
                      reduce_range: bool = False, **options):
    """Static INT8 of weights and activations, activation ranges calibrated on the given texts."""
    import torch

    if options:
        raise TypeError(f"int8-static-torch: unknown option(s) {sorted(options)}; "
                        "options are compile, batch_size (calibration), reduce_range")
    if not calibration:
        raise ValueError("int8-static-torch needs calibration texts (calibration=data.calibration_texts(n))")
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    except ImportError as e:
        raise MethodUnavailable(f"PT2E static quantization needs torchao.quantization.pt2e ({e}); "
                                "pip install torchao") from e

    tmp = TorchEncoder(reference, None, device="cpu")  # only for its tokenizer settings

    def feats(texts):
        f = tmp.tokenize(list(texts))
        return tuple(torch.from_numpy(f[k]) for k in FEATURES)

    model = copy.deepcopy(reference.model).cpu().eval()
    if getattr(model, "pooler", None) is not None:
        model.pooler = None  # unused by sentence embeddings; an output-less Linear+Tanh breaks annotation
    wrapped = _last_hidden(model).eval()
    example = feats(calibration[: max(2, min(4, len(calibration)))])
    if example[0].shape[0] < 2:
        example = tuple(torch.cat([x, x]) for x in example)  # batch 1 would be specialised by export
    batch = torch.export.Dim("batch", min=1, max=4096)
    seq = torch.export.Dim("seq", min=2, max=max(reference.max_seq_length, 3))
    dynamic_shapes = ({0: batch, 1: seq},) * 3
    stage = "torch.export"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exported = torch.export.export(wrapped, example, dynamic_shapes=dynamic_shapes).module()
            stage = "prepare_pt2e(X86InductorQuantizer)"
            quantizer = X86InductorQuantizer()
            quantizer.set_global(get_default_x86_inductor_quantization_config(
                is_qat=False, is_dynamic=False, reduce_range=bool(reduce_range)))
            prepared = prepare_pt2e(exported, quantizer)
        stage = "calibration"   # outside the filter: a damaged cache says it is rebuilt (building is quiet)
        calibrated = _calibrate(reference, prepared, calibration, batch_size, reduce_range, feats)
        stage = "convert_pt2e"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = convert_pt2e(prepared)
    except Exception as e:
        raise MethodUnavailable(f"PT2E static INT8 failed at {stage}: {type(e).__name__}: "
                                f"{str(e).splitlines()[0][:300] if str(e) else ''}") from e
    dropped = _drop_unused_tensors(converted)
    n_q = sum(1 for n in converted.graph.nodes if n.op == "call_function"
              and "quantize_per_tensor" in str(n.target) and "dequantize" not in str(n.target))
    n_w = sum(1 for t in _used_attrs(converted) if str(getattr(_attr(converted, t), "dtype", "")) == "torch.int8")
    runner = converted
    if compile:
        runner = _FrozenCompiled(converted)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                runner(*example)  # compile now, so that build time includes it and failures surface here
        except Exception as e:
            raise MethodUnavailable(
                f"torch.compile (Inductor, freezing) of the PT2E INT8 graph failed: {type(e).__name__}: "
                f"{str(e).splitlines()[0][:300] if str(e) else ''}. compile=False runs the same INT8 numerics "
                "with FP32 GEMMs") from e
    enc = StaticInt8Encoder(reference, converted, runner, example, dynamic_shapes)
    enc.compute_precision = "int8" if compile else "fp32"
    enc.runtime = "inductor" if compile else "torch"
    enc.info = {
        "api": "torchao.quantization.pt2e: torch.export -> prepare_pt2e(X86InductorQuantizer) -> convert_pt2e",
        "lowering": "torch.compile(dynamic=True, freezing=True): Inductor lowers q/dq + Linear to oneDNN INT8"
        if compile else "none: quantize/dequantize graph with FP32 GEMMs (INT8 numerics, not INT8 speed)",
        "compiled": bool(compile),
        "weights": "int8 symmetric per output channel",
        "activations": f"uint8 per tensor ({'7' if reduce_range else '8'} bits used), scales fixed by "
                       "calibration (HistogramObserver)",
        "calibration_texts": len(calibration), "calibration_batch_size": batch_size, **calibrated,
        "int8_weight_tensors": n_w, "activation_quantize_nodes": n_q,
        "fp32_originals_dropped": dropped,
        "bytes_by_dtype": enc.bytes_by_dtype(),
    }
    return enc
