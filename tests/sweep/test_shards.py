"""A corpus encoded in shards on the workers and merged in order equals one process's embeddings, exactly."""
from __future__ import annotations

import numpy as np
import pytest

from bgeq_utils import methods
from bgeq_utils.inputs import models
from bgeq_utils.sweep import shards


def test_shards_are_whole_batches_of_the_longest_first_order():
    assert shards.plan(50, 10, 4) == [(0, 12), (12, 24), (24, 36), (36, 48), (48, 50)]
    assert shards.plan(0, 10, 4) == [] and shards.plan(3, 100, 32) == [(0, 3)]
    assert list(shards.order(["ab", "abcd", "x", "wxyz"])) == [1, 3, 0, 2]      # ties keep input order
    with pytest.raises(ValueError, match="shard_size=0"):
        shards.plan(5, 0, 4)


def test_sharded_encoding_equals_one_process_exactly(inprocess_client, tiny_model, lee):
    """Exact equality, not closeness: shards cut from the encoder's own longest-first order at whole batches hold
    the batches one process forms (cut in input order instead, the padding changes and so do the last bits)."""
    texts = list(lee.corpus.values())                       # 50 documents -> 5 shards of 12
    encoder = methods.build("fp32", models.load_reference(tiny_model))
    merged = shards.encode_sharded(inprocess_client, texts, model=tiny_model, shard_size=10, batch_size=4)
    assert merged.dtype == np.float32 and np.array_equal(merged, encoder.encode(texts, batch_size=4))
    prompt = "query: "
    assert np.array_equal(shards.encode_sharded(inprocess_client, texts[:9], model=tiny_model, shard_size=2,
                                                batch_size=2, prompt=prompt),
                          encoder.encode(texts[:9], batch_size=2, prompt=prompt))
