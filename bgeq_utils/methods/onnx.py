"""ONNX Runtime methods: FP32, dynamic INT8, static INT8 (calibrated) and 4-bit weight-only (MatMulNBits).

Each one starts from the FP32 graph exported by ``onnx_export.export_fp32`` and derives its own graph
with ONNX Runtime's quantization tools (``onnxruntime.quantization``); every graph is cached on disk,
keyed by the model, the options and (for static INT8) the calibration texts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bgeq_utils.core import env, vocab
from bgeq_utils.methods import onnx_export as ox
from bgeq_utils.methods.encoders import Encoder, graph_feeds, pool_numpy
from bgeq_utils.methods.registry import MethodUnavailable, register

# The plain exported graph is the default: on the AVX-512/VNNI build machine the transformer optimizer's
# fused graph (Attention, SkipLayerNorm, BiasGelu) was slower for FP32 and more so after dynamic INT8, and
# its fused Attention op keeps the Q/K/V weights out of reach of static and 4-bit quantization.
# optimize=True is there to compare.
DEFAULT_OPTIMIZE = False
# U8S8 (uint8 activations x int8 weights) is what VNNI's VPDPBUSD multiplies natively: QInt8 weights
# (U8S8) rather than QUInt8 (U8U8). Notebook 03 times both side by side on the machine at hand.
DEFAULT_DYNAMIC_WEIGHT_TYPE = "QInt8"
# One scale per output channel instead of per tensor: far closer to FP32 at the same cost (notebook 03
# shows the fidelity of both).
DEFAULT_PER_CHANNEL = True

_GRAPH_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                 "all": "ORT_ENABLE_ALL"}
# Ops worth a line in Result.extra: what actually computes the matrix products.
_KEY_OPS = ("MatMul", "Gemm", "MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul", "QuantizeLinear",
            "DequantizeLinear", "MatMulNBits", "Attention", "QAttention", "DynamicQuantizeMatMul",
            "MatMulIntegerToFloat", "SkipLayerNormalization", "EmbedLayerNormalization", "BiasGelu",
            "LayerNormalization", "FusedMatMul", "GatherBlockQuantized")


def _ort():
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - onnxruntime is a project dependency
        raise MethodUnavailable("onnxruntime is not installed (pip install onnxruntime)") from e
    return ort


def providers_for(device: str) -> list[str]:
    ort = _ort()
    if vocab.device_kind(device) == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise MethodUnavailable("this onnxruntime build has no CUDAExecutionProvider "
                                    "(pip install onnxruntime-gpu to run ONNX methods on CUDA)")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def make_session(model_path: str | Path, device: str = "cpu", threads: int | None = None,
                 graph_optimization: str = "all"):
    """An InferenceSession with intra-op threads = all cores unless ``threads`` is given."""
    ort = _ort()
    if graph_optimization not in _GRAPH_LEVELS:
        raise ValueError(f"graph_optimization={graph_optimization!r}: use one of {sorted(_GRAPH_LEVELS)}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads={threads!r}: use a positive integer, or None (OMP_NUM_THREADS, else every core)")
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads or env.default_threads())
    so.inter_op_num_threads = 1
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _GRAPH_LEVELS[graph_optimization])
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(model_path), so, providers=providers_for(device))
    except MethodUnavailable:
        raise
    except Exception as e:
        raise ox.OnnxCacheError(
            f"ONNX Runtime cannot load {model_path}: {type(e).__name__}: {str(e).splitlines()[0][:300]}. "
            f"Delete {Path(model_path).parent} (or all of {ox.cache_root()}) to rebuild it.") from e


class OrtEncoder(Encoder):
    """Runs an ONNX graph whose output is ``last_hidden_state``; pooling and normalization in NumPy."""

    def __init__(self, reference, model_path: str | Path, device: str = "cpu", threads: int | None = None,
                 settings: dict | None = None, compute_precision: str = "fp32", graph_optimization: str = "all"):
        super().__init__(reference, device)
        self.model_path = Path(model_path)
        self.session = make_session(self.model_path, device, threads, graph_optimization)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.compute_precision = compute_precision
        self.stats = ox.graph_stats(self.model_path)
        import onnxruntime as ort
        ops = self.stats["op_counts"]
        self.info = {
            "backend": "onnxruntime", "onnxruntime": ort.__version__,
            "providers": self.session.get_providers(),
            "intra_op_threads": int(threads or env.default_threads()),
            "settings": dict(settings or {}),
            "graph_ops": {k: ops[k] for k in _KEY_OPS if ops.get(k)},
            "graph_nodes": int(sum(ops.values())),
            "weight_bytes_by_type": self.stats["weight_bytes_by_type"],
            "onnx_file_bytes": sum(f.stat().st_size for f in ox.model_files(self.model_path)),
        }

    def embed_features(self, features):
        feeds = graph_feeds(self.input_names, features, "the ONNX graph")
        hidden = self.session.run([ox.OUTPUT_NAME], feeds)[0]
        return pool_numpy(hidden, features["attention_mask"], self.pooling)

    def param_bytes(self) -> int:
        """Bytes of every weight tensor in the graph as stored (int8 = 1, packed 4-bit = 0.5, fp32 = 4)."""
        return int(self.stats["weight_bytes"])

    def save(self, folder):
        return ox.copy_model_files(self.model_path, folder)

    def close(self):
        self.session = None


# --- helpers -------------------------------------------------------------------------------------
def _quant_type(name: str, what: str):
    from onnxruntime.quantization import QuantType
    allowed = {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}
    key = str(name).lower()
    if key not in allowed:
        raise ValueError(f"{what}={name!r}: use 'QInt8' (signed) or 'QUInt8' (unsigned)")
    return allowed[key]


def _bool(value, what: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{what}={value!r}: use True or False")


def _base_graph(reference, optimize: bool, opset: int) -> Path:
    return ox.export_fp32(reference, optimize=_bool(optimize, "optimize"), opset=opset)


def _check_calibration(calibration, method: str) -> list[str]:
    hint = "pass calibration=data.calibration_texts(64) (or calibration=64 to pipeline.run_method)"
    if calibration is None or isinstance(calibration, (str, bytes)) or len(calibration) == 0:
        raise ValueError(f"{method} needs a non-empty list of calibration texts: {hint}")
    bad = [type(t).__name__ for t in calibration if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{method}: calibration texts must be strings, got {bad[0]}; {hint}")
    texts = [t for t in calibration if t.strip()]
    if not texts:
        raise ValueError(f"{method}: every calibration text is empty; {hint}")
    return texts


class TextCalibrationReader:
    """Feeds tokenized calibration texts, batch by batch, to ONNX Runtime's calibrators."""

    def __init__(self, tokenizer, texts: list[str], input_names: list[str], batch_size: int = 8,
                 max_length: int = 512):
        self.batches = []
        for s in range(0, len(texts), batch_size):
            enc = tokenizer(texts[s:s + batch_size], padding=True, truncation=True, max_length=max_length,
                            return_tensors="np", return_token_type_ids=True)
            self.batches.append({k: enc[k].astype(np.int64) for k in input_names})
        self.start, self.end, self.i = 0, len(self.batches), 0

    def get_next(self):
        if self.i >= self.end:
            return None
        b = self.batches[self.i]
        self.i += 1
        return b

    def rewind(self):
        self.i = self.start

    def set_range(self, start_index: int, end_index: int):
        self.start, self.end = start_index, min(end_index, len(self.batches))
        self.i = self.start

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def _calibration_reader_class():
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(TextCalibrationReader, CalibrationDataReader):
        pass
    return Reader


# --- methods -------------------------------------------------------------------------------------
@register("fp32-onnx", precision="fp32", library="onnxruntime", devices=("cpu", "cuda"),
          summary="FP32 graph exported with torch.onnx.export, run by ONNX Runtime")
def fp32_onnx(reference, device="cpu", calibration=None, optimize: bool = DEFAULT_OPTIMIZE,
              opset: int = ox.DEFAULT_OPSET, threads: int | None = None, graph_optimization: str = "all",
              exporter: str = "legacy"):
    """The FP32 model exported to ONNX (optionally through ONNX Runtime's BERT optimizer).

    exporter: 'legacy' (torch.onnx.export with dynamo=False: the graph every other ONNX method
    derives from; exports all-MiniLM-L6-v2 in ~1 s) or 'dynamo' (torch.export-based, ~5 s).
    """
    providers_for(device)
    optimize = _bool(optimize, "optimize")
    if optimize and exporter != "legacy":
        raise ValueError("optimize=True needs exporter='legacy' (the graph ONNX Runtime's BERT optimizer fuses)")
    path = ox.export_fp32(reference, optimize=optimize, opset=opset, exporter=exporter)
    meta = ox.read_meta(path.parent)
    settings = {"optimize": bool(optimize), "opset": opset, "graph_optimization": graph_optimization,
                "exporter": f"torch.onnx.export ({'dynamo=False' if exporter == 'legacy' else 'dynamo=True'})"}
    if optimize:
        settings["fused_operators"] = meta.get("fused_operators")
    return OrtEncoder(reference, path, device, threads, settings, "fp32", graph_optimization)


@register("int8-dynamic-onnx", precision="int8", library="onnxruntime", devices=("cpu",),
          summary="ONNX Runtime quantize_dynamic: int8 weights, activations quantized per batch at run time")
def int8_dynamic_onnx(reference, device="cpu", calibration=None, weight_type: str = DEFAULT_DYNAMIC_WEIGHT_TYPE,
                      per_channel: bool = DEFAULT_PER_CHANNEL, reduce_range: bool = False,
                      optimize: bool = DEFAULT_OPTIMIZE,
                      op_types: list | tuple | None = None, opset: int = ox.DEFAULT_OPSET, threads: int | None = None):
    """Dynamic INT8: weights quantized offline, activation scales computed per batch (MatMulInteger).

    op_types: ONNX op types to quantize; None = ONNX Runtime's default set (MatMul, Gather for the
    embedding tables, Attention/QAttention in an optimized graph, ...).
    """
    from onnxruntime.quantization import quantize_dynamic
    providers_for(device)
    wt = _quant_type(weight_type, "weight_type")
    per_channel, reduce_range = _bool(per_channel, "per_channel"), _bool(reduce_range, "reduce_range")
    base = _base_graph(reference, optimize, opset)
    op_types = list(op_types) if op_types else None
    options = {"weight_type": wt.name, "per_channel": per_channel, "reduce_range": reduce_range, "op_types": op_types}

    def build(src, out):
        import onnx
        # The optimizer's fused contrib ops defeat ONNX shape inference: name the float type outright.
        quantize_dynamic(str(src), str(out / ox.MODEL_FILE), weight_type=wt, per_channel=per_channel,
                         reduce_range=reduce_range, op_types_to_quantize=op_types,
                         use_external_data_format=ox.needs_external_data(src),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        return {}

    path = ox.derived("int8dyn", base, options, build)
    settings = {**options, "optimize": bool(optimize), "opset": opset,
                "api": "onnxruntime.quantization.quantize_dynamic"}
    return OrtEncoder(reference, path, device, threads, settings, "int8")


_CALIBRATE = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
_FORMATS = {"qdq": "QDQ", "qoperator": "QOperator"}
# Histogram settings for Entropy. quantize_static does not pass bin counts on to its calibrator, and
# with the calibrator's defaults (128 bins, 128 quantized bins) the KL search has a single candidate
# threshold, the full range: Entropy would silently equal MinMax. TensorRT's recipe: 2048 / 128.
ENTROPY_BINS = 2048
ENTROPY_QUANTIZED_BINS = 128
# Calibration batches whose activations are held at once before they are merged into the ranges.
# Every MatMul input and output is recorded, attention scores included (heads x L x L per text):
# about 1.7 GB per 512-token text for bge-large, hence one batch at a time, and batches of one text
# by default (which also keeps padding positions out of the ranges).
CALIBRATION_CHUNK = 1
# Bumped whenever what the static builder writes for the same options changes (invalidates caches).
STATIC_RECIPE = 3


def linear_matmuls(model_path: str | Path, config=None) -> dict[str, list[str]]:
    """Names of the MatMul nodes with a constant weight, split into FFN down-projections and the rest.

    The FFN down-projection (weight shape intermediate_size x hidden_size) reads the GELU output,
    whose outliers make one activation scale per tensor too coarse; the attention score products
    (both inputs activations) have no weight at all.
    """
    import onnx
    m = onnx.load(str(model_path), load_external_data=False)
    shapes = {t.name: tuple(t.dims) for t in m.graph.initializer}
    out = {"linear": [], "ffn_output": [], "activation_only": [], "embedding": []}
    down = (int(config.intermediate_size), int(config.hidden_size)) if config is not None else None
    for n in m.graph.node:
        if n.op_type == "Gather" and n.input[0] in shapes and len(shapes[n.input[0]]) == 2:
            out["embedding"].append(n.name)
        if n.op_type != "MatMul":
            continue
        w = shapes.get(n.input[1])
        if w is None:
            out["activation_only"].append(n.name)
        elif down is not None and w == down:
            out["ffn_output"].append(n.name)
        else:
            out["linear"].append(n.name)
    return out


def _calibrator(model_path: Path, method: str, tmp: Path, ext: bool, opts: dict, tensors: set[str] | None):
    """One of ONNX Runtime's calibrators, recording only ``tensors`` (all MatMul inputs/outputs if None).

    Built as ``create_calibrator`` builds it, with the tensor selection narrowed before the graph is
    augmented: every recorded tensor costs memory per batch and, for the histogram methods, a
    threshold search at the end.
    """
    from onnxruntime.quantization.calibrate import EntropyCalibrater, MinMaxCalibrater, PercentileCalibrater
    common = dict(augmented_model_path=str(tmp / "augmented.onnx"), use_external_data_format=ext)
    if method == "MinMax":
        cal = MinMaxCalibrater(str(model_path), ["MatMul"], symmetric=False, **common)
    elif method == "Entropy":
        cal = EntropyCalibrater(str(model_path), ["MatMul"], symmetric=False, num_bins=opts["num_bins"],
                                num_quantized_bins=opts["num_quantized_bins"], **common)
    else:
        cal = PercentileCalibrater(str(model_path), ["MatMul"], symmetric=True, num_bins=opts.get("num_bins", 2048),
                                   percentile=opts["percentile"], **common)
    if tensors is not None:
        select = cal.select_tensors_to_calibrate

        def narrowed(model):
            found, value_infos = select(model)
            return found & tensors, value_infos
        cal.select_tensors_to_calibrate = narrowed
    cal.augment_graph()
    cal.create_inference_session()
    return cal


def _calibrate(model_path: Path, reader, method: str, tmp: Path, chunk: int = CALIBRATION_CHUNK,
               ext: bool = False, extra: dict | None = None, tensors: set[str] | None = None):
    """Activation ranges of the tensors that will be quantized, with ONNX Runtime's own calibrators."""
    import contextlib
    import io
    opts = dict(extra or {})
    if method == "Entropy":
        opts = {"num_bins": ENTROPY_BINS, "num_quantized_bins": ENTROPY_QUANTIZED_BINS, **opts}
    cal = _calibrator(model_path, method, tmp, ext, opts, tensors)
    # Memory is bounded by feeding a few batches per collect_data call (each call merges its ranges);
    # the calibrators' own max_intermediate_outputs is not used: MinMax drops the held outputs
    # unmerged when that limit is reached.
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print progress lines
        for start in range(0, len(reader), chunk):
            reader.set_range(start, start + chunk)
            cal.collect_data(reader)
        return cal.compute_data()


def _check_quantized(model_path: Path, quant_format: str, expected: int) -> None:
    """quantize_static skips a node silently when a range is missing: make sure none was skipped."""
    import onnx
    m = onnx.load(str(model_path), load_external_data=False)
    producer = {o: n.op_type for n in m.graph.node for o in n.output}
    if quant_format == "QOperator":
        got = sum(n.op_type == "QLinearMatMul" for n in m.graph.node)
    else:  # QDQ: both operands of a quantized MatMul come out of a DequantizeLinear
        got = sum(n.op_type == "MatMul" and all(producer.get(i) == "DequantizeLinear" for i in n.input[:2])
                  for n in m.graph.node)
    if got != expected:
        raise RuntimeError(f"quantize_static quantized {got} of the {expected} MatMuls it was asked to "
                           f"({quant_format}); the calibration ranges are incomplete")


def _activation_tensors(model_path: Path, nodes: list[str], outputs: bool) -> set[str]:
    """Non-constant inputs (and outputs, if they are quantized too) of the nodes to quantize."""
    import onnx
    m = onnx.load(str(model_path), load_external_data=False)
    consts = {t.name for t in m.graph.initializer}
    wanted = set(nodes)
    out = set()
    for n in m.graph.node:
        if n.name in wanted and n.op_type == "MatMul":  # an embedding Gather reads a constant table
            out.update(t for t in n.input if t and t not in consts)
            if outputs:
                out.update(t for t in n.output if t)
    return out


@register("int8-static-onnx", precision="int8", library="onnxruntime", devices=("cpu",), needs=("calibration",),
          summary="ONNX Runtime quantize_static: int8 weights and activations, ranges from calibration texts")
def int8_static_onnx(reference, device="cpu", calibration=None, calibrate_method: str = "MinMax",
                     quant_format: str = "QDQ", per_channel: bool = False, activation_type: str = "QUInt8",
                     weight_type: str = "QInt8", skip_ffn_output: bool = True, quantize_attention_matmuls: bool = False,
                     quantize_embeddings: bool = True, quantize_outputs: bool = False,
                     pre_process: bool = True, reduce_range: bool = False, calibration_batch_size: int = 1,
                     percentile: float = 99.999, histogram_bins: int | None = None,
                     extra_options: dict | None = None, opset: int = ox.DEFAULT_OPSET,
                     threads: int | None = None):
    """Static INT8: activation ranges fixed from calibration texts (MinMax, Entropy or Percentile).

    Calibration runs ONNX Runtime's calibrators directly, then ``quantize_static`` reads their ranges:
    through quantize_static alone Entropy keeps its default 128 histogram bins for 128 quantized bins,
    leaving one candidate threshold (the full range), so it would silently equal MinMax. Here Entropy
    searches 2048 bins (``histogram_bins``), as TensorRT's recipe does.

    Quantized: the MatMuls with a constant weight (the linear layers: nearly all weights and
    arithmetic) and the embedding tables (``quantize_embeddings``, as quantize_dynamic does). Kept
    FP32 by default: the FFN down-projections (``skip_ffn_output``: their GELU input has outliers
    that one static scale per tensor cannot hold), the attention score products
    (``quantize_attention_matmuls``), LayerNorm and GELU. MatMul outputs are not re-quantized
    (``quantize_outputs``).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process
    providers_for(device)
    texts = _check_calibration(calibration, "int8-static-onnx")
    cm = _CALIBRATE.get(str(calibrate_method).lower())
    if cm is None:
        raise ValueError(f"calibrate_method={calibrate_method!r}: use 'MinMax', 'Entropy' or 'Percentile'")
    qf = _FORMATS.get(str(quant_format).lower())
    if qf is None:
        raise ValueError(f"quant_format={quant_format!r}: use 'QDQ' or 'QOperator'")
    at, wt = _quant_type(activation_type, "activation_type"), _quant_type(weight_type, "weight_type")
    per_channel, reduce_range = _bool(per_channel, "per_channel"), _bool(reduce_range, "reduce_range")
    pre_process = _bool(pre_process, "pre_process")
    skip_ffn_output = _bool(skip_ffn_output, "skip_ffn_output")
    quantize_attention_matmuls = _bool(quantize_attention_matmuls, "quantize_attention_matmuls")
    quantize_embeddings = _bool(quantize_embeddings, "quantize_embeddings")
    quantize_outputs = _bool(quantize_outputs, "quantize_outputs")
    if not isinstance(calibration_batch_size, int) or calibration_batch_size < 1:
        raise ValueError(f"calibration_batch_size={calibration_batch_size!r}: use a positive integer")
    if not 50 < float(percentile) <= 100:
        raise ValueError(f"percentile={percentile!r}: use a value in (50, 100], e.g. 99.999")
    base = _base_graph(reference, False, opset)
    options = {"calibrate_method": cm, "quant_format": qf, "per_channel": per_channel, "activation_type": at.name,
               "weight_type": wt.name, "skip_ffn_output": skip_ffn_output,
               "quantize_attention_matmuls": quantize_attention_matmuls, "quantize_embeddings": quantize_embeddings,
               "quantize_outputs": quantize_outputs, "pre_process": pre_process,
               "reduce_range": reduce_range, "calibration_batch_size": calibration_batch_size,
               "extra_options": extra_options or {}, "calibrated": "activation inputs of the quantized nodes"}
    if cm == "Percentile":
        options["percentile"] = float(percentile)
    if histogram_bins is not None and (not isinstance(histogram_bins, int) or histogram_bins < 256):
        raise ValueError(f"histogram_bins={histogram_bins!r}: use an integer >= 256 (Entropy default "
                         f"{ENTROPY_BINS}, Percentile 2048)")
    if cm == "Entropy":
        options["histogram_bins"] = histogram_bins or ENTROPY_BINS
        options["quantized_bins"] = ENTROPY_QUANTIZED_BINS
    elif cm == "Percentile" and histogram_bins:
        options["histogram_bins"] = histogram_bins
    names = ox.input_names(reference.model)
    Reader = _calibration_reader_class()

    def build(src, out):
        import tempfile
        ext = ox.needs_external_data(src)
        with tempfile.TemporaryDirectory(prefix="bgeq-static-") as tmp:
            tmp = Path(tmp)
            model_in = src
            if pre_process:
                # Symbolic shape inference does not complete on this graph; ONNX shape inference
                # and ONNX Runtime's graph clean-up (constant folding, fusions) still run.
                model_in = tmp / "pre.onnx"
                quant_pre_process(str(src), str(model_in), skip_symbolic_shape=True, save_as_external_data=ext)
            groups = linear_matmuls(model_in, reference.model.config)
            nodes = groups["linear"] + ([] if skip_ffn_output else groups["ffn_output"]) + \
                (groups["activation_only"] if quantize_attention_matmuls else []) + \
                (groups["embedding"] if quantize_embeddings else [])
            extra = dict(extra_options or {})
            if not quantize_outputs:
                # QDQ would otherwise also quantize each MatMul's output and dequantize it at once:
                # more rounding (cosine mean 0.992 vs 0.993 on all-MiniLM-L6-v2), no speed gained.
                extra.setdefault("OpTypesToExcludeOutputQuantization", ["MatMul"])
            reader = Reader(reference.tokenizer, texts, names, calibration_batch_size, reference.max_seq_length)
            calib_extra = {"percentile": float(percentile)} if cm == "Percentile" else {}
            if "histogram_bins" in options:
                calib_extra["num_bins"] = options["histogram_bins"]
            # QOperator's QLinearMatMul also needs the scale of its output.
            tensors = _activation_tensors(model_in, nodes, quantize_outputs or qf == "QOperator")
            ranges = _calibrate(model_in, reader, cm, tmp, ext=ext, extra=calib_extra, tensors=tensors)
            cache = tmp / "calibration.json"
            save_tensors_data(ranges, cache)
            quantize_static(str(model_in), str(out / ox.MODEL_FILE), None, calibration_cache_path=str(cache),
                            quant_format=getattr(QuantFormat, qf),
                            op_types_to_quantize=["MatMul"] + (["Gather"] if quantize_embeddings else []),
                            nodes_to_quantize=nodes, per_channel=per_channel, reduce_range=reduce_range,
                            activation_type=at, weight_type=wt, calibrate_method=getattr(CalibrationMethod, cm),
                            use_external_data_format=ext, extra_options=extra)
        n_mm = sum(len(groups[k]) for k in ("linear", "ffn_output", "activation_only"))
        q_mm = len([n for n in nodes if n not in groups["embedding"]])
        _check_quantized(out / ox.MODEL_FILE, qf, q_mm)
        return {"calibration_texts": len(texts), "quantized_matmuls": q_mm, "fp32_matmuls": n_mm - q_mm,
                "calibrated_tensors": len(tensors)}

    path = ox.derived("int8static", base, options, build,
                      extra_key={"calibration": ox.texts_hash(texts), "max_length": reference.max_seq_length,
                                 "recipe": STATIC_RECIPE})
    meta = ox.read_meta(path.parent)
    settings = {**options, "calibration_texts": len(texts), "opset": opset,
                "quantized_matmuls": meta.get("quantized_matmuls"), "fp32_matmuls": meta.get("fp32_matmuls"),
                "calibrated_tensors": meta.get("calibrated_tensors"),
                "api": "onnxruntime.quantization.quantize_static"}
    return OrtEncoder(reference, path, device, threads, settings, "int8")


@register("int4-onnx", precision="int4", library="onnxruntime", devices=("cpu", "cuda"), weight_bits=4,
          summary="ONNX Runtime MatMulNBits: 4-bit block-quantized weights, FP32 activations")
def int4_onnx(reference, device="cpu", calibration=None, block_size: int = 32, symmetric: bool = False,
              accuracy_level: int | None = None, quantize_embeddings: bool = True, opset: int = ox.DEFAULT_OPSET,
              threads: int | None = None):
    """4-bit weight-only quantization of every MatMul with a constant weight (MatMulNBitsQuantizer).

    block_size: weights per scale (32/64/128: smaller = more accurate, more scales). symmetric: False
    stores a zero point per block (asymmetric), True does not. accuracy_level: None/0 dequantizes to
    FP32 for the product; 4 quantizes activations to int8 on the fly (VNNI). quantize_embeddings:
    also store the embedding tables in 4 bits (GatherBlockQuantized): they are half of a small model.
    """
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    providers_for(device)
    if block_size not in (16, 32, 64, 128, 256):
        raise ValueError(f"block_size={block_size!r}: use 32, 64 or 128 (16 and 256 also work)")
    symmetric = _bool(symmetric, "symmetric")
    quantize_embeddings = _bool(quantize_embeddings, "quantize_embeddings")
    if accuracy_level not in (None, 0, 1, 2, 3, 4):
        raise ValueError(f"accuracy_level={accuracy_level!r}: use None/0 (unset), 1 (fp32), 2 (fp16), 3 (bf16) "
                         "or 4 (int8 activations)")
    base = _base_graph(reference, False, opset)
    ops = ("MatMul", "Gather") if quantize_embeddings else ("MatMul",)
    options = {"bits": 4, "block_size": int(block_size), "symmetric": symmetric, "accuracy_level": accuracy_level,
               "op_types": list(ops)}

    def build(src, out):
        import onnx
        q = MatMulNBitsQuantizer(onnx.load(str(src)), bits=4, block_size=int(block_size), is_symmetric=symmetric,
                                 accuracy_level=accuracy_level, op_types_to_quantize=ops)
        q.process()
        q.model.save_model_to_file(str(out / ox.MODEL_FILE), use_external_data_format=ox.needs_external_data(src))
        return {}

    path = ox.derived("int4", base, options, build)
    settings = {**options, "opset": opset,
                "api": "onnxruntime.quantization.matmul_nbits_quantizer.MatMulNBitsQuantizer"}
    compute = "int8" if accuracy_level == 4 else "fp32"
    return OrtEncoder(reference, path, device, threads, settings, compute)
