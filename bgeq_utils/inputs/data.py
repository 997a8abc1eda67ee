"""Evaluation sets (retrieval + scored pairs) and calibration texts.

Sources: ``lee`` (human-scored Lee corpus shipped in the gensim wheel, the offline default), a
BEIR-layout folder given by path, or a BEIR name (downloaded into data/beir/<name> once, then read
from that same folder offline). See data/README.md for the exact Lee construction.
"""
from __future__ import annotations

import csv
import json
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bgeq_utils.core import paths

BEIR_NAMES = ("scifact", "nfcorpus", "arguana", "fiqa", "scidocs", "trec-covid", "quora", "nq", "hotpotqa",
              "msmarco", "dbpedia-entity", "fever", "climate-fever", "webis-touche2020", "cqadupstack")
BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
# Lee relevance grades from the averaged human similarity (0..1): see data/README.md.
LEE_GRADES = ((0.75, 2), (0.5, 1))


class DatasetFormatError(ValueError):
    """A dataset folder or file does not have the expected layout; the message names file and line."""


@dataclass
class EvalSet:
    name: str
    corpus: dict[str, str]                      # doc id -> text (title + " " + text for BEIR)
    queries: dict[str, str]                     # query id -> text
    qrels: dict[str, dict[str, int]]            # query id -> doc id -> graded relevance
    pairs: list[tuple[str, str]] = field(default_factory=list)   # scored text pairs
    pair_scores: np.ndarray | None = None       # human scores of the pairs
    exclude_self: bool = False                  # a query never retrieves the doc with its own id
    symmetric: bool = False                     # queries are documents: no query instruction
    notes: str = ""
    dropped_judgements: int = 0                 # qrels rows whose document is not in the corpus
    queries_without_relevant: int = 0           # queries that lost every relevant document that way

    def summary(self) -> dict:
        rel = sum(1 for q in self.qrels.values() for r in q.values() if r > 0)
        out = {"dataset": self.name, "documents": len(self.corpus), "queries": len(self.queries),
               "judged queries": sum(1 for q in self.qrels.values() if any(r > 0 for r in q.values())),
               "relevant pairs": rel, "scored pairs": len(self.pairs)}
        if self.dropped_judgements:
            out["judgements dropped (document not in corpus)"] = self.dropped_judgements
            out["queries left without a relevant document"] = self.queries_without_relevant
        return out


def _gensim_test_data() -> Path:
    """gensim's test_data folder, found without importing gensim (only its data files are read)."""
    import importlib.util
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the Lee corpus ships in the 'gensim' package: pip install gensim")
    return Path(list(spec.submodule_search_locations)[0]) / "test" / "test_data"


def lee_grade(score: float) -> int:
    for threshold, grade in LEE_GRADES:
        if score >= threshold:
            return grade
    return 0


def load_lee(max_docs: int | None = None) -> EvalSet:
    """Lee et al. (2005): 50 news documents, every pair scored by humans (averaged, 0..1)."""
    d = _gensim_test_data()
    docs = [line.strip() for line in (d / "lee.cor").read_text(encoding="latin-1").splitlines() if line.strip()]
    sims = np.loadtxt(d / "similarities0-1.txt")
    if len(docs) != sims.shape[0]:
        raise DatasetFormatError(f"{d/'lee.cor'} has {len(docs)} documents but the similarity matrix is {sims.shape}")
    n = min(len(docs), max_docs or len(docs))
    ids = [f"lee{i:02d}" for i in range(n)]
    corpus = dict(zip(ids, docs[:n]))
    # Scores are filled in the upper triangle only.
    iu = np.triu_indices(n, 1)
    pairs = [(docs[i], docs[j]) for i, j in zip(*iu)]
    scores = sims[:n, :n][iu].astype(np.float64)
    qrels = {}
    for i in range(n):
        row = {}
        for j in range(n):
            if i != j:
                s = sims[min(i, j), max(i, j)]
                row[ids[j]] = lee_grade(s)
        qrels[ids[i]] = row
    return EvalSet("lee", corpus, dict(corpus), qrels, pairs, scores, exclude_self=True, symmetric=True,
                   notes="each document queries the other 49; grade 2 if human similarity >= 0.75, "
                         "1 if >= 0.5, else 0; pairs: the 1225 human-scored document pairs")


def _read_jsonl(path: Path, what: str) -> dict[str, str]:
    """id -> text (title + " " + text) of a BEIR jsonl file; every malformed line is an error naming it."""
    out, first_line = {}, {}
    if not path.is_file():
        raise DatasetFormatError(f"{path} is missing: a BEIR folder needs corpus.jsonl, queries.jsonl and "
                                 "qrels/<split>.tsv")
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DatasetFormatError(f"{path} line {n}: not UTF-8 ({e.reason} at byte {e.start} of the line); "
                                         "save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise DatasetFormatError(f"{path} line {n}: not valid JSON ({getattr(e, 'msg', e)}); each line must be "
                                         "one JSON object with '_id' and 'text'") from None
            if not isinstance(obj, dict) or "_id" not in obj or "text" not in obj:
                raise DatasetFormatError(f"{path} line {n}: a {what} needs '_id' and 'text' fields, got "
                                         f"{sorted(obj) if isinstance(obj, dict) else type(obj).__name__}")
            for field in ("text", "title"):
                v = obj.get(field)
                if (field == "text" or v is not None) and not isinstance(v, str):
                    raise DatasetFormatError(f"{path} line {n}: '{field}' must be a string, got "
                                             f"{type(v).__name__} ({json.dumps(v)[:40]})")
            if not isinstance(obj["_id"], (str, int)) or isinstance(obj["_id"], bool) or str(obj["_id"]) == "":
                raise DatasetFormatError(f"{path} line {n}: '_id' must be a non-empty string, got {obj['_id']!r}")
            key = str(obj["_id"])
            if key in first_line:
                raise DatasetFormatError(f"{path} line {n}: duplicate _id {key!r} (first on line {first_line[key]}); "
                                         f"each {what} needs its own id")
            first_line[key] = n
            title = (obj.get("title") or "").strip()
            out[key] = (title + " " + obj["text"]).strip() if title else obj["text"]
    if not out:
        raise DatasetFormatError(f"{path} holds no {what}s")
    return out


def _grade(value: str, path: Path, n: int) -> int:
    try:
        f = float(value)
    except ValueError:
        f = float("nan")
    if not (f == f and f.is_integer() and f >= 0):
        raise DatasetFormatError(f"{path} line {n}: score {value!r} is not a relevance grade; grades are whole "
                                 "numbers >= 0 (0 = not relevant, 1, 2, ... = relevant)")
    return int(f)


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise DatasetFormatError(f"{path} is missing: a BEIR folder needs qrels/<split>.tsv "
                                 "(query-id<TAB>corpus-id<TAB>score)")
    qrels: dict[str, dict[str, int]] = {}
    where: dict[tuple, int] = {}
    try:
        rows = list(enumerate(csv.reader(path.read_text(encoding="utf-8").splitlines(), delimiter="\t"), 1))
    except UnicodeDecodeError as e:
        line = path.read_bytes()[:e.start].count(b"\n") + 1
        raise DatasetFormatError(f"{path} line {line}: not UTF-8 ({e.reason}); save the file as UTF-8") from None
    for n, row in rows:
        if not row or (n == 1 and row[0] == "query-id"):
            continue
        if len(row) < 3:
            raise DatasetFormatError(f"{path} line {n}: expected 3 tab-separated columns "
                                     f"(query-id, corpus-id, score), got {len(row)}")
        score = _grade(row[2], path, n)
        k = (row[0], row[1])
        if k in where:
            raise DatasetFormatError(f"{path} line {n}: query {row[0]!r} and document {row[1]!r} are judged twice "
                                     f"(first on line {where[k]})")
        where[k] = n
        qrels.setdefault(row[0], {})[row[1]] = score
    if not qrels:
        raise DatasetFormatError(f"{path} holds no judgements")
    return qrels


def load_beir_folder(folder: str | Path, split: str = "test", max_docs: int | None = None,
                     max_queries: int | None = None, seed: int = 0, name: str | None = None,
                     strict: bool = False) -> EvalSet:
    """A BEIR-layout folder. Judgements of documents the corpus lacks are dropped and counted (the EvalSet's
    summary and every Result report them); ``strict=True`` makes them an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetFormatError(f"{folder} is not a folder")
    corpus = _read_jsonl(folder / "corpus.jsonl", "document")
    queries = _read_jsonl(folder / "queries.jsonl", "query")
    qpath = folder / "qrels" / f"{split}.tsv"
    qrels = _read_qrels(qpath)
    missing_q = [q for q in qrels if q not in queries]
    if missing_q:
        raise DatasetFormatError(f"{qpath}: query ids not in queries.jsonl, e.g. {missing_q[:3]}")
    unknown = sorted({d for rel in qrels.values() for d in rel if d not in corpus})
    if unknown and strict:
        raise DatasetFormatError(f"{qpath}: {len(unknown)} judged document id{'s are' if len(unknown) > 1 else ' is'} "
                                 f"not in corpus.jsonl, e.g. "
                                 f"{unknown[:3]}; fix the ids, or load with strict=False to drop those judgements")
    kept = {q: {d: r for d, r in rel.items() if d in corpus} for q, rel in qrels.items()}
    dropped = sum(len(rel) for rel in qrels.values()) - sum(len(rel) for rel in kept.values())
    emptied = sorted(q for q in qrels if any(r > 0 for r in qrels[q].values())
                     and not any(r > 0 for r in kept[q].values()))
    if not any(r > 0 for rel in kept.values() for r in rel.values()):
        raise DatasetFormatError(f"{qpath}: no query keeps a relevant document: "
                                 + (f"every judged document id is missing from corpus.jsonl (e.g. {unknown[:3]})"
                                    if unknown else "every grade is 0"))
    qrels = kept
    queries = {q: queries[q] for q in qrels}
    rng = random.Random(seed)
    notes = ""
    if dropped:
        notes += (f"{dropped} judgements of {len(unknown)} document ids missing from corpus.jsonl dropped; "
                  f"{len(emptied)} queries left without a relevant document. ")
    if max_queries and len(queries) > max_queries:
        keep = sorted(rng.sample(sorted(queries), max_queries))
        queries = {q: queries[q] for q in keep}
        qrels = {q: qrels[q] for q in keep}
        notes += f"{max_queries} queries sampled (seed {seed}). "
    if max_docs and len(corpus) > max_docs:
        # Keep every judged document, fill up with random others: metrics are optimistic vs the full corpus.
        judged = {d for rel in qrels.values() for d in rel}
        others = sorted(set(corpus) - judged)
        fill = rng.sample(others, max(0, min(len(others), max_docs - len(judged))))
        keep = set(judged) | set(fill)
        corpus = {d: t for d, t in corpus.items() if d in keep}
        notes += (f"corpus cut to {len(corpus)} documents (all judged + random others): scores are "
                  "higher than on the full corpus. ")
    ev = EvalSet(name or folder.name, corpus, queries, qrels, notes=notes.strip())
    ev.dropped_judgements, ev.queries_without_relevant = dropped, len(emptied)
    return ev


def download_beir(name: str, root: str | Path | None = None) -> Path:
    """Download a BEIR data set into ``data/beir/<name>`` (the layout load_beir_folder reads)."""
    import urllib.request

    root = Path(root) if root else paths.beir_dir()
    target = root / name
    if (target / "corpus.jsonl").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    zpath = root / f"{name}.zip.partial"
    try:
        urllib.request.urlretrieve(BEIR_URL.format(name=name), zpath)
        with zipfile.ZipFile(zpath) as z:
            z.extractall(root)
    except Exception as e:
        raise FileNotFoundError(
            f"BEIR data set {name!r} is not in {target} and could not be downloaded ({type(e).__name__}: {e}). "
            f"Offline, use dataset='lee' (bundled) or put a BEIR-layout folder (corpus.jsonl, queries.jsonl, "
            f"qrels/test.tsv) at {target}.") from e
    finally:
        zpath.unlink(missing_ok=True)
    return target


def load_evalset(dataset: str = "lee", max_docs: int | None = None, max_queries: int | None = None,
                 split: str = "test", seed: int = 0, strict: bool = False) -> EvalSet:
    """'lee', a path to a BEIR-layout folder, or a BEIR name (downloaded once into data/beir)."""
    for name, v in (("max_docs", max_docs), ("max_queries", max_queries)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ValueError(f"{name}={v!r}: use a positive whole number, or None for all")
    if dataset in (None, "", "lee"):
        return load_lee(max_docs)
    p = Path(str(dataset)).expanduser()
    if p.is_dir():
        return load_beir_folder(p, split, max_docs, max_queries, seed, strict=strict)
    if str(dataset).lower() in BEIR_NAMES:
        folder = download_beir(str(dataset).lower())
        return load_beir_folder(folder, split, max_docs, max_queries, seed, name=str(dataset).lower(), strict=strict)
    raise DatasetFormatError(f"unknown dataset {dataset!r}: use 'lee' (bundled, offline), a BEIR-layout folder "
                             f"path, or a BEIR name ({', '.join(sorted(set(BEIR_NAMES)))})")


def calibration_texts(n: int | None = None, seed: int = 0) -> list[str]:
    """Unlabelled news text from lee_background.cor: disjoint from the evaluation documents."""
    text = (_gensim_test_data() / "lee_background.cor").read_text(encoding="latin-1")
    lines = [line.strip() for line in text.splitlines()
             if line.strip()]
    rng = random.Random(seed)
    rng.shuffle(lines)
    if n is not None and n > len(lines):
        # More than 300 requested: also use sentence-sized pieces of the same documents.
        pieces = [s.strip() + "." for doc in lines for s in doc.split(". ") if len(s.split()) > 5]
        rng.shuffle(pieces)
        lines = lines + pieces
    return lines[:n] if n is not None else lines


def check_calibration(evalset: EvalSet, n: int) -> None:
    """The first ``n`` calibration texts share none with the evaluation texts: a method calibrated on what it
    is scored on would look better than it is."""
    shared = set(calibration_texts(n)) & (set(evalset.corpus.values()) | set(evalset.queries.values()))
    if shared:
        raise ValueError(f"{len(shared)} calibration texts are also evaluation texts of {evalset.name!r}; "
                         "calibrate on other texts")


def benchmark_texts(n: int = 64) -> list[str]:
    """Texts for speed runs (long enough to fill 512 tokens once padded/truncated)."""
    return calibration_texts(n, seed=1)
