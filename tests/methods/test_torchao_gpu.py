"""GPU INT8 / FP8 methods (torchao): registered for CUDA only, skipped elsewhere with the reason; their build
path checked on CPU where torchao allows it, and on CUDA by the gpu-marked tests."""
import numpy as np
import pytest
import torch

from bgeq_utils import methods
from bgeq_utils.measure import pipeline
from bgeq_utils.methods import torchao_gpu

GPU_METHODS = {"int8-torchao-cuda": "int8", "fp8-torchao-cuda": "fp8"}
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("name,precision", sorted(GPU_METHODS.items()))
def test_registered_for_cuda_only(name, precision):
    spec = methods.get(name)
    assert spec.devices == ("cuda",) and spec.precision == precision and spec.library == "torchao"
    assert spec.runtime == "inductor" and spec.baseline_in_runtime == "fp32-inductor"
    assert "torchao" in spec.imports           # the memory baseline imports it first
    assert "runs on cuda only; this run is on cpu" in spec.unavailable_reason("cpu")


@pytest.mark.parametrize("name", sorted(GPU_METHODS))
def test_skipped_on_cpu_with_the_reason(name, reference, tiny_bench):
    with pytest.raises(methods.MethodUnavailable, match="runs on cuda only"):
        methods.build(name, reference, device="cpu")
    res = pipeline.run_method(name, reference, None, run="pytest-gpu-skip", device="cpu", bench_config=tiny_bench,
                              progress=False)
    assert res.status == "skipped" and "cuda only" in res.reason and not res.speed


def test_options_and_their_defaults():
    assert methods.get("fp8-torchao-cuda").option_defaults() == {"granularity": "row", "compile": True}
    assert methods.get("int8-torchao-cuda").option_defaults() == {"compile": True}
    # the defaults written out are the default configuration (same Result key)
    assert methods.get("fp8-torchao-cuda").normalize_options({"granularity": "row", "compile": True}) == {}
    with pytest.raises(methods.UnknownOptionError, match="granularity"):
        methods.get("int8-torchao-cuda").normalize_options({"granularity": "row"})


@pytest.mark.parametrize("capability,ok", [((7, 5), False), ((8, 0), False), ((8, 6), False), ((8, 9), True),
                                           ((9, 0), True), ((10, 0), True)])
def test_fp8_needs_compute_capability_8_9(capability, ok):
    reason = torchao_gpu.fp8_unavailable_reason(capability, "GPU X")
    assert (reason is None) == ok
    if not ok:
        assert "8.9 or newer" in reason and f"GPU X has {capability[0]}.{capability[1]}" in reason


def test_quantized_build_path_on_cpu(reference, texts, fp32_emb):
    """The shared build path (BF16 copy, quantize_, attention probe, encoder) runs the INT8 configuration on
    CPU eagerly: embeddings stay close to FP32 and the stored INT8 weights are counted."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig

    enc, info = torchao_gpu._quantized_encoder(
        reference, "cpu", Int8DynamicActivationInt8WeightConfig(set_inductor_config=False), False, "int8")
    emb = enc.encode(texts, batch_size=6)
    cos = (emb * fp32_emb).sum(1)
    assert emb.shape == fp32_emb.shape and np.isfinite(emb).all() and cos.min() > 0.98
    assert info["quantized_linear_layers"] == 36 and info["base_dtype"] == "bfloat16" and not info["compiled"]
    assert enc.runtime == "torch" and enc.compute_precision == "int8"
    assert enc.param_bytes() < 0.5 * sum(p.numel() * 4 for p in reference.model.parameters())
    assert set(info["attention"]) == {"unpadded", "padded"}


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("name", sorted(GPU_METHODS))
def test_gpu_methods_on_cuda(name, reference, texts, fp32_emb):
    cap = torch.cuda.get_device_capability()
    if name.startswith("fp8") and torchao_gpu.fp8_unavailable_reason(cap):
        with pytest.raises(methods.MethodUnavailable, match="8.9 or newer"):
            methods.build(name, reference, device="cuda")
        return
    enc = methods.build(name, reference, device="cuda")
    emb = enc.encode(texts, batch_size=6)
    assert enc.runtime == "inductor" and enc.info["compiled"]
    assert (emb * fp32_emb).sum(1).min() > 0.98
    assert enc.info["attention"]["padded"] in ("memory-efficient", "flash")


def test_short_batches_padded_to_the_int_mm_minimum(reference):
    """torch._int_mm needs more than 16 rows on CUDA: a batch of fewer tokens gets masked padding positions."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig

    enc, info = torchao_gpu._quantized_encoder(
        reference, "cpu", Int8DynamicActivationInt8WeightConfig(set_inductor_config=False), False, "int8",
        min_tokens=torchao_gpu.INT_MM_MIN_ROWS)
    assert info["min_tokens"] == 17
    feats = enc.tokenize(["a short text"])
    assert feats["input_ids"].size < 17
    seen = []
    model_forward = enc.model.forward

    def spy(**kw):
        seen.append(tuple(kw["input_ids"].shape))
        return model_forward(**kw)
    enc.model.forward = spy
    padded = enc.embed_features(feats)
    enc.min_tokens = 24
    longer = enc.embed_features(feats)
    enc.min_tokens = 0
    plain = enc.embed_features(feats)
    assert seen == [(1, 17), (1, 24), feats["input_ids"].shape]
    # how much padding does not matter; a padding mask at all takes another attention path, whose rounding
    # differences the per-token INT8 activations carry on (as in any padded batch)
    assert float((padded * longer).sum()) > 0.9999 and float((padded * plain).sum()) > 0.99
