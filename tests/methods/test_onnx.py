"""ONNX Runtime methods on the default model: export fidelity, quantized variants, size honesty, cache."""
import os
import warnings

import numpy as np
import onnx
import pytest

from bgeq_utils import methods
from bgeq_utils.inputs import data
from bgeq_utils.measure import pipeline
from bgeq_utils.methods import MethodUnavailable
from bgeq_utils.methods import onnx_export as ox
from bgeq_utils.methods.onnx import OrtEncoder, linear_matmuls


@pytest.fixture(scope="module")
def n_linear(reference):
    """MatMuls with a constant weight in the exported FP32 graph (6 layers x 6 for all-MiniLM-L6-v2)."""
    g = linear_matmuls(ox.export_fp32(reference), reference.model.config)
    return len(g["linear"]) + len(g["ffn_output"])


def _check_embeddings(emb, n, dim):
    assert emb.shape == (n, dim) and emb.dtype == np.float32
    assert np.isfinite(emb).all()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


def _cos(a, b):
    return (a * b).sum(1)


def _file_bytes(enc):
    return sum(f.stat().st_size for f in ox.model_files(enc.model_path))


def test_fp32_onnx_reproduces_pytorch(reference, small_docs, fp32_small_emb):
    enc = methods.build("fp32-onnx", reference)
    emb = enc.encode(small_docs, batch_size=7)
    _check_embeddings(emb, len(small_docs), reference.dim)
    assert _cos(emb, fp32_small_emb).min() >= 0.9999
    assert enc.compute_precision == "fp32"
    assert enc.info["providers"] == ["CPUExecutionProvider"]
    assert enc.info["intra_op_threads"] == os.cpu_count()
    assert enc.info["graph_ops"]["MatMul"] >= 36
    # Weights as stored: FP32 everywhere; the unused pooler is the only part of the model left out.
    assert enc.stats["weight_bytes_by_type"]["float32"] / enc.param_bytes() > 0.999
    pooler = sum(p.numel() for n, p in reference.model.named_parameters() if n.startswith("pooler"))
    assert abs(enc.param_bytes() - 4 * (reference.num_parameters - pooler)) < 0.001 * enc.param_bytes()


def test_fp32_onnx_optimized_graph_is_fused_and_faithful(reference, small_docs, fp32_small_emb):
    enc = methods.build("fp32-onnx", reference, optimize=True, threads=1)
    assert enc.info["graph_ops"].get("Attention", 0) == reference.model.config.num_hidden_layers
    assert enc.info["intra_op_threads"] == 1
    assert _cos(enc.encode(small_docs), fp32_small_emb).min() >= 0.9999


def test_onnx_batch_and_padding_do_not_change_embeddings(reference, small_docs):
    enc = methods.build("fp32-onnx", reference)
    one_by_one = np.stack([enc.encode([t])[0] for t in small_docs[:4]])
    batched = enc.encode(small_docs[:4], batch_size=4)
    assert _cos(one_by_one, batched).min() > 0.99999


@pytest.mark.parametrize("weight_type,per_channel,bound", [
    ("QInt8", True, 0.985), ("QUInt8", True, 0.985),
    # Per-tensor weight scales: measured cosine mean 0.955 (QInt8) / 0.978 (QUInt8) on the full Lee set.
    ("QInt8", False, 0.93), ("QUInt8", False, 0.95),
])
def test_int8_dynamic_variants(reference, small_docs, fp32_small_emb, n_linear, weight_type, per_channel, bound):
    enc = methods.build("int8-dynamic-onnx", reference, weight_type=weight_type, per_channel=per_channel)
    emb = enc.encode(small_docs)
    _check_embeddings(emb, len(small_docs), reference.dim)
    cos = _cos(emb, fp32_small_emb)
    assert cos.mean() >= bound and cos.min() >= bound - 0.03
    assert cos.mean() < 0.99999  # really quantized
    assert enc.compute_precision == "int8"
    assert enc.info["graph_ops"]["MatMulInteger"] == n_linear
    assert enc.info["settings"]["weight_type"] == weight_type and enc.info["settings"]["per_channel"] is per_channel
    assert enc.param_bytes() < 0.3 * 4 * reference.num_parameters


def test_int8_dynamic_default_is_qint8_per_channel(reference):
    enc = methods.build("int8-dynamic-onnx", reference)
    assert enc.info["settings"]["weight_type"] == "QInt8" and enc.info["settings"]["per_channel"] is True


def test_static_calibration_is_required(reference):
    with pytest.raises(ValueError, match="calibration"):
        methods.build("int8-static-onnx", reference, calibration=[])
    builder = methods.get("int8-static-onnx").builder
    with pytest.raises(ValueError, match="calibration"):
        builder(reference, calibration=None)
    with pytest.raises(ValueError, match="empty"):
        builder(reference, calibration=["", "  "])
    with pytest.raises(TypeError, match="strings"):
        builder(reference, calibration=[1, 2])
    with pytest.raises(ValueError, match="calibrate_method"):
        builder(reference, calibration=["a text"], calibrate_method="kl")
    with pytest.raises(ValueError, match="quant_format"):
        builder(reference, calibration=["a text"], quant_format="int8")


def test_int8_static_minmax(reference, small_docs, fp32_small_emb, n_linear):
    cal = data.calibration_texts(16)
    assert not set(cal) & set(small_docs)
    enc = methods.build("int8-static-onnx", reference, calibration=cal)
    emb = enc.encode(small_docs)
    _check_embeddings(emb, len(small_docs), reference.dim)
    cos = _cos(emb, fp32_small_emb)
    # Measured: cosine mean 0.993 (64 small_docs, full Lee set); FFN down-projections quantized too: 0.95.
    assert 0.98 <= cos.mean() < 0.99999 and cos.min() >= 0.97
    s = enc.info["settings"]
    assert s["calibration_texts"] == 16 and s["calibrate_method"] == "MinMax" and s["quant_format"] == "QDQ"
    layers = reference.model.config.num_hidden_layers
    assert s["quantized_matmuls"] == n_linear - layers and s["fp32_matmuls"] == layers + 2 * layers
    # Only the inputs of the quantized products are calibrated: per layer the Q/K/V input (shared),
    # the attention output's and the FFN's inputs.
    assert s["calibrated_tensors"] == 3 * layers
    assert enc.info["graph_ops"]["QuantizeLinear"] > 0 and enc.info["graph_ops"]["DequantizeLinear"] > 0
    assert enc.compute_precision == "int8"


def test_int8_static_qoperator_and_ffn_output(reference, small_docs, fp32_small_emb, n_linear):
    cal = data.calibration_texts(8)
    enc = methods.build("int8-static-onnx", reference, calibration=cal, quant_format="QOperator",
                        skip_ffn_output=False)
    assert enc.info["graph_ops"]["QLinearMatMul"] == n_linear
    assert _cos(enc.encode(small_docs), fp32_small_emb).mean() > 0.8


def test_entropy_calibration_is_not_minmax(reference):
    """quantize_static's own Entropy defaults give one candidate threshold (= MinMax); ours search."""
    from onnx import numpy_helper

    def scales(enc):
        m = onnx.load(str(enc.model_path))
        init = {t.name: t for t in m.graph.initializer}
        return {n.input[1]: float(numpy_helper.to_array(init[n.input[1]]))
                for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[1] in init
                and init[n.input[1]].dims == []}

    cal = data.calibration_texts(4)
    a = scales(methods.build("int8-static-onnx", reference, calibration=cal))
    b = scales(methods.build("int8-static-onnx", reference, calibration=cal, calibrate_method="Entropy",
                             histogram_bins=512))
    assert a.keys() == b.keys() and len(a) > 10
    assert sum(abs(a[k] - b[k]) > 1e-6 * a[k] for k in a) > len(a) // 2


def test_int4_matmulnbits_smaller_than_int8(reference, small_docs, fp32_small_emb, n_linear):
    enc = methods.build("int4-onnx", reference)
    emb = enc.encode(small_docs)
    _check_embeddings(emb, len(small_docs), reference.dim)
    cos = _cos(emb, fp32_small_emb)
    assert 0.95 <= cos.mean() < 0.9999  # measured 0.967 (block 32, asymmetric) on the full Lee set
    ops = enc.info["graph_ops"]
    assert ops["MatMulNBits"] == n_linear and "MatMulInteger" not in ops
    assert ops.get("GatherBlockQuantized", 0) >= 1  # the embedding tables are 4-bit too
    assert enc.compute_precision == "fp32"
    int8 = methods.build("int8-dynamic-onnx", reference)
    assert enc.size_on_disk() < int8.size_on_disk()
    assert enc.param_bytes() < int8.param_bytes()
    # Larger blocks: fewer scales, smaller file.
    assert methods.build("int4-onnx", reference, block_size=128).size_on_disk() < enc.size_on_disk()
    with pytest.raises(ValueError, match="block_size"):
        methods.build("int4-onnx", reference, block_size=48)


def test_param_bytes_are_the_stored_weights(reference):
    """Weights as stored: within 1% of the file (the graph itself is small), ordered fp32 > int8 > int4."""
    sizes = {}
    for name in ("fp32-onnx", "int8-dynamic-onnx", "int4-onnx"):
        enc = methods.build(name, reference)
        pb, fb = enc.param_bytes(), _file_bytes(enc)
        assert 0.99 * fb < pb <= fb, name
        assert pb == sum(enc.stats["weight_bytes_by_type"].values())
        sizes[name] = pb
        saved = enc.size_on_disk()
        assert fb <= saved < fb + 1024  # the .onnx (and its data), not the cache manifest
    assert sizes["fp32-onnx"] > 3.5 * sizes["int8-dynamic-onnx"]
    assert sizes["int8-dynamic-onnx"] > 1.4 * sizes["int4-onnx"]
    # int8: 1 byte per quantized weight; what stays FP32 is counted at 4 bytes.
    enc = methods.build("int8-dynamic-onnx", reference)
    by = enc.stats["weight_bytes_by_type"]
    assert by["int8"] + by.get("uint8", 0) > 0.95 * enc.param_bytes()
    assert by["float32"] > 0


def test_cache_rebuilds_corrupt_or_missing_files(reference, small_docs, fp32_small_emb, tmp_path, monkeypatch):
    monkeypatch.setenv("BGEQ_DATA", str(tmp_path))
    path = ox.export_fp32(reference)
    assert str(path).startswith(str(tmp_path)) and ox.check_cached(path.parent) is None
    size = path.stat().st_size
    # Same size, damaged content: caught by the recorded SHA-256, rebuilt.
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\0" * 4096)
    assert "SHA-256" in ox.check_cached(path.parent)
    with pytest.warns(UserWarning, match="rebuilding"):
        again = ox.export_fp32(reference)
    assert again == path and ox.check_cached(path.parent) is None
    # Missing file: rebuilt.
    path.unlink()
    with pytest.warns(UserWarning, match="missing"):
        enc = methods.build("fp32-onnx", reference)
    assert _cos(enc.encode(small_docs[:3]), fp32_small_emb[:3]).min() >= 0.9999
    # Derived graphs are keyed by the source graph's hash and rebuilt the same way.
    q = methods.build("int8-dynamic-onnx", reference).model_path
    q.write_bytes(b"not an onnx file")
    with pytest.warns(UserWarning, match="rebuilding"):
        q2 = methods.build("int8-dynamic-onnx", reference).model_path
    assert q2 == q and ox.check_cached(q.parent) is None


def test_unloadable_graph_gives_a_clear_error(reference, tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ox.OnnxCacheError, match="Delete"):
        OrtEncoder(reference, bad)


def test_bad_options_are_named(reference):
    with pytest.raises(ValueError, match="weight_type"):
        methods.build("int8-dynamic-onnx", reference, weight_type="int8")
    with pytest.raises(ValueError, match="per_channel"):
        methods.build("int8-dynamic-onnx", reference, per_channel="yes")
    with pytest.raises(ValueError, match="threads"):
        methods.build("fp32-onnx", reference, threads=0)
    with pytest.raises(TypeError):
        methods.build("fp32-onnx", reference, no_such_option=1)


def test_cuda_request_is_unavailable_not_a_crash(reference):
    from bgeq_utils.core import env
    if env.has_cuda():
        pytest.skip("a GPU is visible")
    with pytest.raises(MethodUnavailable):
        methods.build("fp32-onnx", reference, device="cuda")
    with pytest.raises(MethodUnavailable):
        methods.build("int8-dynamic-onnx", reference, device="cuda")


def test_run_method_records_onnx_settings(reference, lee_small, tiny_bench):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = pipeline.run_method("int8-static-onnx", reference, lee_small, run="pytest-onnx", calibration=8,
                                  options={"calibrate_method": "Percentile"}, bench_config=tiny_bench,
                                  progress=False, label="int8-static-onnx[percentile,n=8]")
    assert res.status == "ok", res.reason
    assert res.extra["settings"]["calibrate_method"] == "Percentile"
    assert res.extra["graph_ops"]["QuantizeLinear"] > 0
    assert res.size["param_bytes"] <= res.size["disk_bytes"]
    assert res.settings["calibration"] == 8 and res.options == {"calibrate_method": "Percentile"}
