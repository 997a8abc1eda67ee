"""Result records as the pipeline writes them, built without running a model: one place for every test."""
from __future__ import annotations

import json

import numpy as np

from bgeq_utils.core.results import Result
from bgeq_utils.core.uncertainty import Estimate

MINI = {"id": "sentence-transformers/all-MiniLM-L6-v2", "parameters": 22_713_216, "weights": "pretrained",
        "preset": None}
BGE = {"id": "BAAI/bge-large-en-v1.5", "parameters": 335_141_888, "weights": "random", "preset": "bge-large"}
N_QUERIES = 48
_rng = np.random.default_rng(0)
#: FP32's per-query values on a synthetic 48-query set, and its pair cosines / human scores / documents
BASE_PER_QUERY = {k: np.round(_rng.uniform(0.3, 1.0, N_QUERIES), 6) for k in ("ndcg@10", "recall@10", "mrr@10")}
BASE_PER_QUERY["recall@100"] = np.ones(N_QUERIES)
_DOCS = np.array([(i, j) for i in range(12) for j in range(i + 1, 12)])
PAIR_GOLD = np.round(_rng.uniform(0, 1, len(_DOCS)), 4)
BASE_PAIR_COS = np.round(PAIR_GOLD + _rng.normal(0, 0.25, len(_DOCS)), 6)


def _est(x, how="test") -> dict | None:
    if x is None:
        return None
    if isinstance(x, tuple):
        v, lo, hi = x
        return Estimate(v, lo, hi, 6, how).to_dict()
    return Estimate(x, x, x, 6, how).to_dict()


def _scaled(x, f):
    return tuple(float(v) * f for v in x) if isinstance(x, tuple) else float(x) * f


def per_query(loss_pct: float = 0.0, changed: int | None = None, seed: int = 1) -> tuple[dict, dict]:
    """(quality, per_query) of a method losing ``loss_pct`` % on every metric: on every query when ``changed``
    is None (an interval of width ~0), else concentrated on ``changed`` random queries (a wide interval)."""
    rng = np.random.default_rng(seed)
    pq = {"query_ids": [f"q{i}" for i in range(N_QUERIES)]}
    for k, base in BASE_PER_QUERY.items():
        v = base.copy()
        if k != "recall@100" and loss_pct:
            if changed is None:
                v = v * (1 - loss_pct / 100)
            else:
                idx = rng.choice(N_QUERIES, changed, replace=False)
                v[idx] -= loss_pct / 100 * base.sum() / changed
        pq[k] = np.round(v, 6).tolist()
    # a uniform loss scales the pair cosines (ranks, hence Spearman, unchanged); a concentrated one adds noise
    noisy = loss_pct and changed is not None
    cos = BASE_PAIR_COS * (1 - loss_pct / 100) + (rng.normal(0, 0.02, len(BASE_PAIR_COS)) if noisy else 0)
    pq |= {"pair_cosines": np.round(cos, 6).tolist(), "pair_gold": PAIR_GOLD.tolist(), "pair_docs": _DOCS.tolist()}
    from scipy import stats
    q = {k: float(np.mean(pq[k])) for k in BASE_PER_QUERY} | {
        "spearman": float(stats.spearmanr(cos, PAIR_GOLD)[0]), "pearson": float(stats.pearsonr(cos, PAIR_GOLD)[0])}
    return q, pq


def result(method: str, precision: str | None = None, *, label: str | None = None, run: str = "synthetic",
           model: dict = MINI, device: str = "cpu", options: dict | None = None, is_default: bool | None = None,
           runtime: str = "torch", library: str = "test", status: str = "ok", reason: str = "",
           disk_mb: float | None = None, param_mb: float | None = None, mem_mb=None, resident_mb=None,
           tps: float = 1000.0, speed=None, speed_runtime=None, runtime_baseline: str = "fp32",
           loss_pct: float | None = None, changed: int | None = None, cos=None, l2=None, sim=None,
           batch: int = 32, seq: int = 128, created: str = "", dataset: str = "lee", extra: dict | None = None,
           seed: int = 1, notes: list | None = None) -> Result:
    """A Result with the given figures; speed/cos/mem may be a value (exact) or (value, low, high)."""
    precision = precision or {"fp32": "fp32"}.get(method, method.split("-")[0])
    dev = {"kind": device, "cpu_model": "Test CPU", "cpu_count": 2, "cpu_flags": ["avx2"]}
    if device == "cuda":
        dev["gpu_name"] = "Test GPU"
    options = options or {}
    r = Result(run=run, method=method, label=label or method, precision=precision, library=library, runtime=runtime,
               is_default=(not options) if is_default is None else is_default, status=status, reason=reason,
               model=dict(model), device=dev, options=options, created=created,
               dataset={"dataset": dataset, "documents": 50}, settings={"device": device, "model": model["id"]},
               extra=dict(extra or {}), notes=list(notes or []))
    if status != "ok":
        return r
    r.size = {k: v * 1e6 for k, v in (("disk_bytes", disk_mb), ("param_bytes", param_mb)) if v}
    if mem_mb is not None:
        res = resident_mb if resident_mb is not None else _scaled(mem_mb, 0.8)
        r.memory = {"peak": _est(_scaled(mem_mb, 1e6)), "resident": _est(_scaled(res, 1e6))}
    if method == "fp32" and speed is None:
        speed = 1.0
    if speed is not None:
        row = {"batch_size": batch, "seq_len": seq, "tokens_per_s": tps, "sentences_per_s": tps / seq, "repeats": 6,
               "latency_ms_p50": 10.0, "latency_ms_p95": 12.0,
               "vs_eager": {"baseline": "fp32", **_est(speed)},
               "vs_runtime": {"baseline": runtime_baseline, **_est(speed_runtime if speed_runtime is not None
                                                                    else speed)}}
        r.speed = [row]
    if loss_pct is not None and model.get("weights") != "random":
        r.quality, r.per_query = per_query(loss_pct, changed, seed)
    if cos is not None:
        c = _est(cos)
        r.fidelity = {"cos_mean": c["value"], "cos_min": c["value"] - 0.01,
                      "l2_mean": l2 if l2 is not None else (2 - 2 * c["value"]) ** 0.5,
                      "top10_overlap": 0.9, "sim_pearson": sim if sim is not None else c["value"],
                      "cosines": [c["value"]] * 5, "intervals": {"cos_mean": c}}
    return r


def fp32(**kw) -> Result:
    kw.setdefault("disk_mb", 91.0)
    kw.setdefault("mem_mb", 250.0)
    kw.setdefault("loss_pct", 0.0)
    kw.setdefault("cos", 1.0)
    return result("fp32", "fp32", **kw)


def write_beir(folder, corpus=None, queries=None, qrels=None):
    """A BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) with the given contents."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    corpus = corpus or [{"_id": "d1", "title": "Cats", "text": "Cats purr."}, {"_id": "d2", "text": "Dogs bark."},
                        {"_id": "d3", "title": "", "text": "Fish swim."}]
    queries = queries or [{"_id": "q1", "text": "what purrs"}, {"_id": "q2", "text": "what barks"}]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus) + "\n")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (folder / "qrels" / "test.tsv").write_text(qrels or "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n")
    return folder


#: the note the pipeline writes on a Result measured on a file of texts without labels
NO_LABELS_NOTE = "no labels: quality is not applicable"


def unlabelled(method: str, precision: str | None = None, *, dataset: str = "my-texts.txt", **kw) -> Result:
    """A Result measured on a file of your own texts: no quality, the pipeline's note saying why."""
    kw.setdefault("loss_pct", None)
    kw["notes"] = [*(kw.get("notes") or []), NO_LABELS_NOTE]
    kw["extra"] = {"speed_texts": {"source": f"dataset {dataset}", "texts": 50}, **(kw.get("extra") or {})}
    if method == "fp32":
        kw.setdefault("disk_mb", 91.0)
        kw.setdefault("mem_mb", 250.0)
        kw.setdefault("cos", 1.0)
    return result(method, precision, dataset=dataset, **kw)


def lee_known_items(folder, documents: int = 24, queries: int = 12):
    """A BEIR-layout folder of real text: the first ``documents`` Lee documents, each without its first sentence,
    and, as the query of each of the first ``queries`` of them, that first sentence (relevant: its document)."""
    from bgeq_utils.inputs import data
    docs = list(data.load_lee(documents).corpus.values())
    heads = [d.split(". ", 1) for d in docs]
    corpus = [{"_id": f"d{i}", "text": h[1] if len(h) > 1 else h[0]} for i, h in enumerate(heads)]
    asked = [{"_id": f"q{i}", "text": heads[i][0] + "."} for i in range(queries)]
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(queries))
    return write_beir(folder, corpus, asked, qrels)


def index_result(method: str = "fp32", precision: str = "float32", multiplier: int = 0, *, run: str = "synthetic",
                 retention=100.0, faster=1.0, status: str = "ok", reason: str = "", documents: int = 50,
                 dim: int = 384):
    """A notebook-08 record (embedding_quant.IndexResult) with the given figures; retention / faster may be a
    value (exact) or (value, low, high)."""
    from bgeq_utils.analysis import embedding_quant as eq
    rec = eq.IndexResult(run=run, model_method=method, output_precision=precision, rescore_multiplier=multiplier,
                         status=status, reason=reason, model=dict(MINI),
                         dataset={"dataset": "lee", "documents": documents, "queries": documents},
                         device={"kind": "cpu", "cpu_model": "Test CPU", "cpu_count": 2, "cpu_flags": ["avx2"]},
                         settings={"model": MINI["id"], "dataset": "lee"})
    if status != "ok":
        return rec
    b, f = eq.expected_bytes(documents, dim, precision), eq.expected_bytes(documents, dim, "float32")
    rec.index = {"kind": eq.index_kind(precision), "documents": documents, "dim": dim, "bits": eq.BITS[precision],
                 "bytes": b, "float32_bytes": f, "smaller_x": f / b, "serialized_bytes": b + 40,
                 "serialized_float32_bytes": f + 40, "serialized_smaller_x": (f + 40) / (b + 40)}
    fv, rv = (x[0] if isinstance(x, tuple) else x for x in (faster, retention))
    rec.speed = {"latency_us": _est(4.0 / fv), "float32_latency_us": _est(4.0), "faster_x": _est(faster),
                 "repeats": 6, "queries": documents}
    rec.quality = {"ndcg@10": 0.7 * rv / 100}
    rec.retention = {"ndcg@10": _est(retention), "recall@10": _est(retention), "mrr@10": _est(retention),
                     "recall@100": None}
    return rec
