"""Execute the notebooks headlessly with papermill for a parameter profile (params/<profile>.yaml).

Writes executed notebooks and an HTML rendering of each under outputs/<run>/notebooks/, next to the
Result files the notebooks save. ``python -m bgeq_utils.cli.runner --profile default``.
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import yaml

from bgeq_utils.core import paths, progress, results, vocab
from bgeq_utils.runs import cost
from bgeq_utils.runs.profiles import (  # noqa: F401  (the runner's names, as before)
    PROFILE_KEYS,
    REPORT_NOTEBOOKS,
    WINDOW_STEP,
    ProfileError,
    check_overrides,
    known_notebooks,
    load_profile,
    notebook_parameters,
    to_html,
)
from bgeq_utils.runs.profiles import declared_parameters as _declared_parameters  # noqa: F401

MARKER = "RUNNING"


def interrupted(run: str) -> str | None:
    """What a run that did not finish left behind (its marker file), or None."""
    m = paths.run_dir(run) / MARKER
    return m.read_text().strip() if m.is_file() else None


def plan(profiles: list[str], only: list[str] | None = None) -> list[tuple[dict, str]]:
    """The (profile, notebook) steps of one invocation: each profile's notebooks in order, then the report
    notebooks once, last, with the first profile's parameters (they read every run the profiles write)."""
    profs = [load_profile(p) for p in profiles]
    steps = [(prof, n) for prof in profs
             for n in ([WINDOW_STEP] if prof.get("comparison") and not only else []) + prof["notebooks"]
             if n not in REPORT_NOTEBOOKS]
    for n in REPORT_NOTEBOOKS:
        owner = next((prof for prof in profs if n in prof["notebooks"]), None)
        if owner is not None:
            steps.append((owner, n))
    names = [n for _, n in steps]
    missing = [o for o in (only or []) if not any(n.startswith(o) for n in names)]
    if missing:
        listed = ", ".join(dict.fromkeys(names))
        raise ProfileError(f"--notebooks {' '.join(missing)}: no such notebook in profile "
                           f"{' + '.join(repr(p) for p in profiles)}; its notebooks: {listed}")
    return [(prof, n) for prof, n in steps if not only or any(n.startswith(o) for o in only)]


# what each step of a run cost and what it was run with lives in runs.cost.steps_file (a step whose inputs are
# unchanged is not run again)


def _source_digest() -> str:
    """The package's code and claims: a change there can change any figure, so every step runs again."""
    import hashlib
    h = hashlib.sha1()
    root = paths.ROOT / "bgeq_utils"
    for f in sorted(list(root.rglob("*.py")) + list(root.rglob("*.yaml"))):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _results_digest(runs: list[str]) -> str:
    """What the report notebooks read: every Result file of the runs (name, size, time) and the reference
    folders beside them."""
    import hashlib
    h = hashlib.sha1()
    folders = [paths.results_dir(r) for r in runs] + [paths.outputs_dir() / "gpu-reference"]
    for folder in folders:
        for f in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
            st = f.stat()
            h.update(f"{f} {st.st_size} {st.st_mtime_ns}".encode())
    return h.hexdigest()


def fingerprint(name: str, params: dict, source: str, results_of: list[str] | None = None) -> str:
    """A step's inputs: its notebook (or the window's method list), its parameters, the package's code, and
    for the report notebooks the Results they read."""
    import hashlib

    nb = paths.NOTEBOOKS / f"{name}.ipynb"
    parts = {"step": name, "parameters": params, "source": source,
             "notebook": hashlib.sha1(nb.read_bytes()).hexdigest() if nb.is_file() else None}
    if results_of is not None:
        parts["results"] = _results_digest(results_of)
    return hashlib.sha1(results.canonical(parts).encode()).hexdigest()


def _load_steps(run: str) -> dict:
    import json
    f = cost.steps_file(run)
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return {}


def _save_steps(run: str, steps: dict) -> None:
    results.write_json(steps, cost.steps_file(run))


def _minutes(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _follow(target, progress_file: Path, last: dict, poll: float = 1.0):
    """Run ``target()`` in a thread while printing the phases it reports (build, window, memory, fidelity),
    each with what the same phase cost last time. Returns what ``target`` returned (or raises what it raised)
    and the phases' costs."""
    import threading

    box: dict = {}

    def work():
        try:
            box["value"] = target()
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=work, daemon=True)
    t.start()
    offset, costs = 0, {}
    while True:
        t.join(poll)
        events, offset = progress.read_new(progress_file, offset)
        for ev in events:
            key = f"{ev['phase']}: {ev['what']}"
            if "seconds" in ev:
                costs[key] = ev["seconds"]
                print(f"     {key}: {_minutes(ev['seconds'])}", flush=True)
            else:
                was = last.get(key)
                print(f"     {key} ..." + (f" (last time {_minutes(was)})" if was is not None else ""), flush=True)
        if not t.is_alive():
            break
    if "error" in box:
        raise box["error"]
    return box.get("value"), costs


def _run_window(prof: dict, run: str, params: dict) -> None:
    import json
    import subprocess
    args = {"run": run, "methods": prof["comparison"], "parameters": params, "progress": False}
    proc = subprocess.run([sys.executable, "-m", "bgeq_utils.measure.comparison_window", json.dumps(args)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"comparison window exited with {proc.returncode}: {tail}")


def run_profile(profile: str | list[str], only: list[str] | None = None, overrides: dict | None = None,
                force: bool = False) -> int:
    """Execute the notebooks of one profile, or of several in sequence (``make run``: the offline model's
    quality, then bge-large's shape), the report notebooks last. A profile with a ``comparison`` list first
    times those methods in one window (its notebooks then reuse those Results).

    A step whose notebook, parameters and the package's code are unchanged since it last finished without an
    error (the report notebooks: and the Results they read) is not run again unless ``force``."""
    import os

    import papermill as pm

    profiles = [profile] if isinstance(profile, str) else list(profile)
    overrides = dict(overrides or {})
    if "run" in overrides and len(profiles) > 1:
        raise ProfileError("-p run: several profiles write several runs; give the run name in each profile")
    steps = plan(profiles, only)
    check_overrides(overrides, [n for _, n in steps if n != WINDOW_STEP])
    run_of = [paths.check_run_name(str(overrides.get("run", prof["run"]))) for prof, _ in steps]
    runs = list(dict.fromkeys(run_of))
    for run in runs:
        previous = interrupted(run)
        if previous:
            print(f"note: the previous run {run!r} did not finish ({previous}); its Results are kept", flush=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    source = _source_digest()
    book = {run: _load_steps(run) for run in runs}
    failures, done = [], []
    t_all = time.perf_counter()
    last_step = {run: i for i, (run, (_, name)) in enumerate(zip(run_of, steps)) if name not in REPORT_NOTEBOOKS}
    for i, (prof, name) in enumerate(steps):
        run = run_of[i]
        out_dir = paths.run_dir(run) / "notebooks"
        out_dir.mkdir(parents=True, exist_ok=True)
        marker = paths.run_dir(run) / MARKER
        layers = (prof["parameters"], prof["per_notebook"].get(name, {}), overrides, {"run": run})
        params = notebook_parameters(layers, name) if name != WINDOW_STEP else \
            {k: v for d in layers for k, v in d.items()}
        fp = fingerprint(name, {**params, "comparison": prof["comparison"]} if name == WINDOW_STEP else params,
                         source, runs if name in REPORT_NOTEBOOKS else None)
        entry = book[run].get(name, {})
        dst = out_dir / (f"{name}.ipynb" if name != WINDOW_STEP else f"{name}.log")
        left = [book[r].get(n, {}).get("seconds") for r, (_, n) in zip(run_of[i:], steps[i:])]
        eta = f"; about {_minutes(sum(x for x in left if x))} left" + (" and more" if None in left else "") \
            if any(left) else ""
        if not force and entry.get("fingerprint") == fp and entry.get("status") == vocab.OK and dst.is_file():
            print(f"== [{i + 1}/{len(steps)}] {name} ({run}): up to date (finished {entry.get('finished')})",
                  flush=True)
            done.append((name, run, "up to date", 0.0))
            continue
        if name not in REPORT_NOTEBOOKS:
            marker.write_text(f"started {started}, was executing {name} (profile {prof['name']})\n")
        t0 = time.perf_counter()
        print(f"== [{i + 1}/{len(steps)}] {name} ({run}) ... last time {_minutes(entry.get('seconds'))}{eta}",
              flush=True)
        progress_file = paths.run_dir(run) / "progress.jsonl"
        progress_file.unlink(missing_ok=True)
        os.environ["BGEQ_PROGRESS"] = str(progress_file)
        try:
            if name == WINDOW_STEP:
                target = functools.partial(_run_window, prof, run, params)
            else:
                target = functools.partial(pm.execute_notebook, str(paths.NOTEBOOKS / f"{name}.ipynb"), str(dst),
                                           parameters=params, kernel_name="python3", cwd=str(paths.NOTEBOOKS),
                                           progress_bar=False, log_output=False)
            _, costs = _follow(target, progress_file, entry.get("phases", {}))
            status = vocab.OK
        except Exception as e:  # keep going: one broken notebook must not hide the others' results
            failures.append(f"{name} ({run})")
            costs = {}
            status = f"FAILED ({type(e).__name__}: {str(e).strip().splitlines()[-1][:200] if str(e).strip() else ''})"
        finally:
            os.environ.pop("BGEQ_PROGRESS", None)
        secs = time.perf_counter() - t0
        if name == WINDOW_STEP and status == vocab.OK:
            dst.write_text("".join(f"{k}: {v:.1f} s\n" for k, v in costs.items()))
        html = to_html(dst) if dst.is_file() and dst.suffix == ".ipynb" else None
        for f in (dst, html):
            if f is not None and f.is_file():
                f.chmod(0o644)
        if last_step.get(run) == i:
            marker.unlink(missing_ok=True)
        ok = status == vocab.OK
        book[run][name] = {"fingerprint": fp if ok else None, "status": vocab.OK if ok else vocab.FAILED,
                           "seconds": round(secs, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                           "phases": costs or entry.get("phases", {})}
        _save_steps(run, book[run])
        done.append((name, run, status, secs))
        print(f"   {status} in {_minutes(secs)} -> {paths.shown(dst)}", flush=True)
    for run in runs:
        (paths.run_dir(run) / MARKER).unlink(missing_ok=True)
    print(f"\nSteps: {_minutes(time.perf_counter() - t_all)} in all")
    for name, run, status, secs in done:
        print(f"  {secs:6.0f}s  {run:20s} {name:24s} {status}")
    for run in runs:
        print(f"Run '{run}': outputs under {paths.shown(paths.run_dir(run))} (results/, notebooks/, figures/)")
        report = paths.run_dir(run) / "report.html"
        if report.is_file():
            print(f"  report:    {paths.shown(report)}")
    if failures:
        print(f"FAILED notebooks: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def _parse_value(v: str):
    try:
        return yaml.safe_load(v)
    except yaml.YAMLError:
        return v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", nargs="+", default=["default"],
                    help="params/<profile>.yaml, one or several run in sequence (default: default)")
    ap.add_argument("--notebooks", nargs="*", help="only these (prefixes, e.g. 01 09)")
    ap.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                    help="override a parameter (YAML value), e.g. -p device cpu")
    ap.add_argument("--force", action="store_true",
                    help="run every step again, even those whose inputs are unchanged since they finished")
    a = ap.parse_args(argv)
    try:
        return run_profile(a.profile, a.notebooks, {k: _parse_value(v) for k, v in a.p}, force=a.force)
    except (ProfileError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
