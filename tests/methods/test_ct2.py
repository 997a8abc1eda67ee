"""CTranslate2 methods on the default model: fidelity, pooling from the config, cache reuse, skipped compute types."""
import importlib.util
import json
import shutil

import numpy as np
import pytest

from bgeq_utils import methods
from bgeq_utils.core import vocab
from bgeq_utils.methods import MethodUnavailable

needs_ct2 = pytest.mark.skipif(importlib.util.find_spec("ctranslate2") is None,
                               reason="ctranslate2 is not installed (pip install -e '.[ct2]')")


def _cos(a, b):
    return (a * b).sum(1)


@pytest.fixture
def ct2_cache(tmp_path, monkeypatch):
    """A cache folder of the test's own, so that damaging or counting builds touches nobody's cache."""
    from bgeq_utils.methods import ct2
    monkeypatch.setattr(ct2, "cache_root", lambda: tmp_path / "ct2")
    return tmp_path / "ct2"


def test_ct2_methods_are_registered_with_their_runtime_baseline():
    for name in ("fp32-ct2", "int8-ct2", "fp16-ct2", "bf16-ct2"):
        spec = methods.get(name)
        assert spec.runtime == "ct2" and spec.library == "ctranslate2"
        assert spec.baseline_in_runtime == "fp32-ct2"
        assert "ctranslate2" in spec.imports
    assert vocab.RUNTIME_BASELINE["ct2"] == "fp32-ct2"


def test_missing_package_is_a_reason_not_a_crash(reference, monkeypatch):
    from bgeq_utils.methods import registry
    real = registry.importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda n, *a: None if n == "ctranslate2" else real(n, *a))
    with pytest.raises(MethodUnavailable, match="ctranslate2.*not installed"):
        methods.build("int8-ct2", reference)


@needs_ct2
def test_fp32_ct2_reproduces_pytorch(reference, small_docs, fp32_small_emb):
    enc = methods.build("fp32-ct2", reference)
    emb = enc.encode(small_docs, batch_size=7)
    assert emb.shape == (len(small_docs), reference.dim) and emb.dtype == np.float32
    assert _cos(emb, fp32_small_emb).min() >= 0.9999
    assert enc.runtime == "ct2" and enc.compute_type == "float32" and enc.compute_precision == "fp32"
    assert set(enc.weight_bytes_by_type) <= {"float32", "int8", "int16", "int32"}
    assert enc.weight_bytes_by_type["float32"] > 0.99 * enc.param_bytes()
    # model.bin holds the weights plus a header: the weights are almost all of the folder.
    assert 0.98 * enc.size_on_disk() < enc.param_bytes() < enc.size_on_disk()


@needs_ct2
def test_int8_ct2_is_close_to_fp32_and_four_times_smaller(reference, small_docs, fp32_small_emb):
    enc = methods.build("int8-ct2", reference)
    emb = enc.encode(small_docs)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    cos = _cos(emb, fp32_small_emb)
    # Measured: mean 0.997 on the Lee documents (weights per output row, activations per batch row).
    assert 0.99 <= cos.mean() < 0.99999 and cos.min() >= 0.98
    assert enc.compute_type.startswith("int8") and enc.compute_precision == "int8"
    assert enc.weight_bytes_by_type["int8"] > 0.9 * enc.param_bytes()
    fp32 = methods.build("fp32-ct2", reference)
    assert enc.param_bytes() < 0.3 * fp32.param_bytes()
    assert enc.size_on_disk() < 0.3 * fp32.size_on_disk()


@needs_ct2
def test_int8_ct2_drifts_little_with_padding(reference, small_docs):
    """CTranslate2 masks padding by the lengths it is given, but its INT8 GEMMs see the padded batch: a text's
    embedding moves a little with its batch (the batch-invariance check measured 0.9985 at worst here)."""
    enc = methods.build("int8-ct2", reference)
    alone = np.concatenate([enc.embed_features(enc.tokenize([t], max_length=128)) for t in small_docs[:6]])
    padded = enc.embed_features(enc.tokenize(small_docs[:6], max_length=128, pad_to_max=True))
    assert _cos(alone, padded).min() >= 0.995


@needs_ct2
def test_pooling_comes_from_the_sentence_transformers_config(reference, tmp_path, small_docs):
    """A copy of the model whose 1_Pooling config says CLS: CTranslate2 then pools CLS, as FP32 does."""
    from bgeq_utils.inputs import models
    folder = tmp_path / "minilm-cls"
    shutil.copytree(reference.folder, folder)
    cfg = json.loads((folder / "1_Pooling" / "config.json").read_text())
    cfg.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(cfg))
    cls_ref = models.load_reference(str(folder))
    assert cls_ref.pooling == "cls" and reference.pooling == "mean"
    enc = methods.build("fp32-ct2", cls_ref)
    assert enc.pooling == "cls"
    want = methods.build("fp32", cls_ref).encode(small_docs[:8])
    got = enc.encode(small_docs[:8])
    assert _cos(got, want).min() >= 0.9999
    mean_emb = methods.build("fp32-ct2", reference).encode(small_docs[:8])
    assert _cos(got, mean_emb).mean() < 0.99          # really another pooling


@needs_ct2
def test_converted_folder_is_cached_and_verified(reference, ct2_cache, monkeypatch):
    from bgeq_utils.methods import ct2
    first = methods.build("int8-ct2", reference)
    folders = list(ct2_cache.glob("ct2-*"))
    assert len(folders) == 1 and (folders[0] / "model.bin").is_file() and (folders[0] / "bgeq_cache.json").is_file()

    def no_convert(*a, **k):
        raise AssertionError("converted again although the cached folder is intact")
    monkeypatch.setattr(ct2, "_convert", no_convert)
    again = methods.build("int8-ct2", reference)
    assert again.folder == first.folder
    # A damaged folder is never used: it is converted again.
    with open(folders[0] / "model.bin", "r+b") as f:
        f.seek(-8, 2)
        f.write(b"\0" * 8)
    monkeypatch.undo()
    monkeypatch.setattr(ct2, "cache_root", lambda: ct2_cache)
    with pytest.warns(UserWarning, match="rebuilding cached artifact"):
        rebuilt = methods.build("int8-ct2", reference)
    assert rebuilt.folder == first.folder
    # Another storage type is another artifact.
    methods.build("fp32-ct2", reference)
    assert len(list(ct2_cache.glob("ct2-*"))) == 2


@needs_ct2
def test_unavailable_compute_type_is_skipped_with_its_reason(reference, monkeypatch, tiny_bench):
    import ctranslate2

    from bgeq_utils.measure import pipeline
    monkeypatch.setattr(ctranslate2, "get_supported_compute_types", lambda device, *a: {"float32"})
    with pytest.raises(MethodUnavailable, match="cannot compute in int8_float32 on this cpu.*supports float32"):
        methods.build("int8-ct2", reference)
    res = pipeline.run_method("int8-ct2", reference, run="pytest-ct2-skip", bench_config=tiny_bench, progress=False)
    assert res.status == "skipped" and "int8_float32" in res.reason


@needs_ct2
def test_half_precision_runs_only_where_ctranslate2_computes_it(reference):
    import ctranslate2
    for name, ctype in (("fp16-ct2", "float16"), ("bf16-ct2", "bfloat16")):
        if ctype in ctranslate2.get_supported_compute_types("cpu"):
            assert methods.build(name, reference).compute_type == ctype
        else:
            with pytest.raises(MethodUnavailable, match=f"cannot compute in {ctype}"):
                methods.build(name, reference)


@needs_ct2
def test_ct2_rejects_bad_input(reference):
    with pytest.raises(ValueError, match="compute_type='float16'.*int8_float32"):
        methods.build("int8-ct2", reference, compute_type="float16")
    with pytest.raises(ValueError, match="threads"):
        methods.build("fp32-ct2", reference, threads=0)
    with pytest.raises(methods.UnknownOptionError, match="compute_type"):
        methods.build("fp32-ct2", reference, compute_type="float32")
