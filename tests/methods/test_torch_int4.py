"""INT4 weight-only in PyTorch on the CPU: torchao intx (int8 containers) and optimum-quanto qint4 (packed)."""
import copy

import numpy as np
import pytest
import torch

from bgeq_utils import methods
from bgeq_utils.methods import torch_int4


@pytest.fixture(scope="module")
def torchao_enc(reference):
    return methods.build("int4-torchao", reference)


@pytest.fixture(scope="module")
def quanto_enc(reference):
    if "int4-quanto" not in methods.names():
        pytest.skip("int4-quanto is not registered")
    return methods.build("int4-quanto", reference)


def _fp32_linear_weights(model):
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def test_torchao_int4_fidelity_and_normalized(torchao_enc, small_docs, fp32_small_emb):
    emb = torchao_enc.encode(small_docs)
    assert emb.shape == fp32_small_emb.shape and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    cos = (emb * fp32_small_emb).sum(1)
    # Measured on the 20 Lee documents: mean 0.969, min 0.959 (group 32, asymmetric).
    assert cos.mean() > 0.95 and cos.min() > 0.93, (cos.mean(), cos.min())
    assert cos.mean() < 0.9999, "INT4 weights must change the embeddings (is the model really quantized?)"


def test_torchao_int4_measured_bytes_show_int8_containers(torchao_enc, reference):
    info = torchao_enc.info
    n = _fp32_linear_weights(reference.model)
    assert info["quantized_linear_weights"] == n
    assert info["weight_containers"] == ["int8"]
    # One int8 byte per 4-bit value + FP32 scale and int8 zero point per group of 32.
    assert info["bits_per_weight_effective"] == pytest.approx(8 + (32 + 8) / 32)
    assert info["quantized_linear_weight_bytes"] == pytest.approx(n * (1 + 5 / 32))
    # Embedding tables and LayerNorm stay FP32 by default and are counted.
    assert info["float_bytes"]["embeddings"] > 0 and info["float_bytes"]["layernorm"] > 0
    fp32_bytes = sum(p.numel() * 4 for p in reference.model.parameters())
    pb = torchao_enc.param_bytes()
    assert pb == info["param_bytes"]
    assert 0.5 * fp32_bytes < pb < fp32_bytes  # linear weights shrink ~3.5x, embeddings do not
    disk = torchao_enc.size_on_disk()
    assert abs(disk - pb) < 0.02 * pb, (disk, pb)


def test_torchao_int4_save_roundtrip(torchao_enc, reference, small_docs, tmp_path):
    folder = torchao_enc.save(tmp_path / "m")
    model = copy.deepcopy(reference.model)
    model.load_state_dict(torch.load(folder / "model.pt", weights_only=False), assign=True)
    enc = torch_int4.QuantizedTorchEncoder(reference, model.eval())
    np.testing.assert_array_equal(enc.encode(small_docs[:4]), torchao_enc.encode(small_docs[:4]))


def test_torchao_int4_embeddings_option_quantizes_tables(reference):
    enc = methods.build("int4-torchao", reference, group_size=64, embeddings=True)
    info = enc.info
    assert info["quantized_embedding_weights"] == reference.model.embeddings.word_embeddings.weight.numel() + \
        reference.model.embeddings.position_embeddings.weight.numel() + \
        reference.model.embeddings.token_type_embeddings.weight.numel()
    assert "embeddings" not in info["float_bytes"]
    assert info["bits_per_weight_effective"] == pytest.approx(8 + 40 / 64)
    fp32_bytes = sum(p.numel() * 4 for p in reference.model.parameters())
    assert enc.param_bytes() < 0.35 * fp32_bytes


def test_reference_is_untouched(reference, torchao_enc):
    w = reference.model.encoder.layer[0].attention.self.query.weight
    assert type(w) is torch.nn.Parameter and w.dtype == torch.float32


def test_quanto_int4_packs_two_values_per_byte(quanto_enc, reference, small_docs, fp32_small_emb):
    emb = quanto_enc.encode(small_docs)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    cos = (emb * fp32_small_emb).sum(1)
    # Measured on the 20 Lee documents: mean 0.964, min 0.955 (group 32).
    assert cos.mean() > 0.95 and cos.min() > 0.93, (cos.mean(), cos.min())
    info = quanto_enc.info
    assert info["weight_containers"] == ["uint8"]
    # Half a byte per value + FP32 scale and FP32 shift per group of 32.
    assert info["bits_per_weight_effective"] == pytest.approx(4 + 64 / 32)
    assert info["bits_per_weight_effective"] < 8
    assert quanto_enc.param_bytes() == info["param_bytes"]
    disk = quanto_enc.size_on_disk()
    assert abs(disk - info["param_bytes"]) < 0.02 * info["param_bytes"]


def test_quanto_group_size_changes_storage(reference):
    if "int4-quanto" not in methods.names():
        pytest.skip("int4-quanto is not registered")
    enc = methods.build("int4-quanto", reference, group_size=128)
    assert enc.info["bits_per_weight_effective"] == pytest.approx(4 + 64 / 128)


@pytest.mark.parametrize("opts, err, match", [
    ({"group_size": 100}, ValueError, "does not divide"),
    ({"group_size": 0}, ValueError, "group_size"),
    ({"mapping": "nf4"}, ValueError, "mapping"),
    ({"embeddings": "yes"}, ValueError, "embeddings"),
    ({"block_size": 32}, TypeError, "unknown option"),
])
def test_torchao_bad_options(reference, opts, err, match):
    with pytest.raises(err, match=match):
        methods.build("int4-torchao", reference, **opts)


def test_storage_tensors_flatten_subclasses(torchao_enc):
    w = torchao_enc.model.encoder.layer[0].attention.self.query.weight
    inner = list(torch_int4.storage_tensors(w))
    assert {t.dtype for t in inner} == {torch.int8, torch.float32}
    # The wrapper claims FP32 numel*4 bytes; the storage is about a quarter of that.
    assert sum(t.nbytes for t in inner) < 0.35 * w.numel() * 4
