"""Project paths, always derived from the package location.

JupyterLab, papermill and nbval start kernels in different working directories, so nothing here
looks at the CWD. ``BGEQ_OUTPUTS`` and ``BGEQ_DATA`` may redirect outputs and data (tests use this to
keep a user's outputs untouched).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PARAMS = ROOT / "params"
CLAIMS = ROOT / "bgeq_utils" / "compare" / "claims.yaml"


def data_dir() -> Path:
    return Path(os.environ.get("BGEQ_DATA", ROOT / "data"))


#: this process's outputs folder when a notebook's ``output_dir`` chose one (:func:`use_outputs`)
_outputs: Path | None = None


def outputs_dir() -> Path:
    """``outputs/``, or the folder :func:`use_outputs` chose, or ``$BGEQ_OUTPUTS`` (what a child process inherits)."""
    if _outputs is not None:
        return _outputs
    return Path(os.environ.get("BGEQ_OUTPUTS", ROOT / "outputs"))


def use_outputs(folder: str | Path | None) -> Path:
    """Send this process's outputs to ``folder`` (a notebook's ``output_dir``; empty: back to the default).
    Only this process: the environment, which child processes and other notebooks inherit, is left alone."""
    global _outputs
    _outputs = Path(folder).expanduser().resolve() if folder else None
    return outputs_dir()


def shown(path: str | Path) -> str:
    """A path as shared outputs show it: relative to the repository when inside it, relative to the outputs
    folder (``<outputs>/...``) when that was redirected elsewhere (BGEQ_OUTPUTS), else as given."""
    p = Path(path).resolve()
    for base, prefix in ((ROOT, ""), (outputs_dir().resolve(), "<outputs>/")):
        try:
            return prefix + str(p.relative_to(base))
        except ValueError:
            continue
    return str(path)

_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_RUN_NAME = 100


def check_run_name(run: str) -> str:
    """A run name is a folder name: letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if not isinstance(run, str) or not _RUN_NAME.fullmatch(run) or len(run) > MAX_RUN_NAME:
        shown = repr(run) if not isinstance(run, str) or len(run) <= 60 else f"{run[:40]!r}... ({len(run)} characters)"
        raise ValueError(
            f"run name {shown} is not usable as a folder name; use at most {MAX_RUN_NAME} letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (e.g. 'default' or 'bge-large-random')"
        )
    return run


def run_dir(run: str, root: str | Path | None = None) -> Path:
    """``outputs/<run>/``: results, figures, embeddings, executed notebooks and the report of one run."""
    base = Path(root) if root else outputs_dir()
    return base / check_run_name(run)


def results_dir(run: str, root: str | Path | None = None) -> Path:
    return run_dir(run, root) / "results"


def figures_dir(run: str, root: str | Path | None = None) -> Path:
    d = run_dir(run, root) / "figures"
    d.mkdir(parents=True, exist_ok=True)
    return d


def embeddings_dir(run: str, root: str | Path | None = None) -> Path:
    return run_dir(run, root) / "embeddings"


def models_dir() -> Path:
    """Where hub models are downloaded to (and found again offline)."""
    return data_dir() / "models"


def beir_dir() -> Path:
    return data_dir() / "beir"


def cache_dir() -> Path:
    return data_dir() / "cache"
