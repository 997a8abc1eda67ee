"""Shared fixtures."""
from __future__ import annotations

import pytest

# BGEQ_OUTPUTS (a temporary folder) and HF_HUB_OFFLINE are set by the conftest.py at the repository root.


@pytest.fixture(scope="session")
def reference():
    from bgeq_utils.inputs import models
    return models.load_reference("default")


@pytest.fixture(scope="session")
def lee():
    from bgeq_utils.inputs import data
    return data.load_evalset("lee")


@pytest.fixture(scope="session")
def lee_small():
    from bgeq_utils.inputs import data
    return data.load_evalset("lee", max_docs=20)


@pytest.fixture(scope="session")
def reference_emb(reference, lee):
    from bgeq_utils.measure import pipeline
    return pipeline.reference_embeddings(reference, lee, run="pytest")


@pytest.fixture
def tiny_bench():
    """A speed/memory config small enough for tests (correctness only, figures are not asserted)."""
    from bgeq_utils.measure.pipeline import BenchConfig
    return BenchConfig(batch_sizes=(2,), seq_lens=(16,), warmup=0, min_repeats=2, max_repeats=2, seconds=2,
                       memory=False, baselines=False)


@pytest.fixture(scope="session")
def texts(lee_small):
    """Twelve evaluation documents: enough for a fidelity check, fast on two cores."""
    return list(lee_small.corpus.values())[:12]


@pytest.fixture(scope="session")
def fp32_emb(reference, texts):
    from bgeq_utils import methods
    return methods.build("fp32", reference).encode(texts, batch_size=6)


@pytest.fixture(scope="session")
def fp32_disk(reference):
    from bgeq_utils import methods
    return methods.build("fp32", reference).size_on_disk()


@pytest.fixture(scope="session")
def small_docs(lee_small):
    """The twenty documents of lee_small."""
    return list(lee_small.corpus.values())


@pytest.fixture(scope="session")
def fp32_small_emb(reference, small_docs):
    from bgeq_utils import methods
    return methods.build("fp32", reference).encode(small_docs)
