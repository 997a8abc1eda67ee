import shutil

import numpy as np
import pytest

from bgeq_utils.inputs import models


def test_default_model(reference):
    assert reference.model_id == models.DEFAULT_MODEL
    assert reference.pooling == "mean" and reference.dim == 384 and reference.max_seq_length == 256
    assert reference.num_parameters == 22_713_216 and reference.has_quality


def test_unknown_model_offline_names_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("BGEQ_DATA", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelNotFoundError, match=r"not available offline.*model='default'.*all-MiniLM-L6-v2"):
        models.load_reference("someorg/no-such-model")
    with pytest.raises(models.ModelNotFoundError, match="unknown model 'nonsense'"):
        models.load_reference("nonsense")
    with pytest.raises(models.ModelNotFoundError, match="not a model folder"):
        models.load_reference(str(tmp_path))


def test_hub_id_loads_from_its_download_folder(tmp_path, monkeypatch):
    """The same folder a download lands in is what loads offline (bge-large's path, with small weights)."""
    monkeypatch.setenv("BGEQ_DATA", str(tmp_path))
    folder = models.hub_folder("BAAI/bge-large-en-v1.5")
    assert folder == tmp_path / "models" / "BAAI--bge-large-en-v1.5"
    shutil.copytree(models._bundled_folder(), folder)
    ref = models.load_reference("BAAI/bge-large-en-v1.5")
    assert ref.model_id == "BAAI/bge-large-en-v1.5" and ref.folder == folder
    # bge's retrieval instruction is applied to queries
    assert ref.query_prompt.startswith("Represent this sentence")


def test_random_preset_path(tmp_path, monkeypatch):
    """weights='random' builds the preset architecture (a tiny stand-in config keeps the test fast)."""
    monkeypatch.setenv("BGEQ_DATA", str(tmp_path))
    tiny = dict(models.PRESETS["bge-large"])
    tiny["config"] = dict(tiny["config"], hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=128)
    monkeypatch.setitem(models.PRESETS, "bge-large", tiny)
    ref = models.load_reference("bge-large", weights="random")
    assert ref.weights == "random" and not ref.has_quality and ref.pooling == "cls"
    assert ref.model.config.hidden_size == 64 and ref.max_seq_length == 512 and ref.query_prompt is None
    again = models.load_reference("BAAI/bge-large-en-v1.5", weights="random")
    for a, b in zip(ref.model.parameters(), again.model.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())  # same seed, same weights
    with pytest.raises(models.ModelNotFoundError, match="no architecture preset"):
        models.load_reference("default", weights="random")


def test_bge_large_preset_is_the_published_shape():
    import torch
    from transformers import BertConfig, BertModel
    with torch.device("meta"):
        m = BertModel(BertConfig(**models.PRESETS["bge-large"]["config"]))
    n = sum(p.numel() for p in m.parameters())
    assert n == 335_141_888  # bge-large-en-v1.5: 335M parameters (pooler included, as published)
