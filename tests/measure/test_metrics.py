"""Metrics against independent oracles: pytrec_eval (trec_eval) and ranx on the same runs."""
import numpy as np
import pytest
import pytrec_eval

from bgeq_utils.measure import metrics


def _random_case(seed, n_q=12, n_d=150):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n_q, 16))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    d = rng.normal(size=(n_d, 16))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    qids = [f"q{i}" for i in range(n_q)]
    dids = [f"d{i:03d}" for i in range(n_d)]
    qrels = {}
    for qi in qids:
        judged = rng.choice(n_d, size=int(rng.integers(1, 15)), replace=False)
        qrels[qi] = {dids[j]: int(rng.integers(0, 3)) for j in judged}
        qrels[qi][dids[judged[0]]] = max(1, qrels[qi][dids[judged[0]]])  # at least one relevant
    return q, d, qids, dids, qrels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_matches_pytrec_eval(seed):
    q, d, qids, dids, qrels = _random_case(seed)
    run = metrics.rank(q, d, qids, dids, k=100)
    ours = metrics.retrieval(run, qrels)
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10", "recall.100"})
    scores = ev.evaluate({qq: {doc: s for doc, s in docs} for qq, docs in run.items()})
    oracle_ndcg = np.mean([v["ndcg_cut_10"] for v in scores.values()])
    oracle_r10 = np.mean([v["recall_10"] for v in scores.values()])
    oracle_r100 = np.mean([v["recall_100"] for v in scores.values()])
    assert ours["ndcg@10"] == pytest.approx(oracle_ndcg, abs=1e-9)
    assert ours["recall@10"] == pytest.approx(oracle_r10, abs=1e-9)
    assert ours["recall@100"] == pytest.approx(oracle_r100, abs=1e-9)


@pytest.mark.parametrize("seed", [3, 4])
def test_mrr_matches_ranx(seed):
    from ranx import Qrels, Run, evaluate
    q, d, qids, dids, qrels = _random_case(seed)
    run = metrics.rank(q, d, qids, dids, k=100)
    ours = metrics.retrieval(run, qrels)
    oracle = evaluate(Qrels({k: {dd: r for dd, r in v.items() if r > 0} for k, v in qrels.items()}),
                      Run({qq: {doc: s for doc, s in docs} for qq, docs in run.items()}), ["mrr@10", "ndcg@10"])
    assert ours["mrr@10"] == pytest.approx(oracle["mrr@10"], abs=1e-9)


def test_exclude_self_drops_own_document():
    e = np.eye(4, dtype=np.float32)
    ids = ["a", "b", "c", "d"]
    run = metrics.rank(e, e, ids, ids, exclude_self=True)
    assert all(q not in [d for d, _ in docs] for q, docs in run.items())


def test_fidelity_identical_and_perturbed():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 32)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    same = metrics.fidelity(a, a.copy())
    assert same["cos_mean"] == pytest.approx(1.0, abs=1e-6) and same["top10_overlap"] == 1.0
    noisy = metrics.fidelity(a, a + rng.normal(scale=0.3, size=a.shape).astype(np.float32))
    assert noisy["cos_mean"] < 0.99 and noisy["l2_mean"] > 0.1 and noisy["top10_overlap"] < 1.0
    assert noisy["cos_min"] <= noisy["cos_p1"] <= noisy["cos_mean"]
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.fidelity(a, a[:5])


def test_similarity_against_scipy():
    from scipy import stats
    rng = np.random.default_rng(1)
    a = rng.normal(size=(30, 8))
    b = rng.normal(size=(30, 8))
    gold = rng.random(30)
    s = metrics.similarity(a, b, gold)
    cos = (a * b).sum(1)
    assert s["pearson"] == pytest.approx(stats.pearsonr(cos, gold)[0])
    assert s["spearman"] == pytest.approx(stats.spearmanr(cos, gold)[0])


def test_retrieval_needs_a_relevant_document():
    with pytest.raises(ValueError, match="no query has a relevant"):
        metrics.retrieval({"q": [("d", 1.0)]}, {"q": {"d": 0}})
