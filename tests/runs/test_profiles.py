"""Profiles read, checked and merged one way for the runner and the sweep."""
import nbformat
import pytest

from bgeq_utils.core import paths
from bgeq_utils.runs import profiles


@pytest.fixture
def two_notebooks(tmp_path, monkeypatch):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    for name, src in (("01_a", 'run = "x"\nmax_docs = None\nmessage = "a"'), ("02_b", 'run = "x"\nsteps = 1')):
        nb = nbformat.v4.new_notebook()
        p = nbformat.v4.new_code_cell(src)
        p.metadata["tags"] = ["parameters"]
        nb.cells = [p]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(nbdir / f"{name}.ipynb"))
    monkeypatch.setattr(paths, "NOTEBOOKS", nbdir)
    return nbdir


def test_each_notebook_takes_the_parameters_it_declares_later_layers_winning(two_notebooks):
    layers = ({"max_docs": 20, "steps": 5, "message": "common"}, {"message": "per notebook"}, {"run": "r"})
    assert profiles.notebook_parameters(layers, "01_a") == {"max_docs": 20, "message": "per notebook", "run": "r"}
    assert profiles.notebook_parameters(layers, "02_b") == {"steps": 5, "run": "r"}


def test_a_misspelled_override_is_an_error_with_the_closest_names(two_notebooks):
    profiles.check_overrides({"max_docs": 3, "steps": 2, "run": "r"}, ["01_a", "02_b"])
    with pytest.raises(profiles.ProfileError, match=r"-p max_doc: no notebook of this run declares .*max_docs"):
        profiles.check_overrides({"max_doc": 20}, ["01_a", "02_b"])
    with pytest.raises(profiles.ProfileError, match="steps"):
        profiles.check_overrides({"steps": 2}, ["01_a"])       # declared only by a notebook not in the run
