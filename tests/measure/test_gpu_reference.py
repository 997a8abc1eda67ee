"""scripts/gpu_reference.py: every configuration in one window (one grid and budget), FP16 beside BF16 and the
eager-FP32 baseline, memory for default configurations, comparisons read from the window's rounds."""
import importlib.util

import pytest

from bgeq_utils import methods
from bgeq_utils.core import paths
from bgeq_utils.measure import pipeline


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("gpu_reference", paths.ROOT / "scripts" / "gpu_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_one_window_for_every_configuration(script):
    jobs = script.jobs(script.CONFIGURATIONS, seconds=1.5)
    assert len({pipeline.window_key(j.bench_config) for j in jobs}) == 1
    labels = [j.label for j in jobs]
    assert labels[:3] == ["fp32", "bf16", "fp16"]                       # eager FP32 and BF16: the baselines
    assert {"fp16[attn=eager]", "bf16[attn=eager]", "bf16[compile=True]", "int8-torchao-cuda",
            "fp8-torchao-cuda"} <= set(labels)
    assert len(labels) == len(set(labels))
    for j in jobs:   # every name and option is known: a typo fails here, not on the GPU
        methods.get(j.method).normalize_options(j.options)
    memory = {j.label for j in jobs if j.bench_config.memory}
    assert memory == {lab for lab in labels if "[" not in lab}        # default configurations only
    cfg = jobs[0].bench_config
    assert cfg.batch_sizes == (32, 128) and cfg.seq_lens == (128,) and cfg.memory_batch == 32


def test_cuda_methods_are_skipped_on_cpu_not_dropped(script):
    for name, _, _ in script.CONFIGURATIONS:
        assert "cuda" in methods.get(name).devices
    assert script.jobs(script.CONFIGURATIONS, 1.0, methods=["fp16", "bf16"], memory=False)[0].bench_config.memory \
        is False


def _row(rounds, window=("a", "b"), b=32):
    return {"batch_size": b, "seq_len": 128, "window": list(window), "rounds_s": rounds}


def test_pair_reads_the_rounds_of_one_window(script):
    fast = _row([0.010, 0.011, 0.010, 0.012, 0.010, 0.011, 0.010, 0.011])
    slow = _row([0.020, 0.022, 0.020, 0.024, 0.020, 0.022, 0.020, 0.022])
    e = script.pair(fast, slow)
    assert e["value"] == pytest.approx(2.0) and e["low"] <= 2.0 <= e["high"]
    assert script.pair(slow, fast)["value"] == pytest.approx(0.5)
    assert script.pair(fast, _row(slow["rounds_s"], window=("c",))) is None     # another window
    assert script.pair(fast, _row(slow["rounds_s"], b=128)) is None             # another cell
    assert script.pair(fast, {**slow, "rounds_s": None}) is None


def test_summary_of_a_skipped_method(script, reference):
    res = pipeline.skipped("fp8-torchao-cuda", reference, "fp8-torchao-cuda runs on cuda only", run="pytest-gpuref",
                           save=False)
    assert script.summary([res], [32]) == [{"label": "fp8-torchao-cuda", "status": "skipped",
                                           "reason": "fp8-torchao-cuda runs on cuda only"}]
