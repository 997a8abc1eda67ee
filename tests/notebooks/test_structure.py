"""Every notebook follows the anatomy: one literal-only parameters cell that papermill can read."""
import ast
import json

import pytest

from bgeq_utils.core import paths

NOTEBOOKS = sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
COMMON = {"model", "weights", "dataset", "device", "run"}


def _cells(nb):
    return json.loads(nb.read_text())["cells"]


def test_there_are_notebooks():
    assert any(nb.name.startswith("01_") for nb in NOTEBOOKS)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_literal_and_readable_by_papermill(nb):
    import papermill as pm
    cells = _cells(nb)
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    src = "".join(cells[tagged[0]]["source"])
    names = set()
    for node in ast.parse(src).body:
        assert isinstance(node, ast.Assign), f"only assignments in the parameters cell: {ast.unparse(node)}"
        ast.literal_eval(node.value)  # literals only
        names |= {t.id for t in node.targets}
    assert set(pm.inspect_notebook(str(nb))) == names, "papermill must see every parameter"
    if not nb.name.startswith("09_"):
        assert COMMON <= names
    assert tagged[0] + 1 < len(cells), "derived values belong in the next cell"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_path_hacks(nb):
    for c in _cells(nb):
        src = "".join(c["source"])
        assert "sys.path" not in src and "os.chdir" not in src
