"""The bgeq command line: each subcommand reaches the package, errors are one line with exit code 2."""
from __future__ import annotations

import subprocess
import sys

import pytest

from bgeq_utils.cli import main as cli
from bgeq_utils.core import results
from tests.factories import fp32, result


@pytest.fixture
def saved_run(tmp_path, monkeypatch):
    """A run 'cli' with FP32 and two INT8 methods at batch 8 x 128: one fast but lossy, one slower and close."""
    monkeypatch.setenv("BGEQ_OUTPUTS", str(tmp_path / "out"))
    for r in (fp32(run="cli", batch=8, mem_mb=250.0),
              result("int8-dynamic-onnx", run="cli", batch=8, tps=3000.0, speed=(3.0, 2.8, 3.2), loss_pct=2.5,
                     mem_mb=150.0, cos=0.995, runtime="onnxruntime"),
              result("int8-dynamic-torch", run="cli", batch=8, tps=1800.0, speed=(1.8, 1.7, 1.9), loss_pct=0.4,
                     mem_mb=300.0, cos=0.999)):
        results.save(r)
    return "cli"


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "bgeq_utils", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in ("run", "bench", "report", "recommend", "export", "sweep", "methods"):
        assert name in out.stdout


def test_recommend_follows_the_constraints(saved_run, capsys):
    assert cli.main(["recommend", saved_run, "--max-quality-loss", "3", "--min-speedup", "2"]) == 0
    loose = capsys.readouterr().out
    assert cli.main(["recommend", saved_run, "--max-quality-loss", "1"]) == 0
    tight = capsys.readouterr().out
    assert "int8-dynamic-onnx" in loose.splitlines()[1] and "int8-dynamic-torch" in tight.splitlines()[1]
    assert "What would change the answer" in loose


def test_report_writes_the_files_and_prints_relative_paths(saved_run, capsys):
    assert cli.main(["report", saved_run]) == 0
    out = capsys.readouterr().out
    assert "report.html" in out and "/tmp" not in out


def test_methods_prints_the_registry(capsys):
    assert cli.main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "int8-static-openvino" in out and "nf4-bnb" in out


def test_errors_are_one_line_with_exit_code_2(saved_run, tmp_path, capsys):
    assert cli.main(["recommend", "no-such-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bgeq recommend: error: no Results in no-such-run")
    assert cli.main(["run", "--profile", "no-such-profile"]) == 2
    assert "no parameter profile 'no-such-profile'" in capsys.readouterr().err


def test_export_refuses_an_unknown_method_in_one_line(tmp_path, capsys):
    assert cli.main(["export", "no-such-method", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-method" in err[0] and not (tmp_path / "x").exists()


def test_passthrough_subcommands_hand_help_to_their_own_parser(capsys):
    for name in ("export", "bench", "sweep"):
        with pytest.raises(SystemExit) as e:
            cli.main([name, "--help"])
        assert e.value.code == 0
        assert "usage:" in capsys.readouterr().out
