"""The papermill runner on a tiny notebook: parameters injected, executed copy and HTML written."""
import nbformat
import pytest

from bgeq_utils.cli import runner
from bgeq_utils.core import paths


def _tiny_project(tmp_path, monkeypatch, profile: str):
    """A notebooks/ folder with one tiny parameterized notebook and a params/smoke.yaml profile."""
    nbdir, params = tmp_path / "nb", tmp_path / "params"
    nbdir.mkdir()
    params.mkdir()
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell('run = "x"\nmessage = "hello"')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("print(message * 2)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(nbdir / "01_tiny.ipynb"))
    (params / "smoke.yaml").write_text(profile)
    monkeypatch.setattr(paths, "NOTEBOOKS", nbdir)
    monkeypatch.setattr(paths, "PARAMS", params)
    monkeypatch.setenv("BGEQ_OUTPUTS", str(tmp_path / "out"))


def test_runner_executes_and_renders(tmp_path, monkeypatch, capsys):
    _tiny_project(tmp_path, monkeypatch, "run: smoke-run\nparameters:\n  message: bye\n  unused: 1\n")
    assert runner.run_profile("smoke") == 0
    out = tmp_path / "out" / "smoke-run" / "notebooks"
    executed = nbformat.read(str(out / "01_tiny.ipynb"), as_version=4)
    assert "byebye" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert (out / "01_tiny.html").read_text().count("byebye") >= 1
    assert "outputs under" in capsys.readouterr().out


def test_unknown_profile_lists_known(monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"no parameter profile 'nope'; known profiles: .*default"):
        runner.load_profile("nope")


def test_unknown_notebook_prefix_is_an_error_with_exit_code_2(tmp_path, monkeypatch, capsys):
    _tiny_project(tmp_path, monkeypatch, "run: smoke-run\n")
    assert runner.main(["--profile", "smoke", "--notebooks", "99"]) == 2
    err = capsys.readouterr().err
    assert "--notebooks 99: no such notebook in profile 'smoke'; its notebooks: 01_tiny" in err
    assert runner.main(["--profile", "nope"]) == 2 and "known profiles" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("run: x\nparameters: [a, b\n", r"bad.yaml line 3, column 1: not valid YAML"),
    ("- a\n- b\n", r"bad.yaml: a profile is a mapping with keys run, parameters, per_notebook, notebooks, "
                   r"comparison, not a list"),
    ("run: x\nnotebooks: [99_missing]\n", r"notebooks \['99_missing'\] are not in notebooks/"),
    ("run: x\nparamters: {}\n", r"unknown keys \['paramters'\]"),
])
def test_broken_profiles_name_the_file_and_line(tmp_path, monkeypatch, text, message):
    params = tmp_path / "params"
    params.mkdir()
    (params / "bad.yaml").write_text(text)
    monkeypatch.setattr(paths, "PARAMS", params)
    with pytest.raises(runner.ProfileError, match=message):
        runner.load_profile("bad")


def test_a_run_killed_midway_leaves_a_marker_the_next_run_and_the_report_show(tmp_path, monkeypatch, capsys):
    from bgeq_utils.compare import load
    _tiny_project(tmp_path, monkeypatch, "run: killed\n")
    (paths.results_dir("killed")).mkdir(parents=True)
    (paths.run_dir("killed") / runner.MARKER).write_text("started 2026-01-01 00:00:00, was executing 03_x\n")
    _, msgs = load(["killed"])
    assert any(m.startswith("warning: run 'killed' did not finish") and "03_x" in m for m in msgs)
    assert runner.run_profile("smoke") == 0
    assert "the previous run 'killed' did not finish (started 2026-01-01" in capsys.readouterr().out
    assert runner.interrupted("killed") is None          # a finished run removes its marker


def test_several_profiles_run_in_sequence_with_the_report_notebook_last(tmp_path, monkeypatch, capsys):
    _tiny_project(tmp_path, monkeypatch, "run: first\nnotebooks: [01_tiny, 09_tiny]\n")
    nb = nbformat.read(str(paths.NOTEBOOKS / "01_tiny.ipynb"), as_version=4)
    nbformat.write(nb, str(paths.NOTEBOOKS / "09_tiny.ipynb"))
    (paths.PARAMS / "second.yaml").write_text("run: second\nnotebooks: [01_tiny]\nparameters:\n  message: two\n")
    monkeypatch.setattr(runner, "REPORT_NOTEBOOKS", ("09_tiny",))
    steps = [(prof["run"], n) for prof, n in runner.plan(["smoke", "second"])]
    assert steps == [("first", "01_tiny"), ("second", "01_tiny"), ("first", "09_tiny")]
    assert runner.run_profile(["smoke", "second"]) == 0
    assert (tmp_path / "out" / "second" / "notebooks" / "01_tiny.ipynb").is_file()
    assert runner.interrupted("first") is None and runner.interrupted("second") is None
    with pytest.raises(runner.ProfileError, match="several profiles write several runs"):
        runner.run_profile(["smoke", "second"], overrides={"run": "x"})
    assert runner.main(["--profile", "smoke", "second", "--notebooks", "77"]) == 2
    assert "profile 'smoke' + 'second'" in capsys.readouterr().err


@pytest.mark.parametrize("profile", sorted(p.stem for p in paths.PARAMS.glob("*.yaml")))
def test_shipped_profiles_pass_only_parameters_their_notebooks_declare(profile):
    """The runner drops what a notebook does not declare (common parameters go to every notebook), so a
    notebook-specific value that no notebook declares would be silently lost: a typo is caught here."""
    prof = runner.load_profile(profile)
    for name, values in prof["per_notebook"].items():
        declared = runner._declared_parameters(paths.NOTEBOOKS / f"{name}.ipynb")
        assert set(values) <= declared, f"{profile}: {name} does not declare {sorted(set(values) - declared)}"
    everywhere = set.union(*(runner._declared_parameters(paths.NOTEBOOKS / f"{n}.ipynb") for n in prof["notebooks"]))
    assert set(prof["parameters"]) <= everywhere


def test_a_step_whose_inputs_are_unchanged_is_not_run_again(tmp_path, monkeypatch, capsys):
    _tiny_project(tmp_path, monkeypatch, "run: again\nparameters:\n  message: one\n")
    assert runner.run_profile("smoke") == 0
    first = (tmp_path / "out" / "again" / "notebooks" / "01_tiny.ipynb").stat().st_mtime_ns
    capsys.readouterr()
    assert runner.run_profile("smoke") == 0
    assert "01_tiny (again): up to date" in capsys.readouterr().out
    assert (tmp_path / "out" / "again" / "notebooks" / "01_tiny.ipynb").stat().st_mtime_ns == first
    assert runner.run_profile("smoke", overrides={"message": "two"}) == 0      # a parameter changed: it runs
    assert "up to date" not in capsys.readouterr().out
    assert runner.run_profile("smoke", overrides={"message": "two"}, force=True) == 0
    out = capsys.readouterr().out
    assert "up to date" not in out and "last time" in out


def test_phases_a_notebook_reports_are_printed_with_last_times_cost(tmp_path, monkeypatch, capsys):
    _tiny_project(tmp_path, monkeypatch, "run: phases\n")
    nb = nbformat.read(str(paths.NOTEBOOKS / "01_tiny.ipynb"), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "from bgeq_utils.core import progress\nwith progress.phase('build', 'int8-x'):\n    pass"))
    nbformat.write(nb, str(paths.NOTEBOOKS / "01_tiny.ipynb"))
    assert runner.run_profile("smoke") == 0
    out = capsys.readouterr().out
    assert "build: int8-x ..." in out and "build: int8-x: 0 s" in out
    assert runner.run_profile("smoke", force=True) == 0
    assert "build: int8-x ... (last time 0 s)" in capsys.readouterr().out


def test_a_profile_comparison_list_runs_a_window_step_first_and_its_typos_name_the_line(tmp_path, monkeypatch):
    _tiny_project(tmp_path, monkeypatch, "run: w\ncomparison: [fp32, int8-dynamic-onnx]\n")
    assert [n for _, n in runner.plan(["smoke"])] == [runner.WINDOW_STEP, "01_tiny"]
    assert [n for _, n in runner.plan(["smoke"], ["01"])] == ["01_tiny"]       # only named notebooks: no window
    fp = runner.fingerprint(runner.WINDOW_STEP, {"comparison": ["fp32"]}, "src")
    assert fp != runner.fingerprint(runner.WINDOW_STEP, {"comparison": ["fp32", "fp16"]}, "src")
    (paths.PARAMS / "bad.yaml").write_text("run: w\n\ncomparison: [fp32, int8-dynamic-onx]\n")
    with pytest.raises(runner.ProfileError, match=r"bad.yaml line 3: comparison: .*Did you mean 'int8-dynamic-onnx'"):
        runner.load_profile("bad")


def test_the_runner_refuses_a_misspelled_override_instead_of_dropping_it(tmp_path, monkeypatch, capsys):
    _tiny_project(tmp_path, monkeypatch, "run: typo\n")
    assert runner.main(["--profile", "smoke", "-p", "mesage", "hi"]) == 2
    assert "-p mesage: no notebook of this run declares a parameter 'mesage'; did you mean message?" in \
        capsys.readouterr().err
