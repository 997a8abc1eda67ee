"""Run in a fresh process by bench.measure_memory: build one method, report its memory as JSON.

The baseline is a process that has imported the method's own libraries (MethodSpec.imports: OpenVINO,
bitsandbytes, torchao ... cost memory to import, and that is not the model's memory) and has loaded and
released the FP32 reference once, so allocator leftovers of a freed reference count for no method. The peak
during inference is read after resetting the high-water mark (/proc/self/clear_refs), so building does not
count; the resident size (model_rss_bytes, over the post-import baseline) is read after inference, once mapped
weights are paged in.
"""
from __future__ import annotations

import ctypes
import gc
import json
import sys

from bgeq_utils.core import vocab


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _trim():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main(argv):
    args = json.loads(argv[1])
    import importlib
    import warnings

    import torch  # noqa: F401  (imports count in the baseline, not in the model)

    # the package after torch and the method's libraries, and before the baseline reading: a fresh process's
    # imports are counted in its baseline, never in the model's memory
    from bgeq_utils import methods
    from bgeq_utils.inputs import data, models
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mod in args.get("imports", []):
            try:
                importlib.import_module(mod)
            except ImportError:
                pass  # the build will say what is missing
    # Load and release the reference once before the baseline: what the allocator keeps of a freed
    # FP32 model (and the mapped weight file) is then counted in the baseline for every method alike.
    models.load_from_spec(args["reference"], device="cpu").model = None
    _trim()
    baseline = _status_kb("VmRSS")
    imported = [m for m in args.get("imports", []) if m in sys.modules]
    device = args["device"]
    gpu = None
    if vocab.device_kind(device) == "cuda":  # the baseline has initialised CUDA: NVML's baseline reading
        from bgeq_utils.measure.gpu_memory import WorkerReadings
        gpu = WorkerReadings.start(device)
    cal = None
    if args.get("calibration_file"):
        cal = json.load(open(args["calibration_file"]))
    elif args.get("calibration_n"):
        cal = data.calibration_texts(int(args["calibration_n"]))
    ref = models.load_from_spec(args["reference"], device="cpu")
    enc = methods.build(args["method"], ref, device=device, calibration=cal, **args["options"])
    ref.model = None
    del ref
    _trim()
    build_peak = _status_kb("VmHWM")
    resident = _status_kb("VmRSS")
    cuda = vocab.device_kind(device) == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_model = torch.cuda.memory_allocated()
        gpu.after_build()
    reset = _reset_peak()
    feats = enc.tokenize(data.benchmark_texts(args["batch_size"]) * 1, max_length=args["seq_len"], pad_to_max=True)
    enc.embed_features(feats)   # one pass: builders compile and warm up inside build, which the peak excludes
    peak = _status_kb("VmHWM")
    del feats
    _trim()
    # Weights may be memory-mapped and only paged in by the first forward pass: read the resident
    # size after inference, when every weight has been touched.
    after = _status_kb("VmRSS")
    out = {"baseline_rss_bytes": baseline, "resident_over_baseline_bytes": after - baseline,
           "resident_after_build_bytes": resident, "resident_rss_bytes": after, "peak_rss_bytes": peak,
           "peak_over_baseline_bytes": peak - baseline, "imported_before_baseline": imported,
           "build_peak_rss_bytes": build_peak, "peak_reset": reset,
           "rss_anon_bytes": _status_kb("RssAnon"), "rss_file_bytes": _status_kb("RssFile"),
           "batch_size": args["batch_size"], "seq_len": args["seq_len"], "process": "fresh"}
    if cuda:
        out["cuda_model_bytes"] = cuda_model
        out["peak_cuda_bytes"] = torch.cuda.max_memory_allocated()
        out.update(gpu.result())
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
