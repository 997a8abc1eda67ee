"""The bench configuration: a bad parameter is refused under the name a notebook gives it."""
import pytest

from bgeq_utils.measure import pipeline


def test_bad_bench_parameters_name_the_notebook_parameter():
    with pytest.raises(ValueError, match=r"batch_sizes='notalist': use a list of positive whole numbers"):
        pipeline.BenchConfig(batch_sizes="notalist")
    with pytest.raises(ValueError, match=r"memory_repeats=0: use a whole number >= 1"):
        pipeline.BenchConfig(memory_repeats=0)
    with pytest.raises(ValueError, match=r"invariance_texts=1: use a whole number >= 2"):
        pipeline.BenchConfig(invariance_texts=1)
