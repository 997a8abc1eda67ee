"""The FP32 baselines every method is timed beside: eager PyTorch and FP32 in the method's own runtime."""
from bgeq_utils.measure import pipeline


def test_each_method_is_timed_beside_eager_fp32_and_its_own_runtime(reference, lee_small, reference_emb):
    cfg = pipeline.BenchConfig(batch_sizes=(4,), seq_lens=(16,), min_repeats=6, max_repeats=6, seconds=5,
                               memory=False)
    res = pipeline.run_method("int8-dynamic-onnx", reference, lee_small, run="pytest-rt", bench_config=cfg,
                              progress=False)
    assert res.status == "ok", res.reason
    row = res.speed[0]
    assert row["vs_eager"]["baseline"] == "fp32" and row["vs_runtime"]["baseline"] == "fp32-onnx"
    assert row["window"] == ["fp32", "fp32-onnx", "method"] and res.runtime == "onnxruntime"
    for role in ("vs_eager", "vs_runtime"):
        assert row[role]["low"] <= row[role]["value"] <= row[role]["high"] and row[role]["n"] == 6
