"""Copy the Results of the last complete `make run` into outputs/reference/, the run a reader of the repository sees.

    python scripts/ship_reference.py [--runs default bge-large-random] [--report-run default]

Copies each run's Result files (JSON; failed re-runs kept beside them under attempts/), the report run's
report.html, comparison.csv/.md and ledger.csv, and writes MACHINE.json: the machine, the packages, the commit
and when. Refuses a run that did not finish (its RUNNING marker is there) or that has no Results. The
committed notebook 09_comparison reads these folders by default, so it shows the answer `make run` gives.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time

from bgeq_utils.core import env, paths, results

REPORT_FILES = ("report.html", "comparison.csv", "comparison.md", "ledger.csv")


def ship(runs: list[str], report_run: str, dest=None, commit: str | None = None) -> list[str]:
    dest = dest or paths.outputs_dir() / "reference"
    for run in runs:
        folder = paths.results_dir(run)
        if (paths.run_dir(run) / "RUNNING").is_file():
            raise SystemExit(f"run {run!r} did not finish ({paths.run_dir(run) / 'RUNNING'}): run `make run` first")
        if not any(folder.glob("*.json")):
            raise SystemExit(f"run {run!r} has no Results in {paths.shown(folder)}: run `make run` first")
    missing = [f for f in REPORT_FILES if not (paths.run_dir(report_run) / f).is_file()]
    if missing:
        raise SystemExit(f"run {report_run!r} has no {', '.join(missing)}: run `make run` (09_comparison) first")
    shutil.rmtree(dest, ignore_errors=True)
    written = []
    for run in runs:
        out = dest / run / "results"
        shutil.copytree(paths.results_dir(run), out, ignore=shutil.ignore_patterns(".tmp-*"))
        written.append(paths.shown(out))
    for f in REPORT_FILES:
        shutil.copy2(paths.run_dir(report_run) / f, dest / f)
        written.append(paths.shown(dest / f))
    commit = commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                      cwd=paths.ROOT).stdout.strip()
    results.write_json({"machine": env.describe("cpu"), "packages": env.package_versions(), "commit": commit,
                        "runs": runs, "shipped": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "how": "make run on a fresh clone, then make reference"}, dest / "MACHINE.json")
    for p in dest.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=["default", "bge-large-random"])
    ap.add_argument("--report-run", default="default")
    ap.add_argument("--commit", default=None, help="the commit the run was made with (default: HEAD)")
    a = ap.parse_args(argv)
    written = ship(a.runs, a.report_run, commit=a.commit)
    print(json.dumps(written, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
