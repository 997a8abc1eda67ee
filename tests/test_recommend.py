"""recommend() on constructed Results: constraints pick the right method; no-candidate cases explain."""
from __future__ import annotations

import pytest

from bgeq_utils.recommend import recommend
from bgeq_utils.results import Result

BASE_QUALITY = {"ndcg@10": 0.80, "recall@10": 0.70, "mrr@10": 0.90, "pearson": 0.65, "spearman": 0.50}
MINI = {"id": "sentence-transformers/all-MiniLM-L6-v2", "parameters": 22_713_216, "weights": "pretrained"}
BGE = {"id": "BAAI/bge-large-en-v1.5", "parameters": 335_141_888, "weights": "random", "preset": "bge-large"}


def res(label, precision, tps, mem_mb=None, kept=None, cos=None, run="r", model=MINI, device="cpu",
        status="ok", reason=""):
    r = Result(run=run, method=label, precision=precision, library="test", status=status, reason=reason,
               model=dict(model), device={"kind": device, "cpu_model": "Test CPU"},
               dataset={"documents": 50})
    if status == "ok":
        r.speed = [{"batch_size": 32, "seq_len": 128, "tokens_per_s": tps}]
        if mem_mb is not None:
            r.memory = {"inference_peak_over_baseline_bytes": mem_mb * 1e6, "model_rss_bytes": mem_mb * 0.8e6}
        if kept is not None:
            r.quality = {k: v * kept for k, v in BASE_QUALITY.items()}
        if cos is not None:
            r.fidelity = {"cos_mean": cos}
    return r


@pytest.fixture
def cpu_set():
    return [res("fp32", "fp32", 1000, 1500, 1.0, 1.0),
            res("int8-a", "int8", 2500, 500, 0.995, 0.995),     # loss 0.5%
            res("int8-b", "int8", 3000, 450, 0.98, 0.98),       # loss 2%
            res("four-bit", "nf4", 800, 300, 0.96, 0.96),       # loss 4%, slower
            res("gpu-only", "fp16", 0, status="skipped", reason="no CUDA GPU visible on this machine")]


def test_default_constraints_pick_fastest_within_quality(cpu_set):
    rec = recommend(cpu_set, device="cpu")
    assert rec.ok and rec.choice == "int8-a" and rec.precision == "int8"
    assert rec.evidence["speed"].startswith("2.50x FP32") and "loss 0.50%" in rec.evidence["quality"]
    assert [r["method"] for r in rec.runner_ups] == ["fp32"]
    # the next constraint that flips it, computed
    assert any("Accepting 2.00% quality loss" in w and "int8-b" in w for w in rec.what_would_change)
    assert any("memory budget under 500 MB" in w and "no method" in w for w in rec.what_would_change)
    assert any(r["method"] == "gpu-only" and "no CUDA GPU" in r["why"] for r in rec.rejected)


def test_constraints_change_the_choice(cpu_set):
    assert recommend(cpu_set, max_quality_loss_pct=3.0).choice == "int8-b"
    assert recommend(cpu_set, max_quality_loss_pct=5.0, memory_budget_mb=400, min_speedup=0.5).choice == "four-bit"
    assert recommend(cpu_set, max_quality_loss_pct=5.0, memory_budget_mb=400).choice is None   # 0.8x < 1.0x
    assert recommend(cpu_set, objective="memory", max_quality_loss_pct=3.0).choice == "int8-b"
    assert recommend(cpu_set, objective="quality").choice == "fp32"
    assert recommend(cpu_set, min_speedup=2.6, max_quality_loss_pct=3.0).choice == "int8-b"
    # equal quality: the method closest to FP32 wins the quality objective, not the faster one
    tie = cpu_set + [res("fast-twin", "fp16", 1800, 800, 1.0, 0.9999)]
    assert recommend(tie, objective="quality").choice == "fp32"


def test_no_candidate_is_explained_with_the_relaxation_that_helps(cpu_set):
    rec = recommend(cpu_set, memory_budget_mb=100)
    assert not rec.ok and rec.choice is None
    assert "No method on cpu meets all constraints" in rec.explanation
    assert any("memory budget of 500 MB" in w and "int8-a" in w for w in rec.what_would_change)
    assert all(r["why"] for r in rec.rejected)
    none_gpu = recommend(cpu_set, device="cuda")
    assert not none_gpu.ok and "no results on cuda" in none_gpu.explanation
    empty = recommend([], device="cpu")
    assert not empty.ok and "no results were loaded" in empty.explanation
    with pytest.raises(ValueError, match="objective"):
        recommend(cpu_set, objective="fast")


def test_evidence_merges_runs_and_names_them():
    """Speed and memory from the bge-large-shaped run, quality from the pretrained run."""
    rs = [res("fp32", "fp32", 1000, 300, 1.0, 1.0, run="small"),
          res("int8-a", "int8", 1100, 150, 0.997, 0.99, run="small"),
          res("fp32", "fp32", 100, 1500, cos=1.0, run="big", model=BGE),
          res("int8-a", "int8", 250, 500, cos=0.97, run="big", model=BGE)]
    rec = recommend(rs, device="cpu")
    assert rec.choice == "int8-a"
    assert rec.evidence["speed"].startswith("2.50x") and rec.evidence["memory"].startswith("500 MB")
    assert "run 'big'" in rec.evidence["measured in"] and "run 'small'" in rec.evidence["measured in"]
    # without any quality run, the mean cosine stands in, and says so
    only_big = recommend(rs[2:], device="cpu", min_cos=0.96)
    assert only_big.choice == "int8-a" and "fidelity" in only_big.explanation
    assert recommend(rs[2:], device="cpu").choice == "fp32"       # 0.97 < default 0.99
