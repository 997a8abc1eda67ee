"""Memory, one definition, in fresh processes."""
import pytest

from bgeq_utils import methods
from bgeq_utils.measure import memory


def test_memory_worker_reports_an_error_for_unknown_method(reference):
    with pytest.raises(KeyError):
        memory.measure_memory("nope", reference.spec(), batch_size=2, seq_len=8)


def test_memory_baseline_imports_the_methods_libraries(reference):
    """The baseline process imports what the method imports, so library import costs are not model memory."""
    spec = methods.get("int8-dynamic-onnx")
    assert {"onnxruntime", "onnxruntime.quantization"} <= set(spec.imports)
    assert {"openvino", "nncf"} <= set(methods.get("int8-static-openvino").imports)
    assert "bitsandbytes" in methods.get("int8-bnb").imports
    mem = memory.measure_memory("int8-dynamic-onnx", reference.spec(), batch_size=2, seq_len=8, repeats=1)
    proc = mem["processes"][0]
    assert set(spec.imports) <= set(proc["imported_before_baseline"])
    assert mem["peak"]["value"] == proc["peak_over_baseline_bytes"] > 0
    assert mem["resident"]["value"] == proc["resident_over_baseline_bytes"] > 0


def test_memory_started_early_declines_on_cuda_and_when_memory_is_short(monkeypatch):
    assert not memory.EarlyMemory("cuda", True).start("k", {})      # a device figure is shared: after the window
    assert not memory.EarlyMemory("cpu", False).start("k", {})      # nothing asked for
    short = memory.EarlyMemory("cpu", True, headroom=2 ** 62)        # more than any machine has free
    assert not short.start("k", {})
    short.close()


def test_memory_started_early_returns_each_jobs_figures_or_its_error(monkeypatch):
    monkeypatch.setattr(memory, "measure_memory",
                        lambda **job: {"peak": job["n"]} if job["n"] else (_ for _ in ()).throw(RuntimeError("x")))
    early = memory.EarlyMemory("cpu", True, headroom=0)
    assert early.start("a", {"n": 3}) and early.start("b", {"n": 0})
    got = early.wait(progress=False)
    early.close()
    assert got["a"] == {"peak": 3} and isinstance(got["b"], RuntimeError)
