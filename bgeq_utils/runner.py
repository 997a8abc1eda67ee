"""Execute the notebooks headlessly with papermill for a parameter profile (params/<profile>.yaml).

Writes executed notebooks and an HTML rendering of each under outputs/<run>/notebooks/, next to the
Result files the notebooks save. ``python -m bgeq_utils.runner --profile default``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from . import paths


def load_profile(name_or_path: str) -> dict:
    p = Path(name_or_path)
    if not p.is_file():
        p = paths.PARAMS / f"{name_or_path}.yaml"
    if not p.is_file():
        known = sorted(x.stem for x in paths.PARAMS.glob("*.yaml"))
        raise FileNotFoundError(f"no parameter profile {name_or_path!r}; known profiles: {known} (in {paths.PARAMS})")
    prof = yaml.safe_load(p.read_text()) or {}
    prof.setdefault("run", p.stem)
    prof.setdefault("parameters", {})
    prof.setdefault("per_notebook", {})
    prof.setdefault("notebooks", sorted(x.stem for x in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")))
    return prof


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
    out_dir = paths.run_dir(run) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    failures, done = [], []
    names = [n for n in prof["notebooks"] if not only or any(n.startswith(o) for o in only)]
    for name in names:
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
    return run_profile(a.profile, a.notebooks, {k: _parse_value(v) for k, v in a.p})


if __name__ == "__main__":
    sys.exit(main())
