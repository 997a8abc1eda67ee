"""PyTorch INT8 on the default model: dynamic (torch.ao and torchao) and static (PT2E, calibrated, compiled)."""
import numpy as np
import pytest
import torch

from bgeq_utils import methods
from bgeq_utils.inputs import data
from bgeq_utils.measure import metrics
from bgeq_utils.methods import encoders
from tests.methods.conftest import MB, check_embeddings


def linear_weight_numel(model):
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def test_static_int8_is_cpu_only(reference):
    with pytest.raises(methods.MethodUnavailable, match="runs on cpu only"):
        methods.build("int8-static-torch", reference, device="cuda", calibration=["a text"])


def test_torch_ao_dynamic_on_cuda_says_why(reference, monkeypatch):
    """With a GPU visible, the torch.ao API (CPU kernels only) is refused with the reason, not crashed."""
    monkeypatch.setattr("bgeq_utils.core.env.has_cuda", lambda: True)
    with pytest.raises(methods.MethodUnavailable, match="CPU kernels only"):
        methods.build("int8-dynamic-torch", reference, device="cuda", api="torch.ao")


# --- INT8 dynamic -------------------------------------------------------------------------------
def test_int8_dynamic_torch_ao(reference, texts, fp32_emb, fp32_disk):
    enc = methods.build("int8-dynamic-torch", reference)
    assert enc.info["api"] == "torch.ao.quantization.quantize_dynamic" and enc.info["requested_api"] == "auto"
    assert enc.info["quantized_linear_layers"] == 37 and enc.compute_precision == "int8"
    f = check_embeddings(enc.encode(texts, batch_size=6), fp32_emb, len(texts))
    print("int8-dynamic-torch", {k: round(f[k], 6) for k in ("cos_mean", "cos_min")})
    # per-tensor activation scales (7-bit on x86) cost more than FP16 does: 0.977 / 0.946 observed
    assert f["cos_mean"] >= 0.97 and f["cos_min"] >= 0.93
    # Linear weights: 4 bytes -> 1 byte (+ one float64 scale and int64 zero point per output channel)
    lin = linear_weight_numel(reference.model)
    expected = 4 * reference.num_parameters - 3 * lin
    assert expected < enc.param_bytes() < expected + 0.01 * lin * 4
    disk = enc.size_on_disk()
    print("int8-dynamic-torch disk MB", disk / MB)
    assert disk < 0.7 * fp32_disk and abs(disk - enc.param_bytes()) < 0.01 * disk


def test_int8_dynamic_per_tensor_is_less_faithful(reference, texts, fp32_emb):
    """The guide's recipe (one weight scale per tensor) loses more than per-channel weights."""
    pc = metrics.fidelity(fp32_emb, methods.build("int8-dynamic-torch", reference).encode(texts, 6))
    pt_enc = methods.build("int8-dynamic-torch", reference, per_channel=False)
    pt = metrics.fidelity(fp32_emb, pt_enc.encode(texts, 6))
    print("per-channel", round(pc["cos_mean"], 4), "per-tensor", round(pt["cos_mean"], 4))
    assert pt_enc.info["weights"] == "int8 per tensor"
    assert pt["cos_mean"] < pc["cos_mean"]


def test_int8_dynamic_torchao(reference, texts, fp32_emb):
    enc = methods.build("int8-dynamic-torch", reference, api="torchao")
    assert enc.info["api"].startswith("torchao.quantization.quantize_") and not enc.info["compiled"]
    few = texts[:6]
    f = check_embeddings(enc.encode(few, batch_size=6), fp32_emb[:6], 6)
    print("int8-dynamic-torch[torchao]", {k: round(f[k], 6) for k in ("cos_mean", "cos_min")})
    assert f["cos_mean"] >= 0.995
    lin = linear_weight_numel(reference.model)
    expected = 4 * reference.num_parameters - 3 * lin
    assert expected < enc.param_bytes() < expected + 0.01 * lin * 4
    with pytest.raises(ValueError, match="per_channel=False applies to api='torch.ao' only"):
        methods.build("int8-dynamic-torch", reference, api="torchao", per_channel=False)


def test_int8_dynamic_bad_options(reference):
    with pytest.raises(ValueError, match="api='onnx' is not one of"):
        methods.build("int8-dynamic-torch", reference, api="onnx")
    with pytest.raises(TypeError, match="unknown option"):
        methods.build("int8-dynamic-torch", reference, bits=4)
    with pytest.raises(ValueError, match="compile=True applies to api='torchao' only"):
        methods.build("int8-dynamic-torch", reference, api="torch.ao", compile=True)


# --- INT8 static (PT2E) -------------------------------------------------------------------------
def test_int8_static_torch_numerics_and_saved_program(reference, texts, fp32_emb, fp32_disk, tmp_path):
    """The uncompiled converted graph: the INT8 numerics (fast to build); its saved program reloads."""
    enc = methods.build("int8-static-torch", reference, calibration=data.calibration_texts(32), compile=False)
    info = enc.info
    assert info["int8_weight_tensors"] == 36 and info["activation_quantize_nodes"] == 24  # 6 layers x 6 / x 4
    assert info["fp32_originals_dropped"] == 36 and enc.compute_precision == "fp32"
    emb = enc.encode(texts, batch_size=6)
    f = check_embeddings(emb, fp32_emb, len(texts))
    print("int8-static-torch", {k: round(f[k], 6) for k in ("cos_mean", "cos_min")})
    assert f["cos_mean"] >= 0.98 and f["cos_min"] >= 0.97
    one = enc.encode(texts[:1], batch_size=1)  # batch 1 through the dynamic-shape export
    assert float(one[0] @ emb[0]) > 0.9999
    lin = linear_weight_numel(reference.model) - reference.model.pooler.dense.weight.numel()
    assert info["bytes_by_dtype"]["int8"] == lin
    assert enc.param_bytes() < 4 * reference.num_parameters - 2.9 * lin
    folder = enc.save(tmp_path / "static")
    disk = encoders.dir_bytes(folder)
    print("int8-static-torch disk MB", disk / MB)
    assert disk < 0.7 * fp32_disk
    prog = torch.export.load(str(folder / "model_int8_static.pt2")).module()
    feats = enc.tokenize(texts[:3])
    with torch.no_grad():
        hidden = prog(*[torch.from_numpy(feats[k]) for k in encoders.FEATURES])
    again = encoders.pool_torch(hidden, torch.from_numpy(feats["attention_mask"]), "mean").numpy()
    np.testing.assert_allclose(again, enc.embed_features(feats), atol=1e-5)


def test_int8_static_torch_reuses_its_calibration(reference, texts, monkeypatch, tmp_path):
    """A second identical build loads the calibrated observers instead of calibrating: the same INT8 graph;
    other texts calibrate anew; a damaged cache file is calibrated again, never used."""
    monkeypatch.setenv("BGEQ_DATA", str(tmp_path))
    cal = data.calibration_texts(16)

    def build(texts_):
        enc = methods.build("int8-static-torch", reference, calibration=texts_, compile=False)
        return enc, enc.encode(texts[:4], batch_size=4)

    first, emb1 = build(cal)
    second, emb2 = build(cal)
    assert first.info["calibration_run"] and not second.info["calibration_run"]
    assert first.info["calibration_cache"] == second.info["calibration_cache"]
    np.testing.assert_array_equal(emb1, emb2)
    other, emb3 = build(cal[:8])
    assert other.info["calibration_run"] and other.info["calibration_cache"] != first.info["calibration_cache"]
    assert not np.array_equal(emb1, emb3)
    saved = tmp_path / "cache" / "pt2e" / first.info["calibration_cache"] / "observers.pt"
    saved.write_bytes(saved.read_bytes()[:-8] + b"damaged!")
    with pytest.warns(UserWarning, match="rebuilding cached artifact.*SHA-256"):
        again, emb4 = build(cal)
    assert again.info["calibration_run"]
    np.testing.assert_array_equal(emb1, emb4)


def test_int8_static_needs_calibration(reference):
    with pytest.raises(ValueError, match="needs calibration texts"):
        methods.build("int8-static-torch", reference)


@pytest.mark.slow
def test_int8_static_torch_compiled(reference, texts, fp32_emb):
    """Compiled with Inductor freezing: the q/dq patterns become oneDNN INT8 kernels (about a minute)."""
    enc = methods.build("int8-static-torch", reference, calibration=data.calibration_texts(32))
    assert enc.info["compiled"] and enc.compute_precision == "int8"
    f = check_embeddings(enc.encode(texts, batch_size=6), fp32_emb, len(texts))
    assert f["cos_mean"] >= 0.98
