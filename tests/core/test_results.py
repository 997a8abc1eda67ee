import json
import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgeq_utils.core import results
from bgeq_utils.core.results import Result


def test_roundtrip_and_atomic_write(tmp_path):
    r = Result(run="t", method="fp32", quality={"ndcg@10": 0.5}, device={"kind": "cpu"})
    p = results.save(r, tmp_path)
    assert p.name == f"{r.key}__cpu.json" and r.key.startswith("fp32-") and not list(tmp_path.glob(".tmp-*"))
    assert results.load(p) == r
    assert [x.method for x in results.load_run(tmp_path)] == ["fp32"]
    assert oct(os.stat(p).st_mode & 0o777) == "0o644"          # group-readable: Results are shared


def test_the_key_not_the_label_names_the_file(tmp_path):
    a = Result(run="t", method="int4-onnx", label="int4 b32", options={"block_size": 32})
    b = Result(run="t", method="int4-onnx", label="int4/b32", options={"block_size": 128})
    assert a.key != b.key
    results.save(a, tmp_path), results.save(b, tmp_path)
    assert len(results.load_run(tmp_path)) == 2               # a variant never overwrites another
    same = Result(run="t", method="int4-onnx", label="other words", options={"block_size": 32})
    assert same.key == a.key                                   # the same configuration is the same Result


def test_key_holds_every_setting_that_changes_a_figure():
    k = results.make_key("fp32", {}, {"model": "m", "bench": {"batch_sizes": [1, 32]}})
    assert k != results.make_key("fp32", {}, {"model": "m", "bench": {"batch_sizes": [1, 8]}})
    assert k != results.make_key("fp32", {}, {"model": "n", "bench": {"batch_sizes": [1, 32]}})
    assert k == results.make_key("fp32", {}, {"bench": {"batch_sizes": [1, 32]}, "model": "m"})


def test_a_failed_rerun_never_replaces_a_good_result(tmp_path):
    good = Result(run="t", method="fp32", quality={"ndcg@10": 0.7}, settings={"x": 1})
    p = results.save(good, tmp_path)
    bad = Result(run="t", method="fp32", status="failed", reason="KeyError: boom", settings={"x": 1})
    q = results.save(bad, tmp_path)
    assert q != p and q.parent.name == "attempts"
    assert results.load(p).status == "ok"
    assert results.latest_attempt(good, tmp_path).reason == "KeyError: boom"
    assert [r.status for r in results.load_run(tmp_path)] == ["ok"]


def test_corrupt_file_names_itself(tmp_path):
    good = results.save(Result(run="t", method="fp32"), tmp_path)
    bad = tmp_path / "broken__cpu.json"
    bad.write_text('{"method": "fp32", "sche')
    with pytest.raises(results.ResultsFileError, match="broken__cpu.json is not valid JSON"):
        results.load_run(tmp_path)
    assert [r.method for r in results.load_run(tmp_path, strict=False)] == ["fp32"]
    assert good.is_file()  # nothing already written is lost


def test_old_schema_is_rejected(tmp_path):
    p = tmp_path / "old__cpu.json"
    d = Result(run="t", method="fp32").to_dict()
    d["schema"] = 1
    p.write_text(json.dumps(d))
    with pytest.raises(results.ResultsFileError, match="schema version 1"):
        results.load(p)


def test_status_is_validated():
    with pytest.raises(ValueError, match="status"):
        Result(run="t", method="x", status="great")


def test_failed_write_keeps_previous_file(tmp_path):
    r = Result(run="t", method="fp32", quality={"a": 1})
    p = results.save(r, tmp_path)
    r.extra["bad"] = object()  # not serializable
    with pytest.raises(TypeError):
        results.save(r, tmp_path)
    assert results.load(p).quality == {"a": 1} and not list(tmp_path.glob(".tmp-*"))


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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
