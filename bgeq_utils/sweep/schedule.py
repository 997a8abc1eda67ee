"""Run a sweep: submit the tasks that are not done to Dask, in dependency order, and record each as it ends.

Dependencies are Dask's own: a task receives the outcomes of the tasks it waits for as arguments, so it starts
only after them (01 of its run before the later notebooks, the comparison after every other task). A task never
raises; one that fails is recorded with its error and its dependents are recorded as blocked, and the rest of the
sweep goes on. Notebooks that time require the ``bench`` resource (one timing task per host at a time).
"""
from __future__ import annotations

import uuid
from pathlib import Path

from bgeq_utils.core import paths
from bgeq_utils.sweep import cluster as cluster_mod
from bgeq_utils.sweep import grid as grid_mod
from bgeq_utils.sweep import shards, tasks
from bgeq_utils.sweep.manifest import Manifest


def todo(grid: grid_mod.Grid, manifest: Manifest, rerun_all: bool = False) -> list[grid_mod.Task]:
    """The tasks to run now: those not done; the comparison too when any other task runs."""
    out = [t for t in grid.tasks if rerun_all or not manifest.done(t)]
    report = [t for t in grid.tasks if t.notebook == grid_mod.REPORT and t.run == grid.sweep_run]
    if report and any(t is not report[0] for t in out) and report[0] not in out:
        out.append(report[0])
    return out


def run_sweep(grid: grid_mod.Grid | str | Path, *, client=None, scheduler: str | None = None,
              workers: int | None = None, processes: bool = True, outputs: str | Path | None = None,
              rerun_all: bool = False, echo=print) -> Manifest:
    """Run what is not done of ``grid`` (a Grid or a grid file) and return its manifest."""
    outputs = str(Path(outputs).resolve() if outputs else paths.outputs_dir())
    g = grid if isinstance(grid, grid_mod.Grid) else grid_mod.load_grid(grid)
    manifest = Manifest.open(g, outputs)
    pending = todo(g, manifest, rerun_all)
    skipped = [t.id for t in g.tasks if t not in pending]
    echo(f"sweep {g.name}: {len(g.tasks)} tasks over {len(g.runs)} runs; {len(skipped)} done, {len(pending)} to run")
    if not pending:
        return manifest
    context = {"sweep": g.name, "sweep_run": g.sweep_run}
    with cluster_mod.connect(scheduler, workers, processes, client) as c:
        cluster_mod.check_bench(c, needed=any(t.bench for t in pending))
        where = cluster_mod.describe(c)
        echo(f"on {where}")
        inv = manifest.begin({"where": where, "scheduler": scheduler or "local", "ran": [t.id for t in pending],
                              "already_done": skipped})
        token = uuid.uuid4().hex[:8]
        futures, by_future = {}, {}
        for t in pending:              # the grid lists tasks in dependency order
            deps = [futures[d] for d in t.after if d in futures]
            kw = {"key": f"bgeq-{t.id}-{token}", "pure": False, "retries": 0}
            if t.bench:
                kw["resources"] = {cluster_mod.BENCH: 1}
            if t.kind == "shards":
                f = c.submit(shards.run_shards, t.to_dict(), outputs, context, *deps, **kw)
            else:
                f = c.submit(tasks.run_notebook, t.to_dict(), outputs, context, g.threads, g.task_timeout, g.html,
                             *deps, **kw)
            futures[t.id] = f
            by_future[f.key] = t
        from distributed import as_completed
        for f in as_completed(list(futures.values())):
            t = by_future[f.key]
            try:
                outcome = f.result()
            except Exception as e:     # the worker died (killed for memory, lost): recorded like a failure
                outcome = {"id": t.id, "digest": t.digest(), "status": "failed",
                           "error": f"{type(e).__name__}: {str(e).strip()[:300]}", "output": None, "results": []}
            manifest.record(t, outcome)
            took = f" in {outcome['seconds']:.0f}s" if outcome.get("seconds") is not None else ""
            echo(f"  {outcome['status']:7s} {t.id}{took}" + (f": {outcome['error']}" if outcome["error"] else ""))
        manifest.end(inv)
    return manifest


def summary(manifest: Manifest, grid: grid_mod.Grid | None = None) -> str:
    """A table of the sweep's tasks (those of ``grid``, in its order, when given) and where its outputs are."""
    lines = []
    ids = [t.id for t in grid.tasks] if grid is not None else list(manifest.tasks)
    for tid, e in ((i, manifest.tasks.get(i, {"status": "missing"})) for i in ids):
        secs = f"{e['seconds']:6.0f}s" if e.get("seconds") is not None else "      -"
        where = f" [{e.get('threads')} thr{', bench' if e.get('bench') else ''}]" if e.get("threads") else ""
        lines.append(f"  {secs}  {e['status']:7s} {tid}{where}" + (f"  {e['error'][:160]}" if e.get("error") else ""))
    inv = manifest.data["invocations"][-1] if manifest.data["invocations"] else {}
    if inv.get("seconds") is not None:
        lines.append(f"wall time of this invocation: {inv['seconds']:.0f}s ({len(inv.get('ran', []))} tasks run, "
                     f"{len(inv.get('already_done', []))} already done)")
    lines.append(f"manifest: {paths.shown(manifest.path)}")
    report = manifest.path.parent / "report.html"
    if report.is_file():
        lines.append(f"report:   {paths.shown(report)}")
    return "\n".join(lines)
