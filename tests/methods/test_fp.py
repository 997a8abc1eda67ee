"""The floating-point methods on the default model: FP32 equal to sentence-transformers, FP32 through the compiler,
and FP16 / BF16 on their fast path: the attention implementation and kernel recorded, the eager-attention and
compiled variants kept as options, the same configuration under one key."""
import numpy as np
import pytest
import torch

from bgeq_utils import methods
from bgeq_utils.core import env
from bgeq_utils.methods import fp
from tests.methods.conftest import MB, check_embeddings

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("ops,kernel", [
    (["aten::linear", "aten::_scaled_dot_product_flash_attention"], "flash"),
    (["aten::_scaled_dot_product_efficient_attention"], "memory-efficient"),
    (["aten::_scaled_dot_product_cudnn_attention"], "cudnn"),
    (["aten::_scaled_dot_product_flash_attention_for_cpu"], "flash (CPU)"),
    (["aten::_scaled_dot_product_attention_math", "aten::_softmax"], "math"),
    (["aten::matmul", "aten::softmax"], "eager (matmul + softmax)"),
    (["aten::linear"], "not seen"),
])
def test_kernel_read_from_the_operators(ops, kernel):
    assert fp.kernel_of(ops) == kernel


@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_options_default_to_sdpa_uncompiled(name):
    spec = methods.get(name)
    assert spec.option_defaults() == {"attn": "sdpa", "compile": False}
    assert spec.normalize_options({"attn": "sdpa", "compile": False}) == {}   # one key for the default
    assert spec.normalize_options({"attn": "eager"}) == {"attn": "eager"}


def test_unknown_attention_is_an_error(reference):
    with pytest.raises(ValueError, match="attn='flash' is not one of"):
        methods.build("bf16", reference, attn="flash")


def test_attention_variants_on_cpu(reference, texts, fp32_emb):
    """attn='eager' runs transformers' matmul + softmax attention, the default SDPA; both agree with FP32, and
    the reference's own attention is left as it was."""
    before = reference.model.config._attn_implementation
    kernels = {}
    for attn in ("sdpa", "eager"):
        enc = methods.build("bf16", reference, attn=attn)
        assert enc.info["attn_implementation"] == attn and enc.attention is None   # no backend context on CPU
        kernels[attn] = fp.attention_kernels(enc)
        assert (enc.encode(texts, batch_size=6) * fp32_emb).sum(1).min() > 0.99
    assert kernels["eager"] == {"unpadded": "eager (matmul + softmax)", "padded": "eager (matmul + softmax)"}
    assert "eager" not in kernels["sdpa"]["unpadded"] and kernels["sdpa"]["unpadded"] != "not seen"
    assert reference.model.config._attn_implementation == before


def test_no_backend_context_on_cpu():
    assert fp.sdpa_fast_kernels("cpu") is None
    assert fp.sdpa_fast_kernels("cuda:0") is not None   # a factory; nothing runs until it is entered


def test_compile_layers_raises_the_recompile_limit(reference):
    """Each compiled copy adds guard entries to the shared layer code; the limit is raised so none falls back
    to eager silently. Compiling is lazy: nothing is traced here."""
    import copy

    import torch._dynamo.config as dc
    model = copy.deepcopy(reference.model)
    assert fp.compile_layers(model) == len(model.encoder.layer)
    assert getattr(dc, "recompile_limit", getattr(dc, "cache_size_limit", None)) >= fp.RECOMPILE_LIMIT


@pytest.mark.slow
def test_compiled_variant_on_cpu(reference, texts, fp32_emb):
    enc = methods.build("bf16", reference, compile=True)
    assert enc.runtime == "inductor" and enc.info["compiled"] and "regional" in enc.info["compile"]
    assert (enc.encode(texts, batch_size=6) * fp32_emb).sum(1).min() > 0.99


@pytest.mark.gpu
@needs_cuda
def test_fp16_and_bf16_share_the_attention_kernel(reference):
    k16 = methods.build("fp16", reference, device="cuda").info["attention"]
    k32 = methods.build("bf16", reference, device="cuda").info["attention"]
    assert k16 == k32 and k16["padded"] in ("memory-efficient", "flash")


def test_fp32_encoder_equals_sentence_transformers(reference, lee_small):
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(str(reference.folder), device="cpu")
    texts = list(lee_small.corpus.values())
    ours = methods.build("fp32", reference).encode(texts, batch_size=7)
    theirs = st.encode(texts, batch_size=7, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (20, 384) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-5


@pytest.mark.parametrize("name,cos_mean,cos_min", [("fp16", 0.9999, 0.9998), ("bf16", 0.999, 0.998)])
def test_half_precision_cpu(reference, texts, fp32_emb, fp32_disk, name, cos_mean, cos_min):
    enc = methods.build(name, reference)
    f = check_embeddings(enc.encode(texts, batch_size=6), fp32_emb, len(texts))
    print(name, {k: round(f[k], 6) for k in ("cos_mean", "cos_min")})
    assert f["cos_mean"] >= cos_mean and f["cos_min"] >= cos_min
    assert enc.compute_precision == name
    assert next(enc.model.parameters()).dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[name]
    assert next(reference.model.parameters()).dtype == torch.float32  # the reference is untouched
    assert enc.param_bytes() == 2 * reference.num_parameters
    disk = enc.size_on_disk()
    print(name, "disk MB", disk / MB, "fp32", fp32_disk / MB)
    assert 0.45 * fp32_disk < disk < 0.55 * fp32_disk
    native = enc.info["cpu_native_flags"]
    assert set(native) <= env.cpu_flags() and enc.info["cpu_native"] == bool(native)


def test_half_precision_rejects_options(reference):
    with pytest.raises(methods.UnknownOptionError, match="fp16: unknown option.*threshold.*attn \\(default 'sdpa'\\)"):
        methods.build("fp16", reference, threshold=1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_half_precision_cuda(reference, texts, fp32_emb, name):
    enc = methods.build(name, reference, device="cuda")
    f = check_embeddings(enc.encode(texts, batch_size=6), fp32_emb, len(texts))
    assert f["cos_mean"] >= 0.999 and next(enc.model.parameters()).is_cuda


def test_fp32_inductor_is_fp32_through_the_compiler(reference, texts, fp32_emb):
    enc = methods.build("fp32-inductor", reference, freezing=False)
    assert enc.runtime == "inductor" and methods.get("fp32-inductor").baseline_in_runtime == "fp32-inductor"
    f = check_embeddings(enc.encode(texts, batch_size=6), fp32_emb, len(texts))
    assert f["cos_min"] > 0.99999
    assert methods.get("int8-static-torch").runtime == "inductor"
