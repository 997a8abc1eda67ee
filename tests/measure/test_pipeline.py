"""End to end on the default model: against plain sentence-transformers and the trec_eval oracle, a full FP32
Result on Lee, and a file of your own texts (fidelity and speed on its texts, quality not applicable)."""
import numpy as np
import pytest
import pytrec_eval

from bgeq_utils.measure import metrics, pipeline, speed
from tests.factories import write_beir as _write_beir
from tests.measure.conftest import TEXTS


def test_beir_folder_fp32_equals_st_plus_oracle(tmp_path, reference, tiny_bench):
    from sentence_transformers import SentenceTransformer

    from bgeq_utils.inputs import data
    docs = ["The cat sat on the mat and purred.", "Dogs bark loudly at night.", "Stock markets fell sharply today.",
            "The central bank raised interest rates.", "A kitten chased a ball of wool.", "Puppies love to play fetch.",
            "Rain is expected over the weekend.", "The football team won the final."]
    corpus = [{"_id": f"d{i}", "title": "", "text": t} for i, t in enumerate(docs)]
    queries = [{"_id": "q1", "text": "cats"}, {"_id": "q2", "text": "dogs"}, {"_id": "q3", "text": "finance news"}]
    qrels = "query-id\tcorpus-id\tscore\nq1\td0\t2\nq1\td4\t1\nq2\td1\t1\nq2\td5\t2\nq3\td2\t1\nq3\td3\t1\n"
    folder = _write_beir(tmp_path / "mini", corpus, queries, qrels)
    ev = data.load_evalset(str(folder))
    res = pipeline.run_method("fp32", reference, ev, run="pytest-beir", bench_config=tiny_bench, progress=False)
    assert res.status == "ok", res.reason
    st = SentenceTransformer(str(reference.folder), device="cpu")
    d = st.encode(docs, normalize_embeddings=True)
    q = st.encode([x["text"] for x in queries], normalize_embeddings=True)
    s = q @ d.T
    run = {f"q{i+1}": {f"d{j}": float(s[i, j]) for j in range(len(docs))} for i in range(3)}
    ev_ = pytrec_eval.RelevanceEvaluator(ev.qrels, {"ndcg_cut.10", "recall.10"}).evaluate(run)
    assert res.quality["ndcg@10"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in ev_.values()]), abs=1e-6)
    assert res.quality["recall@10"] == pytest.approx(np.mean([v["recall_10"] for v in ev_.values()]), abs=1e-6)
    assert res.quality["ndcg@10"] > 0.5  # a sane model ranks cats for 'cats'


def test_full_fp32_result_on_lee(reference, lee, reference_emb):
    cfg = pipeline.BenchConfig(batch_sizes=(1, 4), seq_lens=(32,), min_repeats=6, max_repeats=6, seconds=5,
                               memory=True, memory_repeats=2, memory_batch=4, memory_seq=32)
    res = pipeline.run_method("fp32", reference, lee, run="pytest-lee", reference_emb=reference_emb,
                              bench_config=cfg, progress=False)
    assert res.status == "ok", res.reason
    assert res.fidelity["cos_mean"] > 0.99999 and res.fidelity["top10_overlap"] == 1.0
    assert set(res.fidelity["intervals"]) >= {"cos_mean", "l2_mean", "top10_overlap", "sim_pearson"}
    assert set(metrics.QUALITY_KEYS) <= set(res.quality)
    assert 0.4 < res.quality["ndcg@10"] < 1 and 0.3 < res.quality["spearman"] < 1
    pq = res.per_query                      # what paired intervals resample
    assert len(pq["query_ids"]) == res.quality["queries"] == len(pq["ndcg@10"])
    assert np.mean(pq["ndcg@10"]) == pytest.approx(res.quality["ndcg@10"], abs=1e-6)
    assert len(pq["pair_cosines"]) == len(pq["pair_gold"]) == len(pq["pair_docs"]) == 1225
    assert 85e6 < res.size["disk_bytes"] < 100e6 and res.size["param_bytes"] == pytest.approx(4 * 22_713_216, rel=0.01)
    assert [(r["batch_size"], r["seq_len"]) for r in res.speed] == [(1, 32), (4, 32)]
    for r in res.speed:
        assert r["tokens_per_s_low"] <= r["tokens_per_s"] <= r["tokens_per_s_high"] and 0 < r["share_of_ceiling"] <= 1
        assert r["vs_eager"]["value"] == 1.0 and r["vs_runtime"]["baseline"] == "fp32"   # FP32 is its own baseline
    m = res.memory
    assert m["peak"]["n"] == 2 and m["peak"]["low"] <= m["peak"]["value"] <= m["peak"]["high"]
    assert 40e6 < m["resident"]["value"] < 200e6 and m["batch_size"] == 4    # weights 91 MB; allocator reuse
    assert res.device["cpu_model"] and res.packages["torch"] and res.key.startswith("fp32-") and res.is_default


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
