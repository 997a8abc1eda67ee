"""Project paths: derived from the package, redirected only where asked."""
import os

import pytest

from bgeq_utils.core import paths


def test_a_notebooks_output_dir_redirects_this_process_only(tmp_path):
    before = os.environ.get("BGEQ_OUTPUTS")
    try:
        assert paths.use_outputs(tmp_path / "mine") == (tmp_path / "mine").resolve()
        assert paths.results_dir("r") == (tmp_path / "mine" / "r" / "results").resolve()
        assert os.environ.get("BGEQ_OUTPUTS") == before       # children and other notebooks are not redirected
    finally:
        paths.use_outputs("")
    assert paths.outputs_dir() == (paths.Path(before) if before else paths.ROOT / "outputs")


def test_the_study_sends_its_outputs_where_the_notebook_says(tmp_path):
    from bgeq_utils.measure import pipeline
    try:
        s = pipeline.study("default", run="pytest-out", max_docs=5, output_dir=str(tmp_path))
        assert s.run == "pytest-out" and (tmp_path / "pytest-out").is_dir()
    finally:
        paths.use_outputs("")


def test_a_run_name_that_is_not_a_folder_name_is_refused_with_an_example():
    with pytest.raises(ValueError, match=r"'a/b' is not usable as a folder name.*'bge-large-random'"):
        paths.check_run_name("a/b")
