"""Execute the notebooks headlessly with papermill for a parameter profile (params/<profile>.yaml).

Writes executed notebooks and an HTML rendering of each under outputs/<run>/notebooks/, next to the
Result files the notebooks save. ``python -m bgeq_utils.cli.runner --profile default``.
"""
from __future__ import annotations

import argparse
import sys
import time
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
    prof.setdefault("parameters", {})
    prof.setdefault("per_notebook", {})
    prof.setdefault("notebooks", known_notebooks())
    bad = [n for n in list(prof["notebooks"]) + list(prof["per_notebook"]) if n not in known_notebooks()]
    if bad:
        raise ProfileError(f"{p}: notebooks {bad} are not in notebooks/; known: {', '.join(known_notebooks())}")
    paths.check_run_name(str(prof["run"]))
    return prof


MARKER = "RUNNING"
#: notebooks that write no Result (they read them): a kill there loses nothing, so no marker covers them
REPORT_NOTEBOOKS = ("09_comparison",)


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
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(nb_path), as_version=4))
    out = nb_path.with_suffix(".html")
    out.write_text(body, encoding="utf8")
    return out


def run_profile(profile: str, only: list[str] | None = None, overrides: dict | None = None) -> int:
    import papermill as pm

    prof = load_profile(profile)
    run = paths.check_run_name(str((overrides or {}).get("run", prof["run"])))
    names = [n for n in prof["notebooks"] if not only or any(n.startswith(o) for o in only)]
    missing = [o for o in (only or []) if not any(n.startswith(o) for n in prof["notebooks"])]
    if missing:
        raise ProfileError(f"--notebooks {' '.join(missing)}: no such notebook in profile {profile!r}; its notebooks: "
                           f"{', '.join(prof['notebooks'])}")
    out_dir = paths.run_dir(run) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = interrupted(run)
    if previous:
        print(f"note: the previous run {run!r} did not finish ({previous}); its Results are kept", flush=True)
    marker = paths.run_dir(run) / MARKER
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    failures, done = [], []
    for name in names:
        if name in REPORT_NOTEBOOKS:
            marker.unlink(missing_ok=True)
        else:
            marker.write_text(f"started {started}, was executing {name} (profile {profile})\n")
        src = paths.NOTEBOOKS / f"{name}.ipynb"
        if not src.is_file():
            print(f"-- {name}: not in notebooks/, skipped")
            continue
        params = {**prof["parameters"], **prof["per_notebook"].get(name, {}), **(overrides or {}), "run": run}
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
            failures.append(name)
            status = f"FAILED ({type(e).__name__}: {str(e).strip().splitlines()[-1][:200] if str(e).strip() else ''})"
        html = to_html(dst) if dst.is_file() else None
        done.append((name, status, time.perf_counter() - t0, dst, html))
        print(f"   {status} in {done[-1][2]:.0f}s -> {dst}", flush=True)
    marker.unlink(missing_ok=True)
    print(f"\nRun '{run}' ({profile}): outputs under {paths.run_dir(run)}")
    print(f"  results:   {paths.results_dir(run)}")
    print(f"  notebooks: {out_dir} (.ipynb and .html)")
    print(f"  figures:   {paths.run_dir(run) / 'figures'}")
    report = paths.run_dir(run) / "report.html"
    if report.is_file():
        print(f"  report:    {report}")
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
    ap.add_argument("--profile", default="default", help="params/<profile>.yaml (default: default)")
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
