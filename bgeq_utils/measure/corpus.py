"""How a user really embeds: a corpus of real lengths in length-sorted batches, and whether a text's embedding
depends on the batch it lands in.

The speed grid pads every batch to exactly one length, so its tokens/s is exact but says nothing about the
padding a real corpus costs. :func:`corpus_throughput` times whole passes over a corpus, each method in its
own length-sorted dynamic batches (the order sentence-transformers uses), side by side and interleaved, and
reports sentences/s, real tokens/s and the share of computed tokens that were padding.

Quantized runtimes can make an embedding depend on its batch: dynamic INT8 takes each activation range from
the whole batch (padding positions included), so the same text may get another embedding beside other
texts. :func:`batch_invariance` embeds texts alone, in a length-sorted batch and in a batch padded to a fixed
length, and reports the lowest cosine between the three: 1.0 means the batch does not matter.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bgeq_utils.core import uncertainty as stats
from bgeq_utils.core import vocab
from bgeq_utils.measure import metrics, speed

#: (defined in core.vocab: the comparison reads it too)
INVARIANCE_FLAG = vocab.INVARIANCE_FLAG
#: texts (and batch size) of the invariance check: eight sentence-sized texts of varied lengths already show a
#: batch-dependent method (dynamic INT8 moves nearly every text), and each text embedded alone is one forward
#: pass, which on a large model is what the check costs
INVARIANCE_BATCH = 8
#: the fixed length of the padded batch (and the truncation of all three encodings)
INVARIANCE_LENGTH = 128


@dataclass
class Batches:
    """A corpus cut into length-sorted batches, tokenized once: what one timed pass feeds the encoder."""
    features: list[dict]
    texts: int
    real_tokens: int
    padded_tokens: int
    unsorted_padded_tokens: int

    @property
    def padding_waste(self) -> float:
        """Share of the computed tokens that are padding (0: none)."""
        return 1.0 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0

    @property
    def unsorted_padding_waste(self) -> float:
        """The same share had the batches been cut in corpus order (what length sorting saves)."""
        return 1.0 - self.real_tokens / self.unsorted_padded_tokens if self.unsorted_padded_tokens else 0.0


def _lengths(encoder, texts: list[str], max_length: int | None) -> np.ndarray:
    enc = encoder.tokenize(texts, max_length=max_length)
    return enc["attention_mask"].sum(axis=1).astype(int)


def _padded(lengths: np.ndarray, batch_size: int) -> int:
    return int(sum(len(chunk) * chunk.max() for chunk in np.array_split(lengths, range(batch_size, len(lengths),
                                                                                        batch_size))))


def length_sorted_batches(encoder, texts: list[str], batch_size: int = 32, max_length: int | None = None) -> Batches:
    """Longest first, each batch padded to its own longest text (as ``Encoder.encode`` and
    sentence-transformers do)."""
    if not texts:
        raise ValueError("corpus throughput needs at least one text")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: use a positive whole number")
    lengths = _lengths(encoder, texts, max_length)
    order = np.argsort(-lengths, kind="stable")
    feats = [encoder.tokenize([texts[i] for i in order[s:s + batch_size]], max_length=max_length)
             for s in range(0, len(texts), batch_size)]
    return Batches(features=feats, texts=len(texts), real_tokens=int(lengths.sum()),
                   padded_tokens=int(sum(f["input_ids"].size for f in feats)),
                   unsorted_padded_tokens=_padded(lengths, batch_size))


def corpus_throughput(encoders: dict, texts: list[str], batch_size: int = 32, max_length: int | None = None,
                      budget: speed.Budget = speed.Budget(), baseline: str | None = None,
                      corpus: str = "") -> list[dict]:
    """Whole passes over ``texts`` by each encoder ({name: encoder}), interleaved round by round.

    One row per encoder: sentences/s and real tokens/s (median with a 95% interval over passes), the padding
    share of its length-sorted batches, and its speed-up over ``baseline`` (default: the first encoder) as
    the median of per-pass ratios with its interval."""
    if not encoders:
        raise ValueError("corpus throughput needs at least one encoder")
    names = list(encoders)
    baseline = baseline or names[0]
    if baseline not in encoders:
        raise ValueError(f"baseline {baseline!r} is not one of the encoders {names}")
    batches = {n: length_sorted_batches(e, texts, batch_size, max_length) for n, e in encoders.items()}

    def one_pass(enc, b):
        return lambda: [enc.embed_features(f) for f in b.features]

    times = speed.interleaved({n: one_pass(encoders[n], batches[n]) for n in names}, budget)
    rows = []
    for n in names:
        b, t = batches[n], stats.median(times[n])
        row = {"method": n, "corpus": corpus, "texts": b.texts, "batch_size": batch_size,
               "max_length": max_length or encoders[n].max_seq_length, "repeats": len(times[n]),
               "stopped": times.stopped, "pass_s": t.value,
               "sentences_per_s": b.texts / t.value, "tokens_per_s": b.real_tokens / t.value,
               "real_tokens": b.real_tokens, "padded_tokens": b.padded_tokens,
               "padding_waste": b.padding_waste, "unsorted_padding_waste": b.unsorted_padding_waste}
        if t.has_interval:
            row["sentences_per_s_low"], row["sentences_per_s_high"] = b.texts / t.high, b.texts / t.low
        row["vs_baseline"] = {"baseline": baseline, **(
            stats.Estimate.exact(1.0, "the baseline itself") if n == baseline
            else stats.window_ratio(times[baseline], times[n])).to_dict()}
        rows.append(row)
    return rows


def batch_invariance(encoder, texts: list[str], batch_size: int = INVARIANCE_BATCH,
                     max_length: int = INVARIANCE_LENGTH) -> dict:
    """Lowest and mean cosine between each text embedded alone and the same text inside (a) a length-sorted
    batch of ``batch_size`` (padded to its longest text) and (b) a batch padded to ``max_length`` tokens.

    Texts of varied lengths make the padding differ; all three encodings truncate at ``max_length``."""
    texts = list(texts)[:batch_size]
    if len(texts) < 2:
        raise ValueError("batch invariance needs at least two texts")
    alone = np.concatenate([encoder.embed_features(encoder.tokenize([t], max_length=max_length)) for t in texts])
    lengths = _lengths(encoder, texts, max_length)
    order = np.argsort(-lengths, kind="stable")
    in_sorted = np.empty_like(alone)
    in_sorted[order] = encoder.embed_features(encoder.tokenize([texts[i] for i in order], max_length=max_length))
    in_padded = encoder.embed_features(encoder.tokenize(texts, max_length=max_length, pad_to_max=True))
    out = {"texts": len(texts), "max_length": int(max_length),
           "token_lengths": [int(lengths.min()), int(lengths.max())],
           "how": f"each text alone vs in a length-sorted batch of {len(texts)} and in a batch padded to "
                  f"{max_length} tokens; cosine of the normalized embeddings"}
    for name, other in (("sorted", in_sorted), ("padded", in_padded)):
        cos = metrics.cosine_samples(alone, other)
        out[f"cos_min_{name}"] = float(cos.min())
        out[f"cos_mean_{name}"] = float(cos.mean())
    out["cos_min"] = min(out["cos_min_sorted"], out["cos_min_padded"])
    out["drifts"] = bool(out["cos_min"] < INVARIANCE_FLAG)
    return out
