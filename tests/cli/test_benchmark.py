"""The speed suite's command line: configuration specs for one interleaved window."""
import pytest

from bgeq_utils.cli import benchmark


def test_a_spec_names_a_method_and_its_options():
    assert benchmark.parse_spec("fp32-onnx") == ("fp32-onnx", {}, "fp32-onnx")
    name, options, label = benchmark.parse_spec("int8-static-openvino:keep_fp32_layers=4,inference_precision=bf16")
    assert name == "int8-static-openvino" and options == {"keep_fp32_layers": 4, "inference_precision": "bf16"}
    assert label == "int8-static-openvino[inference_precision=bf16,keep_fp32_layers=4]"


@pytest.mark.parametrize("spec, message", [("int9", "unknown method 'int9'"),
                                           ("int8-static-openvino:alpha", "option=value"),
                                           ("int8-static-openvino:bogus=1", "bogus")])
def test_bad_specs_name_the_problem(spec, message):
    with pytest.raises(ValueError, match=message):
        benchmark.parse_spec(spec)


def test_bad_spec_exits_2_with_one_line(capsys):
    assert benchmark.main(["--model", "default", "--weights", "pretrained", "--window", "int9"]) == 2
    assert "unknown method 'int9'" in capsys.readouterr().err
