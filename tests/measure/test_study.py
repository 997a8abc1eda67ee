"""What a method notebook measures against: a Study's sweeps, measured once and reused, and its parameter checks."""
import dataclasses

import pytest

from bgeq_utils import methods
from bgeq_utils.core import results
from bgeq_utils.measure import pipeline
from bgeq_utils.measure import study as study_module


def test_a_study_sweeps_options_measures_the_default_in_full_and_reuses(reference, lee_small, tiny_bench,
                                                                       monkeypatch):
    s = pipeline.Study(reference, lee_small, None, dataclasses.replace(tiny_bench, memory=True), "cpu", "pytest-study")
    seen = []

    def fake_run(jobs, ref, ev, **kw):
        out = []
        for j in jobs:
            seen.append((j.method, j.options, j.bench_config.memory))
            r = pipeline.new_result(j.method, ref, ev, run=kw["run"], device=kw["device"], options=j.options,
                                    calibration=j.calibration, bench_config=j.bench_config,
                                    with_fidelity=kw["reference_emb"] is not None)
            results.save(r)
            out.append(r)
        return out
    monkeypatch.setattr(study_module, "run_methods", fake_run)
    out = s.sweep("int8-dynamic-onnx", {"weight_type": ["QInt8", "QUInt8"], "per_channel": [True]})
    assert [r.label for r in out] == ["int8-dynamic-onnx", "int8-dynamic-onnx[weight_type=QUInt8]"]
    assert [m for _, _, m in seen] == [True, False]          # variants are detail: no memory by default
    again = s.sweep("int8-dynamic-onnx", {"weight_type": ["QInt8", "QUInt8"], "per_channel": [True]})
    assert len(seen) == 2 and [r.key for r in again] == [r.key for r in out]   # reused, not re-measured
    assert [r.method for r in s.measure_all(["fp32", ("int8-bnb", {"threshold": 0.0})])] == ["fp32", "int8-bnb"]


@pytest.mark.parametrize("call, message", [
    (lambda: pipeline.check_choices("weight_types", ["QInt9"], ["QInt8", "QUInt8"]),
     r"weight_types=\['QInt9'\]: use one or more of \['QInt8', 'QUInt8'\]"),
    (lambda: pipeline.check_numbers("thresholds", [6.0, -1], 0.0), r"thresholds=\[6.0, -1\]: use numbers >= 0"),
    (lambda: pipeline.check_counts("calibration_sizes", [16, 0]),
     r"calibration_sizes=\[16, 0\]: use whole numbers >= 1"),
    (lambda: pipeline.check_methods([("int8-bnb", {"treshold": 1.0})]), r"unknown option\(s\) \['treshold'\]"),
])
def test_notebook_parameters_are_checked_with_their_names(call, message):
    with pytest.raises((ValueError, methods.UnknownOptionError), match=message):
        call()
