"""Calibration sweeps: each calibration size joined to its figures."""
import pytest

from bgeq_utils.analysis import calibration
from bgeq_utils.compare import tabulate
from tests.factories import fp32, result


def test_calibration_sweep_table_joins_each_size_to_its_figures():
    rs = [fp32()] + [result("int8-static-onnx", label=f"int8-static-onnx[n={n}]", loss_pct=loss,
                            cos=(c, c - 1e-4, c + 1e-4), is_default=n == 64)
                     for n, loss, c in ((16, 2.0, 0.990), (64, 1.0, 0.995))]
    for r, n in zip(rs[1:], (16, 64)):
        r.settings["calibration"] = n
        r.key = f"int8-static-onnx-{n}"
    t = calibration.sweep_table(tabulate(rs), rs[1:])
    assert list(t["calibration method"]) == ["MinMax", "MinMax"]
    assert list(t["calibration texts"]) == [16, 64]
    assert t["cos_mean"].tolist() == pytest.approx([0.990, 0.995])
    assert t["quality_loss_pct"].tolist() == pytest.approx([2.0, 1.0], abs=1e-4)
