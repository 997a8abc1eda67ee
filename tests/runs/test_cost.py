"""The cost table is generated from what the runner recorded, and shipping a reference run keeps its evidence."""
import json
import sys

import pytest

from bgeq_utils.core import paths
from bgeq_utils.runs import cost

STEPS = {
    "comparison-window": {"status": "ok", "seconds": 600.0, "phases": {
        "build: int8-static-torch": 180.0, "build: fp32-onnx": 30.0, "fidelity: fp16": 24.0, "invariance: fp16": 36.0,
        "window: comparison: 11 configurations": 150.0, "memory: 11 configurations": 120.0}},
    "01_baseline_fp32": {"status": "ok", "seconds": 30.0, "phases": {}},
    "04_int8_static": {"status": "ok", "seconds": 90.0, "phases": {"build: int8-static-openvino[x=1]": 60.0}},
    "09_comparison": {"status": "ok", "seconds": 60.0},
    "10_export": {"status": "ok", "seconds": 30.0},
}


def write_steps(root, run, steps=STEPS):
    f = cost.steps_file(run, root)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(steps))


def test_a_runs_cost_is_read_by_phase_from_its_steps(tmp_path):
    write_steps(tmp_path, "r")
    c = cost.read("r", tmp_path)
    assert c.window == 10.0 and c.notebooks == 2.0 and c.report == 1.5 and c.total == 12.0
    assert c.phases == pytest.approx({"build": 3.5, "fidelity": 0.4, "invariance": 0.6, "window": 2.5, "memory": 2.0})
    assert c.slowest[0] == ("build: int8-static-torch", 3.0)
    md = cost.table(["r"], tmp_path)
    assert "| `r` | 12.0 | comparison window 10.0 (build 3.5, fidelity 0.4, invariance 0.6, window 2.5, " \
           "memory 2.0" in md
    assert "| report and export | 1.5 |" in md and "| **all** | **13.5** |" in md


def test_a_missing_or_broken_steps_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="steps.json does not exist: run `make run`"):
        cost.read("nothing", tmp_path)
    f = cost.steps_file("broken", tmp_path)
    f.parent.mkdir(parents=True)
    f.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON.*delete it and run again"):
        cost.read("broken", tmp_path)


def test_shipping_a_reference_keeps_the_repeat_window_records_and_writes_the_cost(tmp_path, monkeypatch):
    monkeypatch.setenv("BGEQ_OUTPUTS", str(tmp_path))
    sys.path.insert(0, str(paths.ROOT / "scripts"))
    try:
        import ship_reference
    finally:
        sys.path.pop(0)
    for run in ("a", "b"):
        (paths.results_dir(run)).mkdir(parents=True)
        (paths.results_dir(run) / "fp32-0000__cpu.json").write_text("{}")
        write_steps(tmp_path, run, STEPS if run == "a" else {k: v for k, v in STEPS.items() if k[:2] != "09"
                                                              and k[:2] != "10"})
    for f in ship_reference.REPORT_FILES:
        (paths.run_dir("a") / f).write_text("x")
    dest = tmp_path / "reference"
    (dest / "b" / "windows").mkdir(parents=True)
    (dest / "b" / "windows" / "repeat-1.json").write_text('{"old": 1}')
    ship_reference.ship(["a", "b"], "a", dest=dest, commit="abc1234")
    assert (dest / "b" / "windows" / "repeat-1.json").read_text() == '{"old": 1}'      # evidence kept
    assert (dest / "a" / "results" / "fp32-0000__cpu.json").is_file()
    assert "| **all** | **25.5** |" in (dest / "COST.md").read_text()                 # 12 + 12 + the report 1.5
    assert json.loads((dest / "MACHINE.json").read_text())["commit"] == "abc1234"


def test_a_runs_window_is_set_beside_a_repeat_record_both_ways(tmp_path):
    from bgeq_utils.core import results
    from tests import factories
    sys.path.insert(0, str(paths.ROOT / "scripts"))
    try:
        import window_agreement
    finally:
        sys.path.pop(0)
    for r in (factories.result("int8-dynamic-onnx", run="w", runtime="onnxruntime", speed=(3.0, 2.8, 3.2),
                               speed_runtime=(2.0, 1.9, 2.1), runtime_baseline="fp32-onnx"),
              factories.result("bf16", "bf16", run="w", speed=(2.0, 1.9, 2.1))):
        results.save(r, tmp_path / "results")
    window = {"ratios": {"int8-dynamic-onnx": {"eager": {"value": 3.1, "low": 2.9, "high": 3.3},
                                               "runtime": {"value": 2.5, "low": 2.4, "high": 2.6}},
                         "bf16": {"eager": {"value": 2.0, "low": 1.95, "high": 2.05}}}}
    rec = tmp_path / "repeat.json"
    rec.write_text(json.dumps({"methods": ["int8-dynamic-onnx", "bf16"], "windows": [window, window]}))
    out, agree, n = window_agreement.rows(tmp_path / "results", rec)
    assert (agree, n) == (2, 3)                             # the runtime ratio 2.0 [1.9, 2.1] misses 2.5
    assert any("fp32-onnx" in row and "**no**" in row for row in out)
