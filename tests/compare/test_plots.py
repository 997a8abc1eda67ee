"""The figures read: no text drawn on another (labels, ticks, titles, legends, captions), on realistic Results."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bgeq_utils.compare import plots, report, tabulate
from tests.compare.realistic import realistic_results
from tests.factories import fp32, result

ENV = "AMD EPYC, 2 cores [avx512_bf16,avx512_vnni,avx512bw,avx512f,avx512vl] | NVIDIA H200 (cuda 9.0)"


@pytest.fixture(autouse=True)
def _close_figures():
    plots.theme()
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def realistic():
    rs = realistic_results()
    return rs, tabulate(rs)


def _fig(x):
    return getattr(x, "figure", x)


def test_overlapping_labels_finds_texts_on_each_other_and_only_those():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.text(0.5, 0.5, "first label", transform=ax.transAxes)
    ax.text(0.52, 0.51, "second label", transform=ax.transAxes)
    ax.text(0.05, 0.9, "alone", transform=ax.transAxes)
    ax.set_xlim(0, 10)                                  # ticks out of view are not drawn, never counted
    ax.set_xticks([0, 5, 10, 20], ["0", "5", "10", "twenty"])
    found = plots.overlapping_labels(fig)
    assert found == [("first label", "second label")]


def test_overlapping_labels_sees_tick_labels_that_collide():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_xticks(np.arange(6), [f"a long tick label {i}" for i in range(6)])
    assert plots.overlapping_labels(fig)


def test_place_labels_keeps_close_points_apart():
    fig, ax = plt.subplots(figsize=(5, 3.5))
    x = np.array([1.0, 1.05, 1.1, 1.12, 1.3, 1.32])
    y = np.array([0.0, 0.05, 0.0, 0.02, 0.1, 0.08])
    ax.scatter(x, y)
    ax.set_title("a title")
    plots.place_labels(ax, zip(x, y, [f"int8-static-onnx[variant={i}]" for i in range(len(x))]), avoid=zip(x, y))
    assert plots.overlapping_labels(fig) == []


def test_quality_vs_speed_labels_every_frontier_method_readably(realistic):
    _, m = realistic
    groups = list(dict.fromkeys(m.table["group"]))
    assert len(groups) == 3
    for g in groups:
        ax = plots.quality_vs_speed(m, g, env_label=ENV)
        assert ax is not None
        labels = [t.get_text() for t in ax.texts]
        assert labels, g                                         # the Pareto frontier is labelled
        assert plots.overlapping_labels(ax.figure) == [], g
    ax = plots.quality_vs_speed(m, [g for g in groups if "'default'" in g][0])
    assert {"fp32-openvino", "bf16", "int8-static-openvino"} <= {t.get_text() for t in ax.texts}


@pytest.mark.parametrize("name", ["size_memory_bars", "fidelity_distributions", "speed_ratios"])
def test_comparison_figures_have_no_overlapping_labels(realistic, name):
    rs, m = realistic
    ok = [r for r in rs if r.status == "ok"]
    fig = {"size_memory_bars": lambda: plots.size_memory_bars(m, env_label=ENV),
           "fidelity_distributions": lambda: plots.fidelity_distributions([r for r in ok if r.is_default],
                                                                          env_label=ENV),
           "speed_ratios": lambda: plots.speed_ratios(m, env_label=ENV)}[name]()
    assert fig is not None
    assert plots.overlapping_labels(_fig(fig)) == []


def test_report_figures_have_no_overlapping_labels(realistic):
    rs, _ = realistic
    cmp = report.compute(rs, ["realistic set"], device="cpu")
    before = set(plt.get_fignums())
    figs = report.make_figures(cmp, "plots-test", close=False)
    assert {"size_memory", "fidelity_cosines"} <= set(figs) and sum(k.startswith("quality_vs_speed") for k in figs) == 3
    for n in set(plt.get_fignums()) - before:
        assert plots.overlapping_labels(plt.figure(n)) == []


def test_notebook_figures_have_no_overlapping_labels():
    rng = np.random.default_rng(0)
    sweep = pd.DataFrame([{"calibration method": cm, "calibration texts": n, "cos_mean": c, "cos_mean_lo": c - 3e-4,
                           "cos_mean_hi": c + 3e-4, "quality_loss_pct": q, "quality_loss_pct_lo": q - 2.5,
                           "quality_loss_pct_hi": q + 6}
                          for cm in ("MinMax", "Entropy", "Percentile") for n in (16, 64, 256, 1024)
                          for c, q in [(0.993 - rng.uniform(0, 0.01), rng.uniform(0, 20))]])
    curve = [{"step": i, "loss": 0.02 * np.exp(-i / 40) + rng.uniform(0, 0.004)} for i in range(200)]
    qat = result("int8-qat", run="default", disk_mb=58.7, speed=1.0, loss_pct=1.1, cos=0.999,
                 extra={"curve": curve})
    qat.settings["calibration"] = 512
    kinds = ["q/k/v (shared input)", "attention.output.dense", "intermediate.dense", "output.dense"]
    shares = pd.DataFrame([{"layer kind": k, "threshold": t, "share": max(0.0, 0.2 - 0.03 * t + 0.01 * i)}
                           for i, k in enumerate(kinds) for t in (0.0, 1.0, 2.0, 4.0, 6.0, 8.0)])
    pts = pd.DataFrame([{"method": mth, "bits/param": b, "block size": bs, "cos mean": c, "ndcg@10": q}
                        for mth, b, bs, c, q in [
                            ("int4-torchao", 21.2, 32, 0.9696, 0.7322), ("int4-torchao", 20.8, 128, 0.9502, 0.7302),
                            ("int4-onnx", 5.1, 32, 0.9666, 0.7318), ("int4-onnx", 4.3, 128, 0.9399, 0.7268),
                            ("int4-quanto", 19.7, 32, 0.9644, 0.7258), ("int4-quanto", 19.0, 128, 0.9315, 0.7075),
                            ("nf4-bnb", 18.8, 64, 0.9668, 0.7132), ("fp4-bnb", 18.8, 64, 0.9297, 0.7364),
                            ("int4-torchao + 4-bit embeddings", 6.0, 32, 0.9600, 0.7300)]])
    ref = fp32(run="default", param_mb=90.8)
    layers = pd.DataFrame([{"layer": layer, "site": s, "max_abs": float(10 ** rng.uniform(0, 3.5))}
                           for layer in range(-1, 6) for s in ("attention.self", "intermediate.dense", "output.dense",
                                                               "output.pre_norm", "layer")])
    m = tabulate([fp32(run="default")] + [result(mm, run="default", speed=(s, s * 0.9, s * 1.1), loss_pct=0.5, cos=0.99)
                                         for mm, s in (("int8-static-onnx", 1.9), ("int8-static-openvino", 3.4),
                                                       ("int8-static-torch", 1.95))])
    figs = {"calibration_curves": plots.calibration_curves(sweep, env_label=ENV),
            "training_curve": plots.training_curve(qat, env_label=ENV),
            "outlier_shares": plots.outlier_shares(shares, thresholds=(6.0,), env_label=ENV),
            "bits_and_fidelity": plots.bits_and_fidelity(pts, ref, env_label=ENV),
            "overflow_by_layer": plots.overflow_by_layer(layers, env_label=ENV),
            "speed_ratios": plots.speed_ratios(m, env_label=ENV)}
    for name, f in figs.items():
        assert f is not None, name
        assert plots.overlapping_labels(_fig(f)) == [], name
