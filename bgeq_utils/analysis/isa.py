"""What a CPU's instruction set says about the precisions it runs natively."""
from __future__ import annotations

import pandas as pd

#: instructions that give each format native arithmetic on x86 CPUs
NATIVE = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16"),
          "int8": ("avx512_vnni", "avx_vnni", "amx_int8")}


def native_formats(flags) -> pd.DataFrame:
    """Per 16-bit/8-bit format, the instructions that run it natively and which of them this CPU has."""
    flags = set(flags)
    return pd.DataFrame([{"format": fmt, "native CPU instructions": ", ".join(need),
                          "present here": ", ".join(f for f in need if f in flags) or "none"}
                         for fmt, need in NATIVE.items()])


def int8_weight_type_advice(flags) -> tuple[str, str]:
    """(weight type, why) that ONNX Runtime's dynamic INT8 favours on a CPU with these flags."""
    flags = set(flags)
    vnni = sorted(flags & set(NATIVE["int8"]))
    if vnni:
        return "QInt8", (f"{', '.join(vnni)} present: VPDPBUSD multiplies uint8 activations by int8 weights "
                         "natively (U8S8 = QInt8 weights), without saturation")
    if "avx2" in flags or "avx512bw" in flags:
        return ("QInt8 + reduce_range (or QUInt8)",
                "no VNNI: U8S8 runs through VPMADDUBSW, whose 16-bit sums can saturate")
    return "either", "no AVX2/VNNI: integer products take a generic path"
