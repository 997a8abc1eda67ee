"""What a run cost, read from what the runner recorded: each step's minutes and, inside the comparison window, its
phases (builds, fidelity, batch invariance, the timing windows, memory), so that a table of costs is generated
from the run it describes rather than typed.

    python -m bgeq_utils.runs.cost default bge-large-random      # a markdown table (outputs/<run>/notebooks/steps.json)
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bgeq_utils.core import paths
from bgeq_utils.runs.profiles import REPORT_NOTEBOOKS, WINDOW_STEP

#: the runner's record of a run's steps (seconds, phases), beside the executed notebooks
STEPS_FILE = "steps.json"
#: the notebooks that read every run (the report) and hand the choice over (the export)
REPORT_STEPS = tuple(REPORT_NOTEBOOKS)
PHASES = ("build", "fidelity", "invariance", "window", "memory")


@dataclass
class RunCost:
    """One run's minutes: its comparison window by phase, its own notebooks, and the report steps it ran."""
    run: str
    window: float = 0.0
    phases: dict = field(default_factory=dict)
    notebooks: float = 0.0
    report: float = 0.0
    slowest: list = field(default_factory=list)      # (phase: what, minutes), the largest first

    @property
    def total(self) -> float:
        return self.window + self.notebooks


def steps_file(run: str, root: str | Path | None = None) -> Path:
    return paths.run_dir(run, root) / "notebooks" / STEPS_FILE


def read(run: str, root: str | Path | None = None, top: int = 3) -> RunCost:
    """The cost of ``run`` as its last runner pass recorded it (a step skipped as up to date keeps the cost of the
    pass that ran it)."""
    f = steps_file(run, root)
    if not f.is_file():
        raise FileNotFoundError(f"{paths.shown(f)} does not exist: run `make run` (or bgeq run) first")
    try:
        steps = json.loads(f.read_text())
    except ValueError as e:
        raise ValueError(f"{paths.shown(f)} is not valid JSON ({e}); delete it and run again") from None
    out = RunCost(run)
    for name, entry in steps.items():
        minutes = float(entry.get("seconds") or 0.0) / 60
        if name == WINDOW_STEP:
            out.window = minutes
            costs = entry.get("phases") or {}
            for phase in PHASES:
                out.phases[phase] = sum(s for k, s in costs.items() if k.split(":")[0] == phase) / 60
            out.slowest = sorted(((k, s / 60) for k, s in costs.items()), key=lambda x: -x[1])[:top]
        elif name in REPORT_STEPS:
            out.report += minutes
        else:
            out.notebooks += minutes
    return out


def table(runs: list[str], root: str | Path | None = None) -> str:
    """A markdown table: per run its comparison window by phase and its notebooks, the report steps, and all."""
    costs = [read(r, root) for r in runs]
    lines = ["| part | minutes | where they go |", "|---|---|---|"]
    for c in costs:
        phases = ", ".join(f"{p} {c.phases.get(p, 0):.1f}" for p in PHASES if c.phases.get(p))
        slow = "; ".join(f"{k} {m:.1f}" for k, m in c.slowest)
        lines.append(f"| `{c.run}` | {c.total:.1f} | comparison window {c.window:.1f} ({phases}; slowest: {slow}); "
                     f"notebooks {c.notebooks:.1f} |")
    report = sum(c.report for c in costs)
    lines.append(f"| report and export | {report:.1f} | {', '.join(f'`{s}`' for s in REPORT_STEPS)} |")
    lines.append(f"| **all** | **{sum(c.total for c in costs) + report:.1f}** | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        print(table(argv))
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
