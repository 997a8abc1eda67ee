"""CTranslate2 methods: the reference converted to CTranslate2's own format and run by ``ctranslate2.Encoder``.

CTranslate2 is what embedding servers run instead of the guide's methods (infinity's ct2 engine, prebuilt
``ct2fast-*`` folders): a custom runtime with fused layers and its own INT8 GEMMs. Its methods are measured
like every other one, with ``fp32-ct2`` as the same-runtime FP32 baseline, so that what CTranslate2 gains
by being another runtime is not credited to its INT8.

The converter (``ctranslate2.converters.TransformersConverter``) writes the weights already in the compute
type's storage (``quantization=``), so the size on disk is what a deployment ships. The converted folder is
cached with the project's verified artifact cache, keyed by the weights, the storage type and the versions
of the converter and of what it reads the model with. Pooling comes from the reference (read from its
sentence-transformers config); normalisation is the Encoder contract.
"""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np

from bgeq_utils.core import env, paths, vocab
from bgeq_utils.methods import onnx_export as ox
from bgeq_utils.methods.encoders import Encoder, pool_numpy, pool_torch
from bgeq_utils.methods.registry import MethodUnavailable, register

MODEL_FILE = "model.bin"
#: what a CTranslate2 model folder holds (the converter writes these three)
MODEL_FILES = ("model.bin", "config.json", "vocabulary.json")
# Bumped whenever what the converter step writes for the same key changes (invalidates caches).
RECIPE = 1
#: compute types each method may run in, per device kind; the first is the default
COMPUTE_TYPES = {
    "fp32-ct2": {"cpu": ("float32",), "cuda": ("float32",)},
    "int8-ct2": {"cpu": ("int8_float32", "int8"), "cuda": ("int8_float16", "int8_bfloat16", "int8_float32")},
    "fp16-ct2": {"cpu": ("float16",), "cuda": ("float16",)},
    "bf16-ct2": {"cpu": ("bfloat16",), "cuda": ("bfloat16",)},
}
_PRECISION = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
# CTranslate2's DataType enum order (include/ctranslate2/types.h), as written in model.bin.
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


def cache_root() -> Path:
    return paths.cache_dir() / "ct2"


def _ct2():
    try:
        import ctranslate2
    except ImportError as e:
        raise MethodUnavailable("ctranslate2 is not installed (pip install ctranslate2, or pip install -e "
                                "'.[ct2]')") from e
    return ctranslate2


def compute_type_for(method: str, device: str, compute_type: str | None) -> str:
    """The compute type a method runs in on ``device``: the one asked for, else the device's default.

    A type the method does not take is a ValueError; one this CTranslate2 build cannot run on this device
    (float16 on most CPUs, int8 without a supported ISA) is MethodUnavailable, recorded as skipped."""
    ct2 = _ct2()
    kind = vocab.device_kind(device)
    allowed = COMPUTE_TYPES[method][kind]
    chosen = allowed[0] if compute_type is None else str(compute_type).lower()
    if chosen not in allowed:
        raise ValueError(f"{method}: compute_type={compute_type!r} on {kind}: use one of {list(allowed)} "
                         "(or None for the device's default)")
    if kind == "cuda" and ct2.get_cuda_device_count() < 1:
        raise MethodUnavailable(f"this CTranslate2 build sees no CUDA device (ctranslate2 {ct2.__version__})")
    supported = sorted(ct2.get_supported_compute_types(kind))
    if chosen not in supported:
        raise MethodUnavailable(f"CTranslate2 {ct2.__version__} cannot compute in {chosen} on this {kind} "
                                f"(it supports {', '.join(supported)} here)")
    return chosen


def variable_bytes(model_bin: str | Path) -> dict[str, int]:
    """Bytes of the variables stored in a CTranslate2 ``model.bin``, by storage type (headers read, data
    skipped). The model is converted into its compute type, so these are the bytes the weights hold."""
    by_type: dict[str, int] = {}
    with open(model_bin, "rb") as f:
        def u(fmt):
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string():
            f.read(u("H"))

        version = u("I")
        if version < 5:
            raise ox.OnnxCacheError(f"{model_bin}: CTranslate2 binary version {version} is not read here; "
                                    "convert the model with ctranslate2 >= 4.5")
        string()           # spec name
        u("I")             # revision
        for _ in range(u("I")):
            string()
            rank = u("B")
            f.read(4 * rank)
            dtype = _DTYPES[u("B")]
            n = u("I")
            f.seek(n, 1)
            by_type[dtype] = by_type.get(dtype, 0) + n
    return dict(sorted(by_type.items(), key=lambda kv: -kv[1]))


def _check_texts() -> list[str]:
    return ["A short one.", "CTranslate2 in float32 should reproduce the PyTorch encoder to within rounding, "
            "whatever the amount of padding in the batch.", "A third text, of medium length."]


def _converter_class(ct2):
    class Converter(ct2.converters.TransformersConverter):
        """TransformersConverter that reads a BERT config saved by a transformers release without
        ``position_embedding_type``: those releases implement absolute positions only, which is what the
        converter's BERT loader asserts (the FP32 check below would catch any other difference)."""

        def load_model(self, model_class, model_name_or_path, **kwargs):
            model = super().load_model(model_class, model_name_or_path, **kwargs)
            if not hasattr(model.config, "position_embedding_type"):
                model.config.position_embedding_type = "absolute"
            return model
    return Converter


def _convert(reference, out: Path, quantization: str) -> dict:
    import time
    ct2 = _ct2()
    t0 = time.perf_counter()
    converter = _converter_class(ct2)(str(reference.folder))
    converter.convert(str(out), quantization=quantization, force=True)
    meta = {"convert_s": round(time.perf_counter() - t0, 2), "quantization": quantization,
            "api": "ctranslate2.converters.TransformersConverter"}
    if quantization == "float32":
        # The converter must reproduce the reference: checked once, here, before the folder is cached.
        enc = Ct2Encoder(reference, out, "cpu", "float32", threads=None)
        cos = _min_cosine_to_reference(enc, reference)
        enc.close()
        if not cos >= ox.EXPORT_MIN_COSINE:
            raise ox.OnnxCacheError(f"the CTranslate2 conversion does not reproduce PyTorch (min cosine {cos:.6f} "
                                    f"< {ox.EXPORT_MIN_COSINE}): this architecture may not be converted faithfully")
        meta["check_min_cosine"] = cos
    return meta


def _min_cosine_to_reference(enc, reference) -> float:
    import torch
    texts = _check_texts()
    feats = enc.tokenize(texts)
    got = enc.embed_features(feats)
    dev = next(reference.model.parameters()).device
    with torch.inference_mode():
        out = reference.model(**{k: torch.from_numpy(v).to(dev) for k, v in feats.items()})
    want = pool_numpy(out.last_hidden_state.float().cpu().numpy(), feats["attention_mask"], reference.pooling)
    return float((got * want).sum(1).min())


def converted(reference, quantization: str, rebuild: bool = False) -> Path:
    """Folder of the reference converted to CTranslate2 with weights stored as ``quantization`` (cached)."""
    parts = {"model": ox.model_fingerprint(reference.folder), "quantization": quantization, "recipe": RECIPE,
             "versions": ox._versions("ctranslate2", "transformers", "torch")}
    return ox.cached_artifact("ct2", parts, lambda out: _convert(reference, out, quantization), rebuild=rebuild,
                              main_file=MODEL_FILE, root=cache_root())


class Ct2Encoder(Encoder):
    """Runs a CTranslate2 model folder; pooling (the reference's) and normalisation on the last hidden state."""

    runtime = "ct2"

    def __init__(self, reference, folder: str | Path, device: str = "cpu", compute_type: str = "float32",
                 threads: int | None = None, settings: dict | None = None):
        ct2 = _ct2()
        super().__init__(reference, device)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads={threads!r}: use a positive integer, or None (OMP_NUM_THREADS, else every core)")
        self.folder = Path(folder)
        kind = vocab.device_kind(device)
        index = int(str(device).split(":")[1]) if ":" in str(device) else 0
        n_threads = int(threads or env.default_threads())
        self.encoder = ct2.Encoder(str(self.folder), device=kind, device_index=index, compute_type=compute_type,
                                   inter_threads=1, intra_threads=n_threads)
        self._ct2 = ct2
        self.weight_bytes_by_type = variable_bytes(self.folder / MODEL_FILE)
        self.compute_type = self.encoder.compute_type
        self.compute_precision = ("int8" if self.compute_type.startswith("int8")
                                  else _PRECISION.get(self.compute_type, "fp32"))
        self.info = {"backend": "ctranslate2", "ctranslate2": ct2.__version__, "device": kind,
                     "compute_type": self.compute_type, "intra_threads": n_threads,
                     "settings": dict(settings or {}), "weight_bytes_by_type": self.weight_bytes_by_type}

    def _hidden(self, features):
        ct2 = self._ct2
        ids = np.ascontiguousarray(features["input_ids"], dtype=np.int32)
        lengths = np.ascontiguousarray(features["attention_mask"].sum(1), dtype=np.int32)
        kw = {}
        if "token_type_ids" in features:
            kw["token_type_ids"] = features["token_type_ids"].tolist()
        out = self.encoder.forward_batch(ct2.StorageView.from_array(ids), ct2.StorageView.from_array(lengths), **kw)
        return out.last_hidden_state

    def embed_features(self, features):
        hidden = self._hidden(features)
        if vocab.device_kind(self.device) == "cuda":
            # Pool where the hidden states are, as the PyTorch encoders do: only (n, dim) crosses to the host.
            import torch
            h = torch.as_tensor(hidden.to(self._ct2.DataType.float32), device=self.device)
            mask = torch.from_numpy(features["attention_mask"]).to(self.device)
            return pool_torch(h, mask, self.pooling).cpu().numpy().astype(np.float32, copy=False)
        hidden = np.asarray(hidden.to(self._ct2.DataType.float32) if self.compute_type in ("float16", "bfloat16")
                            else hidden)
        return pool_numpy(hidden, features["attention_mask"], self.pooling)

    def param_bytes(self) -> int:
        """Bytes of the stored variables (weights in the compute type's storage, scales, biases, norms)."""
        return int(sum(self.weight_bytes_by_type.values()))

    def save(self, folder):
        dst = Path(folder)
        dst.mkdir(parents=True, exist_ok=True)
        for name in MODEL_FILES:
            if (self.folder / name).is_file():
                shutil.copy2(self.folder / name, dst / name)
        return dst

    def close(self):
        self.encoder = None


def _build(method: str, reference, device: str, compute_type, threads) -> Ct2Encoder:
    chosen = compute_type_for(method, device, compute_type)
    folder = converted(reference, chosen)
    settings = {"compute_type": chosen, "quantization": chosen, "api": "ctranslate2.Encoder",
                "converter": "ctranslate2.converters.TransformersConverter"}
    enc = Ct2Encoder(reference, folder, device, chosen, threads, settings)
    if vocab.device_kind(device) == "cuda":
        # CUDA libraries are loaded at the first forward, not when the model is: a build that sees the GPU can
        # still lack them (PyPI's 4.x wheels need CUDA 12's cuBLAS; a CUDA 13 machine has libcublas.so.13).
        try:
            enc.embed_features(enc.tokenize(["a"]))
        except RuntimeError as e:
            enc.close()
            if "cannot be loaded" in str(e) or "not found" in str(e):
                raise MethodUnavailable(f"CTranslate2 {enc.info['ctranslate2']} cannot run on this GPU: {e} "
                                        "(install a CTranslate2 build for this machine's CUDA)") from e
            raise
    return enc


@register("fp32-ct2", precision="fp32", library="ctranslate2", runtime="ct2", packages=("ctranslate2",),
          summary="FP32 model converted to CTranslate2, run by ctranslate2.Encoder (its runtime's FP32 baseline)")
def fp32_ct2(reference, device="cpu", calibration=None, threads: int | None = None):
    """The reference converted with TransformersConverter, weights and compute in float32."""
    return _build("fp32-ct2", reference, device, None, threads)


@register("int8-ct2", precision="int8", library="ctranslate2", runtime="ct2", packages=("ctranslate2",),
          summary="CTranslate2 INT8: weights int8 per output channel, activations quantized at run time")
def int8_ct2(reference, device="cpu", calibration=None, compute_type: str | None = None,
             threads: int | None = None):
    """CTranslate2's INT8 (what ``ct2fast-*`` int8 folders ship): weights stored int8 with one scale per
    output row, activations quantized per batch row at run time, the other layers in float32 on a CPU
    ('int8_float32') and float16 on CUDA ('int8_float16'; 'int8_bfloat16' on request).
    compute_type: None = the device's default."""
    return _build("int8-ct2", reference, device, compute_type, threads)


@register("fp16-ct2", precision="fp16", library="ctranslate2", runtime="ct2", packages=("ctranslate2",),
          summary="CTranslate2 in float16 (GPUs; skipped where this build has no float16 compute)")
def fp16_ct2(reference, device="cpu", calibration=None, threads: int | None = None):
    """Weights and compute in float16, as in the ``ct2fast-*`` float16 folders."""
    return _build("fp16-ct2", reference, device, None, threads)


@register("bf16-ct2", precision="bf16", library="ctranslate2", runtime="ct2", packages=("ctranslate2",),
          summary="CTranslate2 in bfloat16 (GPUs; skipped where this build has no bfloat16 compute)")
def bf16_ct2(reference, device="cpu", calibration=None, threads: int | None = None):
    """Weights and compute in bfloat16."""
    return _build("bf16-ct2", reference, device, None, threads)
