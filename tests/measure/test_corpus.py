"""Corpus throughput in length-sorted batches, and batch invariance of an embedding."""
import numpy as np
import pytest

from bgeq_utils import methods
from bgeq_utils.inputs import data
from bgeq_utils.measure import corpus
from bgeq_utils.measure import speed as bench

FAST = bench.Budget(warmup=0, min_repeats=2, max_repeats=2, seconds=5)


@pytest.fixture(scope="module")
def fp32(reference):
    return methods.build("fp32", reference)


def test_sentence_texts_vary_in_length_and_background_corpus_is_the_file_in_order():
    s = data.sentence_texts(32)
    lengths = [len(t.split()) for t in s]
    assert len(s) == 32 and min(lengths) > 5 and max(lengths) > 2 * min(lengths)
    docs = data.background_corpus()
    assert len(docs) == 300 and data.background_corpus(5) == docs[:5]


def test_length_sorted_batches_count_every_token_and_pad_less_than_corpus_order(fp32):
    texts = data.sentence_texts(20)
    b = corpus.length_sorted_batches(fp32, texts, batch_size=4, max_length=64)
    lengths = [int(fp32.tokenize([t], max_length=64)["attention_mask"].sum()) for t in texts]
    assert b.texts == 20 and len(b.features) == 5
    assert b.real_tokens == sum(lengths)
    assert sum(int(f["attention_mask"].sum()) for f in b.features) == b.real_tokens
    assert b.padded_tokens == sum(f["input_ids"].size for f in b.features)
    # each batch is padded to its own longest text, longest first
    widths = [f["input_ids"].shape[1] for f in b.features]
    assert widths == sorted(widths, reverse=True)
    assert 0 <= b.padding_waste <= b.unsorted_padding_waste < 1


def test_length_sorted_batches_refuse_bad_input(fp32):
    with pytest.raises(ValueError, match="at least one text"):
        corpus.length_sorted_batches(fp32, [], 4)
    with pytest.raises(ValueError, match="batch_size=0"):
        corpus.length_sorted_batches(fp32, ["a b c"], 0)


def test_corpus_throughput_rows_and_ratio_to_itself(fp32):
    texts = data.background_corpus(6)
    rows = corpus.corpus_throughput({"fp32": fp32, "again": fp32}, texts, batch_size=4, max_length=64,
                                    budget=FAST, corpus="lee_background")
    assert [r["method"] for r in rows] == ["fp32", "again"]
    r = rows[0]
    assert r["texts"] == 6 and r["repeats"] == 2 and r["sentences_per_s"] > 0
    assert r["tokens_per_s"] == pytest.approx(r["real_tokens"] / r["pass_s"])
    assert r["vs_baseline"]["value"] == 1.0 and rows[1]["vs_baseline"]["baseline"] == "fp32"
    with pytest.raises(ValueError, match="baseline 'nope'"):
        corpus.corpus_throughput({"fp32": fp32}, texts, baseline="nope")


def test_fp32_is_batch_invariant(fp32):
    inv = corpus.batch_invariance(fp32, data.sentence_texts(8), batch_size=8, max_length=64)
    assert inv["texts"] == 8 and inv["token_lengths"][0] < inv["token_lengths"][1]
    assert inv["cos_min"] > 0.99999 and not inv["drifts"]


class BatchDependent:
    """An encoder whose embedding of a text shifts with the batch's mean: what a per-batch activation range
    does to a dynamically quantized model."""
    def __init__(self, inner):
        self.inner, self.max_seq_length = inner, inner.max_seq_length

    def tokenize(self, *a, **k):
        return self.inner.tokenize(*a, **k)

    def embed_features(self, features):
        e = self.inner.embed_features(features)
        e = e + 0.3 * e.mean(axis=0, keepdims=True) * (len(e) > 1)
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_a_batch_dependent_encoder_is_flagged(fp32):
    inv = corpus.batch_invariance(BatchDependent(fp32), data.sentence_texts(8), batch_size=8, max_length=64)
    assert inv["drifts"] and inv["cos_min"] < corpus.INVARIANCE_FLAG
    with pytest.raises(ValueError, match="at least two"):
        corpus.batch_invariance(fp32, ["one"])
