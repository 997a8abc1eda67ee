"""What the environment tells the runtimes."""
import os

from bgeq_utils.core import env


def test_runtimes_take_their_thread_count_from_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert env.default_threads() == 1
    for bad in ("", "0", "two"):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        assert env.default_threads() == (os.cpu_count() or 1)
