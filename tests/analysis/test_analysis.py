"""The per-method studies the notebooks show: ISA advice, outlier columns, storage bits, QAT's effect,
calibration sweeps, the FP16 overflow record."""
import pandas as pd
import pytest

from bgeq_utils.analysis import calibration, isa, outliers, overflow, qat_effect, weight_bytes
from bgeq_utils.compare import tabulate
from tests.factories import fp32, result


def test_isa_advice_follows_the_instruction_set():
    assert isa.int8_weight_type_advice({"avx2", "avx512_vnni"})[0] == "QInt8"
    assert isa.int8_weight_type_advice({"avx2"})[0].startswith("QInt8 + reduce_range")
    assert isa.int8_weight_type_advice(set())[0] == "either"
    t = isa.native_formats({"avx512_bf16"}).set_index("format")
    assert t.loc["bf16", "present here"] == "avx512_bf16" and t.loc["fp16", "present here"] == "none"


def test_outlier_column_shares_are_shares_and_fall_with_the_threshold(reference, small_docs):
    shares = outliers.column_shares(reference.model, reference.tokenizer, small_docs[:6], [0.0, 2.0, 8.0],
                                    batch_size=3)
    assert shares["share"].between(0, 1).all()
    assert {"q/k/v (shared input)", "intermediate.dense", "output.dense"} <= set(shares["layer kind"])
    t = outliers.share_table(shares)
    assert list(t.columns) == ["> 0", "> 2", "> 8"]
    assert (t["> 0"] >= t["> 2"]).all() and (t["> 2"] >= t["> 8"]).all() and (t["> 0"] > 99).all()


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


def test_qat_effect_reads_intervals_and_says_whether_they_separate():
    base = fp32()
    trained = result("int8-qat", label="int8-qat", loss_pct=0.2, cos=(0.9992, 0.9991, 0.9993))
    post = result("int8-qat", label="int8-qat[steps=0]", options={"steps": 0}, loss_pct=0.5,
                  cos=(0.9985, 0.9984, 0.9986))
    text = qat_effect.training_effect(tabulate([base, trained, post]), trained, post)
    assert "QAT keeps 0.53" in text and "(separated at 95%)" in text and "ndcg@10 loss" in text
    close = result("int8-qat", label="int8-qat[steps=0]", options={"steps": 0}, loss_pct=0.5,
                   cos=(0.99915, 0.9990, 0.9993))
    assert "not separated" in qat_effect.training_effect(tabulate([base, trained, close]), trained, close)
    assert qat_effect.training_figures(trained, post) is None          # no curve recorded


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


def test_overflow_record_is_attached_to_fp16_results_only(tmp_path, monkeypatch):
    monkeypatch.setenv("BGEQ_OUTPUTS", str(tmp_path))
    half, full = result("fp16"), fp32()
    saved = overflow.attach({"verdict": "SAFE"}, [half, full])
    assert len(saved) == 1 and half.extra["fp16_overflow"]["verdict"] == "SAFE" and "fp16_overflow" not in full.extra
    table = pd.DataFrame({"layer": [-1, 0, 0, 1], "site": ["embeddings", "layer", "attention", "layer"],
                          "max_abs": [1.0, 2.0, 3.0, 4.0]})
    by = overflow.by_layer(table)
    assert list(by.index) == [0, 1] and list(by.columns) == ["attention", "layer"]
