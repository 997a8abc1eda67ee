"""The run's comparison window: which methods, packed how, and Results the notebooks then reuse."""
import pytest

from bgeq_utils.measure import comparison_window as cw
from bgeq_utils.measure import pipeline

GB = 2 ** 30


def test_method_lists_are_checked_with_the_known_names():
    assert cw.check_methods(["fp32", "int8-dynamic-onnx", "fp32"]) == ["fp32", "int8-dynamic-onnx"]
    with pytest.raises(KeyError, match="Did you mean 'int8-dynamic-onnx'"):
        cw.check_methods(["int8-dynamic-onx"])
    with pytest.raises(ValueError, match="use a list of method names"):
        cw.check_methods("fp32")


def test_everything_in_one_window_when_it_fits():
    names = ["fp32", "fp32-onnx", "int8-dynamic-onnx", "int8-static-openvino", "nf4-bnb"]
    assert cw.sub_windows(names, 335_000_000, 24 * GB) == [names]


def test_sub_windows_when_memory_is_short_each_with_its_baselines_counted():
    names = ["fp32", "fp16", "fp32-onnx", "int8-dynamic-onnx", "fp32-openvino", "int8-static-openvino"]
    groups = cw.sub_windows(names, 335_000_000, 6 * GB)
    assert len(groups) > 1 and [n for g in groups for n in g] == names      # order kept, nothing lost
    budget = 6 * GB * cw.MEMORY_SHARE
    for g in groups[1:]:
        held = set(g) | {"fp32"} | {cw.registry.get(n).baseline_in_runtime for n in g}
        assert sum(cw.weight_estimate(n, 335_000_000) for n in held) <= budget or len(g) == 1


def test_a_notebook_reuses_what_the_window_measured(tmp_path, monkeypatch):
    """The window's Results carry the keys a notebook computes from the same parameters: the notebook reuses
    them (no second build or timing), and each records the window it was timed in and the machine's load."""
    monkeypatch.setenv("BGEQ_OUTPUTS", str(tmp_path))
    params = {"model": "default", "dataset": "lee", "device": "cpu", "max_docs": 12, "batch_sizes": [2],
              "seq_lens": [16], "seconds_per_cell": 0.2, "min_repeats": 2, "measure_memory": False}
    res = cw.measure("w", ["fp32", "int8-dynamic-onnx"], params, progress=False)
    assert [r.status for r in res] == ["ok", "ok"]
    windows = {r.extra["window"]["id"] for r in res}
    assert len(windows) == 1 and res[0].extra["window"]["kind"] == pipeline.WINDOW_COMPARISON
    assert {"other_cpu_share", "load_avg_start", "busy"} <= set(res[0].extra["window"]["load"])
    s = pipeline.study("default", "pretrained", "lee", "cpu", "w", max_docs=12, config=cw.config_of(params))
    again = s.measure_many(s.jobs(["int8-dynamic-onnx"]))
    assert again[0].key == res[1].key and again[0].created == res[1].created


def test_the_window_repeated_back_to_back_reports_each_windows_figures_and_load(tmp_path, monkeypatch):
    monkeypatch.setenv("BGEQ_OUTPUTS", str(tmp_path))
    params = {"model": "default", "dataset": "lee", "device": "cpu", "max_docs": 12, "batch_sizes": [2],
              "seq_lens": [16], "seconds_per_cell": 0.3, "min_repeats": 6}
    rec = cw.repeat("rep", ["fp32", "fp32-onnx", "int8-dynamic-onnx"], params, windows=2, progress=False)
    assert rec["methods"] == ["fp32", "fp32-onnx", "int8-dynamic-onnx"] and len(rec["windows"]) == 2
    assert all("other_cpu_share" in w["load"] for w in rec["windows"])
    assert rec["windows"][1]["ratios"]["int8-dynamic-onnx"]["runtime"]["baseline"] == "fp32-onnx"
    assert set(rec["agree"]) <= {"fp32-onnx eager", "int8-dynamic-onnx eager", "int8-dynamic-onnx runtime"}
    assert list(tmp_path.glob("rep/windows/repeat-*.json"))
    table = cw.repeat_table(rec)
    assert len(table) == len(rec["agree"])
