"""The claims ledger on constructed Results: a verdict per method from its interval, the claim's verdict the
most severe of its methods', speed claims under both baselines, and why a claim is not measured."""
from __future__ import annotations

import pytest

from bgeq_utils.compare import ledger, tabulate
from bgeq_utils.core import uncertainty as U
from tests.factories import BGE, fp32, result


def by_id(df, cid):
    rows = df[df["id"] == cid]
    assert len(rows) == 1, cid
    return rows.iloc[0]


@pytest.fixture(scope="module")
def claims():
    return ledger.load_claims()


def test_claims_file_is_complete_and_valid(claims):
    ids = {c.id for c in claims}
    for cid in ("fp32-size-gb", "fp32-params", "fp32-memory-gb", "fp16-size-gb", "fp16-gpu-speed",
                "fp16-cpu-speed", "fp16-quality-pct", "fp16-cos", "int8-cpu-speed", "int8-gpu-speed",
                "int8-quality-loss", "int8-retrieval-2-5", "int8-l2", "int4-size-gb", "int4-quality-loss",
                "int4-cpu-speed", "rec-cpu-int8", "rec-gpu-fp16",
                # statements the ledger used to skip
                "fp32-highest-memory", "fp32-slowest", "int4-memory-ratio", "int8-dynamic-minimal-loss",
                "st-fp16-on-gpu", "int8-static-smaller-size"):
        assert cid in ids
    for c in claims:
        assert c.paraphrase and c.metric and (c.kind != "value" or c.precision)
        if c.kind == "value":
            assert c.metric in ledger.METRICS and c.bounds() != (None, None)
    assert all(x.get("statement") and x.get("why") for x in ledger.not_encoded())


def test_malformed_claims_file_names_the_claim(tmp_path):
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims:\n  - id: x-1\n    paraphrase: p\n    precision: [int8]\n    metric: speed_ratioo\n"
                   "    min: 2\n")
    with pytest.raises(ledger.ClaimsFileError, match="x-1.*speed_ratioo"):
        ledger.load_claims(bad)
    bad.write_text("claims:\n  - id: x-2\n    paraphrase: p\n    precision: [int8]\n    metric: speed_ratio\n")
    with pytest.raises(ledger.ClaimsFileError, match="x-2.*min"):
        ledger.load_claims(bad)
    bad.write_text("claims:\n  - id: x-3\n    paraphrase: p\n    precision: [int9]\n    metric: speed_ratio\n"
                   "    min: 2\n")
    with pytest.raises(ledger.ClaimsFileError, match="x-3.*int9"):
        ledger.load_claims(bad)


def _bge(**speeds):
    """fp32 and two INT8 methods on bge-large's shape (random weights)."""
    a = dict(model=BGE, run="big")
    return [fp32(**a, disk_mb=1342, param_mb=1340.6, mem_mb=(1450, 1440, 1460), resident_mb=1340, loss_pct=None),
            result("int8-dynamic-onnx", **a, runtime="onnxruntime", runtime_baseline="fp32-onnx", disk_mb=360,
                   mem_mb=(600, 590, 610), speed=speeds.get("onnx", (3.8, 3.6, 4.0)),
                   speed_runtime=speeds.get("onnx_rt", (2.0, 1.9, 2.1)), cos=(0.99, 0.985, 0.992)),
            result("int8-dynamic-torch", **a, disk_mb=450, mem_mb=(700, 690, 710),
                   speed=speeds.get("torch", (1.6, 1.5, 1.7)), cos=(0.98, 0.975, 0.985))]


def test_every_method_gets_a_verdict_and_the_claim_takes_the_most_severe(claims):
    df = ledger.check(tabulate(_bge()), claims)
    speed = by_id(df, "int8-cpu-speed")              # claimed 2-3x over FP32
    assert speed["baseline"] == "eager PyTorch FP32"
    assert speed["verdict"] == U.FAILS_WORSE and speed["holds for"] == "0/2 methods"
    assert "int8-dynamic-onnx" in speed["per method"] and U.FAILS_BETTER in speed["per method"]
    assert "int8-dynamic-torch" in speed["per method"] and U.FAILS_WORSE in speed["per method"]
    size = by_id(df, "fp32-size-gb")
    assert size["verdict"] == U.HOLDS and "1.342 GB" in size["measured"]
    mem = by_id(df, "int8-memory-gb")                # 0.6 GB at best vs claimed 0.4-0.5 (+5%)
    assert mem["verdict"] == U.FAILS_WORSE and "0.600 GB [0.590, 0.610]" in mem["measured"]


def test_speed_claims_are_read_against_both_baselines(claims):
    df = ledger.check(tabulate(_bge()), claims)
    rt = by_id(df, "int8-cpu-speed@runtime")
    assert rt["baseline"] == "FP32 in the same runtime"
    # over fp32-onnx the ONNX method is 2.0x [1.9, 2.1]: it straddles the claimed minimum of 2
    assert "int8-dynamic-onnx 2.00x [1.90, 2.10] → inconclusive" in rt["per method"].replace(
        "int8-dynamic-onnx @ big/cpu: ", "int8-dynamic-onnx ")


def test_a_claim_whose_interval_straddles_its_bound_is_inconclusive(claims):
    rs = _bge(onnx=(2.5, 2.2, 2.8), torch=(2.05, 1.9, 2.2))
    speed = by_id(ledger.check(tabulate(rs), claims), "int8-cpu-speed")
    assert speed["verdict"] == U.INCONCLUSIVE and speed["holds for"] == "1/2 methods"
    assert "straddles the claimed bound 2" in speed["detail"]


def test_favourable_and_unfavourable_failures_are_told_apart(claims):
    rs = [fp32(), result("fp16", loss_pct=0.0, cos=0.99999, speed=(0.25, 0.24, 0.26)),
          result("int8-dynamic-onnx", loss_pct=4.0, cos=(0.96, 0.955, 0.965), speed=(3.5, 3.3, 3.7))]
    df = ledger.check(tabulate(rs), claims)
    s = by_id(df, "int8-cpu-speed")                 # 3.5x [3.3, 3.7] vs 2-3x: better than claimed
    assert s["verdict"] == U.FAILS_BETTER
    loss = by_id(df, "int8-quality-loss")            # 4% loss on every query vs at most 3%: worse
    assert loss["verdict"] == U.FAILS_WORSE
    cos = by_id(df, "int8-cos")
    assert cos["verdict"] == U.FAILS_WORSE and "not bge-large" in cos["detail"]
    assert by_id(df, "fp16-cpu-slower")["verdict"] == U.HOLDS


def test_one_method_meeting_a_claim_is_not_enough(claims):
    """Two INT8 methods, one inside the claimed 1-3% loss, one far outside: the claim does not hold."""
    rs = [fp32(), result("int8-dynamic-onnx", loss_pct=2.0, cos=0.99), result("int8-dynamic-torch", loss_pct=9.0,
                                                                              cos=0.97)]
    loss = by_id(ledger.check(tabulate(rs), claims), "int8-quality-loss")
    assert loss["verdict"] == U.FAILS_WORSE and loss["holds for"] == "1/2 methods"


def test_not_measured_says_why(claims):
    df = ledger.check(tabulate(_bge()), claims)
    gpu = by_id(df, "int8-gpu-speed")
    assert gpu["verdict"] == U.NOT_MEASURED and "GPU" in gpu["detail"]
    assert by_id(df, "fp16-size-gb")["verdict"] == U.NOT_MEASURED
    df2 = ledger.check(tabulate([fp32()]), claims)
    s = by_id(df2, "fp32-size-gb")
    assert s["verdict"] == U.NOT_MEASURED and "needs a bge-large run" in s["detail"]
    df3 = ledger.check(tabulate([fp32(), result("nf4-bnb", status="skipped", reason="no CUDA GPU visible")]), claims)
    n = by_id(df3, "int4-cos")
    assert n["verdict"] == U.NOT_MEASURED and "no CUDA GPU visible" in n["detail"]
    empty = ledger.check(tabulate([]), claims)
    assert (empty["verdict"] == U.NOT_MEASURED).all()


def test_relation_claims_select_by_registry_needs(claims):
    rs = [fp32(mem_mb=1000), result("int8-static-onnx", loss_pct=3.0, mem_mb=(300, 295, 305), disk_mb=30),
          result("int8-dynamic-onnx", loss_pct=0.5, mem_mb=(400, 395, 405), disk_mb=40)]
    df = ledger.check(tabulate(rs), claims)
    assert by_id(df, "int8-static-smaller-memory")["verdict"] == U.HOLDS
    assert by_id(df, "int8-static-smaller-size")["verdict"] == U.HOLDS
    assert by_id(df, "int8-qat-best-retention")["verdict"] == U.NOT_MEASURED
    more = by_id(df, "int8-static-loses-more")
    assert "int8-static-onnx" in more["per method"] and "int8-dynamic-onnx" in more["per method"]


def test_recommendation_claims(claims):
    rs = [fp32(), result("int8-dynamic-onnx", speed=(2.5, 2.4, 2.6), loss_pct=2.0, cos=0.99, mem_mb=100),
          result("bf16", speed=(3.0, 2.9, 3.1), loss_pct=0.0, cos=0.9999, mem_mb=160)]
    df = ledger.check(tabulate(rs), claims)
    cpu = by_id(df, "rec-cpu-int8")
    assert cpu["verdict"] == U.FAILS and "bf16 (bf16) won" in cpu["detail"]
    # the same ranking, but bf16's quality loss has an interval that reaches past the tolerance: undecided
    rs[2] = result("bf16", speed=(3.0, 2.9, 3.1), loss_pct=1.0, changed=2, cos=0.9999, mem_mb=160)
    cpu = by_id(ledger.check(tabulate(rs), claims), "rec-cpu-int8")
    assert cpu["verdict"] == U.INCONCLUSIVE
    assert by_id(df, "rec-gpu-fp16")["verdict"] == U.NOT_MEASURED
    mem = by_id(df, "rec-memory-int8")
    assert mem["verdict"] in (U.HOLDS, U.INCONCLUSIVE) and "int8-dynamic-onnx" in mem["measured"]


def test_notebook_filter_keeps_a_precisions_claims(claims):
    df = ledger.check(tabulate([fp32()]), claims, precision="fp16")
    assert all("fp16" in p for p in df["precision"]) or set(df["id"]) >= {"rec-gpu-fp16"}
    assert "int8-cpu-speed" not in set(df["id"])


def test_quality_claims_on_unlabelled_texts_say_not_applicable(claims):
    from tests.factories import unlabelled
    df = ledger.check(tabulate([unlabelled("fp32"), unlabelled("fp16", cos=0.9999)]), claims)
    row = by_id(df, "fp16-quality-loss")
    assert row["verdict"] == U.NOT_MEASURED and "not applicable (no labels)" in row["detail"]


def test_a_zero_width_interval_does_not_decide(claims):
    """Identical per-query values give a degenerate bootstrap (zero width): shown as such, and not a verdict."""
    df = ledger.check(tabulate([fp32(), result("fp16", loss_pct=0.0, cos=0.99999)]), claims)
    q = by_id(df, "fp16-quality-pct")
    assert q["verdict"] == U.INCONCLUSIVE and "zero-width" in q["per method"] + q["detail"]
    assert "[0 width]" in q["measured"]


def _int8_speeds(*speeds):
    return [fp32(model=BGE, run="big")] + [
        result(name, model=BGE, run="big", speed=s, cos=0.99)
        for name, s in zip(("int8-dynamic-onnx", "int8-dynamic-torch", "int8-static-onnx"), speeds)]


def test_holm_per_claim_on_a_constructed_ledger(claims):
    """Three INT8 methods against "2-3x": one just above 3 (decides alone at 95%, p ~ 0.04), two straddling 3.
    Over a family of three judgments Holm asks p <= 0.05/3 of the first: the claim is inconclusive, and says so."""
    rs = _int8_speeds((3.2, 3.01, 3.39), (3.0, 2.8, 3.2), (3.0, 2.8, 3.2))
    alone = by_id(ledger.check(tabulate(rs), claims, adjust=False), "int8-cpu-speed")
    assert alone["verdict"] == U.FAILS_BETTER
    df = ledger.check(tabulate(rs), claims)
    row = by_id(df, "int8-cpu-speed")
    assert row["verdict"] == U.INCONCLUSIVE and row["verdict at 95% alone"] == U.FAILS_BETTER
    assert row["judgments"] == 3 and "not after Holm" in row["detail"] and "made 1 inconclusive" in row["detail"]
    assert "Holm" in df.attrs["multiplicity"] and "int8-cpu-speed" in df.attrs["multiplicity"]
    assert "Holm" in ledger.tally_text(df)
    # a clear decision survives the adjustment
    clear = by_id(ledger.check(tabulate(_int8_speeds((5.0, 4.8, 5.2), (3.0, 2.8, 3.2))), claims), "int8-cpu-speed")
    assert clear["verdict"] == U.FAILS_BETTER


def _memory(peak, resident, batch=32):
    return {"peak": U.spread(peak).to_dict(), "resident": U.spread(resident).to_dict(), "batch_size": batch,
            "seq_len": 128}


def test_memory_claims_are_read_at_peak_and_resident_with_the_definition_named(claims):
    """The guide's "INT8 ~0.4-0.5 GB" is weights plus a small batch's activations: at the run's batch of 32 the
    peak (655 MB) is above it, resident (432 MB) inside; both readings are shown, each naming its figure."""
    rs = [fp32(model=BGE, run="big", loss_pct=None),
          result("int8-bnb", model=BGE, run="big", cos=0.99, speed=(1.0, 0.9, 1.1))]
    rs[0].memory = _memory([1500e6, 1510e6], [1340e6, 1342e6])
    rs[1].memory = _memory([650e6, 660e6], [430e6, 434e6])
    df = ledger.check(tabulate(rs), claims)
    peak, resident = by_id(df, "int8-memory-gb"), by_id(df, "int8-memory-gb@resident")
    assert peak["verdict"] == U.FAILS_WORSE and "batch 32x128" in peak["per method"]
    assert resident["verdict"] == U.HOLDS
    assert "peak" in peak["definition"] and "resident" in resident["definition"]
    assert "range" in peak["measured"]


def test_size_claims_are_read_on_every_model_once_per_model(claims):
    """Static vs dynamic INT8 on disk: bge-large measured only dynamic, the small model both, on two devices.
    The relation is read on the small model, once (size does not depend on the device), labelled by model."""
    mini = [fp32(), result("int8-static-onnx", disk_mb=23.0, cos=0.99), result("int8-dynamic-onnx", disk_mb=25.0,
                                                                              cos=0.99)]
    gpu = [fp32(device="cuda", run="gpu"), result("int8-static-onnx", disk_mb=23.0, cos=0.99, device="cuda",
                                                  run="gpu"),
           result("int8-dynamic-onnx", disk_mb=25.0, cos=0.99, device="cuda", run="gpu")]
    big = [fp32(model=BGE, run="big", disk_mb=1342, loss_pct=None),
           result("int8-dynamic-onnx", model=BGE, run="big", disk_mb=360, cos=0.99)]
    df = ledger.check(tabulate(mini + gpu + big), claims)
    rel = by_id(df, "int8-static-smaller-size")
    assert rel["verdict"] == U.HOLDS and rel["holds for"] == "1/1 pairs"
    assert "all-MiniLM-L6-v2" in rel["model"]
    ratio = by_id(df, "int8-size-ratio")
    assert ratio["judgments"] == 3          # two on the small model, one on bge-large: each read once
    assert "bge-large-en-v1.5" in ratio["per method"] and "all-MiniLM-L6-v2" in ratio["per method"]


def test_memory_and_size_ratios_are_also_read_over_the_same_runtime_fp32(claims):
    rs = [fp32(model=BGE, run="big", disk_mb=1342, mem_mb=1500, loss_pct=None),
          result("fp32-onnx", "fp32", model=BGE, run="big", runtime="onnxruntime", disk_mb=1340, mem_mb=1200,
                 cos=1.0),
          result("int8-dynamic-onnx", model=BGE, run="big", runtime="onnxruntime", disk_mb=340, mem_mb=300,
                 cos=0.99)]
    df = ledger.check(tabulate(rs), claims)
    eager, same = by_id(df, "int8-memory-ratio"), by_id(df, "int8-memory-ratio@runtime")
    assert same["baseline"] == "FP32 in the same runtime" and eager["baseline"] == "eager PyTorch FP32"
    assert "0.25x" in same["measured"] and "0.20x" in eager["measured"]
    assert by_id(df, "int8-size-ratio@runtime")["baseline"] == "FP32 in the same runtime"
