"""The CPU-dependent figures of the replayed notebooks against the committed notebooks, with tolerances.

Run after nbval in the same pytest session (``make test-notebooks``): nbval replays each notebook and
compares only outputs that do not depend on the CPU; every notebook also records its CPU-dependent figures
by name (bgeq_utils.core.notebook_values), which this check compares with the committed notebook's values. The
tolerances hold across x86 CPUs (with or without AVX512-VNNI): an INT8 kernel without VNNI rounds
differently, a broken method misses by far more.
"""
import fnmatch
import os

import pytest

from bgeq_utils import methods
from bgeq_utils.core import notebook_values, paths

NOTEBOOKS = sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
#: absolute tolerance by precision of the method and kind of figure
TOLERANCE = {
    ("fp32", "cos_mean"): 1e-4, ("fp16", "cos_mean"): 1e-3, ("bf16", "cos_mean"): 2e-3,
    ("int8", "cos_mean"): 0.02, ("4bit", "cos_mean"): 0.03,
    ("fp32", "quality"): 0.005, ("fp16", "quality"): 0.01, ("bf16", "quality"): 0.02,
    ("int8", "quality"): 0.05, ("4bit", "quality"): 0.08,
}
#: notebook 08's labels name an output precision of the stored embeddings (``method[out=binary,rescore=4]``): an
#: int8 bucket or a sign that flips between CPUs moves a rank, so the figure gets at least this tolerance
OUTPUT_TOLERANCE = {"float32": 0.0, "int8": 0.02, "uint8": 0.02, "binary": 0.03, "ubinary": 0.03}


def tolerance(name: str) -> float:
    """<notebook>.<label>@<device>.<metric> -> the tolerance of that method's precision and that figure."""
    _, rest = name.split(".", 1)
    label, metric = rest.rsplit(".", 1)
    method = label.split("@")[0].split("[")[0]
    try:
        precision = methods.get(method).precision
    except KeyError:
        precision = "int8"
    precision = "4bit" if precision in ("int4", "nf4", "fp4") else precision
    tol = TOLERANCE[(precision, "cos_mean" if metric == "cos_mean" else "quality")]
    out = label.split("out=")[1].split(",")[0].split("]")[0] if "[out=" in label else "float32"
    return max(tol, OUTPUT_TOLERANCE[out])


def committed() -> dict:
    out = {}
    for nb in NOTEBOOKS:
        out.update(notebook_values.read(nb))
    return out


def test_recorded_values_match_the_committed_notebooks(request):
    replayed_nbs = [i for i in request.session.items if i.nodeid.endswith(".ipynb") or ".ipynb::" in i.nodeid]
    if not replayed_nbs:
        pytest.skip("the notebooks were not replayed in this session; run: make test-notebooks")
    path = os.environ.get(notebook_values.ENV)
    replayed = notebook_values.read_recorded(path) if path else {}
    expected = committed()
    assert expected, "the committed notebooks record no values: re-execute them (make notebooks)"
    missing = sorted(set(expected) - set(replayed))
    assert not missing, f"values the committed notebooks record but the replay did not: {missing[:10]}"
    off = []
    for name, want in expected.items():
        got = replayed[name]
        if want is None or got is None:
            if want != got:
                off.append(f"{name}: committed {want}, replayed {got}")
            continue
        tol = tolerance(name)
        if abs(got - want) > tol:
            off.append(f"{name}: committed {want:.5f}, replayed {got:.5f} (tolerance {tol:g})")
    assert not off, "figures moved beyond their tolerance:\n" + "\n".join(off)


def test_tolerances_cover_every_recorded_name():
    for name in committed():
        assert tolerance(name) > 0
    assert fnmatch.fnmatch("03.int8-dynamic-onnx@cpu.cos_mean", "*.cos_mean")
    assert tolerance("08.fp32[out=binary,rescore=4]@cpu.ndcg@10") == OUTPUT_TOLERANCE["binary"]
    assert tolerance("08.int4-onnx[out=int8]@cpu.mrr@10") == TOLERANCE[("4bit", "quality")]
