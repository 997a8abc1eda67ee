"""Results measured on a file of texts without labels: the reason their quality does not apply, and a proxy from a
group with quality, labelled, never ranked on."""
import pytest

from bgeq_utils.compare import recommend, tabulate
from bgeq_utils.compare.measured import quality_not_applicable
from tests.compare.conftest import _row
from tests.factories import BGE, MINI, fp32, result, unlabelled


def test_the_reason_comes_from_the_pipeline_note():
    assert quality_not_applicable(unlabelled("fp32")) == "no labels"
    assert quality_not_applicable(result("bf16", model=BGE)) == "random weights"        # a record without notes
    both = result("bf16", model=BGE, notes=["random weights and no labels: quality is not applicable"])
    assert quality_not_applicable(both) == "random weights and no labels"
    assert quality_not_applicable(fp32()) is None


def test_a_texts_group_gets_a_labelled_proxy_from_a_group_with_quality_and_never_ranks_on_it(mixed):
    mine = _row(mixed, "int8-dynamic-onnx", "my-texts.txt")
    assert mine["proxy_quality_loss_pct"] == pytest.approx(_row(mixed, "int8-dynamic-onnx", "lee")["quality_loss_pct"])
    assert "all-MiniLM-L6-v2 on lee" in mine["proxy_source"]
    rec = recommend.recommend(mixed, "cpu", group=mine["group"])
    assert rec.choice == "int8-dynamic-onnx" and "fidelity" in rec.explanation


def test_the_proxy_prefers_the_same_model():
    other = {**MINI, "id": "org/other-model"}
    labelled = [fp32(run="a-first", model=other), result("int8-x", run="a-first", model=other, loss_pct=5.0),
                fp32(run="z-last"), result("int8-x", run="z-last", loss_pct=1.0)]
    m = tabulate(labelled + [unlabelled("fp32", run="mine"), unlabelled("int8-x", run="mine", cos=0.99)])
    mine = _row(m, "int8-x", "my-texts.txt")
    assert "all-MiniLM-L6-v2 on lee (run 'z-last')" == mine["proxy_source"]
