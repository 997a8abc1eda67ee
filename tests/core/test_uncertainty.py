"""Intervals and verdicts: the statistics every figure and claim rests on."""
import numpy as np
import pytest
from scipy import stats

from bgeq_utils.core import uncertainty as U
from bgeq_utils.core.uncertainty import Estimate


def test_median_interval_needs_six_repeats_and_brackets_the_median():
    assert not U.median([1.0, 2, 3, 4, 5]).has_interval
    e = U.median(np.arange(10.0))
    assert e.has_interval and e.low <= e.value <= e.high
    assert (e.low, e.high) == (1.0, 8.0)          # the order statistics of a distribution-free 95% interval


def test_median_interval_covers_the_true_median_at_least_95_percent():
    rng = np.random.default_rng(3)
    true = np.log(2)                              # median of Exp(1)
    covered = 0
    for _ in range(400):
        e = U.median(rng.exponential(size=12))
        covered += e.low <= true <= e.high
    assert covered / 400 >= 0.93


def test_paired_ratio_is_the_median_of_per_round_ratios():
    base = np.array([2.0, 2.2, 1.9, 2.1, 2.0, 2.4, 2.05])
    assert U.paired_ratio(base, base / 2).value == pytest.approx(2.0)
    drift = np.linspace(1, 3, 8)                   # the machine slows down 3x during the window
    e = U.paired_ratio(drift * 3, drift)           # ... but each round pairs the two methods
    assert e.value == pytest.approx(3.0) and e.low == pytest.approx(3.0) and e.high == pytest.approx(3.0)
    with pytest.raises(ValueError, match="differ in length"):
        U.paired_ratio([1, 2], [1])


def test_relative_loss_definition_interval_and_test():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.3, 1, 48)
    same = U.relative_loss(b, b)
    assert (same.value, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    a = b * 0.98                                   # 2% lower on every query: certain
    e = U.relative_loss(a, b)
    assert e.value == pytest.approx(2.0) and e.low == pytest.approx(2.0, abs=1e-6) and e.p_value < 0.01
    a2 = b.copy()
    a2[:2] -= 0.3                                  # two queries lose: an uncertain loss
    e2 = U.relative_loss(a2, b)
    assert e2.value == pytest.approx(100 * (1 - a2.mean() / b.mean()))
    assert e2.low < e2.value < e2.high and e2.high - e2.low > 1.0


def test_correlation_loss_matches_scipy_and_clusters_widen_the_interval():
    rng = np.random.default_rng(1)
    docs = np.array([(i, j) for i in range(15) for j in range(i + 1, 15)])
    gold = rng.uniform(size=len(docs))
    b = gold + rng.normal(0, 0.3, len(docs))
    a = b + rng.normal(0, 0.05, len(docs))
    e = U.correlation_loss(a, b, gold, docs, "spearman")
    expected = 100 * (1 - stats.spearmanr(a, gold)[0] / stats.spearmanr(b, gold)[0])
    assert e.value == pytest.approx(expected) and e.low <= e.value <= e.high and 0 <= e.p_value <= 1
    flat = U.correlation_loss(a, b, gold, None, "spearman")
    assert (e.high - e.low) > (flat.high - flat.low)   # pairs sharing documents are not independent
    assert U.correlation_loss(b, b, gold, docs).value == 0.0


def test_verdicts_holds_fails_inconclusive_and_side():
    assert U.verdict(Estimate(2.5, 2.3, 2.7), 2, 3, "higher")[0] == U.HOLDS
    assert U.verdict(Estimate(2.1, 1.9, 2.3), 2, 3, "higher")[0] == U.INCONCLUSIVE   # straddles 2
    assert U.verdict(Estimate(3.8, 3.5, 4.0), 2, 3, "higher")[0] == U.FAILS_BETTER
    assert U.verdict(Estimate(1.2, 1.1, 1.3), 2, 3, "higher")[0] == U.FAILS_WORSE
    assert U.verdict(Estimate(5.0, 4.0, 6.0), 1, 3, "lower")[0] == U.FAILS_WORSE     # a loss above the range
    assert U.verdict(Estimate(2.5), 2, 3, "higher")[0] == U.INCONCLUSIVE             # no interval: cannot decide
    assert U.verdict(None, 2, 3)[0] == U.NOT_MEASURED
    assert U.verdict(Estimate.exact(100.0), 99.5, 99.9, "higher")[0] == U.FAILS_BETTER


def test_a_claim_holds_only_when_every_method_holds():
    assert U.combine([U.HOLDS, U.HOLDS]) == U.HOLDS
    assert U.combine([U.HOLDS, U.INCONCLUSIVE]) == U.INCONCLUSIVE
    assert U.combine([U.HOLDS, U.FAILS_BETTER, U.INCONCLUSIVE]) == U.FAILS_BETTER
    assert U.combine([U.FAILS_BETTER, U.FAILS_WORSE]) == U.FAILS_WORSE
    assert U.combine([U.NOT_MEASURED]) == U.NOT_MEASURED


def test_interval_arithmetic_is_conservative():
    d = U.difference(Estimate(3, 2.5, 3.5), Estimate(1, 0.8, 1.2))
    assert (d.low, d.high) == (pytest.approx(1.3), pytest.approx(2.7))
    r = U.ratio_of(Estimate(2, 1.8, 2.2), Estimate(1, 0.9, 1.1))
    assert r.low == pytest.approx(1.8 / 1.1) and r.high == pytest.approx(2.2 / 0.9)


def test_block_interval_needs_two_rounds_a_block():
    assert U.block_interval([1.0] * 5, blocks=3) is None
    assert U.block_interval([1.0] * 6, blocks=3) == pytest.approx((1.0, 1.0))


def test_window_ratio_keeps_the_median_and_is_never_narrower_than_the_rounds_interval():
    rng = np.random.default_rng(3)
    base = rng.normal(1.0, 0.05, 12)
    method = base / 2 * rng.normal(1.0, 0.03, 12)
    plain, blocked = U.paired_ratio(base, method), U.window_ratio(base, method)
    assert blocked.value == plain.value
    assert blocked.low <= plain.low and blocked.high >= plain.high


def test_window_ratio_covers_a_drifting_machine_where_round_resampling_does_not():
    """Windows whose machine state shifts from block to block (other work starting and stopping): the
    interval over single rounds treats the shift as averaged out and misses the long-run ratio far more often
    than 5%; Student's t over the blocks covers it at about the nominal rate (0.94 here)."""
    rng = np.random.default_rng(0)
    true, hits_plain, hits_block, n = 2.0, 0, 0, 300
    for _ in range(n):
        shift = np.repeat(rng.normal(0, 0.06, 3), 4)           # one state per block of 4 rounds
        r = true * np.exp(shift + rng.normal(0, 0.01, 12))
        base = np.ones(12)
        plain, blocked = U.paired_ratio(base, base / r), U.window_ratio(base, base / r)
        hits_plain += plain.low <= true <= plain.high
        hits_block += blocked.low <= true <= blocked.high
    assert hits_plain / n < 0.8
    assert hits_block / n > 0.9


# --- intervals that say what they are, and many verdicts at once ------------------------------------------
def test_holm_matches_the_step_down_procedure():
    """Holm's adjusted p-values as statsmodels' multipletests(method="holm") gives them, None left out."""
    rejected, adjusted = U.holm([0.01, 0.04, 0.03, 0.005, None])
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and adjusted[4] is None
    assert rejected == [True, False, False, True, False]
    assert U.holm([0.04])[0] == [True]              # one test: the unadjusted rule


def test_judgment_p_agrees_with_the_unadjusted_interval():
    """p < 0.05 exactly when the 95% interval decides: at the edge the p-value is 0.05."""
    e = Estimate(3.2, 3.0, 3.4, 6, "test")
    assert U.judgment_p(e, 2.0, 3.0, U.FAILS_BETTER) == pytest.approx(0.05, abs=1e-6)
    assert U.judgment_p(Estimate(3.2, 3.05, 3.35, 6, "t"), 2.0, 3.0, U.FAILS_BETTER) < 0.05
    assert U.judgment_p(Estimate(2.5, 2.3, 2.7, 6, "t"), 2.0, 3.0, U.HOLDS) < 0.05
    assert U.judgment_p(Estimate.exact(2.5), 2.0, 3.0, U.HOLDS) == 0.0
    assert U.judgment_p(U.spread([1.0, 2.0]), 0, 3, U.HOLDS) is None      # a range is not a test


def test_holm_turns_a_narrow_decision_in_a_family_into_inconclusive():
    near = (Estimate(3.2, 3.01, 3.39, 6, "t"), 2.0, 3.0, U.FAILS_BETTER, "above")
    straddles = (Estimate(3.0, 2.8, 3.2, 6, "t"), 2.0, 3.0, U.INCONCLUSIVE, "straddles")
    assert U.adjust_family([near])[0][0] == U.FAILS_BETTER                 # alone it decides
    (v, why, p), _, _ = U.adjust_family([near, straddles, straddles])
    assert v == U.INCONCLUSIVE and "Holm" in why and p > 0.05
    far = (Estimate(5.0, 4.8, 5.2, 6, "t"), 2.0, 3.0, U.FAILS_BETTER, "above")
    assert U.adjust_family([far, straddles, straddles])[0][0] == U.FAILS_BETTER


def test_two_processes_give_a_range_that_cannot_decide_against_a_nearby_bound():
    """Two fresh processes at 432 and 440 MB: a range, not a 95% interval. A bound 5 MB above the median is
    nearer than the range is wide (8 MB): inconclusive, where the range itself lies wholly below it."""
    e = U.spread([432e6, 440e6]).scaled(1e-9)
    assert e.is_range and "range" in e.fmt(3)
    assert U.verdict(e, None, 0.441)[0] == U.INCONCLUSIVE                 # 0.441 > 0.440, but within 0.008
    assert U.verdict(Estimate(e.value, e.low, e.high, 2, "t"), None, 0.441)[0] == U.HOLDS  # as if it were a CI
    assert U.verdict(e, None, 0.5)[0] == U.HOLDS                          # far enough away
    assert U.verdict(U.spread([432e6, 432e6]), None, 1e9)[0] == U.INCONCLUSIVE   # agreeing processes: no width
    six = U.spread([430e6, 431e6, 432e6, 433e6, 434e6, 440e6])
    assert not six.is_range and "95% CI" in six.how                       # six processes: a real interval


def test_zero_width_intervals_are_shown_and_decide_only_when_exact():
    degenerate = Estimate(0.0, 0.0, 0.0, 48, "identical on all 48 queries")
    assert degenerate.fmt() == "0.00 [0 width]" and Estimate.exact(1.34).fmt() == "1.34 [exact]"
    assert U.verdict(degenerate, None, 1.0)[0] == U.INCONCLUSIVE
    assert U.verdict(Estimate.exact(0.5, "exact (bytes counted)"), None, 1.0)[0] == U.HOLDS
    assert U.simultaneous(4) == pytest.approx(0.9875)
