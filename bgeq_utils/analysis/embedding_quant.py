"""Quantizing the embeddings themselves: the index a user stores, in float32, int8, uint8 or binary, searched
with faiss with and without rescoring, for each model method, against FP32 model + exact float32 search.

What it measures, per (model method x output precision x rescore multiplier):

- **index bytes**: the codes faiss stores (``code_size x ntotal``: 4 n d for float32, n d for int8 / uint8,
  n d / 8 for binary) and the serialized index (codes plus faiss's header);
- **search latency per query**, one query per faiss call, timed interleaved (A B A B ...) with exact float32
  search of the same embeddings: the median with its distribution-free 95% interval, and the speed-up as the
  median of per-round ratios with its interval (``bgeq_utils.core.uncertainty``);
- **retention** of nDCG@10, Recall@10, Recall@100 and MRR@10 in % of FP32 model + float32 index, per query,
  with a paired bootstrap 95% interval and a paired randomization test (``uncertainty.relative_loss``, the
  comparison's own paired loss).

Quantization is sentence-transformers' ``quantize_embeddings`` with explicit calibration embeddings: the
int8 / uint8 ranges are the per-dimension minimum and maximum of the **corpus** embeddings, never of the
queries (a query outside them is clipped). Search: ``IndexFlatIP`` (float32), ``IndexScalarQuantizer`` with
the 8-bit *direct* codes (``QT_8bit_direct_signed`` for int8, ``QT_8bit_direct`` for uint8: the stored byte is
sentence-transformers' code itself, one byte per dimension, inner product over the codes) and
``IndexBinaryFlat`` (Hamming distance over the packed bits; binary and ubinary store the same bits).
Rescoring (sentence-transformers' ``semantic_search_faiss`` recipe): the top ``k x multiplier`` candidates of
the quantized index are re-scored by the float query against the stored vectors, int8 / uint8 dequantized with
the calibration ranges, binary unpacked to +-1, and re-ordered; ``k`` = 10, the cut-off of nDCG@10, Recall@10
and MRR@10. Recall@100 reads the same ranking, the quantized index's order beyond the rescored candidates.

Records are :class:`IndexResult` JSON files under ``outputs/<run>/results/embedding_quant/``, apart from the
model Results (``results.load_run`` and the comparison's loader read only ``results/*.json``);
``bgeq_utils.compare.embedding_storage`` shows them.
"""
from __future__ import annotations

import dataclasses
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bgeq_utils import methods as registry
from bgeq_utils.core import env, paths, results, uncertainty, vocab
from bgeq_utils.inputs import data as data_mod
from bgeq_utils.measure import pipeline, speed
from bgeq_utils.measure.metrics import RETRIEVAL_KEYS, retrieval_per_query

#: output precisions, in display order
PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")
#: bits per stored dimension
BITS = {"float32": 32, "int8": 8, "uint8": 8, "binary": 1, "ubinary": 1}
MULTIPLIERS = (1, 2, 4, 10)
#: no rescoring: the quantized index's own scores and order
NO_RESCORE = 0
#: the cut-off the rescoring serves (nDCG@10, Recall@10, MRR@10): k x multiplier candidates are rescored
TOP_K = 10
#: the depth of the ranking the metrics read (Recall@100)
DEPTH = 100
#: faiss threads while timing: one query per call, as a search service answers it
SEARCH_THREADS = 1
SCHEMA_VERSION = 1
KIND = "embedding_quant"
#: sub-folder of outputs/<run>/results/ holding the records
FOLDER = "embedding_quant"
STATUSES = results.STATUSES

#: sentence-transformers' published figures for embedding quantization (mxbai-embed-large-v1, bge-large's shape,
#: 15 MTEB retrieval tasks, from its embedding-quantization documentation): the claim notebook 08 tests
PUBLISHED = {
    "source": "sentence-transformers embedding quantization (mxbai-embed-large-v1, 15 MTEB retrieval tasks)",
    "retention_pct": {("int8", False): 97.0, ("int8", True): 99.3, ("binary", False): 92.5, ("binary", True): 96.0},
    "smaller_x": {"int8": 4.0, "binary": 32.0},
    "faster_x": {"int8": 3.7, "binary": 24.8},
}


def _quantize_embeddings():
    try:
        from sentence_transformers.util.quantization import quantize_embeddings
    except ImportError:  # sentence-transformers before util.quantization: the old (now deprecated) path
        from sentence_transformers.quantization import quantize_embeddings
    return quantize_embeddings


def check_precisions(values) -> list[str]:
    """The notebook parameter ``precisions``: each one of PRECISIONS (float32 is always measured: the baseline)."""
    listed = [values] if isinstance(values, str) else list(values or [])
    bad = [v for v in listed if v not in PRECISIONS]
    if bad or not listed:
        raise ValueError(f"precisions={values!r}: use one or more of {list(PRECISIONS)}")
    return ["float32"] + [p for p in PRECISIONS[1:] if p in listed]


def check_multipliers(values) -> list[int]:
    """The notebook parameter ``multipliers``: whole numbers >= 1 (an empty list: no rescoring measured)."""
    listed = list(values or [])
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in listed):
        raise ValueError(f"multipliers={values!r}: use whole numbers >= 1, e.g. [1, 2, 4, 10], or []")
    return sorted(set(listed))


# --- quantization -------------------------------------------------------------------------------
def ranges_of(calibration: np.ndarray) -> np.ndarray:
    """(2, dim): the per-dimension minimum and maximum of the calibration embeddings (sentence-transformers'
    int8 / uint8 ranges)."""
    c = np.asarray(calibration, np.float32)
    return np.vstack((c.min(axis=0), c.max(axis=0)))


def dequantize(codes: np.ndarray, precision: str, ranges: np.ndarray) -> np.ndarray:
    """int8 / uint8 codes back to the float coordinates of the query (bucket starts), as sentence-transformers'
    rescoring does."""
    ranges = ranges.astype(np.float32, copy=False)
    steps = (ranges[1] - ranges[0]) / 255
    steps = np.where(steps == 0, 1, steps)
    x = codes.astype(np.float32)
    if precision == "int8":
        x += 128
    return x * steps + ranges[0]


def unpack_signs(codes: np.ndarray, dim: int) -> np.ndarray:
    """Packed bits (binary: int8, ubinary: uint8) to +-1 vectors of the float dimension."""
    bits = np.unpackbits(_as_ubinary(codes), axis=-1)[..., :dim]
    return bits.astype(np.float32) * 2 - 1


def _as_ubinary(codes: np.ndarray) -> np.ndarray:
    """binary codes (packed bits - 128, int8) as the packed bytes themselves (uint8); ubinary unchanged."""
    return codes.view(np.uint8) ^ np.uint8(0x80) if codes.dtype == np.int8 else codes


@dataclass
class QuantizedCorpus:
    """A corpus's embeddings in one output precision, with what a search needs: the codes, the calibration
    ranges (int8 / uint8) and the float dimension."""
    precision: str
    codes: np.ndarray
    dim: int
    ranges: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.codes)

    def query_codes(self, queries: np.ndarray) -> np.ndarray:
        """Queries in the index's search form: float32, int8 / uint8 codes with the *corpus* ranges (clipped
        outside them) as float32, or packed bits (uint8) for the binary index."""
        q = np.asarray(queries, np.float32)
        if self.precision == "float32":
            return q
        quantize = _quantize_embeddings()
        if self.precision in ("int8", "uint8"):
            return quantize(q, precision=self.precision, ranges=self.ranges).astype(np.float32)
        return quantize(q, precision="ubinary")

    def candidates(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (any shape) as float vectors the float query is rescored against."""
        c = self.codes[ids]
        if self.precision == "float32":
            return c
        if self.precision in ("int8", "uint8"):
            return dequantize(c, self.precision, self.ranges)
        return unpack_signs(c, self.dim)


def quantize(corpus: np.ndarray, precision: str) -> QuantizedCorpus:
    """The corpus in ``precision``, by sentence-transformers' ``quantize_embeddings`` with the corpus itself as
    the calibration embeddings (the ranges never see a query)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown output precision {precision!r}; use one of {list(PRECISIONS)}")
    corpus = np.ascontiguousarray(corpus, np.float32)
    codes = _quantize_embeddings()(corpus, precision=precision, calibration_embeddings=corpus)
    return QuantizedCorpus(precision, np.ascontiguousarray(codes), corpus.shape[1],
                           ranges_of(corpus) if precision in ("int8", "uint8") else None)


# --- faiss indexes -----------------------------------------------------------------------------------
def index_kind(precision: str) -> str:
    return {"float32": "IndexFlatIP", "int8": "IndexScalarQuantizer(QT_8bit_direct_signed, inner product)",
            "uint8": "IndexScalarQuantizer(QT_8bit_direct, inner product)"}.get(precision,
                                                                                "IndexBinaryFlat (Hamming)")


def _faiss():
    """faiss, imported when an index is built (an extra: its absence is an error that says how to install it)."""
    try:
        import faiss
    except ImportError as e:
        raise ImportError(f"searching quantized embeddings needs faiss: {vocab.install_hint('faiss')}") from e
    return faiss


def build_index(qc: QuantizedCorpus):
    """The faiss index holding ``qc``'s codes exactly (one byte per int8 / uint8 code, one bit per binary one)."""
    faiss = _faiss()
    if qc.precision == "float32":
        index = faiss.IndexFlatIP(qc.dim)
        index.add(qc.codes)
    elif qc.precision in ("int8", "uint8"):
        if not hasattr(faiss.ScalarQuantizer, "QT_8bit_direct_signed"):
            raise ImportError(f"faiss {faiss.__version__} has no QT_8bit_direct_signed: pip install 'faiss-cpu>=1.8'")
        qt = (faiss.ScalarQuantizer.QT_8bit_direct_signed if qc.precision == "int8"
              else faiss.ScalarQuantizer.QT_8bit_direct)
        index = faiss.IndexScalarQuantizer(qc.dim, qt, faiss.METRIC_INNER_PRODUCT)
        index.add(qc.codes.astype(np.float32))
    else:
        bits = _as_ubinary(qc.codes)
        index = faiss.IndexBinaryFlat(bits.shape[1] * 8)
        index.add(np.ascontiguousarray(bits))
    return index


def expected_bytes(n: int, dim: int, precision: str) -> int:
    """The bytes of ``n`` vectors of ``dim`` dimensions stored in ``precision`` (binary: whole bytes per vector)."""
    if precision == "float32":
        return 4 * n * dim
    if precision in ("int8", "uint8"):
        return n * dim
    return n * ((dim + 7) // 8)


def index_bytes(index) -> int:
    """The codes an index stores: its code size times its vectors (no header)."""
    return int(index.code_size) * int(index.ntotal)


def serialized_bytes(index) -> int:
    """The index as faiss writes it to disk: codes plus header."""
    faiss = _faiss()
    ser = faiss.serialize_index_binary if isinstance(index, faiss.IndexBinary) else faiss.serialize_index
    return int(len(ser(index)))


# --- search and rescoring ---------------------------------------------------------------------------
def rescore(qc: QuantizedCorpus, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Scores of the candidates ``ids`` (nq, c) by the float queries against the stored vectors."""
    return np.einsum("ij,ikj->ik", np.asarray(queries, np.float32), qc.candidates(ids))


def _reorder(qc, queries, ids, count: int) -> np.ndarray:
    """``ids`` with its first ``count`` columns re-ordered by rescoring (stable: ties keep the index's order)."""
    if count <= 1:
        return ids
    head = ids[:, :count]
    order = np.argsort(-rescore(qc, queries, head), axis=1, kind="stable")
    return np.concatenate([np.take_along_axis(head, order, axis=1), ids[:, count:]], axis=1)


def ranking(qc: QuantizedCorpus, index, queries: np.ndarray, multiplier: int = NO_RESCORE,
            depth: int = DEPTH, exclude: np.ndarray | None = None, k: int = TOP_K) -> np.ndarray:
    """Document positions per query (nq, depth'), best first: the quantized index's order, the top
    ``k x multiplier`` re-ordered by rescoring (none when ``multiplier`` is 0 or the index is float32).
    ``exclude`` gives, per query, a document position it must never retrieve (itself, as Lee's queries are its
    documents) or -1."""
    extra = 0 if exclude is None else 1
    rescored = k * multiplier if multiplier and qc.precision != "float32" else 0
    width = min(qc.n, max(depth, rescored) + extra)
    _, ids = index.search(qc.query_codes(queries), width)
    if exclude is not None:
        keep = ids != np.asarray(exclude)[:, None]
        ids = np.array([row[m][:width - extra] for row, m in zip(ids, keep)])
    if rescored:
        ids = _reorder(qc, queries, ids, min(rescored, ids.shape[1]))
    return ids[:, :depth]


def per_query_metrics(ids: np.ndarray, query_ids: list[str], doc_ids: list[str], qrels: dict
                      ) -> tuple[list[str], dict[str, np.ndarray]]:
    """nDCG@10, Recall@10, Recall@100 and MRR@10 per judged query of a ranking (metrics.retrieval_per_query)."""
    run = {q: [(doc_ids[j], float(-r)) for r, j in enumerate(row) if j >= 0] for q, row in zip(query_ids, ids)}
    return retrieval_per_query(run, qrels)


def searcher(qc: QuantizedCorpus, index, queries: np.ndarray, multiplier: int = NO_RESCORE, k: int = TOP_K):
    """A call that answers every query, one faiss search per query (top ``k``, or ``k x multiplier`` candidates
    rescored to the top ``k``): what the latency is timed on. The queries' quantization is done beforehand, as
    sentence-transformers' benchmark does: only search and rescoring are timed."""
    codes = qc.query_codes(queries)
    rows = [codes[i:i + 1] for i in range(len(codes))]
    floats = [np.asarray(queries[i:i + 1], np.float32) for i in range(len(codes))]
    rescoring = bool(multiplier) and qc.precision != "float32"
    kk = min(qc.n, k * multiplier if rescoring else k)

    def call():
        for code, q in zip(rows, floats):
            _, ids = index.search(code, kk)
            if rescoring:
                ids = ids[:, np.argsort(-rescore(qc, q, ids)[0], kind="stable")[:k]]
        return ids
    return call


def time_searches(exact, calls: dict, n_queries: int, budget) -> dict:
    """Each configuration's latency per query (µs, median with its 95% interval) and its speed-up over exact
    float32 search, each timed in its own window alternating with ``exact`` (A B A B ..., so that neither side
    always follows the other), faiss on SEARCH_THREADS threads."""
    faiss = _faiss()

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(SEARCH_THREADS)
    out = {}
    try:
        for name, call in calls.items():
            times = speed.interleaved({"exact": exact, "method": call}, budget)
            a, b = np.asarray(times["exact"]), np.asarray(times["method"])
            out[name] = {"latency_us": uncertainty.median(b / n_queries * 1e6).to_dict(),
                         "float32_latency_us": uncertainty.median(a / n_queries * 1e6).to_dict(),
                         "faster_x": uncertainty.paired_ratio(a, b).to_dict(), "repeats": len(b),
                         "stopped": times.stopped, "queries": n_queries, "threads": SEARCH_THREADS}
    finally:
        faiss.omp_set_num_threads(threads)
    return out


# --- the record ---------------------------------------------------------------------------------------
@dataclass
class IndexResult(results.Record):
    """One (model method x output precision x rescore multiplier) of one run: index bytes, search speed and
    retention against FP32 model + exact float32 search. Filed under its key (model method + hash of every
    setting, output precision and multiplier included)."""
    run: str
    model_method: str
    output_precision: str
    rescore_multiplier: int = NO_RESCORE
    label: str = ""
    key: str = ""
    status: str = vocab.OK
    reason: str = ""
    model: dict = field(default_factory=dict)
    dataset: dict | None = None
    device: dict = field(default_factory=dict)
    packages: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    index: dict = field(default_factory=dict)       # kind, bytes, float32_bytes, smaller_x, serialized bytes
    speed: dict = field(default_factory=dict)       # latency_us, float32_latency_us, faster_x (Estimates), repeats
    quality: dict = field(default_factory=dict)     # metric means over judged queries
    retention: dict = field(default_factory=dict)   # metric -> Estimate dict (% of FP32 + float32 index)
    per_query: dict = field(default_factory=dict)   # query_ids + per-metric values
    notes: list = field(default_factory=list)
    created: str = ""
    kind: str = KIND
    schema: int = SCHEMA_VERSION

    def __post_init__(self):
        self.check_and_stamp()
        self.label = self.label or label_of(self.model_method, self.output_precision, self.rescore_multiplier)
        self.key = self.key or results.make_key(self.model_method, {}, self.settings | {
            "output_precision": self.output_precision, "rescore_multiplier": self.rescore_multiplier})



def label_of(method: str, precision: str, multiplier: int) -> str:
    """``method[out=precision]`` or ``method[out=precision,rescore=m]``: no dots, so a recorded value's name
    ``<notebook>.<label>@<device>.<metric>`` splits as the notebook-values check expects."""
    return f"{method}[out={precision}{f',rescore={multiplier}' if multiplier else ''}]"


def records_dir(run: str) -> Path:
    return paths.results_dir(run) / FOLDER


def save(rec: IndexResult, folder: str | Path | None = None) -> Path:
    """Atomic write under outputs/<run>/results/embedding_quant/ (group-readable)."""
    folder = Path(folder) if folder else records_dir(rec.run)
    return results.write_json(rec.to_dict(), folder / rec.file_name)


def load(path: str | Path) -> IndexResult:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise results.ResultsFileError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise results.ResultsFileError(f"{path} is not an embedding-quantization record")
    if data.get("schema") != SCHEMA_VERSION:
        raise results.ResultsFileError(f"{path} has schema version {data.get('schema')!r}; this bgeq reads "
                                       f"{SCHEMA_VERSION}. Rerun notebook 08 to rewrite it.")
    known = {f.name for f in dataclasses.fields(IndexResult)}
    try:
        return IndexResult(**{k: v for k, v in data.items() if k in known})
    except (TypeError, ValueError) as e:
        raise results.ResultsFileError(f"{path}: {e}") from None


def load_run(run_or_folder: str | Path) -> tuple[list[IndexResult], list[str]]:
    """The records of a run name (outputs/<run>/results/embedding_quant), of a run's results folder or of a
    folder of records; unreadable files are left out with a message."""
    p = Path(run_or_folder)
    if p.is_dir():
        folder = p / FOLDER if (p / FOLDER).is_dir() else p
    else:
        folder = records_dir(str(run_or_folder))
    out, messages = [], []
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out.append(load(f))
        except results.ResultsFileError as e:
            messages.append(f"left out {f.name}: {e}")
    return out, messages


# --- one study: every model method x output precision x multiplier -------------------------------------
def model_device(method: str, device: str) -> str:
    """Where ``method`` embeds: the study's device, or the CPU for a method that runs only there (no model speed
    is measured here, only what its embeddings retrieve)."""
    return device if vocab.device_kind(device) in registry.get(method).devices else "cpu"


def method_embeddings(method: str, study) -> dict[str, np.ndarray]:
    """Embeddings of the study's corpus and queries by ``method`` (its registry default configuration; the
    standard calibration texts when it needs some); FP32's are the run's saved reference embeddings."""
    if method == "fp32" and study.reference_emb is not None:
        return study.reference_emb
    spec = registry.get(method)
    cal = data_mod.calibration_texts(pipeline.DEFAULT_CALIBRATION) if "calibration" in spec.needs else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = registry.build(method, study.reference, device=model_device(method, study.device), calibration=cal)
    try:
        return pipeline.embed_evalset(encoder, study.evalset, study.reference.query_prompt)
    finally:
        encoder.close()


def _saturated(metric: str, documents: int) -> bool:
    """Recall@k cannot move when the corpus holds at most k documents (as the comparison rules)."""
    return metric.startswith("recall@") and documents <= int(metric.split("@")[1])


def retention(values: dict, base: dict, documents: int, cache: dict | None = None) -> dict:
    """Per metric: % of the baseline kept, ``100 - relative loss``, with the paired bootstrap 95% interval and
    the paired randomization test of ``uncertainty.relative_loss``; None where the metric cannot move."""
    cache = {} if cache is None else cache
    out = {}
    for m in RETRIEVAL_KEYS:
        if _saturated(m, documents):
            out[m] = None
            continue
        k = (m, values[m].tobytes())
        if k not in cache:
            loss = uncertainty.relative_loss(values[m], base[m], "queries")
            cache[k] = uncertainty.Estimate(
                100 - loss.value, 100 - loss.high if loss.has_interval else None,
                100 - loss.low if loss.has_interval else None, loss.n,
                "100 - relative loss; " + loss.how, loss.p_value).to_dict()
        out[m] = cache[k]
    return out


def configurations(precisions, multipliers) -> list[tuple[str, int]]:
    """(output precision, multiplier) pairs: float32 exact first (the baseline), then each other precision
    without rescoring and with each multiplier."""
    out = [("float32", NO_RESCORE)]
    for p in precisions:
        if p != "float32":
            out += [(p, NO_RESCORE)] + [(p, m) for m in multipliers]
    return out


def measure(study, model_methods=("fp32",), precisions=PRECISIONS, multipliers=MULTIPLIERS,
            seconds: float = 0.3, min_repeats: int = uncertainty.MIN_REPEATS_FOR_CI, max_repeats: int = 60,
            save_records: bool = True, verbose: bool = True) -> list[IndexResult]:
    """Every (model method x output precision x rescore multiplier) on the study's data: records saved under
    outputs/<run>/results/embedding_quant/. A model method that cannot run here is recorded as skipped with its
    reason (one record, output precision float32), one that breaks as failed; neither stops the others."""

    precisions = check_precisions(precisions)
    multipliers = check_multipliers(multipliers)
    pipeline.check_methods(list(model_methods))
    pipeline.check_numbers("search_seconds", seconds, 0.0)
    pipeline.check_counts("min_repeats", min_repeats)
    if pipeline.check_counts("max_repeats", max_repeats)[0] < min_repeats:
        raise ValueError(f"max_repeats={max_repeats} is below min_repeats={min_repeats}")
    ev, ref = study.evalset, study.reference
    budget = speed.Budget(warmup=1, min_repeats=min_repeats, max_repeats=max_repeats, seconds=seconds, target=0.03)
    doc_ids, query_ids = list(ev.corpus), list(ev.queries)
    why_no_quality = pipeline.quality_not_applicable(ref, ev)
    base_settings = {"model": ref.model_id, "weights": ref.weights, "dataset": pipeline.dataset_id(ev),
                     "device": "cpu", "device_of_model": study.device, "top_k": TOP_K, "depth": DEPTH,
                     "calibration": "corpus embeddings",
                     "search": {"seconds": seconds, "min_repeats": min_repeats, "max_repeats": max_repeats,
                                "threads": SEARCH_THREADS, "one query per call": True}}
    common = {"run": study.run, "model": ref.info(), "dataset": ev.summary(), "device": env.describe("cpu"),
              "packages": env.package_versions() | {"faiss-cpu": _faiss_version()}}
    out = []
    if not query_ids:
        for method in model_methods:
            out.append(IndexResult(model_method=method, output_precision="float32", status=vocab.SKIPPED,
                                   reason="no queries to search with (a file of your own texts)",
                                   settings=_settings(base_settings, method, study.device), **common))
        return _saved(out, save_records)
    pos = {d: i for i, d in enumerate(doc_ids)}
    exclude = np.array([pos.get(q, -1) for q in query_ids]) if ev.exclude_self else None
    base_values = None
    if why_no_quality is None:
        fp32 = method_embeddings("fp32", study)
        qc = quantize(fp32["corpus"], "float32")
        _, base_values = per_query_metrics(ranking(qc, build_index(qc), fp32["queries"], exclude=exclude),
                                           query_ids, doc_ids, ev.qrels)
    cache: dict = {}
    for method in model_methods:
        t0 = time.perf_counter()
        settings = _settings(base_settings, method, study.device)
        try:
            emb = method_embeddings(method, study)
        except registry.MethodUnavailable as e:
            out.append(IndexResult(model_method=method, output_precision="float32", status=vocab.SKIPPED,
                                   reason=str(e), settings=settings, **common))
            continue
        except Exception as e:  # recorded, not raised: one broken method must not end the study
            out.append(IndexResult(model_method=method, output_precision="float32", status=vocab.FAILED,
                                   reason=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500],
                                   settings=settings, **common))
            continue
        build_s = time.perf_counter() - t0
        corpora = {p: quantize(emb["corpus"], p) for p in precisions}
        indexes = {p: build_index(qc) for p, qc in corpora.items()}
        configs = configurations(precisions, multipliers)
        calls = {c: searcher(corpora[c[0]], indexes[c[0]], emb["queries"], c[1]) for c in configs}
        timed = time_searches(searcher(corpora["float32"], indexes["float32"], emb["queries"]), calls,
                              len(query_ids), budget)
        f32_bytes, f32_ser = index_bytes(indexes["float32"]), serialized_bytes(indexes["float32"])
        for p, m in configs:
            ix = indexes[p]
            rec = IndexResult(model_method=method, output_precision=p, rescore_multiplier=m, settings=settings,
                              **common)
            rec.index = {"kind": index_kind(p), "documents": ix.ntotal, "dim": corpora[p].dim, "bits": BITS[p],
                         "bytes": index_bytes(ix), "float32_bytes": f32_bytes,
                         "smaller_x": f32_bytes / index_bytes(ix), "serialized_bytes": serialized_bytes(ix),
                         "serialized_float32_bytes": f32_ser, "serialized_smaller_x": f32_ser / serialized_bytes(ix)}
            rec.speed = timed[(p, m)]
            if why_no_quality is None:
                ids = ranking(corpora[p], ix, emb["queries"], m, exclude=exclude)
                qids, values = per_query_metrics(ids, query_ids, doc_ids, ev.qrels)
                rec.quality = {k: float(np.mean(v)) for k, v in values.items()} | {"queries": len(qids)}
                rec.per_query = {"query_ids": qids, **{k: np.round(v, 6).tolist() for k, v in values.items()}}
                rec.retention = retention(values, base_values, len(doc_ids), cache)
            else:
                rec.notes.append(f"{why_no_quality}: {vocab.QUALITY_NOT_APPLICABLE}")
            rec.notes.append(f"model method built and embedded in {build_s:.1f}s")
            out.append(rec)
        if verbose:
            print(f"{method}: {len(configs)} index configurations measured in {time.perf_counter() - t0:.1f}s")
    return _saved(out, save_records)


def _settings(base: dict, method: str, device: str) -> dict:
    cal = pipeline.DEFAULT_CALIBRATION if "calibration" in registry.get(method).needs else None
    return base | {"model_calibration": cal, "device_of_model": model_device(method, device)}


def _saved(records: list[IndexResult], save_records: bool) -> list[IndexResult]:
    if save_records:
        for r in records:
            save(r)
    return records


def _faiss_version() -> str | None:
    try:
        faiss = _faiss()
        return faiss.__version__
    except ImportError:  # pragma: no cover
        return None
