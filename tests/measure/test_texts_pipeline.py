"""A file of your own texts, end to end on the default model: fidelity and speed on those texts, quality not
applicable, and the comparison saying so."""
import pytest

from bgeq_utils.inputs import data
from bgeq_utils.measure import pipeline, speed

TEXTS = ["The cat sat on the mat and purred.", "Dogs bark loudly at night.", "Stock markets fell sharply today.",
         "The central bank raised interest rates again.", "A kitten chased a ball of wool across the room.",
         "Puppies love to play fetch in the park.", "Rain is expected over the weekend.",
         "The football team won the final after extra time.", "New battery chemistry doubles the range of cars.",
         "Researchers sequenced the genome of a rare orchid.", "The museum reopened its ancient history wing.",
         "A short poem about autumn leaves.", "Quarterly earnings beat analysts' expectations.",
         "How do I reset my router password?"]


@pytest.fixture(scope="module")
def own_texts(tmp_path_factory):
    f = tmp_path_factory.mktemp("own") / "my-texts.txt"
    f.write_text("\n\n".join(TEXTS) + "\n", encoding="utf-8")
    return data.load_evalset(str(f))


def test_a_file_of_texts_gets_fidelity_and_speed_on_its_texts_and_no_quality(reference, own_texts, tiny_bench,
                                                                           monkeypatch):
    ref_emb = pipeline.reference_embeddings(reference, own_texts, run="pytest-texts")
    assert ref_emb["corpus"].shape == (len(TEXTS), 384) and ref_emb["queries"].shape == (0, 384)
    timed = []
    grid = speed.speed_grid_many

    def spy(*a, **kw):
        timed.append(kw.get("texts"))
        return grid(*a, **kw)
    monkeypatch.setattr(speed, "speed_grid_many", spy)
    res = pipeline.run_method("int8-dynamic-torch", reference, own_texts, run="pytest-texts", reference_emb=ref_emb,
                              bench_config=tiny_bench, progress=False)
    assert res.status == "ok", res.reason
    assert 0.9 < res.fidelity["cos_mean"] < 1 and res.fidelity["n"] == len(TEXTS) and "top10_overlap" in res.fidelity
    assert not res.quality and not res.per_query and "no labels: quality is not applicable" in res.notes
    assert timed == [TEXTS]                                   # the speed grid timed the user's own texts
    assert res.speed and res.speed[0]["tokens_per_s"] > 0 and (res.speed[0]["batch_size"], res.speed[0]["seq_len"]) \
        == (2, 16)
    st = res.extra["speed_texts"]
    assert st["source"] == "dataset my-texts.txt" and st["texts"] == len(TEXTS)
    assert 5 < st["tokens median"] <= st["tokens p95"] <= st["tokens max"] < 20
    assert st["longer than max_seq_length"] == 0
    assert res.dataset["texts"] == len(TEXTS) and res.dataset["blank lines or texts skipped"] == len(TEXTS) - 1
    assert res.settings["dataset"]["labels"] is False and res.settings["dataset"]["sha1"] == own_texts.fingerprint
    again = pipeline.reference_embeddings(reference, own_texts, run="pytest-texts")     # reloaded, not recomputed
    assert (again["corpus"] == ref_emb["corpus"]).all() and again["queries"].shape == (0, 384)


def test_the_comparison_marks_quality_not_applicable(reference, own_texts, tiny_bench):
    from bgeq_utils.compare import tables, tabulate
    rs = [pipeline.run_method(m, reference, own_texts, run="pytest-texts-cmp", bench_config=tiny_bench, progress=False)
          for m in ("fp32", "int8-dynamic-torch")]
    q = tables.quality(tabulate(rs))
    assert list(q["headline loss %"]) == ["not applicable (no labels)"] * 2


def test_labelled_data_keeps_the_benchmark_texts_and_its_key(reference, lee_small, own_texts, tiny_bench):
    assert pipeline.speed_texts(lee_small) is None and pipeline.speed_texts(own_texts) == TEXTS
    assert pipeline.quality_not_applicable(reference, lee_small) is None
    assert pipeline.quality_not_applicable(reference, own_texts) == "no labels"
    assert set(pipeline.dataset_id(lee_small)) == {"name", "documents", "queries", "pairs"}   # Lee keys unchanged
