
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgeq_utils.inputs import data
from tests.factories import write_beir as _write_beir


def test_lee_construction(lee):
    assert len(lee.corpus) == 50 and len(lee.pairs) == 1225 and lee.pair_scores.shape == (1225,)
    assert lee.exclude_self and lee.symmetric
    q0 = lee.qrels["lee00"]
    assert "lee00" not in q0 and len(q0) == 49
    assert set(data.lee_grade(s) for s in lee.pair_scores) == {0, 1, 2}
    # grades follow the thresholds documented in data/README.md
    assert data.lee_grade(0.75) == 2 and data.lee_grade(0.5) == 1 and data.lee_grade(0.49) == 0


def test_calibration_texts_are_not_evaluation_documents(lee):
    cal = data.calibration_texts()
    assert len(cal) == 300
    assert not set(cal) & set(lee.corpus.values())
    assert data.calibration_texts(16, seed=0) == data.calibration_texts(16, seed=0)
    assert len(data.calibration_texts(512)) == 512


def test_beir_folder_loads(tmp_path):
    ev = data.load_evalset(str(_write_beir(tmp_path / "mini")))
    assert ev.corpus["d1"] == "Cats Cats purr." and ev.corpus["d3"] == "Fish swim."
    assert ev.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}} and not ev.exclude_self


def test_beir_bad_json_names_file_and_line(tmp_path):
    f = _write_beir(tmp_path / "bad")
    (f / "corpus.jsonl").write_text('{"_id": "d1", "text": "ok"}\n{not json\n')
    with pytest.raises(data.DatasetFormatError, match=r"corpus.jsonl line 2: not valid JSON"):
        data.load_evalset(str(f))


def test_beir_missing_fields_and_files(tmp_path):
    f = _write_beir(tmp_path / "nofield")
    (f / "queries.jsonl").write_text('{"_id": "q1"}\n')
    with pytest.raises(data.DatasetFormatError, match=r"queries.jsonl line 1: a query needs '_id' and 'text'"):
        data.load_evalset(str(f))
    g = _write_beir(tmp_path / "noqrels")
    (g / "qrels" / "test.tsv").unlink()
    with pytest.raises(data.DatasetFormatError, match=r"qrels/test.tsv is missing"):
        data.load_evalset(str(g))
    h = _write_beir(tmp_path / "badqrels", qrels="q1\td1\n")
    with pytest.raises(data.DatasetFormatError, match=r"test.tsv line 1: expected 3 tab-separated columns"):
        data.load_evalset(str(h))


def test_beir_name_reads_downloaded_folder(tmp_path, monkeypatch):
    """A BEIR name resolves to data/beir/<name>, the folder a download unpacks into."""
    monkeypatch.setenv("BGEQ_DATA", str(tmp_path))
    _write_beir(tmp_path / "beir" / "scifact")
    ev = data.load_evalset("scifact")
    assert ev.name == "scifact" and len(ev.corpus) == 3


def test_unknown_dataset_message():
    with pytest.raises(data.DatasetFormatError, match="unknown dataset 'nope'.*'lee'"):
        data.load_evalset("nope")


def test_max_docs_keeps_judged_documents(tmp_path):
    corpus = [{"_id": f"d{i}", "text": f"doc {i}"} for i in range(30)]
    f = _write_beir(tmp_path / "big", corpus=corpus, qrels="q1\td7\t1\nq2\td21\t1\n")
    ev = data.load_evalset(str(f), max_docs=10)
    assert len(ev.corpus) == 10 and {"d7", "d21"} <= set(ev.corpus)
    assert "higher than on the full corpus" in ev.notes


# --- bad input: a clear error naming file and line, or a counted, reported drop ---------------------
@pytest.mark.parametrize("score", ["0.5", "1.7", "-1", "high"])
def test_qrels_scores_must_be_whole_grades(tmp_path, score):
    f = _write_beir(tmp_path / "s", qrels=f"query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t{score}\n")
    with pytest.raises(data.DatasetFormatError, match=rf"test.tsv line 3: score '{score}' is not a relevance grade"):
        data.load_evalset(str(f))


def test_judgements_of_unknown_documents_are_counted_and_strict_refuses_them(tmp_path):
    f = _write_beir(tmp_path / "u", qrels="q1\td1\t1\nq1\tghost\t1\nq2\tgone\t2\n")
    ev = data.load_evalset(str(f))
    s = ev.summary()
    assert s["judgements dropped (document not in corpus)"] == 2 and s["queries left without a relevant document"] == 1
    assert "2 judgements of 2 document ids missing from corpus.jsonl dropped" in ev.notes
    with pytest.raises(data.DatasetFormatError,
                       match=r"2 judged document ids are not in corpus.jsonl, e.g. \['ghost', 'gone'\]"):
        data.load_evalset(str(f), strict=True)
    g = _write_beir(tmp_path / "all", qrels="q1\tghost\t1\n")
    with pytest.raises(data.DatasetFormatError, match=r"no query keeps a relevant document: every judged document id "
                                                      r"is missing from corpus.jsonl \(e.g. \['ghost'\]\)"):
        data.load_evalset(str(g))


def test_duplicate_ids_non_utf8_and_non_string_texts_name_the_line(tmp_path):
    f = _write_beir(tmp_path / "dup", corpus=[{"_id": "d1", "text": "a"}, {"_id": "d2", "text": "b"},
                                             {"_id": "d1", "text": "c"}])
    with pytest.raises(data.DatasetFormatError, match=r"corpus.jsonl line 3: duplicate _id 'd1' \(first on line 1\)"):
        data.load_evalset(str(f))
    g = _write_beir(tmp_path / "bytes")
    (g / "corpus.jsonl").write_bytes(b'{"_id": "d1", "text": "ok"}\n{"_id": "d2", "text": "caf\xe9"}\n')
    with pytest.raises(data.DatasetFormatError, match=r"corpus.jsonl line 2: not UTF-8"):
        data.load_evalset(str(g))
    for bad, shown in ((None, "NoneType"), (3, "int")):
        h = _write_beir(tmp_path / f"t{shown}", corpus=[{"_id": "d1", "text": "ok"}, {"_id": "d2", "text": bad}])
        with pytest.raises(data.DatasetFormatError,
                           match=rf"corpus.jsonl line 2: 'text' must be a string, got {shown}"):
            data.load_evalset(str(h))


def test_judged_twice_is_an_error(tmp_path):
    f = _write_beir(tmp_path / "twice", qrels="q1\td1\t1\nq1\td1\t2\n")
    with pytest.raises(data.DatasetFormatError, match=r"line 2: query 'q1' and document 'd1' are judged twice"):
        data.load_evalset(str(f))


ids = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=8)
texts = st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and "\n" not in t and "\r" not in t)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def beir_sets(draw):
    doc_ids = draw(st.lists(ids, min_size=1, max_size=8, unique=True))
    docs = {d: draw(texts) for d in doc_ids}
    query_ids = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    queries = {q: draw(texts) for q in query_ids}
    qrels = {}
    for q in query_ids:
        judged = draw(st.lists(st.sampled_from(doc_ids), min_size=1, max_size=len(doc_ids), unique=True))
        qrels[q] = {d: draw(st.integers(0, 3)) for d in judged}
        qrels[q][judged[0]] = draw(st.integers(1, 3))       # at least one relevant document per query
    return docs, queries, qrels


def _write(folder, docs, queries, qrels):
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": t}) + "\n" for d, t in docs.items()),
                                         encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n"
                                                  for q, t in queries.items()), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{r}\n" for q, rel in qrels.items() for d, r in rel.items()), encoding="utf-8")
    return folder


@SETTINGS
@given(beir_sets())
def test_any_accepted_beir_folder_round_trips(tmp_path_factory, case):
    docs, queries, qrels = case
    ev = data.load_evalset(str(_write(tmp_path_factory.mktemp("beir"), docs, queries, qrels)))
    assert ev.corpus == docs and ev.queries == queries and ev.qrels == qrels


BAD_LINES = [
    ("corpus.jsonl", '{"_id": "x"'),                      # not JSON
    ("corpus.jsonl", '["_id", "text"]'),                  # not an object
    ("corpus.jsonl", '{"_id": "x", "text": null}'),       # text not a string
    ("corpus.jsonl", '{"text": "no id"}'),                # no _id
    ("queries.jsonl", '{"_id": "q", "text": 5}'),
    ("qrels/test.tsv", "q\td\t0.5"),                       # not a grade
    ("qrels/test.tsv", "q\td"),                            # too few columns
]


@SETTINGS
@given(beir_sets(), st.sampled_from(BAD_LINES), st.integers(0, 5))
def test_any_malformed_line_is_named(tmp_path_factory, case, bad, where):
    docs, queries, qrels = case
    folder = _write(tmp_path_factory.mktemp("bad"), docs, queries, qrels)
    name, line = bad
    path = folder / name
    lines = path.read_text(encoding="utf-8").splitlines()
    at = min(where, len(lines)) if not name.endswith(".tsv") else min(max(1, where), len(lines))
    lines.insert(at, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        data.load_evalset(str(folder))
    except data.DatasetFormatError as e:
        assert f"line {at + 1}" in str(e) and name.split("/")[-1] in str(e)
    else:
        raise AssertionError(f"{name} with {line!r} at line {at + 1} was accepted")
