"""INT8 quantization-aware training: the loss goes down, the result is a real INT8 model, runs repeat."""
import numpy as np
import pytest
import torch

from bgeq_utils import methods
from bgeq_utils.inputs import data
from bgeq_utils.methods import training

pytestmark = pytest.mark.skipif("int8-qat" not in methods.names(), reason="int8-qat is not registered")

# Small enough for a test: 8 short texts, one batch of all of them, 6 steps.
SHORT = dict(steps=6, batch_size=8, max_length=32, lr=1e-5, seed=0)


@pytest.fixture(scope="module")
def cal():
    return data.calibration_texts(8)


@pytest.fixture(scope="module")
def reference_before(reference):
    return {k: v.detach().clone() for k, v in reference.model.state_dict().items()}


@pytest.fixture(scope="module")
def trained(reference, reference_before, cal):
    return methods.build("int8-qat", reference, calibration=cal, **SHORT)


@pytest.fixture(scope="module")
def docs(lee_small):
    return list(lee_small.corpus.values())


def test_distillation_loss_goes_down(trained):
    info = trained.info
    curve = info["curve"]
    assert [c["step"] for c in curve] == list(range(1, SHORT["steps"] + 1))
    first, last = training.curve_trend(curve)
    assert last < first, curve
    # The fake-quantized student reproduces the teacher better after training than before.
    assert info["train_cos_fake_after"] > info["train_cos_fake_before"]


def test_converted_model_is_real_int8(trained, reference):
    from torchao.quantization.qat import FakeQuantizedLinear
    model = trained.model
    assert not any(isinstance(m, FakeQuantizedLinear) for m in model.modules())
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears
    for m in linears:
        w = m.weight
        assert type(w).__name__ == "Int8Tensor"
        assert w.qdata.dtype == torch.int8 and w.qdata.shape == w.shape
        assert w.act_quant_kwargs is not None  # activations are quantized at run time too
    assert trained.compute_precision == "int8"
    assert trained.info["linear_weights"] == {"Int8Tensor[int8]": len(linears)}
    # int8 weights + one FP32 scale per output channel (+ bias kept FP32, counted elsewhere)
    assert 8 < trained.info["bits_per_weight_effective"] < 8.2
    # Linear weights shrink 4x; the FP32 embedding tables (half of this small model) do not.
    fp32_bytes = sum(p.numel() * 4 for p in reference.model.parameters())
    assert 0.5 * fp32_bytes < trained.param_bytes() < 0.7 * fp32_bytes


def test_embeddings_normalized_and_faithful(trained, reference, docs):
    emb = trained.encode(docs)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    ref = methods.build("fp32", reference).encode(docs)
    cos = (emb * ref).sum(1)
    # Measured: ~0.999 mean for INT8 per-token/per-channel, trained or not.
    assert cos.mean() > 0.995 and cos.min() > 0.99, (cos.mean(), cos.min())


def test_deterministic_with_seed(trained, reference, cal, docs):
    again = methods.build("int8-qat", reference, calibration=cal, **SHORT)
    assert [c["loss"] for c in again.info["curve"]] == [c["loss"] for c in trained.info["curve"]]
    np.testing.assert_array_equal(again.encode(docs[:4]), trained.encode(docs[:4]))


def test_steps_zero_is_ptq_of_the_same_scheme(reference, cal, trained, docs):
    ptq = methods.build("int8-qat", reference, calibration=cal, steps=0)
    assert ptq.info["curve"] == [] and "train_cos_fake_before" not in ptq.info
    assert ptq.info["linear_weights"] == trained.info["linear_weights"]
    # Training moved the weights: the two INT8 models differ.
    assert not np.array_equal(ptq.encode(docs[:2]), trained.encode(docs[:2]))


def test_reference_untouched(reference, reference_before, trained):
    after = reference.model.state_dict()
    assert set(after) == set(reference_before)
    for k, v in reference_before.items():
        assert type(after[k]) is torch.Tensor and torch.equal(after[k], v), k


def test_batches_cover_each_epoch():
    b = training.batches(10, 4, 5, seed=1)
    assert [len(x) for x in b] == [4, 4, 4, 4, 4]
    assert len(set(np.concatenate(b[:2]).tolist())) == 8  # no repeats within an epoch


@pytest.mark.parametrize("opts, err, match", [
    ({"steps": -1}, ValueError, "steps"),
    ({"steps": 2.5}, ValueError, "steps"),
    ({"loss": "huber"}, ValueError, "loss"),
    ({"lr": 0}, ValueError, "lr"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"max_length": 2}, ValueError, "max_length"),
    ({"epochs": 3}, TypeError, "unknown option"),
])
def test_bad_options(reference, cal, opts, err, match):
    with pytest.raises(err, match=match):
        methods.build("int8-qat", reference, calibration=cal, **opts)


def test_needs_calibration_texts(reference):
    with pytest.raises(ValueError, match="calibration"):
        methods.build("int8-qat", reference, calibration=None)


def test_mse_loss_matches_cosine_for_unit_vectors():
    a = torch.nn.functional.normalize(torch.randn(5, 16), dim=1)
    b = torch.nn.functional.normalize(torch.randn(5, 16), dim=1)
    mse = training.distillation_loss(a, b, "mse")
    cos = training.distillation_loss(a, b, "cosine")
    assert mse.item() == pytest.approx(2 * cos.item(), rel=1e-5)
