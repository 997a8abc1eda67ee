"""The recommendation: for a group without quality, the fidelity threshold it ranks on is a named parameter."""
import pytest

from bgeq_utils.compare import recommend, tabulate
from tests.factories import BGE, fp32, result


def test_the_fidelity_threshold_for_groups_without_quality_is_a_named_parameter():
    """bge-large with random weights has no quality: min_cos stands in, is named in the evidence, moves the
    answer, and the random-weights caveat is printed beside it."""
    a = dict(model=BGE, run="big", loss_pct=None)
    rs = [fp32(**a), result("int8-dynamic-onnx", speed=(3.0, 2.9, 3.1), cos=(0.985, 0.984, 0.986), **a),
          result("bf16", speed=(1.5, 1.4, 1.6), cos=(0.9995, 0.9994, 0.9996), **a)]
    m = tabulate(rs)
    strict = recommend.recommend(m, min_cos=0.99)
    assert strict.choice == "bf16" and "min_cos = 0.99" in strict.evidence["quality stand-in"]
    assert any("outlier activations" in c and "min_cos = 0.99" in c for c in strict.caveats)
    assert recommend.recommend(m, min_cos=0.98).choice == "int8-dynamic-onnx"
    with pytest.raises(ValueError, match="min_cos"):
        recommend.recommend(m, min_cos=2)
