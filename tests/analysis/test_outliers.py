"""Outlier columns: the share of activation columns over each threshold, by layer kind."""
from bgeq_utils.analysis import outliers


def test_outlier_column_shares_are_shares_and_fall_with_the_threshold(reference, small_docs):
    shares = outliers.column_shares(reference.model, reference.tokenizer, small_docs[:6], [0.0, 2.0, 8.0],
                                    batch_size=3)
    assert shares["share"].between(0, 1).all()
    assert {"q/k/v (shared input)", "intermediate.dense", "output.dense"} <= set(shares["layer kind"])
    t = outliers.share_table(shares)
    assert list(t.columns) == ["> 0", "> 2", "> 8"]
    assert (t["> 0"] >= t["> 2"]).all() and (t["> 2"] >= t["> 8"]).all() and (t["> 0"] > 99).all()
