"""Your own texts without labels (.txt, .jsonl): what loads, what each malformed line says, and a round trip."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgeq_utils.inputs import data
from tests.factories import write_beir

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _write(folder, name: str, content: str | bytes):
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_a_txt_file_is_one_text_per_line(tmp_path):
    f = _write(tmp_path, "texts.txt", b"\xef\xbb\xbfThe cat sat.\r\n\r\n  Dogs bark at night.  \n   \nRain.")
    ev = data.load_evalset(str(f))
    assert ev.corpus == {"L1": "The cat sat.", "L3": "  Dogs bark at night.  ", "L5": "Rain."}
    assert not ev.has_labels and ev.queries == {} and ev.qrels == {} and ev.pairs == [] and ev.name == "texts.txt"
    s = ev.summary()
    assert s["texts"] == 3 and s["blank lines or texts skipped"] == 2 and "not applicable" in s["labels"]
    assert s["characters median"] == 12 and s["characters max"] == 23 and s["words max"] == 4
    assert s["characters median"] <= s["characters p95"] <= s["characters max"]
    assert "2 blank lines skipped" in ev.notes
    json.dumps(s)                                    # the summary goes into every Result as it is


def test_a_jsonl_file_takes_objects_or_bare_strings(tmp_path):
    lines = ['{"_id": "a", "text": "first", "lang": "en"}', '"a bare string"', "", '{"id": 7, "text": "seventh"}',
             '{"text": "no id here"}', '{"text": "   "}', '{"_id": "b", "id": "ignored", "text": "underscore wins"}']
    ev = data.load_evalset(str(_write(tmp_path, "t.JSONL", "\n".join(lines) + "\n")))
    assert ev.corpus == {"a": "first", "L2": "a bare string", "7": "seventh", "L5": "no id here",
                         "b": "underscore wins"}
    assert ev.blank_skipped == 2 and "2 blank lines or empty texts skipped" in ev.notes and not ev.has_labels


def test_max_docs_keeps_the_first_texts_and_the_fingerprint_follows_the_content(tmp_path):
    f = _write(tmp_path, "many.txt", "".join(f"text number {i}\n" for i in range(30)))
    ev = data.load_evalset(str(f), max_docs=5)
    assert list(ev.corpus.values()) == [f"text number {i}" for i in range(5)] and ev.summary()["texts"] == 5
    assert "the first 5 of 30 texts kept" in ev.notes
    same = data.load_evalset(str(_write(tmp_path / "..", "many.txt", f.read_text())), max_docs=5)
    other = data.load_evalset(str(_write(tmp_path, "other.txt", "".join(f"text {i}\n" for i in range(5)))))
    assert same.fingerprint == ev.fingerprint != other.fingerprint and len(ev.fingerprint) == 12


def test_a_folder_stays_a_beir_folder_even_with_a_texts_suffix(tmp_path):
    ev = data.load_evalset(str(write_beir(tmp_path / "corpus.txt")))
    assert ev.has_labels and ev.qrels and ev.summary()["documents"] == 3


@pytest.mark.parametrize("given_, message", [
    ("missing.txt", r"'missing.txt' does not exist \(looked for .*missing.txt\): dataset takes 'lee'.*\.txt "
                    r"\(one text per line\) or \.jsonl"),
    ("some/folder", r"'some/folder' does not exist .*a BEIR-layout folder path.*\.jsonl"),
    ("texts.csv", r"'.*texts.csv' is a file but not a file of texts \(it must end in \.txt or \.jsonl\)"),
    ("nope", r"unknown dataset 'nope': use 'lee'.*a BEIR name \(arguana.*or a file of your own texts"),
])
def test_an_unusable_dataset_names_the_accepted_forms(tmp_path, monkeypatch, given_, message):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "texts.csv", "a,b\n")
    with pytest.raises(data.DatasetFormatError, match=message):
        data.load_evalset(given_)


BAD = [  # file, content, what the error says (after "<file> line N: " where a line is named)
    ("t.txt", b"fine\ncaf\xe9 au lait\n",
     r"t.txt line 2: not UTF-8 \(invalid continuation byte at byte 3 of the line\); save the file as UTF-8"),
    ("t.jsonl", b'"fine"\n{"text": "caf\xe9"}\n', r"t.jsonl line 2: not UTF-8 .*save the file as UTF-8"),
    ("t.jsonl", '"ok"\n\n{"text": "x"\n', r't.jsonl line 3: not valid JSON \(Expecting .*\); each line must be a '
                                          r'JSON object with a string "text" \(and optionally "_id" or "id"\), or a '
                                          r'JSON string'),
    ("t.jsonl", '{"body": "x", "_id": "a"}\n', r't.jsonl line 1: no "text" field \(fields: \[\'_id\', \'body\'\]\); '
                                               r'each line must be'),
    ("t.jsonl", '"ok"\n{"text": 5}\n', r't.jsonl line 2: "text" must be a string, got int \(5\); each line must be'),
    ("t.jsonl", '{"text": null}\n', r't.jsonl line 1: "text" must be a string, got NoneType \(null\)'),
    ("t.jsonl", '{"text": ["a"]}\n', r't.jsonl line 1: "text" must be a string, got list \(\["a"\]\)'),
    ("t.jsonl", '"ok"\n3.5\n', r"t.jsonl line 2: got a JSON float; each line must be a JSON object"),
    ("t.jsonl", '["a", "b"]\n', r"t.jsonl line 1: got a JSON list; each line must be"),
    ("t.jsonl", '{"_id": true, "text": "x"}\n', r't.jsonl line 1: "_id" must be a non-empty string or a whole number, '
                                                r'got true; or leave it out'),
    ("t.jsonl", '{"id": "", "text": "x"}\n', r't.jsonl line 1: "id" must be a non-empty string .* got ""'),
    ("t.jsonl", '{"_id": "a", "text": "x"}\n{"_id": "b", "text": "y"}\n{"_id": "a", "text": "z"}\n',
     r"t.jsonl line 3: duplicate id 'a' \(first on line 1\); give each text its own id, or leave the ids out"),
    ("t.jsonl", '{"_id": 1, "text": "x"}\n{"_id": "1", "text": "y"}\n',
     r"line 2: duplicate id '1' \(first on line 1\)"),
    ("t.jsonl", '{"_id": "L2", "text": "x"}\n"no id: L2"\n', r"line 2: duplicate id 'L2' \(first on line 1\)"),
    ("t.jsonl", '{"text": "bad \\ud800 half"}\n', r't.jsonl line 1: the text holds an unpaired surrogate escape'),
    ("t.txt", b"", r"t.txt holds no texts \(the file is empty\): put one text per line"),
    ("t.txt", b"\n  \n\t\n", r"t.txt holds no texts \(3 blank lines only\): put one text per line"),
    ("t.jsonl", b'\xef\xbb\xbf{"text": ""}\n', r't.jsonl holds no texts \(1 blank line or empty text only\): put one '
                                              r'JSON object with a string "text" per line'),
]


@pytest.mark.parametrize("name, content, message", BAD, ids=[f"{i}-{b[0]}" for i, b in enumerate(BAD)])
def test_each_malformed_file_is_an_error_naming_file_line_and_fix(tmp_path, name, content, message):
    f = _write(tmp_path, name, content)
    with pytest.raises(data.DatasetFormatError, match=message):
        data.load_evalset(str(f))


def test_the_standard_calibration_texts_stay_and_overlap_is_refused(tmp_path):
    cal = data.calibration_texts(4)
    ev = data.load_evalset(str(_write(tmp_path, "mine.txt", "\n".join(["my own text", cal[2]]) + "\n")))
    with pytest.raises(ValueError, match=r"1 calibration texts are also evaluation texts of 'mine.txt'"):
        data.check_calibration(ev, 4)
    data.check_calibration(data.load_evalset(str(_write(tmp_path, "other.txt", "only mine\n"))), 4)


# --- property: whatever list of single-line texts is written, it loads back exactly ---------------------
texts = st.text(min_size=1, max_size=40).filter(
    lambda t: t.strip() and "\n" not in t and "\r" not in t and not t.startswith("\ufeff"))


@SETTINGS
@given(items=st.lists(texts, min_size=1, max_size=12), bom=st.booleans(), crlf=st.booleans())
def test_any_texts_written_as_txt_load_back_exactly(tmp_path_factory, items, bom, crlf):
    body = ("\r\n" if crlf else "\n").join(items) + ("\r\n" if crlf else "\n")
    f = tmp_path_factory.mktemp("txt") / "texts.txt"
    f.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body.encode("utf-8"))
    ev = data.load_evalset(str(f))
    assert list(ev.corpus.values()) == items and ev.blank_skipped == 0 and ev.summary()["texts"] == len(items)


@SETTINGS
@given(items=st.lists(texts, min_size=1, max_size=12), form=st.sampled_from(["bare", "object", "_id", "id"]),
       ascii_only=st.booleans())
def test_any_texts_written_as_jsonl_load_back_exactly(tmp_path_factory, items, form, ascii_only):
    rows = [t if form == "bare" else {"text": t} if form == "object" else {form: f"doc-{i}", "text": t}
            for i, t in enumerate(items)]
    f = tmp_path_factory.mktemp("jsonl") / "texts.jsonl"
    f.write_text("".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in rows), encoding="utf-8")
    ev = data.load_evalset(str(f))
    assert list(ev.corpus.values()) == items
    if form in ("_id", "id"):
        assert list(ev.corpus) == [f"doc-{i}" for i in range(len(items))]


BAD_JSONL_LINES = ['{"text": "x"', '{"_id": "q"}', '{"text": 5}', "17", "null", '{"_id": false, "text": "x"}']


@SETTINGS
@given(items=st.lists(texts, min_size=1, max_size=8), bad=st.sampled_from(BAD_JSONL_LINES), where=st.integers(0, 8))
def test_any_malformed_jsonl_line_is_named(tmp_path_factory, items, bad, where):
    lines = [json.dumps({"text": t}) for t in items]
    at = min(where, len(lines))
    lines.insert(at, bad)
    f = tmp_path_factory.mktemp("badjsonl") / "texts.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(data.DatasetFormatError, match=rf"texts.jsonl line {at + 1}: "):
        data.load_evalset(str(f))
