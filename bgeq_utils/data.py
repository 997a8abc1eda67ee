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

from . import paths

BEIR_NAMES = ("scifact", "nfcorpus", "arguana", "fiqa", "scidocs", "trec-covid", "quora", "nq", "hotpotqa",
              "msmarco", "dbpedia-entity", "fever", "climate-fever", "scifact", "webis-touche2020", "cqadupstack")
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

    def summary(self) -> dict:
        rel = sum(1 for q in self.qrels.values() for r in q.values() if r > 0)
        return {"dataset": self.name, "documents": len(self.corpus), "queries": len(self.queries),
                "judged queries": sum(1 for q in self.qrels.values() if any(r > 0 for r in q.values())),
                "relevant pairs": rel, "scored pairs": len(self.pairs)}


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
    out = {}
    if not path.is_file():
        raise DatasetFormatError(f"{path} is missing: a BEIR folder needs corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
    with path.open(encoding="utf8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise DatasetFormatError(f"{path} line {n}: not valid JSON ({e.msg}); each line must be one JSON "
                                         f"object with '_id' and 'text'") from None
            if not isinstance(obj, dict) or "_id" not in obj or "text" not in obj:
                raise DatasetFormatError(f"{path} line {n}: a {what} needs '_id' and 'text' fields, got "
                                         f"{sorted(obj) if isinstance(obj, dict) else type(obj).__name__}")
            title = (obj.get("title") or "").strip()
            out[str(obj["_id"])] = (title + " " + obj["text"]).strip() if title else obj["text"]
    if not out:
        raise DatasetFormatError(f"{path} holds no {what}s")
    return out


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise DatasetFormatError(f"{path} is missing: a BEIR folder needs qrels/<split>.tsv "
                                 "(query-id<TAB>corpus-id<TAB>score)")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf8") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            if not row or (n == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise DatasetFormatError(f"{path} line {n}: expected 3 tab-separated columns "
                                         f"(query-id, corpus-id, score), got {len(row)}")
            try:
                score = int(float(row[2]))
            except ValueError:
                raise DatasetFormatError(f"{path} line {n}: score {row[2]!r} is not a number") from None
            qrels.setdefault(row[0], {})[row[1]] = score
    if not qrels:
        raise DatasetFormatError(f"{path} holds no judgements")
    return qrels


def load_beir_folder(folder: str | Path, split: str = "test", max_docs: int | None = None,
                     max_queries: int | None = None, seed: int = 0, name: str | None = None) -> EvalSet:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetFormatError(f"{folder} is not a folder")
    corpus = _read_jsonl(folder / "corpus.jsonl", "document")
    queries = _read_jsonl(folder / "queries.jsonl", "query")
    qrels = _read_qrels(folder / "qrels" / f"{split}.tsv")
    missing_q = [q for q in qrels if q not in queries]
    if missing_q:
        raise DatasetFormatError(f"{folder/'qrels'/(split + '.tsv')}: query ids not in queries.jsonl, e.g. {missing_q[:3]}")
    qrels = {q: {d: r for d, r in rel.items() if d in corpus} for q, rel in qrels.items()}
    queries = {q: queries[q] for q in qrels}
    rng = random.Random(seed)
    notes = ""
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
    return EvalSet(name or folder.name, corpus, queries, qrels, notes=notes.strip())


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
                 split: str = "test", seed: int = 0) -> EvalSet:
    """'lee', a path to a BEIR-layout folder, or a BEIR name (downloaded once into data/beir)."""
    if dataset in (None, "", "lee"):
        return load_lee(max_docs)
    p = Path(str(dataset)).expanduser()
    if p.is_dir():
        return load_beir_folder(p, split, max_docs, max_queries, seed)
    if str(dataset).lower() in BEIR_NAMES:
        folder = download_beir(str(dataset).lower())
        return load_beir_folder(folder, split, max_docs, max_queries, seed, name=str(dataset).lower())
    raise DatasetFormatError(f"unknown dataset {dataset!r}: use 'lee' (bundled, offline), a BEIR-layout folder "
                             f"path, or a BEIR name ({', '.join(sorted(set(BEIR_NAMES)))})")


def calibration_texts(n: int | None = None, seed: int = 0) -> list[str]:
    """Unlabelled news text from lee_background.cor: disjoint from the evaluation documents."""
    lines = [line.strip() for line in (_gensim_test_data() / "lee_background.cor").read_text(encoding="latin-1").splitlines()
             if line.strip()]
    rng = random.Random(seed)
    rng.shuffle(lines)
    if n is not None and n > len(lines):
        # More than 300 requested: also use sentence-sized pieces of the same documents.
        pieces = [s.strip() + "." for doc in lines for s in doc.split(". ") if len(s.split()) > 5]
        rng.shuffle(pieces)
        lines = lines + pieces
    return lines[:n] if n is not None else lines


def benchmark_texts(n: int = 64) -> list[str]:
    """Texts for speed runs (long enough to fill 512 tokens once padded/truncated)."""
    return calibration_texts(n, seed=1)
