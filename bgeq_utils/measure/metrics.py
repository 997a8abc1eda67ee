"""Fidelity to FP32, retrieval quality and similarity quality.

Retrieval follows trec_eval / BEIR conventions (linear gain nDCG over all judged documents,
recall over documents with relevance > 0, MRR cut at 10), checked against pytrec_eval in the tests.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from bgeq_utils.core import uncertainty, vocab


def fidelity(reference: np.ndarray, other: np.ndarray, k: int = 10, intervals: bool = True) -> dict:
    """Agreement of embeddings with FP32's for the same texts; needs no labels.

    Point values at the top level; their 95% intervals (bootstrap over texts) under ``intervals``."""
    if reference.shape != other.shape:
        raise ValueError(f"embedding shapes differ: {reference.shape} vs {other.shape}")
    a = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    b = other / np.clip(np.linalg.norm(other, axis=1, keepdims=True), 1e-12, None)
    cos = np.sum(a * b, axis=1)
    l2 = np.linalg.norm(a - b, axis=1)
    out = {"cos_mean": float(cos.mean()), "cos_min": float(cos.min()), "cos_p1": float(np.percentile(cos, 1)),
           "l2_mean": float(l2.mean()), "l2_max": float(l2.max()), "n": int(len(a)),
           "nonfinite": int((~np.isfinite(other)).any(axis=1).sum())}
    iv = {}
    if intervals:
        iv["cos_mean"] = uncertainty.mean(cos, "texts")
        iv["l2_mean"] = uncertainty.mean(l2, "texts")
    if len(a) > k + 1:
        overlaps = neighbour_overlaps(a, b, k)
        out[f"top{k}_overlap"] = float(overlaps.mean())
        # How well pairwise similarities are preserved (the guide's "correlation" reading).
        iu = np.triu_indices(len(a), 1)
        out["sim_pearson"] = float(np.corrcoef((a @ a.T)[iu], (b @ b.T)[iu])[0, 1])
        if intervals:
            iv[f"top{k}_overlap"] = uncertainty.mean(overlaps, "texts")
            iv["sim_pearson"] = uncertainty.similarity_correlation(a, b)
    if iv:
        out["intervals"] = {name: e.to_dict() for name, e in iv.items()}
    return out


def neighbour_overlaps(a: np.ndarray, b: np.ndarray, k: int = 10) -> np.ndarray:
    """Per item, the share of its top-k neighbours (self excluded) that both embeddings agree on."""
    def topk(x):
        s = x @ x.T
        np.fill_diagonal(s, -np.inf)
        return np.argsort(-s, axis=1, kind="stable")[:, :k]
    ta, tb = topk(a), topk(b)
    return np.array([len(set(r1) & set(r2)) / k for r1, r2 in zip(ta, tb)])


def neighbour_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean share of each item's top-k neighbours (self excluded) that both embeddings agree on."""
    return float(neighbour_overlaps(a, b, k).mean())


def cosine_samples(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    a = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    b = other / np.clip(np.linalg.norm(other, axis=1, keepdims=True), 1e-12, None)
    return np.sum(a * b, axis=1)


def rank(query_emb: np.ndarray, doc_emb: np.ndarray, query_ids: list[str], doc_ids: list[str],
         k: int = 100, exclude_self: bool = False) -> dict[str, list[tuple[str, float]]]:
    """Top-k documents per query by cosine (embeddings are normalized), ties by doc order."""
    scores = query_emb @ doc_emb.T
    if exclude_self:
        pos = {d: i for i, d in enumerate(doc_ids)}
        for qi, q in enumerate(query_ids):
            if q in pos:
                scores[qi, pos[q]] = -np.inf
    kk = min(k, len(doc_ids))
    out = {}
    for qi, q in enumerate(query_ids):
        idx = np.argsort(-scores[qi], kind="stable")[:kk]
        out[q] = [(doc_ids[i], float(scores[qi, i])) for i in idx if np.isfinite(scores[qi, i])]
    return out


def _dcg(gains: np.ndarray) -> float:
    return float(np.sum(gains / np.log2(np.arange(2, len(gains) + 2))))


RETRIEVAL_KEYS = vocab.RETRIEVAL_KEYS


def retrieval_per_query(run: dict[str, list[tuple[str, float]]], qrels: dict[str, dict[str, int]]
                        ) -> tuple[list[str], dict[str, np.ndarray]]:
    """Per query with at least one relevant document: nDCG@10, Recall@10, Recall@100, MRR@10.

    Returns the query ids and, per metric, the values in that order (what paired tests resample)."""
    qids, per = [], {k: [] for k in RETRIEVAL_KEYS}
    for q, rel in qrels.items():
        relevant = {d for d, r in rel.items() if r > 0}
        if not relevant:
            continue
        ranked = [d for d, _ in run.get(q, [])]
        gains = np.array([max(rel.get(d, 0), 0) for d in ranked[:10]], float)
        ideal = np.sort(np.array([r for r in rel.values() if r > 0], float))[::-1][:10]
        qids.append(q)
        per["ndcg@10"].append(_dcg(gains) / _dcg(ideal))
        per["recall@10"].append(len(relevant & set(ranked[:10])) / len(relevant))
        per["recall@100"].append(len(relevant & set(ranked[:100])) / len(relevant))
        first = next((i for i, d in enumerate(ranked[:10]) if d in relevant), None)
        per["mrr@10"].append(0.0 if first is None else 1.0 / (first + 1))
    if not qids:
        raise ValueError("no query has a relevant document in qrels")
    return qids, {k: np.array(v) for k, v in per.items()}


def retrieval(run: dict[str, list[tuple[str, float]]], qrels: dict[str, dict[str, int]]) -> dict:
    """nDCG@10, Recall@10, Recall@100, MRR@10, averaged over queries with a relevant document."""
    qids, per = retrieval_per_query(run, qrels)
    return {m: float(np.mean(v)) for m, v in per.items()} | {"queries": len(qids)}


def similarity(emb_a: np.ndarray, emb_b: np.ndarray, gold: np.ndarray) -> dict:
    """Pearson and Spearman between pair cosines and human scores."""
    cos = np.sum(emb_a * emb_b, axis=1)
    return {"pearson": float(stats.pearsonr(cos, gold)[0]), "spearman": float(stats.spearmanr(cos, gold)[0]),
            "pairs": int(len(gold))}


QUALITY_KEYS = vocab.QUALITY_KEYS
