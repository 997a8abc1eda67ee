"""Export on the default model: each folder reloads with its own library alone and reproduces bgeq's encoder.

Twelve Lee documents keep each export fast on two cores (the default is fifty); the reload runs in a fresh
process, as a user would load the folder.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from bgeq_utils import methods
from bgeq_utils.export import (
    MIN_COSINE,
    ExportError,
    ExportExistsError,
    ExportVerificationError,
    export,
    read_manifest,
    verify,
)
from tests import factories
from tests.export.conftest import assert_verified, leftovers


def test_int8_dynamic_onnx_reloads_with_onnx_runtime(onnx_export, texts):
    r = onnx_export
    assert r.passed and r.format == "onnx" and r.out_dir.is_dir()
    assert (r.out_dir / "onnx" / "model_qint8_quantized.onnx").is_file()
    assert not (r.out_dir / "model.safetensors").exists()          # the graph is the model: no torch weights
    assert leftovers(r.out_dir.parent) == []                       # no partial folder left behind
    for f in ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "tokenizer.json",
              "config.json", "README.md", "bgeq_export.json"):
        assert (r.out_dir / f).is_file(), f
    modules = json.loads((r.out_dir / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    c = assert_verified(r, "onnxruntime")
    assert 0.95 < c.vs_fp32["cos_mean"] < 1.0                       # INT8: close to FP32, not equal
    # sentence-transformers' onnx backend verifies where optimum-onnx imports, and is said to be unverified
    # (never silently passed) where it does not
    st = r.check("sentence-transformers")
    assert st.status in ("ok", "unavailable")
    assert st.passed if st.status == "ok" else "Optimum" in st.reason or "optimum" in st.reason
    assert r.size_mb < 40                                           # the INT8 graph, not FP32 weights
    assert "backend=\"onnx\"" in r.load_code and "onnx/model_qint8_quantized.onnx" in r.load_code
    man = read_manifest(r.out_dir)
    assert man["verification"]["passed"] is True and man["method"] == "int8-dynamic-onnx"


def test_int8_dynamic_torch_ships_fp32_weights_and_a_recipe_script(reference, texts, tmp_path):
    r = export("int8-dynamic-torch", out_dir=tmp_path / "int8-torch", texts=texts, reference=reference)
    assert r.passed and r.format == "torch-recipe"
    folder = r.out_dir
    recipe = json.loads((folder / "quantization_recipe.json").read_text())
    assert recipe["recipe"] == "torch.ao.quantization.quantize_dynamic" and recipe["per_channel"] is True
    script = (folder / "load_quantized.py").read_text()
    assert "import bgeq" not in script and "from bgeq" not in script    # the loader needs no bgeq
    c = assert_verified(r, "load_quantized.py")
    assert 0.9 < c.vs_fp32["cos_mean"] < 1.0
    text = (folder / "README.md").read_text()
    assert "load_quantized.py" in text and "FP32" in text and r.loaders[0].render(folder.name).strip() in text


@pytest.mark.skipif(__import__("importlib").util.find_spec("ctranslate2") is None,
                    reason="ctranslate2 is not installed (pip install -e '.[ct2]')")
def test_int8_ct2_ships_ctranslate2s_own_folder_and_reloads_without_bgeq(reference, texts, tmp_path):
    r = export("int8-ct2", out_dir=tmp_path / "int8-ct2", texts=texts, reference=reference)
    assert r.passed and r.format == "ct2"
    folder = r.out_dir
    for name in ("model.bin", "vocabulary.json", "config.json", "tokenizer.json", "modules.json",
                 "1_Pooling/config.json", "sentence_bert_config.json", "ct2_config.json"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "ct2_config.json").read_text())["compute_type"] == "int8_float32"
    assert "ctranslate2.Encoder(" in r.load_code and 'compute_type="int8_float32"' in r.load_code
    assert "mean pooling" in r.load_code and "import bgeq" not in r.load_code
    c = assert_verified(r, "ctranslate2")
    assert 0.98 < c.vs_fp32["cos_mean"] < 1.0
    text = (folder / "README.md").read_text()
    assert "library_name: ctranslate2" in text and r.loaders[0].render(folder.name).strip() in text


def test_fp16_ships_cast_weights_and_overwrite_replaces_only_after_the_check(reference, texts, tmp_path):
    out = tmp_path / "fp16"
    out.mkdir()
    (out / "stale.txt").write_text("an earlier export")
    r = export("fp16", out_dir=out, texts=texts[:6], reference=reference, overwrite=True)
    assert r.passed and r.format == "torch"
    assert not (out / "stale.txt").exists() and leftovers(tmp_path) == []
    assert json.loads((out / "config.json").read_text()).get("dtype") == "float16"
    assert '"dtype": "float16"' in r.load_code
    assert_verified(r, "sentence-transformers")


def test_refuses_to_overwrite_a_non_empty_folder(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportExistsError, match="overwrite=True"):
        export("int8-dynamic-onnx", out_dir=out)
    with pytest.raises(FileExistsError):
        export("int8-dynamic-onnx", out_dir=out)
    assert (out / "keep.txt").read_text() == "mine" and sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_failed_check_leaves_no_folder_as_good_and_names_the_cosines(reference, texts, tmp_path, monkeypatch):
    """The reload is made to return slightly perturbed embeddings: the folder is kept only as <out>.failed."""
    method_emb = methods.build("int8-dynamic-onnx", reference).encode(texts, batch_size=1)
    noise = np.random.default_rng(0).normal(0, 0.02, method_emb.shape).astype(np.float32)
    perturbed = (method_emb + noise) / np.linalg.norm(method_emb + noise, axis=1, keepdims=True)

    def fake_reload(folder, loaders, texts, python=None, timeout_s=900):
        return [verify.LoaderRun(ld.name, "ok", embeddings=perturbed) for ld in loaders]

    monkeypatch.setattr(verify, "reload", fake_reload)
    out = tmp_path / "bad"
    with pytest.raises(ExportVerificationError) as err:
        export("int8-dynamic-onnx", out_dir=out, texts=texts, reference=reference)
    rep = err.value.report
    assert not rep.passed and not out.exists()
    c = rep.check("onnxruntime")
    assert c.vs_method["cos_mean"] < MIN_COSINE
    msg = str(err.value)
    assert f"{c.vs_method['cos_mean']:.6f}" in msg and f"{c.vs_method['cos_min']:.6f}" in msg
    failed = tmp_path / "bad.failed"
    assert failed.is_dir() and read_manifest(failed)["verification"]["passed"] is False
    assert "NOT VERIFIED" in (failed / "README.md").read_text()
    assert leftovers(tmp_path) == []
    # keep_failed=False leaves nothing at all
    with pytest.raises(ExportVerificationError):
        export("int8-dynamic-onnx", out_dir=tmp_path / "bad2", texts=texts, reference=reference, keep_failed=False)
    assert not (tmp_path / "bad2").exists() and not (tmp_path / "bad2.failed").exists()


@pytest.mark.parametrize("method,options", [("fp32-inductor", {}), ("int8-static-torch", {}), ("int8-qat", {}),
                                            ("int8-dynamic-torch", {"api": "torchao", "compile": True})])
def test_methods_that_cannot_be_shipped_faithfully_say_why(method, options, tmp_path):
    with pytest.raises(ExportError, match="cannot be exported faithfully") as err:
        export(method, out_dir=tmp_path / method, options=options)
    assert "xport '" in str(err.value) or "compile=False" in str(err.value)   # what to use instead
    assert not (tmp_path / method).exists()


def test_result_of_another_method_is_refused(tmp_path):
    with pytest.raises(ValueError, match="method"):
        export("int8-dynamic-onnx", out_dir=tmp_path / "x", result=factories.fp32())


@pytest.mark.slow
def test_int8_static_openvino_reloads_with_openvino(reference, texts, tmp_path):
    r = export("int8-static-openvino", out_dir=tmp_path / "ov", texts=texts, reference=reference)
    assert r.passed and r.format == "openvino"
    assert (r.out_dir / "openvino" / "openvino_model_qint8_quantized.xml").is_file()
    assert (r.out_dir / "openvino" / "openvino_model_qint8_quantized.bin").is_file()
    assert '"INFERENCE_PRECISION_HINT": "f32"' in r.load_code
    assert_verified(r, "openvino")
    assert r.check("sentence-transformers").status in ("ok", "unavailable")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["int8-bnb", "nf4-bnb"])
def test_bitsandbytes_reloads_from_its_own_save_pretrained(method, reference, texts, tmp_path):
    r = export(method, out_dir=tmp_path / method, texts=texts[:6], reference=reference)
    assert r.passed and r.format == "bitsandbytes"
    cfg = json.loads((r.out_dir / "config.json").read_text())
    assert cfg["quantization_config"]["quant_method"] == "bitsandbytes"
    assert_verified(r, "sentence-transformers")
    assert "Reloads on cpu here" in (r.out_dir / "README.md").read_text()


