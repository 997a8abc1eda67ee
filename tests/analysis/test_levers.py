"""Levers tried one at a time: the table and the choice read the measured table's intervals."""
import pytest

from bgeq_utils.analysis import levers
from bgeq_utils.compare import tabulate
from tests import factories as f


def _runs(fast_speed=(4.6, 4.4, 4.8), fast_cos=0.9985, fast_loss=0.0, base_speed=(3.8, 3.7, 3.9)):
    base = f.result("int8-static-openvino", "int8", runtime="openvino", speed=4.0, speed_runtime=base_speed,
                    loss_pct=0.0, cos=(0.9982, 0.9980, 0.9984))
    fast = f.result("int8-static-openvino", "int8", label="int8-static-openvino[smooth_quant_alpha=0.5]",
                    options={"smooth_quant_alpha": 0.5}, runtime="openvino", speed=5.0, speed_runtime=fast_speed,
                    loss_pct=fast_loss, cos=(fast_cos, fast_cos - 0.0002, fast_cos + 0.0002))
    return [f.fp32(), base, fast]


def test_the_table_has_one_row_per_lever_with_intervals():
    runs = _runs()
    t = levers.table(tabulate(runs), runs[1:])
    assert list(t["lever"]) == ["int8-static-openvino", "int8-static-openvino[smooth_quant_alpha=0.5]"]
    assert t["x FP32 same runtime"][1] == "4.60 [4.40, 4.80]"
    assert t["quality bar"][0] == "met"


def test_a_faster_lever_that_meets_the_bar_and_is_separated_becomes_the_choice():
    runs = _runs()
    label, why = levers.choose(tabulate(runs), runs[1:])
    assert label == "int8-static-openvino[smooth_quant_alpha=0.5]" and "x the default" in why


def test_a_lever_not_separated_from_the_default_leaves_the_default():
    runs = _runs(fast_speed=(3.9, 3.6, 4.2))
    label, why = levers.choose(tabulate(runs), runs[1:])
    assert label == "int8-static-openvino" and "not separated" in why


def test_a_faster_lever_that_loses_quality_is_not_chosen():
    runs = _runs(fast_cos=0.99, fast_loss=3.0)
    t = levers.table(tabulate(runs), runs[1:])
    assert "cos mean" in t["quality bar"][1] and "nDCG@10 loss" in t["quality bar"][1]
    assert levers.choose(tabulate(runs), runs[1:])[0] == "int8-static-openvino"


def test_bad_variant_lists_are_refused():
    for bad in ({"smooth_quant_alpha": [0.5]}, [0.5], "keep_fp32_layers=4"):
        with pytest.raises(ValueError, match="list of option mappings"):
            levers.try_variants(None, "int8-static-openvino", bad)


def test_the_levers_table_keeps_eager_fp32_and_their_own_runtimes_fp32():
    from types import SimpleNamespace as R
    runs = [R(method="fp32", is_default=True, runtime="torch"),
            R(method="fp32-onnx", is_default=True, runtime="onnxruntime"),
            R(method="fp32-openvino", is_default=True, runtime="openvino"),
            R(method="int8-static-openvino", is_default=True, runtime="openvino")]
    lever = [R(method="int8-static-openvino", is_default=False, runtime="openvino")]
    kept = levers.with_baselines(runs, lever)
    assert [r.method for r in kept] == ["fp32", "fp32-openvino", "int8-static-openvino"] and kept[-1] is lever[0]
