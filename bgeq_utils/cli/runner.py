"""Execute the notebooks headlessly with papermill for a parameter profile (params/<profile>.yaml).

Writes executed notebooks and an HTML rendering of each under outputs/<run>/notebooks/, next to the
Result files the notebooks save. ``python -m bgeq_utils.cli.runner --profile default``.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import yaml

from bgeq_utils.core import paths


class ProfileError(ValueError):
    """A parameter profile that cannot be used: the message names the file, the line and the fix."""


PROFILE_KEYS = ("run", "parameters", "per_notebook", "notebooks")


def known_notebooks() -> list[str]:
    return sorted(x.stem for x in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def load_profile(name_or_path: str) -> dict:
    p = Path(name_or_path)
    if not p.is_file():
        p = paths.PARAMS / f"{name_or_path}.yaml"
    if not p.is_file():
        known = sorted(x.stem for x in paths.PARAMS.glob("*.yaml"))
        raise FileNotFoundError(f"no parameter profile {name_or_path!r}; known profiles: {known} (in {paths.PARAMS})")
    try:
        prof = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ProfileError(f"{p}{where}: not valid YAML ({getattr(e, 'problem', None) or e}); a profile is a "
                           f"mapping with {', '.join(PROFILE_KEYS)}") from None
    prof = {} if prof is None else prof
    if not isinstance(prof, dict):
        raise ProfileError(f"{p}: a profile is a mapping with keys {', '.join(PROFILE_KEYS)}, not a "
                           f"{type(prof).__name__}")
    unknown = sorted(set(prof) - set(PROFILE_KEYS))
    if unknown:
        raise ProfileError(f"{p}: unknown keys {unknown}; a profile has {', '.join(PROFILE_KEYS)}")
    for key, kind in (("parameters", dict), ("per_notebook", dict), ("notebooks", list)):
        if key in prof and not isinstance(prof[key], kind):
            raise ProfileError(f"{p}: '{key}' must be a {'mapping' if kind is dict else 'list'}, not {prof[key]!r}")
    prof.setdefault("run", p.stem)
    prof["name"] = p.stem
    prof.setdefault("parameters", {})
    prof.setdefault("per_notebook", {})
    prof.setdefault("notebooks", known_notebooks())
    bad = [n for n in list(prof["notebooks"]) + list(prof["per_notebook"]) if n not in known_notebooks()]
    if bad:
        raise ProfileError(f"{p}: notebooks {bad} are not in notebooks/; known: {', '.join(known_notebooks())}")
    paths.check_run_name(str(prof["run"]))
    return prof


MARKER = "RUNNING"
#: notebooks that read the Results of every run the profiles write (and write none): they run last, once, in
#: this order; a kill there loses no Result, so no marker covers them
REPORT_NOTEBOOKS = ("09_comparison", "10_export")


def interrupted(run: str) -> str | None:
    """What a run that did not finish left behind (its marker file), or None."""
    m = paths.run_dir(run) / MARKER
    return m.read_text().strip() if m.is_file() else None


def _declared_parameters(nb_path: Path) -> set[str]:
    import papermill as pm
    return set(pm.inspect_notebook(str(nb_path)))


def to_html(nb_path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter
    with warnings.catch_warnings():  # the recorded values (application/vnd.bgeq.values+json) have no HTML form
        warnings.filterwarnings("ignore", message=".*is not able to be represented", category=UserWarning)
        body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(nb_path), as_version=4))
    out = nb_path.with_suffix(".html")
    out.write_text(body, encoding="utf8")
    return out


def plan(profiles: list[str], only: list[str] | None = None) -> list[tuple[dict, str]]:
    """The (profile, notebook) steps of one invocation: each profile's notebooks in order, then the report
    notebooks once, last, with the first profile's parameters (they read every run the profiles write)."""
    profs = [load_profile(p) for p in profiles]
    steps = [(prof, n) for prof in profs for n in prof["notebooks"] if n not in REPORT_NOTEBOOKS]
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


def run_profile(profile: str | list[str], only: list[str] | None = None, overrides: dict | None = None) -> int:
    """Execute the notebooks of one profile, or of several in sequence (``make run``: the offline model's
    quality, then bge-large's shape), the report notebooks last."""
    import papermill as pm

    profiles = [profile] if isinstance(profile, str) else list(profile)
    overrides = dict(overrides or {})
    if "run" in overrides and len(profiles) > 1:
        raise ProfileError("-p run: several profiles write several runs; give the run name in each profile")
    steps = plan(profiles, only)
    run_of = [paths.check_run_name(str(overrides.get("run", prof["run"]))) for prof, _ in steps]
    runs = list(dict.fromkeys(run_of))
    for run in runs:
        previous = interrupted(run)
        if previous:
            print(f"note: the previous run {run!r} did not finish ({previous}); its Results are kept", flush=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    failures, done = [], []
    t_all = time.perf_counter()
    last_step = {run: i for i, (run, (_, name)) in enumerate(zip(run_of, steps)) if name not in REPORT_NOTEBOOKS}
    for i, (prof, name) in enumerate(steps):
        run = run_of[i]
        out_dir = paths.run_dir(run) / "notebooks"
        out_dir.mkdir(parents=True, exist_ok=True)
        marker = paths.run_dir(run) / MARKER
        if name not in REPORT_NOTEBOOKS:
            marker.write_text(f"started {started}, was executing {name} (profile {prof['name']})\n")
        src = paths.NOTEBOOKS / f"{name}.ipynb"
        params = {**prof["parameters"], **prof["per_notebook"].get(name, {}), **overrides, "run": run}
        declared = _declared_parameters(src)
        params = {k: v for k, v in params.items() if k in declared}
        dst = out_dir / src.name
        t0 = time.perf_counter()
        print(f"== {name} ({run}) ...", flush=True)
        try:
            pm.execute_notebook(str(src), str(dst), parameters=params, kernel_name="python3",
                                cwd=str(paths.NOTEBOOKS), progress_bar=False, log_output=False)
            status = "ok"
        except Exception as e:  # keep going: one broken notebook must not hide the others' results
            failures.append(f"{name} ({run})")
            status = f"FAILED ({type(e).__name__}: {str(e).strip().splitlines()[-1][:200] if str(e).strip() else ''})"
        html = to_html(dst) if dst.is_file() else None
        for p in (dst, html):
            if p is not None and p.is_file():
                p.chmod(0o644)
        if last_step.get(run) == i:
            marker.unlink(missing_ok=True)
        done.append((name, run, status, time.perf_counter() - t0))
        print(f"   {status} in {done[-1][3]:.0f}s -> {paths.shown(dst)}", flush=True)
    for run in runs:
        (paths.run_dir(run) / MARKER).unlink(missing_ok=True)
    print(f"\nNotebooks: {time.perf_counter() - t_all:.0f}s in all")
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
    a = ap.parse_args(argv)
    try:
        return run_profile(a.profile, a.notebooks, {k: _parse_value(v) for k, v in a.p})
    except (ProfileError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
