import json

import pytest

from bgeq_utils import results
from bgeq_utils.results import Result


def test_roundtrip_and_atomic_write(tmp_path):
    r = Result(run="t", method="fp32", quality={"ndcg@10": 0.5}, device={"kind": "cpu"})
    p = results.save(r, tmp_path)
    assert p.name == "fp32__cpu.json" and not list(tmp_path.glob(".tmp-*"))
    back = results.load(p)
    assert back == r
    assert [x.method for x in results.load_run(tmp_path)] == ["fp32"]


def test_label_names_the_file(tmp_path):
    r = Result(run="t", method="int8-static-onnx", label="int8-static-onnx[minmax,n=64]", device={"kind": "cuda"})
    assert results.save(r, tmp_path).name == "int8-static-onnx_minmax_n=64___cuda.json"


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
    d["schema"] = 0
    p.write_text(json.dumps(d))
    with pytest.raises(results.ResultsFileError, match="schema version 0"):
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
