"""A realistic set of Results for the comparison's figures and report: the methods, variants, speeds, losses and
sizes of a full default run on two cores (all-MiniLM-L6-v2 on Lee, CPU), bge-large's architecture with random
weights on CPU (no quality), and the GPU reference pass (bge-large, random weights, CUDA). Many methods sit
close together in speed with long labels: the figures' labels must still not overlap."""
from __future__ import annotations

from tests.factories import BGE, fp32, result


def _iv(v, rel=0.05):
    return (v, v * (1 - rel), v * (1 + rel))


# (method, precision, options, speed over eager FP32, headline loss %, mean cosine, disk MB, memory MB)
DEFAULT_RUN = [
    ("fp32-inductor", "fp32", None, 1.20, 0.0, 1.0, 90.3, 419),
    ("fp32-onnx", "fp32", None, 1.19, 0.0, 1.0, 90.4, 305),
    ("fp32-openvino", "fp32", None, 1.35, 0.0, 1.0, 90.5, 322),
    ("bf16", "bf16", None, 1.92, 0.19, 0.99995, 45.4, 133),
    ("fp16", "fp16", None, 0.25, 0.0, 0.999999, 45.4, 140),
    ("int8-bnb", "int8", None, 0.75, 1.15, 0.99916, 58.7, 210),
    ("int8-bnb", "int8", {"threshold": 0.0}, 1.09, 0.94, 0.99749, 58.7, 212),
    ("int8-dynamic-onnx", "int8", None, 2.71, 2.37, 0.99358, 23.0, 120),
    ("int8-dynamic-onnx", "int8", {"per_channel": False, "weight_type": "QUInt8"}, 1.76, 2.39, 0.97848, 22.9, 121),
    ("int8-dynamic-onnx", "int8", {"per_channel": False}, 2.52, 3.85, 0.95497, 22.9, 119),
    ("int8-dynamic-onnx", "int8", {"weight_type": "QUInt8"}, 1.81, 1.81, 0.99374, 23.0, 120),
    ("int8-dynamic-torch", "int8", None, 1.93, 3.55, 0.97914, 59.0, 160),
    ("int8-dynamic-torch", "int8", {"api": "torchao"}, 1.52, 0.40, 0.99747, 58.7, 170),
    ("int8-qat", "int8", None, 0.30, 1.15, 0.99922, 58.7, 175),
    ("int8-qat", "int8", {"steps": 0}, 0.87, 1.15, 0.99887, 58.7, 175),
    ("int8-static-onnx", "int8", None, 1.92, 2.92, 0.99296, 33.4, 130),
    ("int8-static-onnx", "int8", {"calibrate_method": "Entropy"}, 1.88, 20.98, 0.90979, 33.4, 131),
    ("int8-static-onnx", "int8", {"calibrate_method": "Percentile"}, 1.84, 1.13, 0.99313, 33.4, 131),
    ("int8-static-onnx", "int8", {"skip_ffn_output": False}, 2.47, 2.45, 0.95354, 22.8, 125),
    ("int8-static-openvino", "int8", None, 3.46, 2.07, 0.99786, 23.3, 150),
    ("int8-static-torch", "int8", None, 1.95, 3.42, 0.98916, 59.6, 180),
    ("int4-onnx", "int4", None, 1.56, 1.39, 0.96667, 14.7, 110),
    ("int4-onnx", "int4", {"block_size": 128}, 1.54, 4.64, 0.93995, 12.3, 108),
    ("int4-quanto", "int4", None, 0.65, 4.37, 0.96441, 55.9, 200),
    ("int4-torchao", "int4", None, 0.79, 1.30, 0.96958, 60.3, 205),
    ("nf4-bnb", "nf4", None, 0.89, 5.23, 0.96681, 53.9, 190),
    ("fp4-bnb", "fp4", None, 0.87, 2.59, 0.92968, 53.9, 190),
]
# (method, precision, speed, mean cosine, disk MB, memory MB) on bge-large, random weights
BGE_CPU = [("fp32-onnx", "fp32", 1.10, 1.0, 1340, 1500), ("bf16", "bf16", 1.7, 0.99991, 670, 800),
           ("int8-dynamic-onnx", "int8", 2.6, 0.9936, 336, 520), ("int8-dynamic-torch", "int8", 1.9, 0.9792, 432, 700),
           ("int8-static-openvino", "int8", 3.1, 0.9979, 340, 600), ("int4-onnx", "int4", 1.4, 0.9667, 210, 480)]
BGE_CUDA = [("fp32-st", "fp32", 1.0, 1.0, 1341, 1561), ("bf16", "bf16", 5.49, 0.99991, 670, 798),
            ("fp16", "fp16", 2.78, 0.999999, 670, 798), ("int8-bnb", "int8", 0.91, 0.99916, 432, 655),
            ("int8-dynamic-torch", "int8", 0.25, 0.99918, 433, 719), ("nf4-bnb", "nf4", 0.97, 0.93678, 299, 519),
            ("fp4-bnb", "fp4", 0.97, 0.8844, 299, 519)]


def realistic_results() -> list:
    out = [fp32(run="default", mem_mb=_iv(250.0, 0.02))]
    for i, (meth, prec, opts, speed, loss, cos, disk, mem) in enumerate(DEFAULT_RUN):
        label = meth + ("[" + ",".join(f"{k}={v}" for k, v in opts.items()) + "]" if opts else "")
        out.append(result(meth, prec, label=label, run="default", options=opts, disk_mb=disk,
                          mem_mb=_iv(mem, 0.03), speed=_iv(speed, 0.06), loss_pct=loss, changed=12, seed=i + 2,
                          cos=(cos, cos - (1 - cos) * 0.2, min(1.0, cos + (1 - cos) * 0.2))))
    out.append(result("nf4-bnb", run="default", status="skipped", reason="bitsandbytes needs a CUDA GPU"))
    out.append(fp32(run="bge-large-random", model=BGE, disk_mb=1340, mem_mb=_iv(1450.0, 0.02), loss_pct=None))
    for meth, prec, speed, cos, disk, mem in BGE_CPU:
        out.append(result(meth, prec, run="bge-large-random", model=BGE, disk_mb=disk, mem_mb=_iv(mem, 0.03),
                          speed=_iv(speed, 0.05), cos=(cos, cos - (1 - cos) * 0.1, min(1.0, cos + (1 - cos) * 0.1))))
    out.append(fp32(run="gpu-bge-large-random", model=BGE, device="cuda", disk_mb=1341, mem_mb=1561, loss_pct=None))
    for meth, prec, speed, cos, disk, mem in BGE_CUDA:
        out.append(result(meth, prec, run="gpu-bge-large-random", model=BGE, device="cuda", disk_mb=disk,
                          mem_mb=mem, speed=_iv(speed, 0.02), cos=cos))
    return out
