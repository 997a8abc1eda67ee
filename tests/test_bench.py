import pytest
from transformers import BertConfig

from bgeq_utils import bench, methods


def test_flops_per_token_matches_bge_large_arithmetic():
    cfg = BertConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24)
    # 24 layers x 2 x (4h^2 + 2hi) = 2 x 302M linear weights, plus attention 2*L*h per layer
    assert bench.flops_per_token(cfg, 128) == pytest.approx(24 * 2 * (4 * 1024**2 + 2 * 1024 * 4096 + 2 * 128 * 1024))


def test_gemm_ceiling_is_positive_and_names_library():
    c = bench.gemm_ceiling("fp32", "cpu", n=256)
    assert c["gflops"] > 0 and c["library"] in c["by_library"]


def test_share_is_capped_and_flagged():
    rows = bench.add_ceiling_share([{"gflops": 50.0}, {"gflops": 150.0}], {"gflops": 100.0})
    assert rows[0]["share_of_ceiling"] == 0.5 and not rows[0]["share_capped"]
    assert rows[1]["share_of_ceiling"] == 1.0 and rows[1]["share_capped"]


def test_speed_grid_uses_exact_sequence_length(reference):
    enc = methods.build("fp32", reference)
    rows = bench.speed_grid(enc, batch_sizes=(2,), seq_lens=(24,), warmup=0, repeats=1, progress=False,
                            config=reference.model.config)
    r = rows[0]
    assert r["seq_len"] == 24 and r["tokens_per_s"] == pytest.approx(r["sentences_per_s"] * 24)
    assert enc.tokenize(["a b"], max_length=24, pad_to_max=True)["input_ids"].shape == (1, 24)


def test_memory_worker_reports_an_error_for_unknown_method(reference):
    with pytest.raises(RuntimeError, match="memory worker for nope failed"):
        bench.measure_memory("nope", reference.spec(), batch_size=2, seq_len=8)
