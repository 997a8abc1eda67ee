"""Parameter profiles (params/<profile>.yaml) and the notebooks they run: read, checked, merged.

The runner (``make run``) and the sweep (``bgeq sweep``) both execute notebooks with a profile's parameters;
this module is what they share, so a parameter is merged and checked one way: the common parameters go to every
notebook that declares them, and a value given for a parameter that no notebook declares is an error naming it,
never silently dropped.
"""
from __future__ import annotations

import difflib
import warnings
from pathlib import Path

import yaml

from bgeq_utils.core import paths


class ProfileError(ValueError):
    """A parameter profile that cannot be used: the message names the file, the line and the fix."""


PROFILE_KEYS = ("run", "parameters", "per_notebook", "notebooks", "comparison")
#: the step that times every method of a profile's ``comparison`` list in one window, before its notebooks
WINDOW_STEP = "comparison-window"


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
    if "comparison" in prof:
        from bgeq_utils.measure import comparison_window  # torch and the registry: only for a comparison list
        try:
            prof["comparison"] = comparison_window.check_methods(prof["comparison"])
        except (ValueError, KeyError) as e:
            line = next((i + 1 for i, x in enumerate(p.read_text().splitlines()) if x.startswith("comparison:")), None)
            raise ProfileError(f"{p}{f' line {line}' if line else ''}: comparison: {e}") from None
    paths.check_run_name(str(prof["run"]))
    return prof


#: notebooks that read the Results of every run the profiles write (and write none): they run last, once, in
#: this order; a kill there loses no Result, so no marker covers them
REPORT_NOTEBOOKS = ("09_comparison", "10_export")


def declared_parameters(nb_path: Path) -> set[str]:
    """The names a notebook's ``parameters`` cell declares (as papermill reads them)."""
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


def notebook_parameters(layers, notebook: str) -> dict:
    """The parameters ``notebook`` runs with: ``layers`` (mappings, later ones win) merged, keeping only what
    the notebook declares (common parameters go to every notebook; each takes those it has)."""
    merged: dict = {}
    for layer in layers:
        merged.update(layer or {})
    declared = declared_parameters(paths.NOTEBOOKS / f"{notebook}.ipynb")
    return {k: v for k, v in merged.items() if k in declared}


def check_overrides(overrides: dict, notebooks) -> None:
    """Every overridden parameter must be declared by at least one of ``notebooks``: a misspelling is an error
    with the closest names, never a value silently dropped."""
    declared = set().union(*(declared_parameters(paths.NOTEBOOKS / f"{n}.ipynb") for n in notebooks)) \
        if notebooks else set()
    for k in overrides:
        if k not in declared and k != "run":
            close = difflib.get_close_matches(k, sorted(declared), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ProfileError(f"-p {k}: no notebook of this run declares a parameter {k!r}{hint} "
                               f"(notebooks: {', '.join(notebooks)})")
