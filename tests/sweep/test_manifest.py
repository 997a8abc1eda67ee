"""Re-running a sweep runs only what is missing or failed (and the comparison again when anything ran)."""
from __future__ import annotations

import json
from pathlib import Path

from bgeq_utils.sweep import load_grid
from bgeq_utils.sweep.manifest import Manifest
from bgeq_utils.sweep.schedule import todo


def _finished(task, folder, exception=False) -> dict:
    """An outcome as a task returns it, with an executed notebook papermill marked finished."""
    out = folder / f"{task.notebook}-{abs(hash(task.id))}.ipynb"
    out.write_text(json.dumps({"metadata": {"papermill": {"exception": exception, "end_time": "2026-01-01"}}}))
    return {"id": task.id, "digest": task.digest(), "status": "failed" if exception else "ok", "error": "",
            "output": str(out), "results": []}


def test_only_missing_failed_or_changed_tasks_run_again(write_grid, tmp_path):
    g = load_grid(write_grid("name: m\nmodels: [default, bge-large]\nnotebooks: [02]\n"))
    m = Manifest.open(g, tmp_path)
    assert todo(g, m) == g.tasks                                   # nothing done yet: everything
    first_a, nb_a, first_b, nb_b, report = g.tasks
    for t in g.tasks:
        m.record(t, _finished(t, tmp_path, exception=t is nb_b))   # 02 of the second run failed
    m = Manifest.open(g, tmp_path)                                 # read back from sweep.json
    assert m.path == tmp_path / "sweep-m" / "sweep.json" and m.tasks[nb_b.id]["attempts"] == 1
    assert todo(g, m) == [nb_b, report]                            # the failed one, then the comparison again
    m.record(nb_b, _finished(nb_b, tmp_path))
    assert todo(g, m) == []                                        # all done: nothing runs
    assert len(todo(g, m, rerun_all=True)) == 5
    # an output notebook that went missing, or one that papermill did not finish, is not done
    first_a_out = Path(m.tasks[first_a.id]["output"])
    first_a_out.write_text(json.dumps({"metadata": {"papermill": {"exception": None, "end_time": None}}}))
    assert todo(g, m) == [first_a, report]
    first_a_out.unlink()
    assert todo(g, m) == [first_a, report]
    # a task whose parameters changed since it ran is not done either
    g2 = load_grid(write_grid("name: m\nmodels: [default, bge-large]\nnotebooks: [02]\n"
                              "per_notebook:\n  02_fp16_bf16: {methods_to_run: [fp16]}\n"))
    assert [t.id for t in todo(g2, m)] == [first_a.id, nb_a.id, nb_b.id, report.id]
