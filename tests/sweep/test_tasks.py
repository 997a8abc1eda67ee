"""One task: a notebook in a papermill subprocess with a fixed thread count; its Results record the sweep task."""
from __future__ import annotations

import json

import nbformat
import pytest

from bgeq_utils.core import paths, results
from bgeq_utils.sweep import tasks
from tests.factories import fp32


@pytest.fixture
def tiny_notebooks(tmp_path, monkeypatch):
    """notebooks/01_tiny.ipynb: reports its thread count and sweep context, saves a Result, fails on demand."""
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell('run = "x"\nfail = False')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(
        "import os\n"
        "from bgeq_utils.core import results\n"
        "from tests.factories import fp32\n"
        "print(os.environ['OMP_NUM_THREADS'], os.environ.get('BGEQ_RECORDED'))\n"
        "results.save(fp32(run=run))\n"
        "if fail:\n    raise ValueError('boom')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(nbdir / "01_tiny.ipynb"))
    monkeypatch.setattr(paths, "NOTEBOOKS", nbdir)
    monkeypatch.setenv("PYTHONPATH", str(paths.ROOT))       # the kernel imports tests.factories
    return tmp_path / "out"


def _task(fail: bool, bench: bool = True) -> dict:
    return {"id": "t-run/01_tiny", "run": "t-run", "notebook": "01_tiny", "parameters": {"run": "t-run", "fail": fail},
            "bench": bench, "after": [], "kind": "notebook", "digest": "d"}


def test_a_notebook_runs_with_a_fixed_thread_count_and_its_results_record_the_task(tiny_notebooks):
    out = tasks.run_notebook(_task(False), str(tiny_notebooks), {"sweep": "s"}, 3, None, False)
    assert out["status"] == "ok" and out["threads"] == 3 and out["error"] == ""
    printed = "".join(o.get("text", "") for c in nbformat.read(out["output"], as_version=4).cells
                      for o in c.get("outputs", []))
    assert printed.strip() == "3 None"        # the thread count, and no test session's record file
    assert len(out["results"]) == 1 and tasks.notebook_ok(out["output"])
    stamp = json.loads(open(out["results"][0]).read())["extra"]["sweep"]
    assert stamp["sweep"] == "s" and stamp["task"] == "t-run/01_tiny" and stamp["threads"] == 3
    assert "bench resource held" in stamp["timing"]


def test_a_failing_notebook_is_an_outcome_with_its_error_not_an_exception(tiny_notebooks):
    out = tasks.run_notebook(_task(True, bench=False), str(tiny_notebooks), {"sweep": "s"}, None, None, False)
    assert out["status"] == "failed" and out["threads"] == 1          # not a timing task: one thread
    assert out["error"].endswith("ValueError: boom") and out["error"].startswith("cell ")
    assert not tasks.notebook_ok(out["output"])
    blocked = tasks.run_notebook(_task(False), str(tiny_notebooks), {}, None, None, False, out)
    assert blocked["status"] == "blocked" and blocked["error"] == "not run: t-run/01_tiny failed"


def test_results_saved_outside_a_sweep_carry_no_stamp_and_a_stamp_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("BGEQ_OUTPUTS", str(tmp_path))
    monkeypatch.delenv(results.SWEEP_CONTEXT_ENV, raising=False)
    r = fp32(run="plain")
    assert "sweep" not in results.load(results.save(r)).extra
    monkeypatch.setenv(results.SWEEP_CONTEXT_ENV, json.dumps({"task": "b"}))
    r.extra["sweep"] = {"task": "a"}
    assert results.load(results.save(r)).extra["sweep"] == {"task": "a"}
