"""OpenVINO methods: the FP32 graph converted to OpenVINO IR, and its NNCF post-training INT8 version.

Both start from the FP32 ONNX export (``onnx_export.export_fp32``), converted with
``openvino.convert_model``; ``int8-static-openvino`` then runs ``nncf.quantize`` with calibration
texts (``model_type=nncf.ModelType.TRANSFORMER``). The IR (.xml + .bin) is cached like the ONNX graphs.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from bgeq_utils.core import env, paths, vocab
from bgeq_utils.methods import onnx_export as ox
from bgeq_utils.methods import sensitivity
from bgeq_utils.methods.encoders import Encoder, graph_feeds, pool_numpy
from bgeq_utils.methods.onnx import _check_calibration
from bgeq_utils.methods.registry import MethodUnavailable, register
from bgeq_utils.methods.sensitivity import graph_node

IR_FILE = "model.xml"
_PRECISIONS = {"f32": "f32", "fp32": "f32", "bf16": "bf16", "f16": "f16", "fp16": "f16"}


def cache_root() -> Path:
    return paths.cache_dir() / "openvino"


def _ov():
    try:
        import openvino as ov
    except ImportError as e:
        raise MethodUnavailable("openvino is not installed (pip install openvino)") from e
    return ov


def _check_device(device: str) -> None:
    if vocab.device_kind(device) == "cuda":
        raise MethodUnavailable("OpenVINO methods run on the CPU plugin only")


def _ir_files(xml: Path) -> list[Path]:
    return [xml, xml.with_suffix(".bin")]


def _constant_bytes(model) -> dict:
    """Bytes of every Constant in an OpenVINO model, by element type (weights as stored)."""
    by_type: Counter = Counter()
    for op in model.get_ops():
        if op.get_type_name() == "Constant":
            by_type[op.get_output_element_type(0).get_type_name()] += int(op.get_byte_size())
    return dict(by_type)


class OpenVinoEncoder(Encoder):
    """Runs an OpenVINO IR whose output is ``last_hidden_state`` on the CPU plugin."""

    def __init__(self, reference, xml_path: str | Path, threads: int | None = None, precision: str = "f32",
                 settings: dict | None = None, compute_precision: str = "fp32"):
        ov = _ov()
        super().__init__(reference, "cpu")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads={threads!r}: use a positive integer, or None (OMP_NUM_THREADS, else every core)")
        hint = _PRECISIONS.get(str(precision).lower())
        if hint is None:
            raise ValueError(f"inference_precision={precision!r}: use 'f32' (default) or 'bf16'")
        self.xml_path = Path(xml_path)
        core = ov.Core()
        model = core.read_model(str(self.xml_path))
        self.weight_bytes_by_type = _constant_bytes(model)
        n_threads = int(threads or env.default_threads())
        config = {"INFERENCE_NUM_THREADS": n_threads, "INFERENCE_PRECISION_HINT": hint,
                  "PERFORMANCE_HINT": "LATENCY"}
        self.config = config
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as e:
            raise ox.OnnxCacheError(f"OpenVINO cannot compile {self.xml_path}: {type(e).__name__}: "
                                    f"{str(e).splitlines()[0][:300]}. Delete {self.xml_path.parent} to rebuild "
                                    "it.") from e
        self.request = self.compiled.create_infer_request()
        self.input_names = [i.get_any_name() for i in self.compiled.inputs]
        self.compute_precision = compute_precision
        ops = Counter(op.get_type_name() for op in model.get_ops())
        self.info = {
            "backend": "openvino", "openvino": ov.__version__, "device": "CPU",
            "inference_precision_hint": hint, "inference_num_threads": n_threads,
            "settings": dict(settings or {}),
            "graph_ops": {k: ops[k] for k in ("MatMul", "FakeQuantize", "Convert", "Multiply") if ops.get(k)},
            "runtime_layers": _runtime_layers(self.compiled),
            "weight_bytes_by_type": self.weight_bytes_by_type,
        }

    def embed_features(self, features):
        feeds = graph_feeds(self.input_names, features, "the OpenVINO model")
        self.request.infer(feeds)
        hidden = self.request.get_output_tensor(0).data
        return pool_numpy(np.array(hidden, copy=True), features["attention_mask"], self.pooling)

    def param_bytes(self) -> int:
        return int(sum(self.weight_bytes_by_type.values()))

    def layer_timer(self):
        """A second compilation of the same IR with the same settings and OpenVINO's per-layer counters on
        (``PERF_COUNT``): a call ``timer(features)`` runs one inference and returns its wall seconds and
        {(layer type, kernel): [milliseconds, layers]} summed over the executed layers."""
        import time
        ov = _ov()
        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(self.xml_path)), "CPU", {**self.config, "PERF_COUNT": True})
        request = compiled.create_infer_request()
        names = [i.get_any_name() for i in compiled.inputs]
        executed = ov.ProfilingInfo.Status.EXECUTED

        def timer(features):
            feeds = graph_feeds(names, features, "the OpenVINO model")
            t0 = time.perf_counter()
            request.infer(feeds)
            wall = time.perf_counter() - t0
            layers: dict = {}
            for p in request.get_profiling_info():
                if p.status == executed:
                    slot = layers.setdefault((p.node_type, p.exec_type), [0.0, 0])
                    slot[0] += p.real_time.total_seconds() * 1e3
                    slot[1] += 1
            return wall, layers
        return timer

    def save(self, folder):
        import shutil
        dst = Path(folder)
        dst.mkdir(parents=True, exist_ok=True)
        for f in _ir_files(self.xml_path):
            shutil.copy2(f, dst / f.name)
        return dst

    def close(self):
        self.request = None
        self.compiled = None


def _runtime_layers(compiled) -> dict:
    """Matrix-product layers of the compiled graph by the precision the CPU plugin runs them in."""
    out: Counter = Counter()
    try:
        for op in compiled.get_runtime_model().get_ops():
            rt = op.get_rt_info()
            layer, prec = _rt_str(rt, "layerType"), _rt_str(rt, "runtimePrecision")
            if layer in ("FullyConnected", "MatMul", "Convolution", "Gemm", "Subgraph"):
                out[f"{layer}:{prec}"] += 1
    except Exception:  # introspection only: never fails a build
        return {}
    return dict(out)


def _rt_str(rt, key: str) -> str:
    try:
        v = rt[key]
    except Exception:
        return "?"
    return str(v.astype(str)) if hasattr(v, "astype") else str(v)


def _convert(reference, out: Path, opset: int) -> dict:
    ov = _ov()
    onnx_path = ox.export_fp32(reference, opset=opset)
    model = ov.convert_model(str(onnx_path))
    ov.save_model(model, str(out / IR_FILE), compress_to_fp16=False)
    return {"source": "onnx", "onnx_sha256": ox.read_file_hash(onnx_path.parent)}


def _fp32_ir(reference, opset: int) -> Path:
    parts = {"model": ox.model_fingerprint(reference.folder), "opset": opset,
             "versions": ox._versions("openvino", "torch", "transformers", "onnx")}
    return ox.cached_artifact("ovfp32", parts, lambda out: _convert(reference, out, opset),
                              main_file=IR_FILE, root=cache_root()) / IR_FILE


@register("fp32-openvino", precision="fp32", library="openvino", devices=("cpu",), packages=("openvino",),
          summary="FP32 graph converted to OpenVINO IR, CPU plugin with f32 inference precision")
def fp32_openvino(reference, device="cpu", calibration=None, threads: int | None = None,
                  inference_precision: str = "f32", opset: int = ox.DEFAULT_OPSET):
    """The FP32 ONNX export converted with openvino.convert_model (weights kept FP32 on disk)."""
    _check_device(device)
    xml = _fp32_ir(reference, opset)
    settings = {"inference_precision": inference_precision, "opset": opset, "api": "openvino.convert_model"}
    return OpenVinoEncoder(reference, xml, threads, inference_precision, settings,
                           "bf16" if _PRECISIONS.get(str(inference_precision).lower()) == "bf16" else "fp32")


@register("int8-static-openvino", precision="int8", library="openvino", devices=("cpu",),
          needs=("calibration",), packages=("openvino", "nncf",),
          summary="NNCF post-training INT8 (transformer preset) of the OpenVINO IR, CPU plugin")
def int8_static_openvino(reference, device="cpu", calibration=None, preset: str = "mixed",
                         fast_bias_correction: bool = True, smooth_quant_alpha: float | None = None,
                         keep_fp32_layers: int = 0, threads: int | None = None,
                         inference_precision: str = "f32", opset: int = ox.DEFAULT_OPSET):
    """nncf.quantize(model_type=TRANSFORMER) on the OpenVINO IR with one calibration text per sample.

    NNCF's transformer recipe applies SmoothQuant and bias correction and keeps the sensitive
    operations in FP32; preset 'mixed' (NNCF's default for transformers) quantizes activations
    asymmetrically, 'performance' symmetrically. ``smooth_quant_alpha`` sets SmoothQuant's migration
    strength for MatMuls (None: NNCF's default, 0.95 for transformers; -1 turns it off);
    ``keep_fp32_layers`` leaves the k Linear layers that a per-layer sensitivity scan on the calibration
    texts finds worst in FP32 (``methods.sensitivity``; their names are recorded).
    """
    _check_device(device)
    texts = _check_calibration(calibration, "int8-static-openvino")
    try:
        import nncf
    except ImportError as e:
        raise MethodUnavailable("nncf is not installed (pip install nncf)") from e
    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    if str(preset).lower() not in presets:
        raise ValueError(f"preset={preset!r}: use 'mixed' (NNCF's choice for transformers: asymmetric "
                         "activations) or 'performance' (symmetric)")
    if not isinstance(fast_bias_correction, bool):
        raise ValueError(f"fast_bias_correction={fast_bias_correction!r}: use True or False")
    if smooth_quant_alpha is not None and (isinstance(smooth_quant_alpha, bool) or not isinstance(
            smooth_quant_alpha, (int, float)) or not (smooth_quant_alpha == -1 or 0 <= smooth_quant_alpha <= 1)):
        raise ValueError(f"smooth_quant_alpha={smooth_quant_alpha!r}: use a number in [0, 1], -1 (off) or None "
                         "(NNCF's default)")
    if isinstance(keep_fp32_layers, bool) or not isinstance(keep_fp32_layers, int) or keep_fp32_layers < 0:
        raise ValueError(f"keep_fp32_layers={keep_fp32_layers!r}: use a whole number >= 0")
    ov = _ov()
    src = _fp32_ir(reference, opset)
    names = ox.input_names(reference.model)
    options = {"preset": str(preset).lower(), "fast_bias_correction": fast_bias_correction,
               "model_type": "TRANSFORMER", "subset_size": len(texts)}
    if smooth_quant_alpha is not None:
        options["smooth_quant_alpha"] = float(smooth_quant_alpha)
    if keep_fp32_layers:
        options["keep_fp32_layers"] = keep_fp32_layers

    def build(out):
        import logging
        model = ov.Core().read_model(str(src))
        items = []
        for t in texts:
            enc = reference.tokenizer([t], truncation=True, max_length=reference.max_seq_length,
                                      return_tensors="np", return_token_type_ids=True)
            items.append({k: enc[k].astype(np.int64) for k in names})
        level = logging.getLogger("nncf").level
        logging.getLogger("nncf").setLevel(logging.ERROR)
        try:
            nncf.set_log_level(logging.ERROR)
        except Exception:
            pass
        try:
            extra = {}
            if smooth_quant_alpha is not None:
                from nncf.quantization.advanced_parameters import (
                    AdvancedQuantizationParameters,
                    AdvancedSmoothQuantParameters,
                )
                extra["advanced_parameters"] = AdvancedQuantizationParameters(
                    smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=float(smooth_quant_alpha)))
            kept = _most_sensitive(reference, texts, keep_fp32_layers)   # inside the build: a cache hit skips it
            if kept:
                extra["ignored_scope"] = nncf.IgnoredScope(names=[graph_node(n) for n in kept])
            q = nncf.quantize(model, nncf.Dataset(items), preset=presets[options["preset"]],
                              model_type=nncf.ModelType.TRANSFORMER, subset_size=len(items),
                              fast_bias_correction=fast_bias_correction, **extra)
        finally:
            logging.getLogger("nncf").setLevel(level)
        ov.save_model(q, str(out / IR_FILE), compress_to_fp16=False)
        return {"calibration_texts": len(items), "fp32_layers": kept}

    parts = {"source": _sha(src), "options": options,
             "calibration": ox.texts_hash(texts),
             "max_length": reference.max_seq_length, "versions": ox._versions("openvino", "nncf")}
    xml = ox.cached_artifact("ovint8", parts, build, main_file=IR_FILE, root=cache_root()) / IR_FILE
    settings = {**options, "calibration_texts": len(texts), "inference_precision": inference_precision,
                "api": "nncf.quantize"}
    if keep_fp32_layers:
        settings["fp32_layers"] = json.loads((xml.parent / ox.MANIFEST).read_text())["meta"].get("fp32_layers")
    return OpenVinoEncoder(reference, xml, threads, inference_precision, settings, "int8")


def _most_sensitive(reference, texts: list[str], k: int) -> list[str]:
    """The k Linear layers a sensitivity scan on the calibration texts finds worst (none for k = 0)."""
    if not k:
        return []
    scan = sensitivity.linear_sensitivity(reference.model, reference.tokenizer, texts, texts,
                                          max_length=min(sensitivity.SCAN_LENGTH, reference.max_seq_length))
    return sensitivity.most_sensitive(scan, k)


def _sha(xml: Path) -> str:
    man = json.loads((xml.parent / ox.MANIFEST).read_text())
    return man["files"][xml.with_suffix(".bin").name]["sha256"]
