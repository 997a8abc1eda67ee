"""Measuring methods: bad input refused before any work, a broken or unavailable method recorded, never crashed,
methods timed together in one window, a Result reused or kept."""
import dataclasses

import pytest

from bgeq_utils import methods
from bgeq_utils.core import results
from bgeq_utils.measure import corpus, pipeline, speed


def test_run_method_records_unknown_method_loudly(reference):
    with pytest.raises(methods.UnknownMethodError, match="unknown method 'fp33'.*Did you mean 'fp32'"):
        pipeline.run_method("fp33", reference)


def test_unavailable_method_is_skipped_not_crashed(reference, tiny_bench, monkeypatch):
    monkeypatch.setattr("bgeq_utils.core.env.has_cuda", lambda: False)
    res = pipeline.run_method("fp32", reference, run="pytest-skip", device="cuda", bench_config=tiny_bench)
    assert res.status == "skipped" and "no CUDA" in res.reason
    assert results.load_run("pytest-skip")[0].status == "skipped"


@pytest.mark.parametrize("name", [s.name for s in methods.specs() if "cuda" in s.devices])
def test_every_cuda_method_is_skipped_without_a_gpu(reference, tiny_bench, monkeypatch, name):
    monkeypatch.setattr("bgeq_utils.core.env.has_cuda", lambda: False)
    res = pipeline.run_method(name, reference, run="pytest-cuda-skip", device="cuda", bench_config=tiny_bench,
                              progress=False)
    assert res.status == "skipped" and "no CUDA" in res.reason


def test_broken_method_is_recorded_as_failed(reference, tiny_bench):
    @methods.register("pytest-broken", precision="int8", library="test")
    def broken(reference, device="cpu", calibration=None, **_):
        raise ZeroDivisionError("kernel exploded")
    try:
        with pytest.warns(UserWarning, match="pytest-broken failed"):
            res = pipeline.run_method("pytest-broken", reference, run="pytest-fail", bench_config=tiny_bench)
        assert res.status == "failed" and "ZeroDivisionError: kernel exploded" in res.reason
    finally:
        methods.registry._REGISTRY.pop("pytest-broken")


def test_a_rerun_with_other_options_does_not_overwrite_the_first(reference, lee_small, tiny_bench):
    a = pipeline.measure_or_reuse("int8-dynamic-onnx", reference, lee_small, run="pytest-keys", bench_config=tiny_bench,
                                  progress=False)
    b = pipeline.measure_or_reuse("int8-dynamic-onnx", reference, lee_small, run="pytest-keys", bench_config=tiny_bench,
                                  options={"weight_type": "QUInt8"}, progress=False)
    assert a.key != b.key and a.is_default and not b.is_default
    assert b.label == "int8-dynamic-onnx[weight_type=QUInt8]"
    keys = {r.key for r in results.load_run("pytest-keys")}
    assert {a.key, b.key} <= keys
    again = pipeline.measure_or_reuse("int8-dynamic-onnx", reference, lee_small, run="pytest-keys",
                                      bench_config=tiny_bench, options={"weight_type": "QInt8"})  # the default
    assert again.key == a.key and again.created == a.created                                  # reused, not re-measured
    other_grid = pipeline.measure_or_reuse("int8-dynamic-onnx", reference, lee_small, run="pytest-keys",
                                           bench_config=pipeline.BenchConfig(batch_sizes=(3,), seq_lens=(16,),
                                                                             min_repeats=2, max_repeats=2, memory=False,
                                                                             baselines=False), progress=False)
    assert other_grid.key != a.key                                                            # a setting changed


def test_unknown_options_are_errors_before_any_work(reference):
    with pytest.raises(methods.UnknownOptionError, match="bogus.*threshold"):
        pipeline.run_method("int8-bnb", reference, options={"bogus": 1})


@pytest.mark.parametrize("run, device, message", [
    ("../x", "cpu", "run name '../x' is not usable as a folder name"),
    ("abc\n", "cpu", "run name 'abc\\\\n' is not usable"),
    ("x" * 101, "cpu", "at most 100"),
    ("ok", "gpu", "unknown device 'gpu'; use 'auto', 'cpu', 'cuda' or 'cuda:N'"),
])
def test_bad_run_names_and_devices_fail_before_any_work(reference, monkeypatch, run, device, message):
    monkeypatch.setattr(methods.registry, "build", lambda *a, **k: pytest.fail("built despite bad input"))
    with pytest.raises(ValueError, match=message):
        pipeline.run_method("fp32", reference, run=run, device=device)


def test_the_invariance_check_embeds_as_many_texts_as_configured_and_they_are_in_the_key(reference, tiny_bench):
    four = pipeline.run_method("fp32", reference, run="pytest-inv",
                               bench_config=dataclasses.replace(tiny_bench, invariance_texts=4),
                               progress=False, save=False)
    inv = four.fidelity["batch_invariance"]
    assert four.status == "ok" and inv["texts"] == 4 and inv["cos_min"] > 0.9999
    default = pipeline.new_result("fp32", reference, run="pytest-inv", bench_config=tiny_bench)
    assert tiny_bench.invariance_texts == corpus.INVARIANCE_BATCH and default.key != four.key


def test_random_weights_get_no_invariance_check_and_the_fidelity_table_says_why(reference, lee_small, tiny_bench):
    from bgeq_utils import compare
    from bgeq_utils.measure import jobs

    shaped = dataclasses.replace(reference, weights="random")    # what the check reads: the weights, not the values
    res = pipeline.run_method("fp32", shaped, lee_small, run="pytest-inv-random", bench_config=tiny_bench,
                              progress=False, save=False)
    assert res.status == "ok" and res.fidelity["batch_invariance"] == {"skipped": jobs.INVARIANCE_ON_RANDOM}
    table = compare.tables.fidelity(compare.tabulate([res], 2, 16))
    assert list(table["batch cos min"]) == ["not checked"]
    assert "not checked: random weights" in table.attrs["note"]


def test_methods_measured_together_share_one_window_and_their_baselines(reference, lee_small):
    cfg = pipeline.BenchConfig(batch_sizes=(4,), seq_lens=(16,), min_repeats=6, max_repeats=6, seconds=5,
                               memory=False)

    @methods.register("pytest-broken-late", precision="int8", library="test")
    def broken(reference, device="cpu", calibration=None, **_):
        raise ZeroDivisionError("kernel exploded")
    try:
        with pytest.warns(UserWarning, match="pytest-broken-late failed"):
            rs = pipeline.run_methods([{"method": m, "bench_config": cfg} for m in
                                       ("int8-dynamic-onnx", "pytest-broken-late", "fp32-onnx")],
                                      reference, lee_small, run="pytest-together", progress=False)
    finally:
        methods.registry._REGISTRY.pop("pytest-broken-late")
    dyn, bad, onnx = rs
    assert bad.status == "failed" and "kernel exploded" in bad.reason       # one broken method ends nothing
    assert dyn.status == onnx.status == "ok"
    a, b = dyn.speed[0], onnx.speed[0]
    # fp32-onnx measured here is also int8-dynamic-onnx's runtime baseline: one encoder, timed once per round
    assert a["window"] == b["window"] == ["fp32", "fp32-onnx", "int8-dynamic-onnx"]
    assert dyn.extra["timed_together"] == onnx.extra["timed_together"] == ["fp32-onnx", "int8-dynamic-onnx"]
    assert a["vs_runtime"]["baseline"] == "fp32-onnx" and a["vs_runtime"]["low"] <= a["vs_runtime"]["value"]
    assert b["vs_runtime"]["value"] == 1.0 and b["vs_eager"]["baseline"] == "fp32"
    assert a["baseline_tokens_per_s"]["fp32"] == b["baseline_tokens_per_s"]["fp32"]   # the same eager timing
    assert a["repeats"] == b["repeats"] == 6 and dyn.timings["bench_s"] == onnx.timings["bench_s"]
    assert [r.status for r in results.load_run("pytest-together")].count("ok") == 2


def test_a_failed_rerun_keeps_the_good_result_and_the_comparison_reports_it(reference, lee_small, tiny_bench,
                                                                           monkeypatch):
    from bgeq_utils.compare import load, tabulate
    good = pipeline.run_method("fp32", reference, lee_small, run="pytest-rerun", bench_config=tiny_bench,
                               progress=False)
    assert good.status == "ok"

    def broken(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(speed, "speed_grid_many", broken)
    with pytest.warns(UserWarning, match="fp32 failed"):
        bad = pipeline.run_method("fp32", reference, lee_small, run="pytest-rerun", bench_config=tiny_bench,
                                  progress=False)
    assert bad.status == "failed" and bad.key == good.key
    kept = results.load_run("pytest-rerun")
    assert [r.status for r in kept] == ["ok"] and kept[0].created == good.created
    m = tabulate(load(["pytest-rerun"])[0])
    assert "failed" in m.table.loc[0, "latest_attempt"] and "disk full" in m.table.loc[0, "latest_attempt"]


def test_a_job_is_typed_and_a_misspelled_field_is_refused():
    job = pipeline.Job.of({"method": "fp32", "options": {}})
    assert job == pipeline.Job("fp32", {}) and pipeline.Job.of(job) is job
    with pytest.raises(TypeError, match=r"unknown field\(s\) \['methd'\]; fields are \['method', 'options'"):
        pipeline.Job.of({"methd": "fp32"})


def test_on_the_cpu_memory_starts_as_each_method_is_built_and_the_window_waits_for_it(reference, lee_small,
                                                                                      monkeypatch):
    from bgeq_utils.measure import jobs, memory, speed

    events = []
    real_prepare, real_grid = jobs._prepare, speed.speed_grid_many

    def prepare(method, *a, **k):
        events.append(f"build {method}")
        return real_prepare(method, *a, **k)

    def fake_memory(**job):
        events.append(f"memory {job['method']}")
        return {"peak": {"value": 1}, "resident": {"value": 1}}

    def grid(*a, **k):
        events.append("window")
        return real_grid(*a, **k)

    monkeypatch.setattr(jobs, "_prepare", prepare)
    monkeypatch.setattr(memory, "measure_memory", fake_memory)
    monkeypatch.setattr(jobs.speed, "speed_grid_many", grid)
    monkeypatch.setattr(memory, "EARLY_HEADROOM", 0)
    cfg = pipeline.BenchConfig(batch_sizes=(2,), seq_lens=(16,), warmup=0, min_repeats=2, max_repeats=2, seconds=1,
                               memory=True, memory_repeats=1, baselines=False)
    out = pipeline.run_methods([{"method": m, "bench_config": cfg} for m in ("fp32", "bf16")], reference, lee_small,
                               run="pytest-early-memory", save=False, progress=False)
    assert [r.status for r in out] == ["ok", "ok"] and all(r.memory == {"peak": {"value": 1}, "resident": {"value": 1}}
                                                          for r in out)
    assert events.index("build bf16") > events.index("build fp32")
    assert events.index("window") > max(events.index("memory fp32"), events.index("memory bf16"))
    assert events.count("window") == 1 and sum(e.startswith("memory") for e in events) == 2
