"""OpenVINO's per-layer profile and the bound its Linear layers set."""
from types import SimpleNamespace

import numpy as np
import pytest

from bgeq_utils.analysis import layer_time
from bgeq_utils.measure import speed

# two layers of a small BERT: 2 * (4*8*8 + 2*8*16) = 1024 Linear FLOP per token per layer
CONFIG = SimpleNamespace(hidden_size=8, intermediate_size=16, num_hidden_layers=2)


def _profile(label, precision, wall, layers, linear, tokens=(4, 16)):
    return layer_time.LayerProfile(label, precision, *tokens, wall_ms=list(wall), layers_ms=list(layers),
                                   linear_ms=list(linear))


def test_bound_arithmetic():
    """Each figure from its definition, on rounds whose values are known."""
    n = 6
    base = _profile("fp32", "fp32", [10.0] * n, [10.0] * n, [8.0] * n)
    q = _profile("int8", "int8", [4.0] * n, [4.0] * n, [3.0] * n)
    df = layer_time.bound({"fp32": base, "int8": q}, CONFIG, ceilings={"fp32": 1.0, "int8": 2.0}).set_index(
        "configuration")
    tokens = 64
    linear = speed.linear_flops_per_token(CONFIG) * tokens / 1e9
    whole = speed.flops_per_token(CONFIG, 16) * tokens / 1e9
    assert linear == pytest.approx(2 * 1024 * tokens / 1e9)
    # int8: Linear 3 of 4 ms; at its ceiling (2 GFLOP/s) the Linear layers would take 1e3 * linear / 2 ms
    ideal = 1.0 + 1e3 * linear / 2.0
    # layer sums above the wall time (counters' overhead on a tiny batch): shares from the sums, time from the wall
    over = layer_time.bound({"fp32": base, "int8": _profile("int8", "int8", [2.0] * n, [4.0] * n, [3.0] * n)},
                            CONFIG, ceilings={"fp32": 1.0, "int8": 2.0}).set_index("configuration")
    assert over.loc["int8", "x fp32"].startswith("5.00")
    # the other layers' quarter of the summed time is a quarter of the 2 ms wall time; the Linear layers' ideal
    # time is a time, not a share
    over_ideal = 0.5 + 1e3 * linear / 2.0
    assert float(over.loc["int8", "x fp32 if Linear at ceiling"].split()[0]) == pytest.approx(10.0 / over_ideal,
                                                                                              abs=0.005)
    assert df.loc["int8", "Linear % of time"] == "75.0 [0 width]"      # identical rounds: a degenerate interval
    def value(col):
        return float(df.loc["int8", col].split()[0])

    assert value("Linear % of ceiling") == pytest.approx(100 * 1e3 * linear / 3.0 / 2.0, abs=0.05)
    assert value("model % of ceiling") == pytest.approx(100 * 1e3 * whole / 4.0 / 2.0, abs=0.05)
    assert value("if Linear at ceiling: model %") == pytest.approx(100 * 1e3 * whole / ideal / 2.0, abs=0.05)
    assert df.loc["int8", "x fp32"].startswith("2.50")
    assert float(df.loc["int8", "x fp32 if Linear at ceiling"].split()[0]) == pytest.approx(10.0 / ideal, abs=0.005)
    assert "x fp32" not in df.columns or df.loc["fp32"].isna()["x fp32"]
    # a model whose Linear layers run in two precisions has no one ceiling: no share, no bound, and says why
    q.by_layer = {("FullyConnected", "brgemm_avx512_I8"): ([2.0] * n, 10), ("FullyConnected", "gemm_mlas_f32"):
                  ([1.0] * n, 2)}
    mixed = layer_time.bound({"fp32": base, "int8": q}, CONFIG, ceilings={"fp32": 1.0, "int8": 2.0}).set_index(
        "configuration")
    assert mixed.loc["int8", "x fp32"].startswith("2.50")
    assert mixed.loc["int8", "x fp32 if Linear at ceiling"] == "mixed: 2 Linear layers in fp32"
    assert mixed.loc["int8", "Linear % of ceiling"] == "mixed: 2 Linear layers in fp32"
    with pytest.raises(ValueError, match="baseline 'bf16' is not among"):
        layer_time.bound({"fp32": base}, CONFIG, baseline="bf16", ceilings={"fp32": 1.0})


@pytest.mark.parametrize("kernel,precision", [("brgemm_avx512_I8", "int8"), ("brgemm_avx512_i8", "int8"),
                                              ("gemm_mlas_f32", "fp32"), ("brgconv_avx512_1x1_f32", "fp32"),
                                              ("brgemm_avx512_amx_bf16", "bf16"), ("jit_avx512_u8", "int8"),
                                              ("ref_any", "unknown")])
def test_kernel_precision(kernel, precision):
    assert layer_time.kernel_precision(kernel) == precision


def test_profile_refuses_what_it_cannot_profile(reference):
    from bgeq_utils import methods
    enc = methods.build("fp32", reference)
    with pytest.raises(ValueError, match="OpenVINO's CPU plugin"):
        layer_time.profile({"fp32": enc}, rounds=6)
    with pytest.raises(ValueError, match="rounds=3: use at least 6"):
        layer_time.profile({"fp32": enc}, rounds=3)


def test_openvino_profile_counts_every_linear_layer(reference):
    """FP32 and INT8 IR of the default model profiled together: every one of its 36 Linear layers is found as a
    Linear layer in both, the rounds are paired, the Linear layers take part of the time."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from bgeq_utils.inputs import data
    from bgeq_utils.measure import pipeline
    encoders, precisions, skipped = pipeline.build_configurations(
        reference, [("fp32-openvino", {}), ("int8-static-openvino", {})], calibration=16)
    assert not skipped
    try:
        prof = layer_time.profile(encoders, batch_size=2, seq_len=16, rounds=6, warmup=1,
                                  texts=data.benchmark_texts(8), precisions=precisions)
    finally:
        for e in encoders.values():
            e.close()
    n_linear = 6 * reference.model.config.num_hidden_layers
    for label, p in prof.items():
        assert len(p.wall_ms) == len(p.layers_ms) == len(p.linear_ms) == 6
        linear_layers = sum(n for (kind, _), (_, n) in p.by_layer.items() if kind in layer_time.LINEAR_LAYERS)
        assert linear_layers == n_linear, (label, p.by_layer.keys())
        assert all(0 < lin < lay and wall > 0 for lin, lay, wall in zip(p.linear_ms, p.layers_ms, p.wall_ms))
    assert prof["int8-static-openvino"].precision == "int8" and prof["fp32-openvino"].precision == "fp32"
    assert layer_time.linear_precisions(prof["fp32-openvino"]) == {"fp32": n_linear}
    assert layer_time.linear_precisions(prof["int8-static-openvino"]) == {"int8": n_linear}
    table = layer_time.by_layer(prof, top=3)
    assert set(table["configuration"]) == set(prof) and (table.groupby("configuration").size() <= 3).all()
    df = layer_time.bound(prof, reference.model.config, ceilings={"fp32": 100.0, "int8": 400.0})
    assert list(df["configuration"]) == list(prof) and np.isfinite(
        df["Linear % of time"].str.split().str[0].astype(float)).all()
