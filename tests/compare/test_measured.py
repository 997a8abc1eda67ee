"""The measured table: like-for-like groups, one baseline per group, quality per metric with intervals."""
import pytest

from bgeq_utils.compare import recommend, tabulate
from bgeq_utils.compare.measured import default_rows, estimate
from tests.compare.conftest import the_row
from tests.factories import BGE, fp32, result


def _row(m, label, model="all-MiniLM-L6-v2"):
    return the_row(m, label, model=model)


@pytest.fixture(scope="module")
def two_models():
    mini = [fp32(), result("int8-dynamic-onnx", runtime="onnxruntime", runtime_baseline="fp32-onnx",
                           disk_mb=23, mem_mb=(200, 195, 205), speed=(2.2, 2.1, 2.3), speed_runtime=(2.0, 1.9, 2.1),
                           loss_pct=1.0, cos=(0.994, 0.993, 0.995))]
    bge = [fp32(model=BGE, run="big", disk_mb=1340, mem_mb=1500, loss_pct=None),
           result("int8-dynamic-onnx", model=BGE, run="big", runtime="onnxruntime", runtime_baseline="fp32-onnx",
                  disk_mb=340, mem_mb=(600, 590, 610), speed=(7.3, 7.0, 7.5), cos=(0.99, 0.98, 0.995)),
           result("bf16", model=BGE, run="big", disk_mb=670, mem_mb=800, speed=(1.5, 1.4, 1.6), cos=0.9999)]
    return tabulate(mini + bge)


def test_each_result_is_compared_with_the_fp32_of_its_own_group(two_models):
    m = two_models
    assert len(set(m.table["group"])) == 2
    big = _row(m, "int8-dynamic-onnx", "bge-large-en-v1.5")
    small = _row(m, "int8-dynamic-onnx")
    assert big["baseline"] == small["baseline"] == "fp32"
    assert big["memory_ratio"] == pytest.approx(600 / 1500) and small["memory_ratio"] == pytest.approx(200 / 250)
    assert big["size_ratio"] == pytest.approx(340 / 1340)


def test_results_of_two_models_are_never_ranked_together(two_models):
    m = two_models
    for g in set(m.table["group"]):
        rec = recommend.recommend(m, "cpu", max_quality_loss_pct=5, group=g)
        ranked = set(rec.table["method"])
        assert ranked <= set(m.table[m.table["group"] == g]["label"])
    # the random-weights group has no quality: its proxy quality is shown, labelled, never used to rank
    big = _row(m, "int8-dynamic-onnx", "bge-large-en-v1.5")
    assert big["proxy_quality_loss_pct"] == pytest.approx(_row(m, "int8-dynamic-onnx")["quality_loss_pct"])
    assert "all-MiniLM-L6-v2 on lee" in big["proxy_source"]
    rec = recommend.recommend(m, "cpu", group=big["group"])
    assert "fidelity" in rec.explanation and rec.choice == "int8-dynamic-onnx"


def test_a_result_without_a_baseline_in_its_group_gets_no_ratio():
    m = tabulate([fp32(), result("int8-dynamic-onnx", model=BGE, run="big", mem_mb=600, disk_mb=340, speed=7.0)])
    lone = _row(m, "int8-dynamic-onnx", "bge-large-en-v1.5")
    import pandas as pd
    assert pd.isna(lone["baseline"]) and pd.isna(lone["memory_ratio"]) and pd.isna(lone["size_ratio"])
    assert lone["memory_mb"] == pytest.approx(600)          # its own figures stay


def test_headline_loss_is_the_worst_metric_and_gains_never_offset():
    base = fp32()
    gainer = result("int8-x", loss_pct=2.0)
    gainer.per_query["mrr@10"] = [v * 1.05 for v in base.per_query["mrr@10"]]     # +5% on one metric
    gainer.quality["mrr@10"] = base.quality["mrr@10"] * 1.05
    row = _row(tabulate([base, gainer]), "int8-x")
    assert row["quality_loss_metric"] in ("ndcg@10", "recall@10", "spearman")
    assert row["quality_loss_pct"] == pytest.approx(max(row["loss:ndcg@10"], row["loss:recall@10"],
                                                        row["loss:spearman"]))
    assert row["loss:mrr@10"] == pytest.approx(-5.0, abs=1e-6) and row["quality_loss_pct"] > 1.5
    assert estimate(row, "quality_loss_pct").has_interval and row["quality_loss_pct_p"] is not None
    assert "loss:recall@100" not in row or row.isna()["loss:recall@100"]   # 50 documents: recall@100 cannot move


def test_variants_are_detail_the_default_represents_the_method():
    rs = [fp32(), result("int8-dynamic-onnx", speed=2.0, loss_pct=1.0),
          result("int8-dynamic-onnx", label="int8-dynamic-onnx[weight_type=QUInt8]", options={"weight_type": "QUInt8"},
                 speed=2.5, loss_pct=5.0)]
    d = default_rows(tabulate(rs))
    assert list(d["label"]) == ["fp32", "int8-dynamic-onnx"]


def test_a_group_timed_on_another_grid_is_read_at_its_nearest_cell():
    """make run compares at batch 8; a GPU reference pass timed batches 1, 32 and 128: its speed-ups are read
    at batch 32 (within its own group, against its own FP32), and the rows say which cell."""
    from bgeq_utils.compare import tables
    cpu = [fp32(batch=8), result("int8-dynamic-onnx", batch=8, speed=(3.0, 2.8, 3.2), loss_pct=1.0)]
    gpu = [fp32(run="gpu", device="cuda", batch=32), result("fp16", run="gpu", device="cuda", batch=32,
                                                           speed=(2.8, 2.7, 2.9), loss_pct=0.0)]
    m = tabulate(cpu + gpu, 8, 128)
    t = m.table.set_index(["device", "method"])
    assert t.loc[("cpu", "int8-dynamic-onnx"), "speed_cell"] == "8x128"
    assert t.loc[("cuda", "fp16"), "speed_cell"] == "32x128"
    assert t.loc[("cuda", "fp16"), "speed_vs_eager"] == pytest.approx(2.8)
    assert "cell" in tables.speed(m).columns and "cell" not in tables.speed(tabulate(cpu, 8, 128)).columns


def _window(wid: str, busy: float = 0.0, kind: str = "comparison") -> dict:
    return {"window": {"id": wid, "kind": kind, "load": {"other_cpu_share": busy, "busy": busy > 0.15}}}


def test_one_quiet_window_needs_no_note_and_each_row_names_its_window():
    from bgeq_utils.compare import measured
    rs = [fp32(extra=_window("w1")), result("int8-dynamic-onnx", speed=3.0, extra=_window("w1"))]
    m = measured.tabulate(rs, 32, 128)
    assert measured.window_note(measured.default_rows(m)) is None
    assert [measured.window_label(r) for _, r in m.table.iterrows()] == ["comparison w1", "comparison w1"]


def test_speed_from_several_windows_or_a_busy_one_is_said_in_tables_and_recommendation():
    from bgeq_utils.compare import measured, recommend, tables
    rs = [fp32(extra=_window("w1")),
          result("int8-dynamic-onnx", speed=3.0, loss_pct=0.1, cos=0.999, extra=_window("w1")),
          result("int8-static-onnx", speed=2.0, loss_pct=0.1, cos=0.999, extra=_window("w2", 0.4))]
    m = measured.tabulate(rs, 32, 128)
    note = measured.window_note(measured.default_rows(m))
    assert "from 2 windows (comparison w1, comparison w2)" in note and "busy machine" in note and "40%" in note
    assert "busy: 40%" in measured.window_label(m.table[m.table["method"] == "int8-static-onnx"].iloc[0])
    assert "2 windows" in tables.speed(m).attrs["note"]
    rec = recommend.recommend(m, "cpu")
    assert any("2 windows" in c for c in rec.caveats) and rec.decided


def worst_coverage(sims: int, queries: int = 48, loss: float = 1.0, seed: int = 7) -> tuple[float, float]:
    """Coverage of the true worst loss by the headline interval: (from 95% intervals, simultaneous).

    Four metrics with the same true loss (the case where the largest of four intervals' bounds misses most),
    independent per-query noise around it, 48 queries: the population loss of each metric is ``loss`` %."""
    import numpy as np

    from bgeq_utils.compare.measured import worst
    from bgeq_utils.core.uncertainty import relative_loss, simultaneous
    rng = np.random.default_rng(seed)
    keys = ("a", "b", "c", "d")
    hit_95 = hit_sim = 0
    for _ in range(sims):
        base = {k: rng.uniform(0.3, 1.0, queries) for k in keys}
        meth = {k: base[k] * (1 - loss / 100) + rng.normal(0, 0.05, queries) for k in keys}
        l95 = {k: relative_loss(meth[k], base[k], with_p=False) for k in keys}
        lsim = {k: relative_loss(meth[k], base[k], confidence=simultaneous(4), with_p=False) for k in keys}
        e95, esim = worst(l95, keys)[1], worst(l95, keys, lsim)[1]
        hit_95 += e95.low <= loss <= e95.high
        hit_sim += esim.low <= loss <= esim.high
    return hit_95 / sims, hit_sim / sims


def test_the_worst_of_four_interval_is_simultaneous_and_covers_95_percent():
    """The largest of four 95% intervals' bounds covers the worst loss well under 95%; Bonferroni's 98.75% per
    metric restores it (2000 simulations of this setting: 0.891 and 0.961, binomial s.e. 0.007 and 0.004)."""
    old, new = worst_coverage(300)
    assert new >= 0.92 and old < new - 0.05, (old, new)


def test_the_headline_loss_names_its_simultaneous_interval_and_adjusts_its_p():
    m = tabulate([fp32(), result("int8-dynamic-onnx", loss_pct=2.0, changed=20)])
    r = _row(m, "int8-dynamic-onnx")
    e = estimate(r, "quality_loss_pct")
    assert "simultaneous" in e.how and "Bonferroni" in e.how
    k = r["quality_loss_metric"]
    assert e.p_value == pytest.approx(min(1.0, 4 * r[f"loss:{k}_p"]))
    assert e.low <= estimate(r, f"loss:{k}").low         # wider than the worst metric's own 95% interval


def test_cuda_bytes_allocated_alike_in_every_process_are_exact_and_an_rss_range_is_not():
    from bgeq_utils.core import uncertainty as U
    gpu = result("int8-dynamic-torch", model=BGE, run="gpu", device="cuda", cos=0.99)
    cpu = result("int8-dynamic-torch", model=BGE, run="big", cos=0.99)
    gpu.memory = {"peak": U.spread([719e6, 719e6]).to_dict() | {"what": "peak CUDA memory allocated"},
                  "resident": U.spread([433e6, 433e6]).to_dict(), "batch_size": 32, "seq_len": 128}
    cpu.memory = {"peak": U.spread([719e6, 719e6]).to_dict() | {"what": "peak RSS over the baseline process"},
                  "resident": U.spread([433e6, 433e6]).to_dict(), "batch_size": 32, "seq_len": 128}
    g, c = (_row(tabulate([r]), "int8-dynamic-torch", model="bge-large-en-v1.5") for r in (gpu, cpu))
    assert estimate(g, "memory_mb").fmt(0) == "719 [exact]" and estimate(g, "resident_mb").fmt(0) == "433 [exact]"
    assert estimate(c, "memory_mb").is_range and g["memory_batch"] == "32x128"
