"""What the environment tells the runtimes."""
import os

from bgeq_utils.core import env


def test_runtimes_take_their_thread_count_from_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert env.default_threads() == 1
    for bad in ("", "0", "two"):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        assert env.default_threads() == (os.cpu_count() or 1)


def test_a_missing_backend_names_the_extra_that_installs_it():
    from bgeq_utils.core import vocab
    assert vocab.install_hint("optimum.quanto") == "pip install -e '.[quanto]' (make setup installs every extra)"
    assert vocab.install_hint("nncf").startswith("pip install -e '.[openvino]'")
    assert vocab.install_hint("somethingelse") == "pip install somethingelse"
