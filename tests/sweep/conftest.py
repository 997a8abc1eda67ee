"""Fixtures of the sweep tests: a tiny second model, grid files, clients."""
from __future__ import annotations

import shutil
import textwrap

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A second cheap model: a randomly initialised 2-layer BERT (hidden 32) with the bundled model's tokenizer,
    saved as a folder that load_reference takes as a pretrained model (it has quality figures, meaningless ones)."""
    import torch
    from transformers import BertConfig, BertModel

    from bgeq_utils.inputs.models import _bundled_folder
    folder = tmp_path_factory.mktemp("models") / "tiny-bert"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (_bundled_folder() / name).is_file():
            shutil.copy2(_bundled_folder() / name, folder / name)
    return str(folder)


@pytest.fixture
def write_grid(tmp_path):
    """Write a grid file from an indented YAML text; returns its path."""
    def write(text: str, name: str = "grid.yaml"):
        p = tmp_path / name
        p.write_text(textwrap.dedent(text).lstrip())
        return p
    return write


@pytest.fixture(scope="session")
def local_client():
    """The sweep's own local cluster: 2 one-thread worker processes, the first holding `bench`."""
    from distributed import Client

    from bgeq_utils.sweep import cluster
    c = cluster.local_cluster(workers=2, processes=True)
    client = Client(c)
    yield client
    client.close()
    c.close()


@pytest.fixture(scope="session")
def inprocess_client():
    """Client(processes=False): one worker of two threads in this process, holding `bench`."""
    from distributed import Client
    client = Client(processes=False, n_workers=1, threads_per_worker=2, resources={"bench": 1},
                    dashboard_address=None)
    yield client
    client.close()
