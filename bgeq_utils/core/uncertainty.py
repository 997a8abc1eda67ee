"""Uncertainty of every figure, and the verdict it supports: holds / fails / inconclusive.

Intervals are 95% and come from scipy.stats: distribution-free intervals for medians of timing
repeats (``quantile_test``), paired bootstrap intervals for quality and fidelity (``bootstrap``), paired
randomization tests for quality deltas (``permutation_test``). Resampling uses a fixed seed, so the same
Results always give the same intervals. An interval that is not a 95% interval says so: a range of a few
repeats (:func:`spread`), a zero-width one (:meth:`Estimate.fmt`), a simultaneous one (:func:`simultaneous`).
Many verdicts at once: Holm per claim (:func:`adjust_family`).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0
#: fewest repeats for which the distribution-free 95% interval of a median exists
MIN_REPEATS_FOR_CI = 6

HOLDS, INCONCLUSIVE, NOT_MEASURED = "holds", "inconclusive", "not measured"
FAILS_BETTER, FAILS_WORSE, FAILS = "fails (better than claimed)", "fails (worse than claimed)", "fails"
#: most severe first: a precision-level verdict is the most severe verdict of its methods
SEVERITY = (FAILS_WORSE, FAILS, FAILS_BETTER, INCONCLUSIVE, HOLDS)
#: the words :func:`spread` writes into ``how``: an interval that is a range of repeats, not a 95% interval
RANGE_MARK = "interval = their range"
#: family-wise error rate of one claim's judgments (Holm, see :func:`holm`)
FAMILY_ALPHA = 0.05
#: an interval narrower than this (relative to its value, at least 1) has zero width
ZERO_WIDTH = 1e-9


@dataclass(frozen=True)
class Estimate:
    """A measured value with its 95% interval (``low``/``high``; equal to the value when exact)."""

    value: float
    low: float | None = None
    high: float | None = None
    n: int | None = None
    how: str = ""
    p_value: float | None = None

    @classmethod
    def exact(cls, value: float, how: str = "exact") -> "Estimate":
        return cls(float(value), float(value), float(value), None, how)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Estimate | None":
        if not d or d.get("value") is None:
            return None
        return cls(**{k: d[k] for k in ("value", "low", "high", "n", "how", "p_value") if d.get(k) is not None})

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None and math.isfinite(self.low) \
            and math.isfinite(self.high)

    def scaled(self, factor: float, how: str | None = None) -> "Estimate":
        lo, hi = (self.low * factor, self.high * factor) if self.has_interval else (None, None)
        if factor < 0 and lo is not None:
            lo, hi = hi, lo
        return Estimate(self.value * factor, lo, hi, self.n, how or self.how, self.p_value)

    @property
    def is_exact(self) -> bool:
        """Exact by nature (bytes counted, a dtype read): its zero-width interval is the truth, not a degenerate
        resample. Marked by a ``how`` that starts with "exact" (:meth:`exact`)."""
        return self.how.startswith("exact")

    @property
    def is_range(self) -> bool:
        """The interval is the range of a few repeats (:func:`spread`), not a 95% interval."""
        return RANGE_MARK in self.how

    @property
    def zero_width(self) -> bool:
        """No width beyond rounding (a resample of a constant statistic gives bounds that differ in the last bits)."""
        return self.has_interval and self.high - self.low <= ZERO_WIDTH * max(1.0, abs(self.value))

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        """``value [low, high]``; a zero-width interval is shown as such (``[exact]`` for a quantity exact by
        nature, ``[0 width]`` otherwise: a degenerate resample, never a 95% interval), a range as ``range``."""
        v = f"{self.value:.{digits}f}{unit}"
        if not self.has_interval:
            return v
        if self.zero_width:
            return f"{v} [exact]" if self.is_exact else f"{v} [0 width]"
        kind = "range " if self.is_range else ""
        return f"{v} [{kind}{self.low:.{digits}f}, {self.high:.{digits}f}]"


# --- timing ---------------------------------------------------------------------------------------
def median(samples, how: str = "median") -> Estimate:
    """Median with its distribution-free 95% interval (order statistics; none below 6 samples)."""
    x = np.asarray(samples, float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        raise ValueError("no finite samples")
    med = float(np.median(x))
    lo = hi = None
    if len(x) >= MIN_REPEATS_FOR_CI:
        ci = stats.quantile_test(x, q=med, p=0.5).confidence_interval(CONFIDENCE)
        lo, hi = float(ci.low), float(ci.high)
    return Estimate(med, lo, hi, len(x), f"{how} of {len(x)} repeats, distribution-free 95% CI"
                    if lo is not None else f"{how} of {len(x)} repeats (too few for a 95% CI)")


#: contiguous blocks of rounds a window's ratio interval resamples (see :func:`window_ratio`)
BLOCKS = 3


def paired_ratio(numerator_times, denominator_times) -> Estimate:
    """Speed-up of B over A from interleaved rounds: the median of per-round ``time_A / time_B`` ratios.

    ``numerator_times`` are the baseline's seconds per call, ``denominator_times`` the method's, paired
    by round (timed next to each other), so slow drifts of a shared machine cancel."""
    a, b = np.asarray(numerator_times, float), np.asarray(denominator_times, float)
    if a.shape != b.shape:
        raise ValueError(f"paired timings differ in length: {a.shape} vs {b.shape}")
    e = median(a / b, how="median of per-round ratios")
    return e


def block_interval(values, blocks: int = BLOCKS) -> tuple[float, float] | None:
    """95% interval of the typical value of positive ``values`` (in time order) from their ``blocks``
    contiguous blocks: Student's t over the blocks' log medians. Rounds next to each other share the machine's
    state (other work, clocks, caches); an interval over single rounds treats a state that changes from block
    to block as if it averaged out, and misses a second window's figure far more often than 5%. With few
    blocks t is wide, as it must be. None below two values a block."""
    x = np.asarray(values, float)
    if blocks < 2 or len(x) < 2 * blocks or np.any(x <= 0):
        return None
    logs = np.log([np.median(p) for p in np.array_split(x, blocks)])
    centre, sd = float(logs.mean()), float(logs.std(ddof=1))
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, blocks - 1)) * sd / math.sqrt(blocks)
    return float(math.exp(centre - half)), float(math.exp(centre + half))


def window_ratio(numerator_times, denominator_times, blocks: int = BLOCKS) -> Estimate:
    """:func:`paired_ratio` as a window reports it: the same median, with the wider of the distribution-free
    interval over rounds and the blocks' (:func:`block_interval`), so that the interval also holds
    when the machine's state drifts within the window."""
    e = paired_ratio(numerator_times, denominator_times)
    r = np.asarray(numerator_times, float) / np.asarray(denominator_times, float)
    b = block_interval(r, blocks)
    if b is None or not e.has_interval:
        return e
    return Estimate(e.value, min(e.low, b[0]), max(e.high, b[1]), e.n,
                    f"median of {e.n} per-round ratios; 95% CI: the wider of distribution-free and Student's t over "
                    f"{blocks} contiguous blocks of rounds", e.p_value)


def simultaneous(k: int, confidence: float = CONFIDENCE) -> float:
    """The per-interval level at which ``k`` intervals cover their values all at once with probability at
    least ``confidence`` (Bonferroni). The worst of k losses lies in ``[max of lows, max of highs]`` whenever
    every interval covers, so that interval is simultaneous at ``confidence``: taken from 95% intervals
    instead, it covers 0.89 for four equal losses over 48 queries in simulation (0.96 at Bonferroni's level)."""
    if k < 1:
        raise ValueError(f"k={k}: a simultaneous interval needs at least one interval")
    return 1 - (1 - confidence) / k


def relative_halfwidth(e: Estimate) -> float:
    if not e.has_interval or not e.value:
        return math.inf
    return (e.high - e.low) / 2 / abs(e.value)


# --- means and paired deltas -----------------------------------------------------------------------
def _bootstrap(data, statistic, paired: bool, vectorized: bool = True, confidence: float = CONFIDENCE):
    rng = np.random.default_rng(SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples are handled below
        res = stats.bootstrap(data, statistic, paired=paired, vectorized=vectorized, confidence_level=confidence,
                              n_resamples=N_RESAMPLES, method="BCa", random_state=rng)
        lo, hi = res.confidence_interval
        if not (np.isfinite(lo) and np.isfinite(hi)):
            res = stats.bootstrap(data, statistic, paired=paired, vectorized=vectorized,
                                  confidence_level=confidence, n_resamples=N_RESAMPLES, method="percentile",
                                  random_state=np.random.default_rng(SEED))
            lo, hi = res.confidence_interval
    return float(lo), float(hi)


def mean(values, unit_name: str = "items") -> Estimate:
    """Mean with a bootstrap (BCa) 95% interval over the items."""
    x = np.asarray(values, float)
    m = float(x.mean())
    if len(x) < 2 or np.all(x == x[0]):
        return Estimate(m, m, m, len(x), f"mean of {len(x)} {unit_name} (all equal)")
    lo, hi = _bootstrap((x,), lambda v, axis: v.mean(axis=axis), paired=False)
    return Estimate(m, lo, hi, len(x), f"mean of {len(x)} {unit_name}, bootstrap 95% CI")


def relative_loss(method_values, baseline_values, unit_name: str = "queries", confidence: float = CONFIDENCE,
                  with_p: bool = True) -> Estimate:
    """Loss in % of the baseline, ``100 * (1 - mean(method) / mean(baseline))``, paired by item.

    Interval: paired bootstrap (BCa) over the items, at ``confidence`` (a simultaneous interval asks for more
    than 95% per metric). p-value: paired randomization test of the mean difference
    (``scipy.stats.permutation_test``, permutation within each item); skipped when ``with_p`` is False."""
    a, b = np.asarray(method_values, float), np.asarray(baseline_values, float)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.shape} vs {b.shape}")
    n = len(a)
    if n == 0 or b.mean() == 0:
        raise ValueError("no items, or a baseline mean of 0: a relative loss is undefined")
    loss = float(100.0 * (1.0 - a.mean() / b.mean()))
    if np.array_equal(a, b):
        return Estimate(0.0, 0.0, 0.0, n, f"identical on all {n} {unit_name}", 1.0)

    def stat(x, y, axis):
        return 100.0 * (1.0 - x.mean(axis=axis) / y.mean(axis=axis))

    lo, hi = _bootstrap((a, b), stat, paired=True, confidence=confidence)
    p = _paired_p(a, b) if with_p else None
    return Estimate(loss, lo, hi, n, f"paired bootstrap {_pct(confidence)} CI over {n} {unit_name}"
                    + ("; paired randomization test" if with_p else ""), p)


def _pct(confidence: float) -> str:
    return f"{100 * confidence:.4g}%"


def _paired_p(a, b) -> float:
    res = stats.permutation_test((a, b), lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis),
                                 permutation_type="samples", vectorized=True, n_resamples=9999,
                                 alternative="two-sided", random_state=np.random.default_rng(SEED))
    return float(res.pvalue)


# --- correlations over pairs of documents ------------------------------------------------------------
def _pair_lookup(clusters: np.ndarray) -> tuple[np.ndarray, int]:
    """For pairs given by two cluster (document) ids each: a matrix doc x doc -> pair index (-1: none)."""
    n = int(clusters.max()) + 1
    look = -np.ones((n, n), int)
    for k, (i, j) in enumerate(clusters):
        look[i, j] = look[j, i] = k
    return look, n


def _resampled_pairs(look: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Pair indices among a resample of documents (with repeats), skipping a document paired with itself."""
    u, v = np.triu_indices(len(docs), 1)
    k = look[docs[u], docs[v]]
    return k[k >= 0]


def _pearson(x, y) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def _ranks(x) -> np.ndarray:
    """Average ranks from 1, ties sharing their mean: scipy.stats.rankdata's 'average' method and algorithm,
    without its per-call overhead (a bootstrap of a Spearman correlation ranks hundreds of thousands of times)."""
    x = np.asarray(x)
    sorter = np.argsort(x, kind="mergesort")
    inv = np.empty(sorter.size, np.intp)
    inv[sorter] = np.arange(sorter.size, dtype=np.intp)
    xs = x[sorter]
    obs = np.r_[True, xs[1:] != xs[:-1]]
    dense = obs.cumsum()[inv]
    count = np.r_[np.nonzero(obs)[0], len(obs)]
    return 0.5 * (count[dense] + count[dense - 1] + 1)


def _spearman(x, y) -> float:
    """Spearman's rho as the Pearson correlation of average ranks (= scipy.stats.spearmanr, faster)."""
    return _pearson(_ranks(x), _ranks(y))


def correlation_loss(method_cos, baseline_cos, gold, clusters=None, kind: str = "spearman",
                     confidence: float = CONFIDENCE, with_p: bool = True) -> Estimate:
    """Loss in % of the baseline's correlation with human scores (Pearson or Spearman), paired.

    When pairs are formed from a set of documents (``clusters``: two document ids per pair), pairs
    sharing a document are not independent: the bootstrap resamples documents and keeps the pairs among
    them (a cluster bootstrap); otherwise it resamples pairs. p-value: randomization test swapping the two
    methods' scores within each pair."""
    a, b, g = (np.asarray(x, float) for x in (method_cos, baseline_cos, gold))
    corr = {"spearman": _spearman, "pearson": _pearson}[kind]
    # the same figures, each ranking done once: Pearson of ranks with the gold scores' ranks reused
    rank = _ranks if kind == "spearman" else np.asarray

    def both(k):
        gk = rank(g[k])
        return _pearson(rank(a[k]), gk), _pearson(rank(b[k]), gk)

    ra, rb = corr(a, g), corr(b, g)
    loss = float(100.0 * (1.0 - ra / rb))
    if np.array_equal(a, b):
        return Estimate(0.0, 0.0, 0.0, len(a), f"identical on all {len(a)} pairs", 1.0)
    if clusters is not None:
        cl = np.asarray(clusters, int)
        look, ndocs = _pair_lookup(cl)

        def stat(docs):
            x, y = both(_resampled_pairs(look, np.asarray(docs, int)))
            return 100.0 * (1.0 - x / y)

        data, unit = (np.arange(ndocs),), f"{ndocs} documents (cluster bootstrap of {len(a)} pairs)"
    else:
        def stat(idx):
            x, y = both(np.asarray(idx, int))
            return 100.0 * (1.0 - x / y)

        data, unit = (np.arange(len(a)),), f"{len(a)} pairs"
    rng = np.random.default_rng(SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(data, stat, vectorized=False, confidence_level=confidence, n_resamples=1000,
                              method="percentile", random_state=rng)
    lo, hi = (float(x) for x in res.confidence_interval)
    if not with_p:
        return Estimate(loss, lo, hi, len(a), f"bootstrap {_pct(confidence)} CI over {unit}")
    rg = rank(g)
    perm = stats.permutation_test((a, b), lambda x, y: _pearson(rank(x), rg) - _pearson(rank(y), rg),
                                  permutation_type="samples",
                                  vectorized=False, n_resamples=999, random_state=np.random.default_rng(SEED))
    return Estimate(loss, lo, hi, len(a), f"bootstrap {_pct(confidence)} CI over {unit}; paired randomization test",
                    float(perm.pvalue))


def similarity_correlation(emb_a: np.ndarray, emb_b: np.ndarray) -> Estimate:
    """Pearson correlation between all pairwise cosine similarities of two embeddings of the same texts,
    with a cluster bootstrap over texts (pairs sharing a text are not independent)."""
    a = emb_a / np.linalg.norm(emb_a, axis=1, keepdims=True)
    b = emb_b / np.clip(np.linalg.norm(emb_b, axis=1, keepdims=True), 1e-12, None)
    sa, sb = a @ a.T, b @ b.T
    n = len(a)
    iu = np.triu_indices(n, 1)
    r = float(np.corrcoef(sa[iu], sb[iu])[0, 1])

    def stat(docs):
        docs = np.asarray(docs, int)
        u, v = np.triu_indices(len(docs), 1)
        keep = docs[u] != docs[v]
        x, y = sa[docs[u][keep], docs[v][keep]], sb[docs[u][keep], docs[v][keep]]
        return np.corrcoef(x, y)[0, 1]

    if np.allclose(sa, sb, atol=0, rtol=0):
        return Estimate(r, r, r, n, f"identical similarities over {n} texts")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((np.arange(n),), stat, vectorized=False, confidence_level=CONFIDENCE,
                              n_resamples=1000, method="percentile", random_state=np.random.default_rng(SEED))
    return Estimate(r, float(res.confidence_interval.low), float(res.confidence_interval.high), n,
                    f"cluster bootstrap 95% CI over {n} texts")


# --- repeated single measurements -----------------------------------------------------------------
def spread(samples, unit_name: str = "fresh processes") -> Estimate:
    """A few repeats of a costly measurement: the median with an interval that says what it is.

    From ``MIN_REPEATS_FOR_CI`` repeats on, the distribution-free 95% interval of the median (as for timings).
    Below that, the range of the repeats, marked as a range (:data:`RANGE_MARK`): the range of two repeats
    covers the median only half the time (``1 - 2 * 0.5**n``), so :func:`verdict` lets it decide only
    against a bound farther from the median than the range is wide. One repeat: no interval."""
    x = np.asarray(samples, float)
    if len(x) < 2:
        return Estimate(float(x[0]), None, None, 1, f"one {unit_name[:-2] if unit_name.endswith('es') else unit_name}"
                        ", no interval")
    if len(x) >= MIN_REPEATS_FOR_CI:
        ci = stats.quantile_test(x, q=float(np.median(x)), p=0.5).confidence_interval(CONFIDENCE)
        return Estimate(float(np.median(x)), float(ci.low), float(ci.high), len(x),
                        f"median of {len(x)} {unit_name}, distribution-free 95% CI")
    return Estimate(float(np.median(x)), float(x.min()), float(x.max()), len(x),
                    f"median of {len(x)} {unit_name}, {RANGE_MARK} (not a 95% interval)")


# --- combining ----------------------------------------------------------------------------------------
def _combined_how(a: Estimate, b: Estimate, how: str) -> str:
    """What an interval combined from two is: a range if either is a range, exact if both are exact."""
    if a.is_range or b.is_range:
        return f"{how}; of a range: {RANGE_MARK} (not a 95% interval)"
    if a.is_exact and b.is_exact:
        return f"exact: {how}"
    return how


def ratio_of(a: Estimate, b: Estimate, how: str | None = None) -> Estimate:
    """a / b with a conservative interval from the two intervals (their extremes)."""
    value = a.value / b.value
    if a.has_interval and b.has_interval and b.low > 0 and b.high > 0:
        lo, hi = a.low / b.high, a.high / b.low
    else:
        lo = hi = None
    return Estimate(value, lo, hi, None, _combined_how(a, b, how or "ratio; interval from the two intervals' extremes"))


def difference(a: Estimate, b: Estimate) -> Estimate:
    """a - b with a conservative interval from the two intervals."""
    if a.has_interval and b.has_interval:
        lo, hi = a.low - b.high, a.high - b.low
    else:
        lo = hi = None
    return Estimate(a.value - b.value, lo, hi, None,
                    _combined_how(a, b, "difference; interval from the two intervals' extremes"))


# --- verdicts -------------------------------------------------------------------------------------
def verdict(e: Estimate | None, low: float | None, high: float | None, better: str | None = None
            ) -> tuple[str, str]:
    """(verdict, text) of an estimate against a claimed range [low, high] (either bound may be None).

    holds: the whole 95% interval lies inside; fails: it lies wholly outside (the text says on which side
    and whether that is better or worse than claimed, given which direction is ``better``);
    inconclusive: it straddles a bound, or there is no interval."""
    if e is None:
        return NOT_MEASURED, "not measured"
    if not e.has_interval:
        return INCONCLUSIVE, f"{e.value:.4g} has no interval ({e.how or 'too few repeats'})"
    if e.is_range:
        return _range_verdict(e, low, high, better)
    if e.zero_width and not e.is_exact:
        return INCONCLUSIVE, (f"{e.value:.4g} has a zero-width interval ({e.how or 'degenerate'}): a degenerate "
                              "interval is not a 95% interval and decides nothing")
    eps = 1e-12
    inside = (low is None or e.low >= low - eps) and (high is None or e.high <= high + eps)
    if inside:
        return HOLDS, "interval inside the claimed range"
    below = low is not None and e.high < low - eps
    above = high is not None and e.low > high + eps
    if not (below or above):
        bound = low if (low is not None and e.low < low - eps) else high
        return INCONCLUSIVE, f"interval straddles the claimed bound {bound:g}"
    side = "below" if below else "above"
    bound = low if below else high
    gap = (bound - e.high) if below else (e.low - bound)
    if better in ("higher", "lower"):
        good = (side == "above") == (better == "higher")
        return (FAILS_BETTER if good else FAILS_WORSE,
                f"interval wholly {side} the claimed {'minimum' if below else 'maximum'} {bound:g} "
                f"(by at least {gap:.3g})")
    return FAILS, f"interval wholly {side} the claimed bound {bound:g} (by at least {gap:.3g})"


def _range_verdict(e: Estimate, low, high, better) -> tuple[str, str]:
    """A range of a few repeats is a point with a spread: it decides only against a bound farther from the
    median than the range is wide (the median +- the width), and never when the repeats agree exactly."""
    width = e.high - e.low
    n = f"{e.n} " if e.n else ""
    if width <= 0:
        return INCONCLUSIVE, (f"{e.value:.4g}: its {n}repeats agree exactly; a range of {n}repeats is not an "
                              "interval and decides nothing (more repeats give a distribution-free one)")
    v, why = verdict(Estimate(e.value, e.value - width, e.value + width, e.n, "range rule"), low, high, better)
    return v, f"range of {n}repeats, read as the median +- its width {width:.3g}: {why}"


def judgment_p(e: Estimate | None, low: float | None, high: float | None, v: str) -> float | None:
    """The p-value of a holds/fails judgment, for a multiple-testing adjustment; None for a judgment that is
    not a test (a range of repeats: :func:`_range_verdict`), 1 for one that decided nothing.

    Read from the 95% interval with a normal approximation on each side (each half-width is 1.96 standard
    errors), scaled so that p < 0.05 exactly when the unadjusted interval decides: for **holds**, the larger of
    the two one-sided tests that the value lies inside each bound (two one-sided tests), doubled; for
    **fails**, the one-sided test that it lies beyond the bound it crossed, doubled. An exact quantity's
    judgment is certain (p = 0)."""
    if e is None or v in (INCONCLUSIVE, NOT_MEASURED):
        return 1.0
    if e.is_range:
        return None
    if e.is_exact or e.zero_width:
        return 0.0
    z = float(stats.norm.ppf((1 + CONFIDENCE) / 2))
    s_lo, s_hi = (e.value - e.low) / z, (e.high - e.value) / z
    s_lo, s_hi = (s_lo or s_hi), (s_hi or s_lo)        # a side of zero width borrows the other's

    def above(b):     # p of "the true value lies above b" being wrong
        return float(stats.norm.sf((e.value - b) / s_lo)) if s_lo > 0 else float(e.value <= b)

    def below(b):
        return float(stats.norm.sf((b - e.value) / s_hi)) if s_hi > 0 else float(e.value >= b)

    if v == HOLDS:
        ps = ([above(low)] if low is not None else []) + ([below(high)] if high is not None else [])
        return min(1.0, 2 * max(ps)) if ps else 0.0
    if low is not None and e.high < low:
        return min(1.0, 2 * below(low))
    return min(1.0, 2 * above(high)) if high is not None else 1.0


def holm(p_values, alpha: float = FAMILY_ALPHA) -> tuple[list[bool], list[float | None]]:
    """Holm's step-down adjustment (as ``statsmodels.stats.multitest.multipletests(method="holm")``): which
    tests are rejected at family-wise level ``alpha``, and the adjusted p-values. ``None`` entries are no
    test: left out of the family, never rejected, adjusted p None."""
    idx = [i for i, p in enumerate(p_values) if p is not None]
    m = len(idx)
    order = sorted(idx, key=lambda i: p_values[i])
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return [a is not None and a <= alpha for a in adjusted], adjusted


def adjust_family(judgments, alpha: float = FAMILY_ALPHA) -> list[tuple[str, str, float | None]]:
    """One claim's judgments ``[(estimate, low, high, verdict, text), ...]`` after Holm's adjustment at
    family-wise ``alpha``: a holds/fails whose adjusted p-value exceeds ``alpha`` becomes inconclusive, its
    text saying so. Returns ``[(verdict, text, adjusted p), ...]`` in order.

    Why Holm on p-values read from the intervals (:func:`judgment_p`) rather than Bonferroni-widened intervals:
    at the same family-wise rate Holm rejects everything Bonferroni does and more, and the p-values come from
    the intervals already computed (no second resampling). With one judgment it is the unadjusted rule."""
    ps = [judgment_p(e, lo, hi, v) for e, lo, hi, v, _ in judgments]
    rejected, adjusted = holm(ps, alpha)
    m = sum(p is not None for p in ps)
    out = []
    for (e, lo, hi, v, why), ok, a in zip(judgments, rejected, adjusted):
        if v in (HOLDS, FAILS, FAILS_BETTER, FAILS_WORSE) and a is not None and not ok:
            out.append((INCONCLUSIVE, f"{v} at 95% alone, not after Holm's adjustment over {m} judgments "
                                      f"(adjusted p = {a:.3g} > {alpha:g}); {why}", a))
        else:
            out.append((v, why, a))
    return out


def combine(verdicts) -> str:
    """The verdict of a claim about a precision from its methods' verdicts: the most severe one
    (a general claim holds only if it holds for every method measured)."""
    vs = [v for v in verdicts if v != NOT_MEASURED]
    if not vs:
        return NOT_MEASURED
    for v in SEVERITY:
        if v in vs:
            return v
    return vs[0]


def _missing(x) -> bool:
    """None, NaN or pandas' NA (whose truth value is undefined)."""
    if x is None:
        return True
    try:
        return bool(x != x)
    except TypeError:
        return True


def from_row(row, name: str) -> "Estimate | None":
    """The Estimate a table row holds under ``name`` (``name``, ``name_lo``/``_hi``, ``_p``, ``_how`` columns):
    the measured table's columns read back, by the comparison and by the studies that read it."""
    v = row.get(name) if hasattr(row, "get") else row[name]
    if _missing(v):
        return None
    lo, hi = row.get(f"{name}_lo"), row.get(f"{name}_hi")
    ok = lo is not None and hi is not None and not (_missing(lo) or _missing(hi))
    p, how = row.get(f"{name}_p"), row.get(f"{name}_how")
    return Estimate(float(v), float(lo) if ok else None, float(hi) if ok else None,
                    p_value=None if p is None or _missing(p) else float(p),
                    how=how if isinstance(how, str) else "")
