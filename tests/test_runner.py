"""The papermill runner on a tiny notebook: parameters injected, executed copy and HTML written."""
import nbformat
import pytest

from bgeq_utils import paths, runner


def _tiny_notebook(folder):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell('run = "x"\nmessage = "hello"')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("print(message * 2)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(folder / "01_tiny.ipynb"))


def test_runner_executes_and_renders(tmp_path, monkeypatch, capsys):
    nbdir, params = tmp_path / "nb", tmp_path / "params"
    nbdir.mkdir(); params.mkdir()
    _tiny_notebook(nbdir)
    (params / "smoke.yaml").write_text("run: smoke-run\nparameters:\n  message: bye\n  unused: 1\n")
    monkeypatch.setattr(paths, "NOTEBOOKS", nbdir)
    monkeypatch.setattr(paths, "PARAMS", params)
    monkeypatch.setenv("BGEQ_OUTPUTS", str(tmp_path / "out"))
    assert runner.run_profile("smoke") == 0
    out = tmp_path / "out" / "smoke-run" / "notebooks"
    executed = nbformat.read(str(out / "01_tiny.ipynb"), as_version=4)
    assert "byebye" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert (out / "01_tiny.html").read_text().count("byebye") >= 1
    assert "outputs under" in capsys.readouterr().out


def test_unknown_profile_lists_known(monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"no parameter profile 'nope'; known profiles: .*default"):
        runner.load_profile("nope")
