"""Evaluation sets (retrieval + scored pairs) and calibration texts.

Sources: ``lee`` (human-scored Lee corpus shipped in the gensim wheel, the offline default), a
BEIR-layout folder given by path, a BEIR name (downloaded into data/beir/<name> once, then read
from that same folder offline), or a file of your own texts without labels (``.txt``: one text per line;
``.jsonl``: one JSON text per line), which gives fidelity, speed and memory but no quality. See
data/README.md for the exact Lee construction.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
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
#: suffixes of a file of your own texts (no labels): what load_evalset reads as such, any letter case
TEXT_SUFFIXES = (".txt", ".jsonl")
DATASET_FORMS = ("'lee' (bundled, offline), a BEIR-layout folder path, a BEIR name ({names}), or a file of your "
                 "own texts: .txt (one text per line) or .jsonl (one JSON object with a string \"text\" per line)")


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
    has_labels: bool = True                     # False: your own texts only (no queries, judgements or scores)
    blank_skipped: int = 0                      # blank lines (and empty JSONL texts) a texts file skipped
    fingerprint: str = ""                       # sha1 of an unlabelled set's ids and texts: part of its identity

    def summary(self) -> dict:
        if not self.has_labels:
            return self._texts_summary()
        rel = sum(1 for q in self.qrels.values() for r in q.values() if r > 0)
        out = {"dataset": self.name, "documents": len(self.corpus), "queries": len(self.queries),
               "judged queries": sum(1 for q in self.qrels.values() if any(r > 0 for r in q.values())),
               "relevant pairs": rel, "scored pairs": len(self.pairs)}
        if self.dropped_judgements:
            out["judgements dropped (document not in corpus)"] = self.dropped_judgements
            out["queries left without a relevant document"] = self.queries_without_relevant
        return out

    def _texts_summary(self) -> dict:
        """Count and token-free lengths (characters, whitespace-separated words) of a set of texts."""
        texts = list(self.corpus.values())
        out = {"dataset": self.name, "labels": "none (your texts): quality not applicable", "texts": len(texts),
               "blank lines or texts skipped": self.blank_skipped}
        for unit, lengths in (("characters", [len(t) for t in texts]), ("words", [len(t.split()) for t in texts])):
            a = np.asarray(lengths, dtype=float)
            out |= {f"{unit} median": float(np.median(a)), f"{unit} p95": round(float(np.percentile(a, 95)), 1),
                    f"{unit} max": int(a.max())}
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


# --- your own texts, without labels --------------------------------------------------------------------
def _forms() -> str:
    return DATASET_FORMS.format(names=", ".join(sorted(set(BEIR_NAMES))))


def _text_lines(path: Path):
    """(line number, line) of a UTF-8 file, split on newlines only (CRLF tolerated, a leading BOM dropped)."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            raw = raw[:-1] if raw.endswith(b"\n") else raw
            raw = raw[:-1] if raw.endswith(b"\r") else raw
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DatasetFormatError(f"{path} line {n}: not UTF-8 ({e.reason} at byte {e.start} of the line); "
                                         "save the file as UTF-8") from None


def _bad_span(v: str) -> tuple[int, int]:
    i = next(i for i, c in enumerate(v) if 0xD800 <= ord(c) <= 0xDFFF)
    return max(0, i - 10), i + 10


_JSONL_FORM = 'each line must be a JSON object with a string "text" (and optionally "_id" or "id"), or a JSON string'


def _read_texts_jsonl(path: Path) -> tuple[dict[str, str], int]:
    """(id -> text, blank lines and empty texts skipped) of a JSONL of texts; a malformed line names itself."""
    out, first_line, blank = {}, {}, 0
    for n, line in _text_lines(path):
        if not line.strip():
            blank += 1
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise DatasetFormatError(f"{path} line {n}: not valid JSON ({getattr(e, 'msg', e)}); "
                                     f"{_JSONL_FORM}") from None
        key = None
        if isinstance(obj, dict):
            if "text" not in obj:
                raise DatasetFormatError(f'{path} line {n}: no "text" field (fields: {sorted(obj)}); {_JSONL_FORM}')
            text = obj["text"]
            if not isinstance(text, str):
                raise DatasetFormatError(f'{path} line {n}: "text" must be a string, got {type(text).__name__} '
                                         f"({json.dumps(text)[:40]}); {_JSONL_FORM}")
            field_ = "_id" if "_id" in obj else "id" if "id" in obj else None
            if field_ is not None:
                v = obj[field_]
                if not isinstance(v, (str, int)) or isinstance(v, bool) or str(v) == "":
                    raise DatasetFormatError(f'{path} line {n}: "{field_}" must be a non-empty string or a whole '
                                             f"number, got {json.dumps(v)[:40]}; or leave it out")
                key = str(v)
        elif isinstance(obj, str):
            text = obj
        else:
            raise DatasetFormatError(f"{path} line {n}: got a JSON {type(obj).__name__}; {_JSONL_FORM}")
        for what, v in (("text", text), ("id", key or "")):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise DatasetFormatError(f'{path} line {n}: the {what} holds an unpaired surrogate escape '
                                         f'({json.dumps(v[slice(*_bad_span(v))])}), which is no character; fix or '
                                         "remove it") from None
        if not text.strip():
            blank += 1
            continue
        key = key if key is not None else f"L{n}"
        if key in first_line:
            raise DatasetFormatError(f"{path} line {n}: duplicate id {key!r} (first on line {first_line[key]}); "
                                     "give each text its own id, or leave the ids out")
        first_line[key] = n
        out[key] = text
    return out, blank


def _read_texts_txt(path: Path) -> tuple[dict[str, str], int]:
    """(id "L<line>" -> the line as written, blank lines skipped) of a file with one text per line."""
    out, blank = {}, 0
    for n, line in _text_lines(path):
        if line.strip():
            out[f"L{n}"] = line
        else:
            blank += 1
    return out, blank


def load_texts(path: str | Path, max_docs: int | None = None, name: str | None = None) -> EvalSet:
    """Your own texts, without labels: a ``.txt`` file (one text per line, kept as written) or a ``.jsonl`` file
    (each line a JSON object with a string ``"text"`` and optionally ``"_id"`` or ``"id"``, other fields
    ignored; or a bare JSON string). UTF-8, a leading BOM tolerated; blank lines (and empty JSONL texts) are
    skipped and counted. Ids: the given ones, else ``L<line number>``.

    The EvalSet holds the texts as its corpus, no queries, judgements or scored pairs, and ``has_labels``
    False: a method gets fidelity to FP32 on these texts, its speed is timed on them, and its quality is not
    applicable. ``max_docs`` keeps the first texts in file order. Any malformed line is a DatasetFormatError
    naming the file, the line and the fix."""
    path = Path(path).expanduser()
    kind = path.suffix.lower()
    if kind not in TEXT_SUFFIXES:
        raise DatasetFormatError(f"{path}: a file of texts must end in {' or '.join(TEXT_SUFFIXES)} "
                                 "(.txt: one text per line; .jsonl: one JSON text per line)")
    if not path.is_file():
        raise DatasetFormatError(f"{path} does not exist: dataset takes {_forms()}")
    corpus, blank = (_read_texts_jsonl if kind == ".jsonl" else _read_texts_txt)(path)
    what, skipped = (("one text per line", ("blank line", "blank lines")) if kind == ".txt" else
                     ('one JSON object with a string "text" per line',
                      ("blank line or empty text", "blank lines or empty texts")))
    skipped = skipped[blank != 1]
    if not corpus:
        found = f"{blank} {skipped} only" if blank else "the file is empty"
        raise DatasetFormatError(f"{path} holds no texts ({found}): put {what}")
    notes = [f"your own texts from {path.name}, without labels"]
    if blank:
        notes.append(f"{blank} {skipped} skipped")
    if max_docs and len(corpus) > max_docs:
        notes.append(f"the first {max_docs} of {len(corpus)} texts kept (max_docs)")
        corpus = dict(list(corpus.items())[:max_docs])
    digest = hashlib.sha1()
    for k, t in corpus.items():
        digest.update(k.encode() + b"\0" + t.encode() + b"\0")
    return EvalSet(name or path.name, corpus, {}, {}, notes="; ".join(notes), has_labels=False, blank_skipped=blank,
                   fingerprint=digest.hexdigest()[:12])


def load_evalset(dataset: str = "lee", max_docs: int | None = None, max_queries: int | None = None,
                 split: str = "test", seed: int = 0, strict: bool = False) -> EvalSet:
    """'lee', a path to a BEIR-layout folder, a BEIR name (downloaded once into data/beir), or a path to an
    existing file of your own texts ending in .txt or .jsonl (see :func:`load_texts`; no labels)."""
    for name, v in (("max_docs", max_docs), ("max_queries", max_queries)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ValueError(f"{name}={v!r}: use a positive whole number, or None for all")
    if dataset in (None, "", "lee"):
        return load_lee(max_docs)
    forms = _forms()
    p = Path(str(dataset)).expanduser()
    if p.is_dir():
        return load_beir_folder(p, split, max_docs, max_queries, seed, strict=strict)
    if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES:
        return load_texts(p, max_docs)
    if str(dataset).lower() in BEIR_NAMES:
        folder = download_beir(str(dataset).lower())
        return load_beir_folder(folder, split, max_docs, max_queries, seed, name=str(dataset).lower(), strict=strict)
    if p.is_file():
        raise DatasetFormatError(f"{dataset!r} is a file but not a file of texts (it must end in "
                                 f"{' or '.join(TEXT_SUFFIXES)}): dataset takes {forms}")
    if p.suffix.lower() in TEXT_SUFFIXES or "/" in str(dataset) or str(dataset).startswith((".", "~")):
        raise DatasetFormatError(f"{dataset!r} does not exist (looked for {p.absolute()}): dataset takes {forms}")
    raise DatasetFormatError(f"unknown dataset {dataset!r}: use {forms}")


def calibration_texts(n: int | None = None, seed: int = 0) -> list[str]:
    """Unlabelled news text from lee_background.cor: disjoint from the evaluation documents.

    These stay the calibration texts when the data set is a file of your own texts, on purpose: on such a set
    the figures that judge a method are fidelity to FP32 *on those same texts*, and a static method calibrated
    on the texts it is then scored on would look better than it is (the calibration ranges would be fitted to
    exactly the activations being compared). Keeping them also keeps a Result's calibration identity (the
    number ``n``) and key the same across data sets. To calibrate on your own domain, pass a list of texts
    held out from the evaluation file as ``calibration=[...]`` (its hash is recorded); :func:`check_calibration`
    refuses calibration texts that are also evaluation texts."""
    lines = _background_documents()
    rng = random.Random(seed)
    rng.shuffle(lines)
    if n is not None and n > len(lines):
        # More than 300 requested: also use sentence-sized pieces of the same documents.
        pieces = _sentences(lines)
        rng.shuffle(pieces)
        lines = lines + pieces
    return lines[:n] if n is not None else lines


def _background_documents() -> list[str]:
    text = (_gensim_test_data() / "lee_background.cor").read_text(encoding="latin-1")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _sentences(docs: list[str]) -> list[str]:
    return [s.strip() + "." for doc in docs for s in doc.split(". ") if len(s.split()) > 5]


def sentence_texts(n: int = 32, seed: int = 2) -> list[str]:
    """Sentence-sized texts of lee_background (6 to about 60 words): lengths vary, so batching them pads,
    which is what a batch-invariance check needs (whole documents all fill a 128-token window)."""
    pieces = _sentences(_background_documents())
    random.Random(seed).shuffle(pieces)
    return pieces[:n]


def background_corpus(max_texts: int | None = None) -> list[str]:
    """lee_background's 300 news documents in file order (45 to 620 words): a corpus of real lengths for
    corpus throughput."""
    docs = _background_documents()
    return docs[:max_texts] if max_texts else docs


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
