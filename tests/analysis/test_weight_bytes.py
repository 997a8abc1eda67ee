"""Storage bits: where a quantized model's bytes are, from what the encoders report."""
import pytest

from bgeq_utils.analysis import weight_bytes
from tests.factories import fp32, result


def test_storage_accounting_from_what_the_encoders_report(reference):
    n_linear = weight_bytes.linear_weight_count(reference.model)
    bnb = result("nf4-bnb", disk_mb=50, param_mb=40,
                 extra={"bytes": {"quantized_weights": n_linear // 2, "quantization_constants": n_linear // 16,
                                  "higher_precision": 20e6}})
    assert weight_bytes.linear_bits(bnb, n_linear) == pytest.approx(8 * (n_linear // 2 + n_linear // 16) / n_linear)
    assert weight_bytes.float_share(bnb) == pytest.approx(20e6 / 40e6)
    t = weight_bytes.bytes_table([fp32(param_mb=90.9), bnb], reference)
    assert t.loc["nf4-bnb", "nominal bits"] == 4
    assert t.loc["nf4-bnb", "bits/param"] == pytest.approx(8 * 40e6 / reference.num_parameters)
    assert "quantized_weights" in t.loc["nf4-bnb", "where the bytes are"]
    pts = weight_bytes.points([bnb], reference)
    assert pts.loc[0, "block size"] == 64 and pts.loc[0, "bits/param"] == pytest.approx(t.loc["nf4-bnb", "bits/param"])
