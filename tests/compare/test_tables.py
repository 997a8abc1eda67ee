"""The comparison's tables: batch invariance beside fidelity, and quality that does not apply said, with the reason."""
import pandas as pd

from bgeq_utils.compare import recommend, tables, tabulate
from tests.compare.conftest import _row, _texts_group
from tests.factories import fp32, result

NA_TEXTS, NA_RANDOM = "not applicable (no labels)", "not applicable (random weights)"


def test_batch_invariance_is_shown_beside_fidelity_and_a_drifting_method_is_flagged():
    from bgeq_utils.compare import tables
    base = fp32()
    drift = result("int8-dynamic-onnx", "int8", cos=0.995, loss_pct=0.0, speed=3.0)
    steady = result("int8-static-onnx", "int8", cos=0.995, loss_pct=0.0, speed=2.0)
    drift.fidelity["batch_invariance"] = {"cos_min": 0.9849}
    steady.fidelity["batch_invariance"] = {"cos_min": 0.9999997}
    m = tabulate([base, drift, steady])
    t = tables.fidelity(m).set_index("method")
    assert t.loc["int8-dynamic-onnx", "batch cos min"] == "0.984900 drifts"
    assert t.loc["int8-static-onnx", "batch cos min"] == "1.000000"
    rec = recommend.recommend(m, max_quality_loss_pct=1.0)
    assert rec.choice == "int8-dynamic-onnx"
    assert "depends on the batch" in rec.evidence["same text alone vs in a batch (lowest cosine)"]


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


def test_the_guide_table_reads_not_applicable_without_a_proxy():
    gt = tables.guide_table(tabulate(_texts_group()))
    assert gt["quality loss %"].tolist() == [NA_TEXTS, NA_TEXTS] and gt["cos to fp32"].notna().all()
    assert "quality from" not in gt or gt["quality from"].isna().all()


def test_every_memory_row_names_the_batch_it_was_measured_at():
    base, q = fp32(mem_mb=1300.0, speed=1.0), result("int8-dynamic-onnx", "int8", mem_mb=400.0, speed=3.0)
    for r in (base, q):
        r.memory |= {"batch_size": 8, "seq_len": 128}
    t = tables.footprint(tabulate([base, q], 8, 128)).set_index("method")
    assert list(t["memory at"]) == ["8x128", "8x128"]
    assert "one batch of the run's speed cell ('memory at'" in t.attrs["note"] and "32 x 128" not in t.attrs["note"]
