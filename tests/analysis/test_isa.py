"""ISA advice: the INT8 weight type and the native formats follow the CPU's instruction set."""
from bgeq_utils.analysis import isa


def test_isa_advice_follows_the_instruction_set():
    assert isa.int8_weight_type_advice({"avx2", "avx512_vnni"})[0] == "QInt8"
    assert isa.int8_weight_type_advice({"avx2"})[0].startswith("QInt8 + reduce_range")
    assert isa.int8_weight_type_advice(set())[0] == "either"
    t = isa.native_formats({"avx512_bf16"}).set_index("format")
    assert t.loc["bf16", "present here"] == "avx512_bf16" and t.loc["fp16", "present here"] == "none"
