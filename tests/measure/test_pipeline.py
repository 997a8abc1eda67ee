"""End to end on the default model, against plain sentence-transformers and the trec_eval oracle."""
import dataclasses

import numpy as np
import pytest
import pytrec_eval

from bgeq_utils import methods
from bgeq_utils.core import results
from bgeq_utils.measure import corpus, identity, metrics, pipeline, speed
from bgeq_utils.measure import study as study_module
from tests.factories import write_beir as _write_beir


def test_fp32_encoder_equals_sentence_transformers(reference, lee_small):
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(str(reference.folder), device="cpu")
    texts = list(lee_small.corpus.values())
    ours = methods.build("fp32", reference).encode(texts, batch_size=7)
    theirs = st.encode(texts, batch_size=7, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (20, 384) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-5


def test_beir_folder_fp32_equals_st_plus_oracle(tmp_path, reference, tiny_bench):
    from sentence_transformers import SentenceTransformer

    from bgeq_utils.inputs import data
    docs = ["The cat sat on the mat and purred.", "Dogs bark loudly at night.", "Stock markets fell sharply today.",
            "The central bank raised interest rates.", "A kitten chased a ball of wool.", "Puppies love to play fetch.",
            "Rain is expected over the weekend.", "The football team won the final."]
    corpus = [{"_id": f"d{i}", "title": "", "text": t} for i, t in enumerate(docs)]
    queries = [{"_id": "q1", "text": "cats"}, {"_id": "q2", "text": "dogs"}, {"_id": "q3", "text": "finance news"}]
    qrels = "query-id\tcorpus-id\tscore\nq1\td0\t2\nq1\td4\t1\nq2\td1\t1\nq2\td5\t2\nq3\td2\t1\nq3\td3\t1\n"
    folder = _write_beir(tmp_path / "mini", corpus, queries, qrels)
    ev = data.load_evalset(str(folder))
    res = pipeline.run_method("fp32", reference, ev, run="pytest-beir", bench_config=tiny_bench, progress=False)
    assert res.status == "ok", res.reason
    st = SentenceTransformer(str(reference.folder), device="cpu")
    d = st.encode(docs, normalize_embeddings=True)
    q = st.encode([x["text"] for x in queries], normalize_embeddings=True)
    s = q @ d.T
    run = {f"q{i+1}": {f"d{j}": float(s[i, j]) for j in range(len(docs))} for i in range(3)}
    ev_ = pytrec_eval.RelevanceEvaluator(ev.qrels, {"ndcg_cut.10", "recall.10"}).evaluate(run)
    assert res.quality["ndcg@10"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in ev_.values()]), abs=1e-6)
    assert res.quality["recall@10"] == pytest.approx(np.mean([v["recall_10"] for v in ev_.values()]), abs=1e-6)
    assert res.quality["ndcg@10"] > 0.5  # a sane model ranks cats for 'cats'


def test_run_method_records_unknown_method_loudly(reference):
    with pytest.raises(methods.UnknownMethodError, match="unknown method 'fp33'.*Did you mean 'fp32'"):
        pipeline.run_method("fp33", reference)


def test_unavailable_method_is_skipped_not_crashed(reference, tiny_bench, monkeypatch):
    monkeypatch.setattr("bgeq_utils.core.env.has_cuda", lambda: False)
    res = pipeline.run_method("fp32", reference, run="pytest-skip", device="cuda", bench_config=tiny_bench)
    assert res.status == "skipped" and "no CUDA" in res.reason
    assert results.load_run("pytest-skip")[0].status == "skipped"


@pytest.mark.parametrize("name", [s.name for s in methods.specs() if "cuda" in s.devices])
def test_every_cuda_method_is_skipped_without_a_gpu(reference, tiny_bench, monkeypatch, name):
    monkeypatch.setattr("bgeq_utils.core.env.has_cuda", lambda: False)
    res = pipeline.run_method(name, reference, run="pytest-cuda-skip", device="cuda", bench_config=tiny_bench,
                              progress=False)
    assert res.status == "skipped" and "no CUDA" in res.reason


def test_broken_method_is_recorded_as_failed(reference, tiny_bench):
    @methods.register("pytest-broken", precision="int8", library="test")
    def broken(reference, device="cpu", calibration=None, **_):
        raise ZeroDivisionError("kernel exploded")
    try:
        with pytest.warns(UserWarning, match="pytest-broken failed"):
            res = pipeline.run_method("pytest-broken", reference, run="pytest-fail", bench_config=tiny_bench)
        assert res.status == "failed" and "ZeroDivisionError: kernel exploded" in res.reason
    finally:
        methods.registry._REGISTRY.pop("pytest-broken")


def test_full_fp32_result_on_lee(reference, lee, reference_emb):
    cfg = pipeline.BenchConfig(batch_sizes=(1, 4), seq_lens=(32,), min_repeats=6, max_repeats=6, seconds=5,
                               memory=True, memory_repeats=2, memory_batch=4, memory_seq=32)
    res = pipeline.run_method("fp32", reference, lee, run="pytest-lee", reference_emb=reference_emb,
                              bench_config=cfg, progress=False)
    assert res.status == "ok", res.reason
    assert res.fidelity["cos_mean"] > 0.99999 and res.fidelity["top10_overlap"] == 1.0
    assert set(res.fidelity["intervals"]) >= {"cos_mean", "l2_mean", "top10_overlap", "sim_pearson"}
    assert set(metrics.QUALITY_KEYS) <= set(res.quality)
    assert 0.4 < res.quality["ndcg@10"] < 1 and 0.3 < res.quality["spearman"] < 1
    pq = res.per_query                      # what paired intervals resample
    assert len(pq["query_ids"]) == res.quality["queries"] == len(pq["ndcg@10"])
    assert np.mean(pq["ndcg@10"]) == pytest.approx(res.quality["ndcg@10"], abs=1e-6)
    assert len(pq["pair_cosines"]) == len(pq["pair_gold"]) == len(pq["pair_docs"]) == 1225
    assert 85e6 < res.size["disk_bytes"] < 100e6 and res.size["param_bytes"] == pytest.approx(4 * 22_713_216, rel=0.01)
    assert [(r["batch_size"], r["seq_len"]) for r in res.speed] == [(1, 32), (4, 32)]
    for r in res.speed:
        assert r["tokens_per_s_low"] <= r["tokens_per_s"] <= r["tokens_per_s_high"] and 0 < r["share_of_ceiling"] <= 1
        assert r["vs_eager"]["value"] == 1.0 and r["vs_runtime"]["baseline"] == "fp32"   # FP32 is its own baseline
    m = res.memory
    assert m["peak"]["n"] == 2 and m["peak"]["low"] <= m["peak"]["value"] <= m["peak"]["high"]
    assert 40e6 < m["resident"]["value"] < 200e6 and m["batch_size"] == 4    # weights 91 MB; allocator reuse
    assert res.device["cpu_model"] and res.packages["torch"] and res.key.startswith("fp32-") and res.is_default


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


def test_a_rerun_with_other_options_does_not_overwrite_the_first(reference, lee_small, tiny_bench):
    a = pipeline.measure_or_reuse("int8-dynamic-onnx", reference, lee_small, run="pytest-keys", bench_config=tiny_bench,
                                  progress=False)
    b = pipeline.measure_or_reuse("int8-dynamic-onnx", reference, lee_small, run="pytest-keys", bench_config=tiny_bench,
                                  options={"weight_type": "QUInt8"}, progress=False)
    assert a.key != b.key and a.is_default and not b.is_default
    assert b.label == "int8-dynamic-onnx[weight_type=QUInt8]"
    keys = {r.key for r in results.load_run("pytest-keys")}
    assert {a.key, b.key} <= keys
    again = pipeline.measure_or_reuse("int8-dynamic-onnx", reference, lee_small, run="pytest-keys",
                                      bench_config=tiny_bench, options={"weight_type": "QInt8"})  # the default
    assert again.key == a.key and again.created == a.created                                  # reused, not re-measured
    other_grid = pipeline.measure_or_reuse("int8-dynamic-onnx", reference, lee_small, run="pytest-keys",
                                           bench_config=pipeline.BenchConfig(batch_sizes=(3,), seq_lens=(16,),
                                                                             min_repeats=2, max_repeats=2, memory=False,
                                                                             baselines=False), progress=False)
    assert other_grid.key != a.key                                                            # a setting changed


def test_unknown_options_are_errors_before_any_work(reference):
    with pytest.raises(methods.UnknownOptionError, match="bogus.*threshold"):
        pipeline.run_method("int8-bnb", reference, options={"bogus": 1})


@pytest.mark.parametrize("run, device, message", [
    ("../x", "cpu", "run name '../x' is not usable as a folder name"),
    ("abc\n", "cpu", "run name 'abc\\\\n' is not usable"),
    ("x" * 101, "cpu", "at most 100"),
    ("ok", "gpu", "unknown device 'gpu'; use 'auto', 'cpu', 'cuda' or 'cuda:N'"),
])
def test_bad_run_names_and_devices_fail_before_any_work(reference, monkeypatch, run, device, message):
    monkeypatch.setattr(methods.registry, "build", lambda *a, **k: pytest.fail("built despite bad input"))
    with pytest.raises(ValueError, match=message):
        pipeline.run_method("fp32", reference, run=run, device=device)


def test_bad_bench_parameters_name_the_notebook_parameter():
    with pytest.raises(ValueError, match=r"batch_sizes='notalist': use a list of positive whole numbers"):
        pipeline.BenchConfig(batch_sizes="notalist")
    with pytest.raises(ValueError, match=r"memory_repeats=0: use a whole number >= 1"):
        pipeline.BenchConfig(memory_repeats=0)
    with pytest.raises(ValueError, match=r"invariance_texts=1: use a whole number >= 2"):
        pipeline.BenchConfig(invariance_texts=1)


def test_the_invariance_check_embeds_as_many_texts_as_configured_and_they_are_in_the_key(reference, tiny_bench):
    four = pipeline.run_method("fp32", reference, run="pytest-inv",
                               bench_config=dataclasses.replace(tiny_bench, invariance_texts=4),
                               progress=False, save=False)
    inv = four.fidelity["batch_invariance"]
    assert four.status == "ok" and inv["texts"] == 4 and inv["cos_min"] > 0.9999
    default = pipeline.new_result("fp32", reference, run="pytest-inv", bench_config=tiny_bench)
    assert tiny_bench.invariance_texts == corpus.INVARIANCE_BATCH and default.key != four.key


def test_methods_measured_together_share_one_window_and_their_baselines(reference, lee_small):
    cfg = pipeline.BenchConfig(batch_sizes=(4,), seq_lens=(16,), min_repeats=6, max_repeats=6, seconds=5,
                               memory=False)

    @methods.register("pytest-broken-late", precision="int8", library="test")
    def broken(reference, device="cpu", calibration=None, **_):
        raise ZeroDivisionError("kernel exploded")
    try:
        with pytest.warns(UserWarning, match="pytest-broken-late failed"):
            rs = pipeline.run_methods([{"method": m, "bench_config": cfg} for m in
                                       ("int8-dynamic-onnx", "pytest-broken-late", "fp32-onnx")],
                                      reference, lee_small, run="pytest-together", progress=False)
    finally:
        methods.registry._REGISTRY.pop("pytest-broken-late")
    dyn, bad, onnx = rs
    assert bad.status == "failed" and "kernel exploded" in bad.reason       # one broken method ends nothing
    assert dyn.status == onnx.status == "ok"
    a, b = dyn.speed[0], onnx.speed[0]
    # fp32-onnx measured here is also int8-dynamic-onnx's runtime baseline: one encoder, timed once per round
    assert a["window"] == b["window"] == ["fp32", "fp32-onnx", "int8-dynamic-onnx"]
    assert dyn.extra["timed_together"] == onnx.extra["timed_together"] == ["fp32-onnx", "int8-dynamic-onnx"]
    assert a["vs_runtime"]["baseline"] == "fp32-onnx" and a["vs_runtime"]["low"] <= a["vs_runtime"]["value"]
    assert b["vs_runtime"]["value"] == 1.0 and b["vs_eager"]["baseline"] == "fp32"
    assert a["baseline_tokens_per_s"]["fp32"] == b["baseline_tokens_per_s"]["fp32"]   # the same eager timing
    assert a["repeats"] == b["repeats"] == 6 and dyn.timings["bench_s"] == onnx.timings["bench_s"]
    assert [r.status for r in results.load_run("pytest-together")].count("ok") == 2


def test_a_failed_rerun_keeps_the_good_result_and_the_comparison_reports_it(reference, lee_small, tiny_bench,
                                                                           monkeypatch):
    from bgeq_utils.compare import load, tabulate
    good = pipeline.run_method("fp32", reference, lee_small, run="pytest-rerun", bench_config=tiny_bench,
                               progress=False)
    assert good.status == "ok"

    def broken(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(speed, "speed_grid_many", broken)
    with pytest.warns(UserWarning, match="fp32 failed"):
        bad = pipeline.run_method("fp32", reference, lee_small, run="pytest-rerun", bench_config=tiny_bench,
                                  progress=False)
    assert bad.status == "failed" and bad.key == good.key
    kept = results.load_run("pytest-rerun")
    assert [r.status for r in kept] == ["ok"] and kept[0].created == good.created
    m = tabulate(load(["pytest-rerun"])[0])
    assert "failed" in m.table.loc[0, "latest_attempt"] and "disk full" in m.table.loc[0, "latest_attempt"]


def test_a_study_sweeps_options_measures_the_default_in_full_and_reuses(reference, lee_small, tiny_bench,
                                                                       monkeypatch):
    s = pipeline.Study(reference, lee_small, None, dataclasses.replace(tiny_bench, memory=True), "cpu", "pytest-study")
    seen = []

    def fake_run(jobs, ref, ev, **kw):
        out = []
        for j in jobs:
            seen.append((j.method, j.options, j.bench_config.memory))
            r = pipeline.new_result(j.method, ref, ev, run=kw["run"], device=kw["device"], options=j.options,
                                    calibration=j.calibration, bench_config=j.bench_config,
                                    with_fidelity=kw["reference_emb"] is not None)
            results.save(r)
            out.append(r)
        return out
    monkeypatch.setattr(study_module, "run_methods", fake_run)
    out = s.sweep("int8-dynamic-onnx", {"weight_type": ["QInt8", "QUInt8"], "per_channel": [True]})
    assert [r.label for r in out] == ["int8-dynamic-onnx", "int8-dynamic-onnx[weight_type=QUInt8]"]
    assert [m for _, _, m in seen] == [True, False]          # variants are detail: no memory by default
    again = s.sweep("int8-dynamic-onnx", {"weight_type": ["QInt8", "QUInt8"], "per_channel": [True]})
    assert len(seen) == 2 and [r.key for r in again] == [r.key for r in out]   # reused, not re-measured
    assert [r.method for r in s.measure_all(["fp32", ("int8-bnb", {"threshold": 0.0})])] == ["fp32", "int8-bnb"]


def test_calibration_is_no_setting_of_a_method_that_does_not_use_it(reference, lee_small, tiny_bench):
    a = pipeline.new_result("int8-dynamic-onnx", reference, lee_small, run="x", calibration=64, bench_config=tiny_bench)
    b = pipeline.new_result("int8-dynamic-onnx", reference, lee_small, run="x", bench_config=tiny_bench)
    c = pipeline.new_result("int8-static-onnx", reference, lee_small, run="x", calibration=16, bench_config=tiny_bench)
    assert a.key == b.key and a.settings["calibration"] is None
    assert c.label == "int8-static-onnx[n=16]" and not c.is_default


@pytest.mark.parametrize("call, message", [
    (lambda: pipeline.check_choices("weight_types", ["QInt9"], ["QInt8", "QUInt8"]),
     r"weight_types=\['QInt9'\]: use one or more of \['QInt8', 'QUInt8'\]"),
    (lambda: pipeline.check_numbers("thresholds", [6.0, -1], 0.0), r"thresholds=\[6.0, -1\]: use numbers >= 0"),
    (lambda: pipeline.check_counts("calibration_sizes", [16, 0]),
     r"calibration_sizes=\[16, 0\]: use whole numbers >= 1"),
    (lambda: pipeline.check_methods([("int8-bnb", {"treshold": 1.0})]), r"unknown option\(s\) \['treshold'\]"),
])
def test_notebook_parameters_are_checked_with_their_names(call, message):
    with pytest.raises((ValueError, methods.UnknownOptionError), match=message):
        call()


def test_a_result_from_another_machine_is_neither_reused_nor_replaced(reference, lee_small, tiny_bench, monkeypatch):
    """The key hashes the machine (CPU model, cores, threads; GPU name on CUDA): the same run measured on another
    host is filed under its own key, is not reused here, and a Result measured here does not overwrite it."""
    def elsewhere(device):
        return {"cpu": "Other CPU 9000", "cores": 96, "threads": 96}

    here = pipeline.machine_of("cpu")
    assert {"cpu", "cores", "threads"} <= set(here)
    with monkeypatch.context() as mp:
        mp.setattr(identity, "machine_of", elsewhere)
        theirs = pipeline.new_result("fp32", reference, lee_small, run="pytest-machines", bench_config=tiny_bench)
    results.save(theirs)
    mine = pipeline.new_result("fp32", reference, lee_small, run="pytest-machines", bench_config=tiny_bench)
    assert mine.key != theirs.key and mine.settings["machine"] == here
    assert pipeline.reusable("fp32", reference, lee_small, run="pytest-machines", device="cpu", calibration=None,
                             options=None, label=None, bench_config=tiny_bench, with_fidelity=True,
                             verbose=False) is None
    # a record under this machine's key whose settings name another machine (edited, or written by an older bgeq)
    forged = results.Result(**{**mine.to_dict(), "settings": {**mine.settings, "machine": elsewhere("cpu")}})
    results.write_json(forged.to_dict(), results.paths.results_dir("pytest-machines")
                       / results.file_name(mine))
    assert pipeline.reusable("fp32", reference, lee_small, run="pytest-machines", device="cpu", calibration=None,
                             options=None, label=None, bench_config=tiny_bench, with_fidelity=True,
                             verbose=False) is None
    results.save(mine)
    kept = {r.key for r in results.load_run("pytest-machines")}
    assert {theirs.key, mine.key} <= kept                                     # neither replaced the other
    assert pipeline.reusable("fp32", reference, lee_small, run="pytest-machines", device="cpu", calibration=None,
                             options=None, label=None, bench_config=tiny_bench, with_fidelity=True,
                             verbose=False).key == mine.key


def test_a_job_is_typed_and_a_misspelled_field_is_refused():
    job = pipeline.Job.of({"method": "fp32", "options": {}})
    assert job == pipeline.Job("fp32", {}) and pipeline.Job.of(job) is job
    with pytest.raises(TypeError, match=r"unknown field\(s\) \['methd'\]; fields are \['method', 'options'"):
        pipeline.Job.of({"methd": "fp32"})
