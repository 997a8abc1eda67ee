"""Sweeps end to end, real notebooks on real clusters: a 2 x 2 grid on the local cluster (2 worker processes) and a
grid with a failing task on Client(processes=False). Each gives the Results the notebooks give one by one.

The 2 x 2 grid runs with ``timing: shared`` (its notebooks side by side on the two workers: half the wall time
here); the failing grid keeps the default ``exclusive`` timing, on a worker of two threads that would run its two
notebooks side by side but for the ``bench`` resource."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bgeq_utils.core import paths, results
from bgeq_utils.sweep import load_grid, run_sweep, tasks

#: small enough for two cores: 10 Lee documents, one speed cell of 2 x 16 tokens, a token time budget
SMALL = {"max_docs": 10, "device": "cpu", "batch_sizes": [2], "seq_lens": [16], "seconds_per_cell": 0.05,
         "min_repeats": 1, "measure_memory": False}
pytestmark = pytest.mark.filterwarnings("ignore")


def _grid(folder, name: str, models: list, notebooks: list, **extra) -> str:
    g = {"name": name, "models": models, "notebooks": notebooks, "parameters": SMALL, "html": False, **extra}
    p = folder / f"{name}.yaml"
    p.write_text(json.dumps(g))            # JSON is YAML
    return str(p)


def _one_by_one(tiny_model) -> dict:
    """Each model's 01 then 02 in one process, one after the other: the calls those notebooks make, with the
    parameters the sweep passes them (same BenchConfig, so the same Result keys)."""
    from bgeq_utils.measure import pipeline
    cfg = pipeline.BenchConfig(batch_sizes=(2,), seq_lens=(16,), seconds=0.05, min_repeats=1, memory=False,
                               memory_repeats=1)
    out = {}
    for label, model in (("default", "default"), ("tiny", tiny_model)):
        s = pipeline.study(model, "pretrained", "lee", "cpu", f"one-by-one-{label}", max_docs=10, config=cfg)
        rs = [s.measure("fp32")] + s.measure_all(["fp32", "fp16"])
        out[label] = ({r.label: r for r in rs}, s.reference_emb)
    return out


@pytest.fixture(scope="module")
def sweep_and_one_by_one(tiny_model, local_client, tmp_path_factory):
    """2 models x 2 methods (fp32 in 01, fp16 in 02), reference embeddings in shards, 09 over both runs; the
    one-by-one figures are computed here while the sweep runs on the workers (wall time only)."""
    import threading
    folder = tmp_path_factory.mktemp("two-by-two")
    grid = _grid(folder, "two-by-two", ["default", {"model": tiny_model, "label": "tiny"}], ["02_fp16_bf16"],
                 per_notebook={"02_fp16_bf16": {"methods_to_run": ["fp32", "fp16"], "overflow_texts": 4}},
                 shard_size=4, timing="shared")
    done = {}

    def run():
        try:
            done["m"] = run_sweep(grid, client=local_client, outputs=folder / "out", echo=lambda *a: None)
        except BaseException as e:  # raised in the test below, not lost in the thread
            done["error"] = e

    sweep = threading.Thread(target=run)
    sweep.start()
    reference = _one_by_one(tiny_model)
    sweep.join()
    if "error" in done:
        raise done["error"]
    return (done["m"], load_grid(grid), folder / "out"), reference


@pytest.fixture(scope="module")
def two_by_two(sweep_and_one_by_one):
    return sweep_and_one_by_one[0]


@pytest.fixture(scope="module")
def one_by_one(sweep_and_one_by_one):
    return sweep_and_one_by_one[1]


def _same_figures(a, b, path=""):
    """Quality and fidelity figures equal to 1e-6 (BLAS may split a product differently per thread count)."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _same_figures(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)) and a and isinstance(a[0], (int, float)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, err_msg=path)
    elif isinstance(a, float):
        assert a == pytest.approx(b, abs=1e-6, nan_ok=True), path
    else:
        assert a == b, path


def _assert_like_one_by_one(results_dir, expected: dict):
    got = {r.label: r for r in results.load_run(results_dir)}
    assert set(got) == set(expected)                       # same methods ...

    def but_threads(settings):                             # ... under the same settings but the thread count,
        return {**settings, "machine": {**settings["machine"], "threads": None}}  # which the sweep pins (in keys)

    for key, r in got.items():
        assert but_threads(r.settings) == but_threads(expected[key].settings), key
        assert r.status == expected[key].status == "ok", (key, r.reason)
        for field in ("quality", "per_query", "fidelity"):
            _same_figures(getattr(r, field), getattr(expected[key], field), f"{key}.{field}")


def test_the_2x2_sweep_gives_the_results_of_the_notebooks_one_by_one(two_by_two, one_by_one):
    m, g, out = two_by_two
    assert {t.id: m.tasks[t.id]["status"] for t in g.tasks} == {t.id: "ok" for t in g.tasks}
    for run, label in zip(g.runs, ("default", "tiny")):
        _assert_like_one_by_one(paths.results_dir(run, out), one_by_one[label][0])
        fp16 = m.tasks[f"{run}/02_fp16_bf16"]["results"]
        assert [json.loads(open(f).read())["method"] for f in fp16] == ["fp16"]    # 02 measured fp16, reused fp32


def test_each_result_records_its_fixed_thread_count_and_its_task(two_by_two):
    m, g, out = two_by_two
    for run in g.runs:
        assert m.tasks[f"{run}/01_baseline_fp32"]["started"] >= m.tasks[f"{run}/reference-shards"]["finished"]
        for r in results.load_run(paths.results_dir(run, out)):
            stamp = r.extra["sweep"]
            assert stamp["threads"] == r.device["torch_threads"] == 1 and stamp["sweep"] == "two-by-two"
            assert stamp["task"].startswith(run + "/") and "shared host" in stamp["timing"]


def test_sharded_reference_embeddings_are_those_of_one_process(two_by_two, one_by_one):
    m, g, out = two_by_two
    for run, label in zip(g.runs, ("default", "tiny")):
        z = np.load(m.tasks[f"{run}/reference-shards"]["output"])
        assert np.array_equal(z["corpus"], one_by_one[label][1]["corpus"])


def test_the_comparison_runs_last_over_every_run_of_the_sweep(two_by_two):
    m, g, out = two_by_two
    report = m.tasks["sweep-two-by-two/09_comparison"]
    assert report["parameters"]["runs"] == g.runs and report["started"] >= max(
        e["finished"] for k, e in m.tasks.items() if k != report["id"])
    assert (out / "sweep-two-by-two" / "report.html").is_file()
    assert m.path == out / "sweep-two-by-two" / "sweep.json" and m.data["invocations"][-1]["seconds"] > 0


def test_a_failing_task_is_recorded_the_others_complete_and_a_rerun_redoes_only_it(
        tiny_model, inprocess_client, one_by_one, tmp_path, capsys):
    from bgeq_utils.cli import main as cli
    grid = _grid(tmp_path, "failing", [{"model": tiny_model, "label": "tiny"},
                                       {"model": "no-such-org/no-such-model", "label": "broken"}],
                 ["01_baseline_fp32"], report=False)
    out = tmp_path / "out"
    m = run_sweep(grid, client=inprocess_client, outputs=out, echo=lambda *a: None)
    ok, broken = m.tasks["sweep-failing-tiny/01_baseline_fp32"], m.tasks["sweep-failing-broken/01_baseline_fp32"]
    assert ok["status"] == "ok" and broken["status"] == "failed"
    on_disk = json.loads(m.path.read_text())["tasks"][broken["id"]]
    assert on_disk["notebook"] == "01_baseline_fp32" and on_disk["parameters"]["model"] == "no-such-org/no-such-model"
    assert "ModelNotFoundError" in on_disk["error"]
    assert ok["started"] >= broken["finished"] or broken["started"] >= ok["finished"]   # `bench`: one at a time
    assert ok["bench"] and ok["threads"] == tasks.host_cores()     # a timing task: the host's cores, fixed
    expected = {k: r for k, r in one_by_one["tiny"][0].items() if r.method == "fp32"}
    _assert_like_one_by_one(paths.results_dir("sweep-failing-tiny", out), expected)
    # again, through the command line (a local cluster of one worker): only the failed task runs
    assert cli.main(["sweep", grid, "--outputs", str(out), "--workers", "1"]) == 1
    printed = capsys.readouterr().out
    assert "1 done, 1 to run" in printed and "failed  sweep-failing-broken/01_baseline_fp32" in printed
    m2 = json.loads(m.path.read_text())
    assert m2["invocations"][-1]["ran"] == [broken["id"]]
    assert m2["tasks"][ok["id"]]["attempts"] == 1 and m2["tasks"][broken["id"]]["attempts"] == 2
