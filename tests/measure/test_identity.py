"""Who a measurement is: its label and key (calibration, machine, data set), and which texts it times."""
from bgeq_utils.core import results
from bgeq_utils.measure import identity, pipeline
from tests.measure.conftest import TEXTS


def test_calibration_is_no_setting_of_a_method_that_does_not_use_it(reference, lee_small, tiny_bench):
    a = pipeline.new_result("int8-dynamic-onnx", reference, lee_small, run="x", calibration=64, bench_config=tiny_bench)
    b = pipeline.new_result("int8-dynamic-onnx", reference, lee_small, run="x", bench_config=tiny_bench)
    c = pipeline.new_result("int8-static-onnx", reference, lee_small, run="x", calibration=16, bench_config=tiny_bench)
    assert a.key == b.key and a.settings["calibration"] is None
    assert c.label == "int8-static-onnx[n=16]" and not c.is_default


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


def test_labelled_data_keeps_the_benchmark_texts_and_its_key(reference, lee_small, own_texts, tiny_bench):
    assert pipeline.speed_texts(lee_small) is None and pipeline.speed_texts(own_texts) == TEXTS
    assert pipeline.quality_not_applicable(reference, lee_small) is None
    assert pipeline.quality_not_applicable(reference, own_texts) == "no labels"
    assert set(pipeline.dataset_id(lee_small)) == {"name", "documents", "queries", "pairs"}   # Lee keys unchanged
