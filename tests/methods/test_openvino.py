"""OpenVINO methods on the default model: FP32 IR fidelity, NNCF static INT8, sizes, bad input."""
import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from bgeq_utils import methods  # noqa: E402
from bgeq_utils.inputs import data
from bgeq_utils.methods import MethodUnavailable  # noqa: E402


def _cos(a, b):
    return (a * b).sum(1)


def test_fp32_openvino_reproduces_pytorch(reference, small_docs, fp32_small_emb):
    enc = methods.build("fp32-openvino", reference)
    emb = enc.encode(small_docs, batch_size=7)
    assert emb.shape == (len(small_docs), reference.dim) and emb.dtype == np.float32
    assert _cos(emb, fp32_small_emb).min() >= 0.9999
    # f32 is asked for explicitly: on CPUs with AVX512_BF16 the plugin would otherwise pick bf16.
    assert enc.info["inference_precision_hint"] == "f32"
    assert enc.compute_precision == "fp32"
    by = enc.weight_bytes_by_type
    assert by["f32"] > 0.99 * enc.param_bytes()
    assert 0.99 * enc.size_on_disk() < enc.param_bytes() < enc.size_on_disk()


def test_int8_static_openvino(reference, small_docs, fp32_small_emb):
    cal = data.calibration_texts(16)
    enc = methods.build("int8-static-openvino", reference, calibration=cal)
    emb = enc.encode(small_docs)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    cos = _cos(emb, fp32_small_emb)
    # Measured: cosine mean 0.997 with 64 calibration texts on the full Lee set.
    assert 0.985 <= cos.mean() < 0.99999 and cos.min() >= 0.97
    assert enc.compute_precision == "int8"
    assert enc.info["graph_ops"]["FakeQuantize"] > 0
    # The CPU plugin really runs the linear layers in int8.
    assert any(k.startswith("FullyConnected:") and k.endswith(("i8", "u8")) for k in enc.info["runtime_layers"])
    assert enc.weight_bytes_by_type["i8"] > 0.9 * enc.param_bytes()
    fp32 = methods.build("fp32-openvino", reference)
    assert enc.size_on_disk() < 0.35 * fp32.size_on_disk()
    assert enc.info["settings"]["calibration_texts"] == 16


def test_openvino_rejects_bad_input(reference):
    with pytest.raises(ValueError, match="calibration"):
        methods.build("int8-static-openvino", reference, calibration=[])
    with pytest.raises(ValueError, match="preset"):
        methods.build("int8-static-openvino", reference, calibration=["a text"], preset="fast")
    with pytest.raises(ValueError, match="inference_precision"):
        methods.build("fp32-openvino", reference, inference_precision="int3")
    with pytest.raises(MethodUnavailable):
        methods.build("fp32-openvino", reference, device="cuda")


def test_int8_static_openvino_levers_keep_sensitive_layers_in_fp32(reference, small_docs, fp32_small_emb):
    cal = data.calibration_texts(16)
    base = methods.build("int8-static-openvino", reference, calibration=cal)
    enc = methods.build("int8-static-openvino", reference, calibration=cal, keep_fp32_layers=3,
                        smooth_quant_alpha=0.5)
    kept = enc.info["settings"]["fp32_layers"]
    assert len(kept) == 3 and all(k.startswith("encoder.layer.") for k in kept)
    assert enc.info["settings"]["smooth_quant_alpha"] == 0.5
    # three fewer MatMuls get an input quantizer; the embeddings stay close to FP32
    assert enc.info["graph_ops"]["FakeQuantize"] < base.info["graph_ops"]["FakeQuantize"]
    assert _cos(enc.encode(small_docs), fp32_small_emb).mean() >= 0.985


def test_openvino_levers_reject_bad_values(reference):
    with pytest.raises(ValueError, match="smooth_quant_alpha=2"):
        methods.build("int8-static-openvino", reference, calibration=["a text"], smooth_quant_alpha=2)
    with pytest.raises(ValueError, match="keep_fp32_layers=-1"):
        methods.build("int8-static-openvino", reference, calibration=["a text"], keep_fp32_layers=-1)
