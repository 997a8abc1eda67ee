"""Which method an export ships: the run's recommendation, or the best one that can be shipped."""
from tests import factories


def test_choose_exports_the_recommendation_or_the_best_method_that_can_be_shipped():
    """The run's recommendation; where it cannot be shipped (a compiled graph), the next eligible method."""
    from bgeq_utils.core import results
    from bgeq_utils.export.choose import choose
    run = "export-choose"
    rs = [factories.fp32(run=run),
          factories.result("fp32-inductor", "fp32", run=run, runtime="inductor", disk_mb=91, mem_mb=260,
                           speed=(3.0, 2.9, 3.1), runtime_baseline="fp32-inductor", loss_pct=0.0, cos=1.0),
          factories.result("int8-dynamic-onnx", run=run, runtime="onnxruntime", disk_mb=23, mem_mb=120,
                           speed=(2.0, 1.9, 2.1), runtime_baseline="fp32-onnx", loss_pct=0.5, cos=0.993)]
    for r in rs:
        results.save(r)
    c = choose(run, model_id=factories.MINI["id"])
    assert c.recommendation.choice == "fp32-inductor"
    assert c.method == "int8-dynamic-onnx" and c.result.key == rs[2].key
    assert "fp32-inductor cannot be shipped" in c.why
    named = choose(run, "fp32", model_id=factories.MINI["id"])
    assert named.method == "fp32" and named.result.key == rs[0].key
    nothing = choose("export-choose-empty", model_id=factories.MINI["id"])
    assert nothing.method is None and "run the method notebooks first" in nothing.why
