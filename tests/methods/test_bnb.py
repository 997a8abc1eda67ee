"""bitsandbytes LLM.int8() and 4-bit NF4/FP4 through transformers, on the default model (CPU kernels)."""
import numpy as np
import pytest
import torch

from bgeq_utils import methods
from bgeq_utils.measure import metrics
from bgeq_utils.methods import encoders

pytest.importorskip("bitsandbytes")
MB = 1e6


@pytest.fixture(scope="module")
def linear_numel(reference):
    return sum(m.weight.numel() for m in reference.model.modules() if isinstance(m, torch.nn.Linear))


def fidelity(enc, texts, fp32_emb, label):
    emb = enc.encode(texts, batch_size=6)
    assert emb.shape == (len(texts), 384) and emb.dtype == np.float32 and np.isfinite(emb).all()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    f = metrics.fidelity(fp32_emb, emb)
    print(label, {k: round(f[k], 6) for k in ("cos_mean", "cos_min")})
    return f


@pytest.mark.parametrize("threshold,cos_mean", [(6.0, 0.998), (0.0, 0.995)])
def test_llm_int8_cpu(reference, texts, fp32_emb, fp32_disk, linear_numel, threshold, cos_mean):
    enc = methods.build("int8-bnb", reference, threshold=threshold)
    info = enc.info
    assert info["threshold"] == threshold and info["outlier_decomposition"] == (threshold > 0)
    assert info["quantized_linear_layers"] == 37 and info["linear_layers_kept"] == []
    assert type(enc.model.encoder.layer[0].intermediate.dense).__name__ == "Linear8bitLt"
    assert enc.compute_precision == "int8"
    f = fidelity(enc, texts, fp32_emb, f"int8-bnb[threshold={threshold}]")
    assert f["cos_mean"] >= cos_mean
    b = info["bytes"]
    assert b["quantized_weights"] == linear_numel  # one byte per weight
    assert b["quantization_constants"] == 4 * sum(m.out_features for m in enc.model.modules()
                                                  if type(m).__name__ == "Linear8bitLt")  # one fp32 scale per row
    assert enc.param_bytes() == pytest.approx(4 * reference.num_parameters - 3 * linear_numel, rel=0.01)
    disk = enc.size_on_disk()
    print("int8-bnb disk MB", disk / MB)
    assert disk < 0.7 * fp32_disk


def test_outlier_decomposition_is_more_faithful(reference, texts, fp32_emb):
    with_dec = metrics.fidelity(fp32_emb, methods.build("int8-bnb", reference, threshold=6.0).encode(texts, 6))
    without = metrics.fidelity(fp32_emb, methods.build("int8-bnb", reference, threshold=0.0).encode(texts, 6))
    assert with_dec["cos_mean"] > without["cos_mean"]


@pytest.mark.parametrize("name,options,cos_mean", [
    ("nf4-bnb", {}, 0.95),
    ("fp4-bnb", {}, 0.91),
    ("nf4-bnb", {"double_quant": True, "compute_dtype": "bfloat16"}, 0.95),
])
def test_four_bit_cpu(reference, texts, fp32_emb, fp32_disk, linear_numel, name, options, cos_mean):
    enc = methods.build(name, reference, **options)
    info = enc.info
    assert info["quant_type"] == name[:3] and info["quantized_linear_layers"] == 37
    assert type(enc.model.encoder.layer[0].intermediate.dense).__name__ == "Linear4bit"
    f = fidelity(enc, texts, fp32_emb, f"{name}{options}")
    assert f["cos_mean"] >= cos_mean
    b = info["bytes"]
    assert b["quantized_weights"] == linear_numel // 2  # two weights per byte
    # one scale per block of 64 weights: fp32 (2 bytes as bf16 after CPU repacking), or 8-bit when double-quantized
    assert linear_numel / 64 <= b["quantization_constants"] <= 4 * linear_numel / 64 + 4096
    if info["cpu_bf16_repacked"]:
        assert enc.compute_precision == "bf16" and "bfloat16" in info["note"]
    else:
        assert enc.compute_precision == {"float32": "fp32", "bfloat16": "bf16"}[options.get("compute_dtype", "float32")]
    int8_bytes = 4 * reference.num_parameters - 3 * linear_numel
    assert enc.param_bytes() < int8_bytes - 0.4 * linear_numel
    disk = enc.size_on_disk()
    print(name, options, "disk MB", disk / MB, "param MB", enc.param_bytes() / MB)
    assert disk < int8_bytes


@pytest.mark.parametrize("name,layer", [("int8-bnb", "Linear8bitLt"), ("nf4-bnb", "Linear4bit")])
def test_saved_model_reloads_to_the_same_embeddings(reference, texts, tmp_path, name, layer):
    """What save() writes (after inference ran) is a loadable quantized checkpoint giving the same embeddings,
    and saving leaves the running model intact."""
    from transformers import AutoModel
    enc = methods.build(name, reference)
    before = enc.encode(texts[:4], batch_size=4)
    folder = enc.save(tmp_path / name)
    assert {"config.json", "model.safetensors"} <= {p.name for p in folder.iterdir()}
    again = AutoModel.from_pretrained(folder, device_map={"": "cpu"}).eval()
    assert type(again.encoder.layer[0].intermediate.dense).__name__ == layer
    other = encoders.TorchEncoder(reference, again).encode(texts[:4], batch_size=4)
    assert float(np.min(np.sum(before * other, axis=1))) > 0.999
    np.testing.assert_allclose(enc.encode(texts[:4], batch_size=4), before, atol=1e-6)  # save left it intact


def test_bad_options_are_named(reference):
    with pytest.raises(ValueError, match="threshold=-1.0 must be >= 0"):
        methods.build("int8-bnb", reference, threshold=-1)
    with pytest.raises(ValueError, match="compute_dtype='fp8' is not one of"):
        methods.build("nf4-bnb", reference, compute_dtype="fp8")
    with pytest.raises(TypeError, match="unknown option"):
        methods.build("fp4-bnb", reference, threshold=6.0)


def test_missing_package_is_skipped(reference, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a))
    with pytest.raises(methods.MethodUnavailable,
                       match=r"'bitsandbytes' is not installed \(pip install -e '\.\[bnb\]'"):
        methods.build("int8-bnb", reference)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["int8-bnb", "nf4-bnb"])
def test_bnb_cuda(reference, texts, fp32_emb, name):
    enc = methods.build(name, reference, device="cuda")
    f = fidelity(enc, texts, fp32_emb, f"{name} cuda")
    assert f["cos_mean"] >= (0.995 if name == "int8-bnb" else 0.94)
