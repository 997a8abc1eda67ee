"""The record of a sweep: ``outputs/sweep-<name>/sweep.json``, one entry per task, written as each task ends.

An entry holds the task's notebook, parameters and digest, its status (ok / failed / blocked) with the error, its
output notebook and Result files, where and how long it ran, and its thread count. A task is **done** when its
entry says ok for the same digest (same notebook and parameters) and its output is still there and finished
without an exception; re-running a sweep runs only the tasks that are not done (and the comparison again when
anything ran).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from bgeq_utils.core import paths, results
from bgeq_utils.sweep import tasks as tasks_mod

FILE = "sweep.json"
SCHEMA = 1


class Manifest:
    def __init__(self, path: Path, data: dict):
        self.path, self.data = Path(path), data

    @classmethod
    def open(cls, grid, outputs: str | Path | None = None) -> Manifest:
        """The sweep's manifest (a new one if none was written, or if it cannot be read: its tasks then rerun)."""
        path = paths.run_dir(grid.sweep_run, outputs) / FILE
        data = None
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except ValueError:
                data = None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            data = {"schema": SCHEMA, "tasks": {}, "invocations": []}
        data |= {"sweep": grid.name, "grid": str(grid.file), "run": grid.sweep_run, "runs": grid.runs,
                 "points": grid.points}
        return cls(path, data)

    @property
    def tasks(self) -> dict:
        return self.data["tasks"]

    def done(self, task) -> bool:
        e = self.tasks.get(task.id)
        if not e or e.get("status") != "ok" or e.get("digest") != task.digest():
            return False
        out = e.get("output")
        if not out or not Path(out).is_file():
            return False
        return task.kind != "notebook" or tasks_mod.notebook_ok(Path(out))

    def record(self, task, outcome: dict) -> None:
        previous = self.tasks.get(task.id, {})
        self.tasks[task.id] = {**task.to_dict(), **outcome, "attempts": previous.get("attempts", 0) + 1}
        self.save()

    def begin(self, info: dict) -> dict:
        entry = {"started": time.time(), **info}
        self.data["invocations"].append(entry)
        self.save()
        return entry

    def end(self, entry: dict) -> None:
        entry["finished"] = time.time()
        entry["seconds"] = round(entry["finished"] - entry["started"], 1)
        self.save()

    def save(self) -> Path:
        self.data["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
        return results.write_json(self.data, self.path)

    def failed(self, ids=None) -> list[dict]:
        """Entries not ok (of the tasks ``ids``: those of the grid as it is now; default: every entry)."""
        ids = list(self.tasks) if ids is None else ids
        return [self.tasks.get(i, {"id": i, "status": "missing"}) for i in ids
                if self.tasks.get(i, {}).get("status") != "ok"]
