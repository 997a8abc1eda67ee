"""Results measured on a file of texts without labels: quality reads 'not applicable (no labels)', as random
weights read 'not applicable (random weights)', never an empty 'not measured'; a proxy is labelled, never ranked."""
import pandas as pd
import pytest

from bgeq_utils.compare import recommend, tables, tabulate
from bgeq_utils.compare.measured import quality_not_applicable
from tests.factories import BGE, MINI, fp32, result, unlabelled

NA_TEXTS, NA_RANDOM = "not applicable (no labels)", "not applicable (random weights)"


def _texts_group(run="mine"):
    return [unlabelled("fp32", run=run, speed=1.0),
            unlabelled("int8-dynamic-onnx", run=run, runtime="onnxruntime", runtime_baseline="fp32-onnx", disk_mb=23,
                       mem_mb=200, speed=(2.2, 2.1, 2.3), cos=(0.994, 0.993, 0.995))]


def _row(m, label, dataset):
    t = m.table
    rows = t[(t["label"] == label) & (t["dataset"] == dataset)]
    assert len(rows) == 1, (label, dataset)
    return rows.iloc[0]


@pytest.fixture(scope="module")
def mixed():
    lee = [fp32(), result("int8-dynamic-onnx", runtime="onnxruntime", runtime_baseline="fp32-onnx", disk_mb=23,
                          mem_mb=200, speed=2.0, loss_pct=1.0, cos=0.99)]
    bge = [fp32(model=BGE, run="big", disk_mb=1340, mem_mb=1500, loss_pct=None, dataset="lee"),
           result("bf16", model=BGE, run="big", disk_mb=670, mem_mb=800, speed=1.5, cos=0.9999)]
    return tabulate(lee + bge + _texts_group())


def test_the_reason_comes_from_the_pipeline_note():
    assert quality_not_applicable(unlabelled("fp32")) == "no labels"
    assert quality_not_applicable(result("bf16", model=BGE)) == "random weights"        # a record without notes
    both = result("bf16", model=BGE, notes=["random weights and no labels: quality is not applicable"])
    assert quality_not_applicable(both) == "random weights and no labels"
    assert quality_not_applicable(fp32()) is None


def test_quality_cells_say_not_applicable_and_why(mixed):
    assert _row(mixed, "int8-dynamic-onnx", "my-texts.txt")["quality_na"] == NA_TEXTS
    assert _row(mixed, "bf16", "lee")["quality_na"] == NA_RANDOM
    assert pd.isna(_row(mixed, "int8-dynamic-onnx", "lee")["quality_na"])
    q = tables.quality(mixed)
    heads = q["headline loss %"].tolist()
    assert len(heads) == 6 and heads.count(NA_TEXTS) == 2 and heads.count(NA_RANDOM) == 2
    assert "not applicable: random weights or data without labels" in q.attrs["note"]
    v = tables.variants(mixed, "int8-dynamic-onnx")["headline loss %"].tolist()
    assert NA_TEXTS in v and any(x not in (NA_TEXTS, None) for x in v)
    assert tables.quality_values(mixed)["quality"].tolist().count(NA_TEXTS) == 2


def test_a_texts_group_gets_a_labelled_proxy_from_a_group_with_quality_and_never_ranks_on_it(mixed):
    mine = _row(mixed, "int8-dynamic-onnx", "my-texts.txt")
    assert mine["proxy_quality_loss_pct"] == pytest.approx(_row(mixed, "int8-dynamic-onnx", "lee")["quality_loss_pct"])
    assert "all-MiniLM-L6-v2 on lee" in mine["proxy_source"]
    rec = recommend.recommend(mixed, "cpu", group=mine["group"])
    assert rec.choice == "int8-dynamic-onnx" and "fidelity" in rec.explanation


def test_the_guide_table_reads_not_applicable_without_a_proxy():
    gt = tables.guide_table(tabulate(_texts_group()))
    assert gt["quality loss %"].tolist() == [NA_TEXTS, NA_TEXTS] and gt["cos to fp32"].notna().all()
    assert "quality from" not in gt or gt["quality from"].isna().all()


def test_the_proxy_prefers_the_same_model():
    other = {**MINI, "id": "org/other-model"}
    labelled = [fp32(run="a-first", model=other), result("int8-x", run="a-first", model=other, loss_pct=5.0),
                fp32(run="z-last"), result("int8-x", run="z-last", loss_pct=1.0)]
    m = tabulate(labelled + [unlabelled("fp32", run="mine"), unlabelled("int8-x", run="mine", cos=0.99)])
    mine = _row(m, "int8-x", "my-texts.txt")
    assert "all-MiniLM-L6-v2 on lee (run 'z-last')" == mine["proxy_source"]
