"""One task of a sweep: a notebook executed by papermill in a subprocess, on whichever worker Dask chose.

A subprocess per notebook, never an in-process kernel per thread: parallel in-process papermill kernels race
and hang (papermill #239). The subprocess gets a fixed thread count (OMP/MKL/OpenBLAS, so torch reports it in
each Result's ``device.torch_threads``) and the sweep context, which every Result it saves records as
``extra["sweep"]`` (see :data:`bgeq_utils.core.results.SWEEP_CONTEXT_ENV`). A task never raises: it returns an
outcome (ok / failed / blocked) with the error, and the paths of the output notebook and of the Results it wrote.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bgeq_utils.core import paths, results
from bgeq_utils.runs.profiles import to_html

#: environment variables that fix the thread count of the numeric libraries a notebook loads
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
STATUSES = ("ok", "failed", "blocked")


def host_cores() -> int:
    """The cores this process may use (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_for(bench: bool, threads: int | None) -> int:
    """A timing task, alone on its host among timing tasks: the grid's ``threads`` or the host's cores; any other
    task shares the host: one thread."""
    return int(threads or host_cores()) if bench else 1


def outcome(task: dict, status: str, **kw) -> dict:
    return {"id": task["id"], "digest": task["digest"], "status": status, "error": "", "output": None,
            "html": None, "results": [], "host": socket.gethostname(), **kw}


def blocked_by(task: dict, deps: list[dict]) -> dict | None:
    """The outcome of a task whose prerequisites did not finish ok (it is not run), else None."""
    bad = [d for d in deps if isinstance(d, dict) and d.get("status") != "ok"]
    if not bad:
        return None
    return outcome(task, "blocked", error="not run: " + "; ".join(f"{d['id']} {d['status']}" for d in bad))


def _error_of(nb_path: Path, stderr: str) -> str:
    """The failing cell's exception (from the executed notebook), else the end of papermill's stderr."""
    try:
        import nbformat
        nb = nbformat.read(str(nb_path), as_version=4)
        for i, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    return f"cell {i}: {out.get('ename')}: {str(out.get('evalue', '')).strip()[:500]}"
    except Exception:
        pass
    lines = [x for x in stderr.strip().splitlines() if x.strip()]
    return " | ".join(lines[-4:])[-800:] or "papermill failed without a message"


def notebook_ok(nb_path: Path) -> bool:
    """An executed notebook that papermill finished without an exception."""
    try:
        meta = json.loads(Path(nb_path).read_text()).get("metadata", {}).get("papermill", {})
    except (OSError, ValueError):
        return False
    return bool(meta) and not meta.get("exception") and meta.get("end_time") is not None


def written_results(run: str, task_id: str, since: float, outputs: str | Path) -> list[str]:
    """Result files of ``run`` saved at or after ``since`` that the task ``task_id`` measured."""
    folder = paths.results_dir(run, outputs)
    found = []
    for f in sorted(folder.glob("*.json")) + sorted((folder / results.ATTEMPTS).glob("*.json")):
        try:
            if f.stat().st_mtime < since - 1:
                continue
            stamp = json.loads(f.read_text()).get("extra", {}).get("sweep", {})
        except (OSError, ValueError):
            continue
        if stamp.get("task") == task_id:
            found.append(str(f))
    return found


def _kill_tree(p: subprocess.Popen) -> None:
    """End papermill and the kernel it started (jupyter starts kernels in a session of their own, so ending
    papermill's process group would leave the kernel running)."""
    import psutil
    try:
        children = psutil.Process(p.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for proc in children:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    p.kill()
    p.communicate()


def run_notebook(task: dict, outputs: str, context: dict, threads: int | None = None,
                 timeout: float | None = None, html: bool = True, *deps: dict) -> dict:
    """Execute ``task`` (a :class:`bgeq_utils.sweep.grid.Task` as a dict) with papermill in a subprocess.

    ``deps`` are the outcomes of the tasks it waits for (Dask passes them once they finished): if one is not ok,
    the notebook is not run and the outcome is ``blocked``."""
    blocked = blocked_by(task, list(deps))
    if blocked:
        return blocked
    n = threads_for(task["bench"], threads)
    src = paths.NOTEBOOKS / f"{task['notebook']}.ipynb"
    out = paths.run_dir(task["run"], outputs) / "notebooks" / src.name
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = {**context, "task": task["id"], "notebook": task["notebook"], "threads": n, "host": socket.gethostname(),
             "timing": "bench resource held: no other timing task on this host" if task["bench"] else
             "shared host: speed and memory not a fair timing"}
    env = {k: v for k, v in os.environ.items() if k != "BGEQ_RECORDED"}   # a test session's record file
    env |= {k: str(n) for k in THREAD_VARS}
    env |= {"BGEQ_OUTPUTS": str(outputs), results.SWEEP_CONTEXT_ENV: json.dumps(stamp),
            "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "papermill", str(src), str(out), "-y", yaml.safe_dump(task["parameters"]),
           "--cwd", str(paths.NOTEBOOKS), "-k", "python3", "--no-progress-bar", "--log-level", "WARNING"]
    started = time.time()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = p.communicate(timeout=timeout)
        ok = p.returncode == 0 and notebook_ok(out)
        error = "" if ok else _error_of(out, stderr)
    except subprocess.TimeoutExpired:
        _kill_tree(p)
        ok, error = False, f"timed out after {timeout:g} s (task_timeout)"
    finished = time.time()
    page = None
    if html and out.is_file():
        try:
            page = str(to_html(out))
        except Exception:  # a rendering problem never hides the notebook's own outcome
            page = None
    for f in (out, page):
        if f and Path(f).is_file():
            Path(f).chmod(0o644)
    return outcome(task, "ok" if ok else "failed", error=error, output=str(out), html=page,
                    results=written_results(task["run"], task["id"], started, outputs), started=started,
                    finished=finished, seconds=round(finished - started, 2), threads=n, bench=task["bench"])
