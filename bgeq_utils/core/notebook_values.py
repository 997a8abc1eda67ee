"""Named values a notebook records for its tests (as recommenders' ``store_metadata`` does).

A figure that depends on the CPU (the fidelity and quality of a quantized method) is not compared as
printed text: the notebook records it by name, and the tests assert it against the committed notebook's
value with a tolerance that holds across x86 CPUs. ``record`` shows nothing in JupyterLab; it writes the
value into the cell's outputs under its own MIME type, and, when ``BGEQ_RECORDED`` names a file (the test
suite sets it), appends it there as a JSON line.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from bgeq_utils.core import vocab

MIME = "application/vnd.bgeq.values+json"
ENV = "BGEQ_RECORDED"


def _clean(v):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return None if math.isnan(f) else f


def record(values: dict[str, object]) -> None:
    """Record named values in the executing notebook (and in $BGEQ_RECORDED when set)."""
    values = {str(k): _clean(v) for k, v in values.items()}
    try:
        from IPython.display import display
        display({MIME: values}, raw=True, metadata={MIME: {"hidden": True}})
    except ImportError:  # pragma: no cover - outside IPython the file is the record
        pass
    target = os.environ.get(ENV)
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps(values) + "\n")


def measured_values(m, prefix: str) -> dict[str, float]:
    """The CPU-dependent figures of a measured table worth asserting: per configuration, fidelity (mean
    cosine to FP32) and each quality metric. Named ``<prefix>.<label>.<metric>``."""
    out = {}
    for _, r in m.table.iterrows():
        if r["status"] != vocab.OK:
            continue
        base = f"{prefix}.{r['label']}@{r['device']}"
        if r.get("cos_mean") is not None:
            out[f"{base}.cos_mean"] = r["cos_mean"]
        for col in r.index:
            if col.startswith("q:") and r[col] is not None:
                out[f"{base}.{col[2:]}"] = r[col]
    return {k: v for k, v in out.items() if _clean(v) is not None}


def read(nb_path: str | Path) -> dict[str, object]:
    """Every value an executed notebook recorded (later records of a name win)."""
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    out = {}
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if MIME in data:
                out.update(data[MIME])
    return out


def read_recorded(path: str | Path) -> dict[str, object]:
    out = {}
    p = Path(path)
    if p.is_file():
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.update(json.loads(line))
    return out
