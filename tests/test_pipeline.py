"""End to end on the default model, against plain sentence-transformers and the trec_eval oracle."""
import numpy as np
import pytest
import pytrec_eval

from bgeq_utils import methods, metrics, pipeline, results
from tests.test_data import _write_beir


def test_fp32_encoder_equals_sentence_transformers(reference, lee_small):
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(str(reference.folder), device="cpu")
    texts = list(lee_small.corpus.values())
    ours = methods.build("fp32", reference).encode(texts, batch_size=7)
    theirs = st.encode(texts, batch_size=7, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (20, 384) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-5


def test_beir_folder_fp32_equals_st_plus_oracle(tmp_path, reference, tiny_bench):
    from sentence_transformers import SentenceTransformer
    from bgeq_utils import data
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


def test_run_method_records_unknown_method_loudly(reference):
    with pytest.raises(methods.UnknownMethodError, match="unknown method 'fp33'.*Did you mean 'fp32'"):
        pipeline.run_method("fp33", reference)


def test_unavailable_method_is_skipped_not_crashed(reference, tiny_bench, monkeypatch):
    monkeypatch.setattr("bgeq_utils.env.has_cuda", lambda: False)
    res = pipeline.run_method("fp32", reference, run="pytest-skip", device="cuda", bench_config=tiny_bench)
    assert res.status == "skipped" and "no CUDA" in res.reason
    assert results.load_run("pytest-skip")[0].status == "skipped"


@pytest.mark.parametrize("name", [s.name for s in methods.specs() if "cuda" in s.devices])
def test_every_cuda_method_is_skipped_without_a_gpu(reference, tiny_bench, monkeypatch, name):
    monkeypatch.setattr("bgeq_utils.env.has_cuda", lambda: False)
    res = pipeline.run_method(name, reference, run="pytest-cuda-skip", device="cuda", bench_config=tiny_bench,
                              progress=False)
    assert res.status == "skipped" and "no CUDA" in res.reason


def test_broken_method_is_recorded_as_failed(reference, tiny_bench):
    @methods.register("pytest-broken", precision="int8", library="test")
    def broken(reference, device="cpu", calibration=None, **_):
        raise ZeroDivisionError("kernel exploded")
    try:
        with pytest.warns(UserWarning, match="pytest-broken failed"):
            res = pipeline.run_method("pytest-broken", reference, run="pytest-fail", bench_config=tiny_bench)
        assert res.status == "failed" and "ZeroDivisionError: kernel exploded" in res.reason
    finally:
        methods.registry._REGISTRY.pop("pytest-broken")


def test_full_fp32_result_on_lee(reference, lee, reference_emb):
    cfg = pipeline.BenchConfig(batch_sizes=(1, 4), seq_lens=(32,), repeats=2, max_seconds=5, memory=True,
                               memory_batch=4, memory_seq=32)
    res = pipeline.run_method("fp32", reference, lee, run="pytest-lee", reference_emb=reference_emb,
                              bench_config=cfg, progress=False)
    assert res.status == "ok", res.reason
    assert res.fidelity["cos_mean"] > 0.99999 and res.fidelity["top10_overlap"] == 1.0
    assert set(metrics.QUALITY_KEYS) <= set(res.quality)
    assert 0.4 < res.quality["ndcg@10"] < 1 and 0.3 < res.quality["spearman"] < 1
    assert 85e6 < res.size["disk_bytes"] < 100e6 and res.size["param_bytes"] == pytest.approx(4 * 22_713_216, rel=0.01)
    assert [(r["batch_size"], r["seq_len"]) for r in res.speed] == [(1, 32), (4, 32)]
    assert all(r["tokens_per_s"] > 0 and 0 < r["share_of_ceiling"] <= 1 for r in res.speed)
    m = res.memory
    assert m["process"] == "fresh" and m["model_rss_bytes"] > 80e6 and m["peak_rss_bytes"] >= m["resident_rss_bytes"]
    assert res.device["cpu_model"] and res.packages["torch"]
