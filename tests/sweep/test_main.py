"""`bgeq sweep` / `python -m bgeq_utils.sweep`: a dry run lists the tasks; errors are one line with exit code 2."""
from __future__ import annotations

import pytest

from bgeq_utils.cli import main as cli


def test_help_and_dry_run(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["sweep", "--help"])
    assert e.value.code == 0 and "--scheduler" in capsys.readouterr().out
    assert cli.main(["sweep", "example", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("sweep example: 2 runs, 7 tasks (timing: exclusive)")
    assert "  sweep-example-default/02_fp16_bf16 [bench]  after 01_baseline_fp32" in out
    assert out[-1] == "  sweep-example/09_comparison  after all 6 others"


def test_a_bad_grid_is_one_line_with_exit_code_2(write_grid, capsys):
    assert cli.main(["sweep", str(write_grid("models: [default]\nnotebooks: [02]\ntiming: fast\n"))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bgeq sweep: error: ") and "line 3: timing 'fast'" in err[0]
