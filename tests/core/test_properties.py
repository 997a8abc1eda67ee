"""Property-based tests: whatever the BEIR loader accepts round-trips exactly, whatever it refuses names the
line; a Result survives its own JSON."""
import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgeq_utils.core import results
from bgeq_utils.core.results import Result
from bgeq_utils.inputs import data

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


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
jsonable = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | finite | st.text(max_size=10),
                        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                        max_leaves=8)


@SETTINGS
@given(method=st.sampled_from(["fp32", "int8-dynamic-onnx", "nf4-bnb"]),
       options=st.dictionaries(st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6), jsonable, max_size=3),
       quality=st.dictionaries(st.sampled_from(["ndcg@10", "mrr@10", "spearman"]), finite, max_size=3),
       extra=st.dictionaries(st.text(max_size=6), jsonable, max_size=3),
       status=st.sampled_from(["ok", "skipped", "failed"]))
def test_a_result_round_trips_through_its_file(tmp_path_factory, method, options, quality, extra, status):
    r = Result(run="prop", method=method, options=options, quality=quality, extra=extra, status=status,
               settings={"device": "cpu"}, device={"kind": "cpu"})
    folder = tmp_path_factory.mktemp("res")
    back = results.load(results.save(r, folder))
    assert back == r and back.key == r.key
