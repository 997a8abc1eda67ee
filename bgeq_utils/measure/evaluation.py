"""Embedding an evaluation set and scoring it: quality against its labels, fidelity against the FP32
reference, and the reference's own embeddings (computed once per run and saved)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bgeq_utils import methods as registry
from bgeq_utils.core import paths
from bgeq_utils.measure import metrics


def embed_evalset(encoder, evalset, query_prompt: str | None = None, batch_size: int = 32,
                  progress: bool = False) -> dict[str, np.ndarray]:
    out = {"corpus": encoder.encode(list(evalset.corpus.values()), batch_size, progress=progress)}
    if not evalset.queries:                 # a file of your own texts: no queries
        out["queries"] = np.zeros((0, out["corpus"].shape[1]), out["corpus"].dtype)
    elif evalset.symmetric:
        out["queries"] = out["corpus"] if list(evalset.queries) == list(evalset.corpus) else \
            encoder.encode(list(evalset.queries.values()), batch_size)
    else:
        out["queries"] = encoder.encode(list(evalset.queries.values()), batch_size, prompt=query_prompt)
    return out


def quality(emb: dict[str, np.ndarray], evalset) -> tuple[dict, dict]:
    """(aggregate metrics, per-query values): means over judged queries, correlations over scored pairs.

    The per-query values (and the pair cosines) are what paired intervals and tests resample."""
    ranked = metrics.rank(emb["queries"], emb["corpus"], list(evalset.queries), list(evalset.corpus),
                          k=100, exclude_self=evalset.exclude_self)
    qids, per = metrics.retrieval_per_query(ranked, evalset.qrels)
    q = {m: float(np.mean(v)) for m, v in per.items()} | {"queries": len(qids)}
    per_query = {"query_ids": qids, **{m: np.round(v, 6).tolist() for m, v in per.items()}}
    if evalset.pairs:
        index = {t: i for i, t in enumerate(evalset.corpus.values())}
        docs = np.array([(index[x], index[y]) for x, y in evalset.pairs])
        cos = np.sum(emb["corpus"][docs[:, 0]] * emb["corpus"][docs[:, 1]], axis=1)
        q |= metrics.similarity(emb["corpus"][docs[:, 0]], emb["corpus"][docs[:, 1]], evalset.pair_scores)
        per_query |= {"pair_cosines": np.round(cos, 7).tolist(),
                      "pair_gold": np.asarray(evalset.pair_scores, float).tolist(),
                      "pair_docs": docs.tolist()}
    return q, per_query


def fidelity(emb: dict, ref_emb: dict, keep: int = 2000) -> dict:
    a = np.concatenate([ref_emb["corpus"]] + ([] if ref_emb["queries"] is ref_emb["corpus"] else [ref_emb["queries"]]))
    b = np.concatenate([emb["corpus"]] + ([] if emb["queries"] is emb["corpus"] else [emb["queries"]]))
    f = metrics.fidelity(a, b)
    f["cosines"] = np.round(metrics.cosine_samples(a, b)[:keep], 6).tolist()
    return f


def embeddings_file(run: str, evalset) -> Path:
    """A file of texts is named with its fingerprint too: two files of one name never share embeddings."""
    fp = getattr(evalset, "fingerprint", "")
    return paths.embeddings_dir(run) / f"fp32__{evalset.name}{'-' + fp if fp else ''}.npz"


def reference_embeddings(reference, evalset, run: str = "default", batch_size: int = 32,
                         recompute: bool = False) -> dict[str, np.ndarray]:
    """FP32 embeddings of the evaluation texts: saved by 01, reused by every later notebook."""
    f = embeddings_file(run, evalset)
    ids = np.array(list(evalset.corpus) + ["|"] + list(evalset.queries))
    if f.is_file() and not recompute:
        z = np.load(f, allow_pickle=False)
        if z["ids"].shape == ids.shape and (z["ids"] == ids).all() and str(z["model"]) == reference.model_id:
            out = {"corpus": z["corpus"], "queries": z["queries"]}
            if evalset.symmetric and np.array_equal(out["corpus"], out["queries"]):
                out["queries"] = out["corpus"]
            return out
    enc = registry.build("fp32", reference, device=str(next(reference.model.parameters()).device))
    emb = embed_evalset(enc, evalset, reference.query_prompt, batch_size)
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp.npz")
    np.savez(tmp, corpus=emb["corpus"], queries=emb["queries"], ids=ids, model=reference.model_id)
    tmp.replace(f)
    return emb
