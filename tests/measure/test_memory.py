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
