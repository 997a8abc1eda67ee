"""QAT's effect: trained against untrained INT8, read from intervals."""
from bgeq_utils.analysis import qat_effect
from bgeq_utils.compare import tabulate
from tests.factories import fp32, result


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
