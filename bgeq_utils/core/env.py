"""The environment a figure was measured in: CPU model and ISA flags, GPU, package versions."""
from __future__ import annotations

import os
import platform
import re
from functools import lru_cache
from importlib import metadata

from bgeq_utils.core import vocab

PACKAGES = (
    "torch", "transformers", "sentence-transformers", "onnxruntime", "onnx", "bitsandbytes",
    "torchao", "optimum-quanto", "openvino", "nncf", "accelerate", "numpy",
)
# ISA features that decide which precision is fast on a CPU.
CPU_FLAGS = (
    "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16",
)


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("unknown", "", "x86_64"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags


def cpu_flags() -> set[str]:
    return _cpuinfo()[1]


def has_cuda() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except Exception:
        return False


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'. Asking for CUDA without one is an error."""
    device = (device or "auto").lower()
    if device == "auto":
        return "cuda" if has_cuda() else "cpu"
    if vocab.device_kind(device) == "cuda" and not has_cuda():
        raise RuntimeError("device='cuda' was requested but no CUDA GPU is visible; use device='cpu' or 'auto'")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'")
    return device


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(device: str) -> str:
    """A device string as the methods take it: 'auto' resolves to this machine's; 'cpu' and 'cuda[:N]' are
    kept as given (a CUDA method on a machine without a GPU is recorded as skipped, not an error)."""
    if not isinstance(device, str) or not _DEVICE.match(device.strip().lower()):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    device = device.strip().lower()
    return resolve_device(device) if device == "auto" else device


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@lru_cache(maxsize=None)
def describe(device: str = "cpu") -> dict:
    model, flags = _cpuinfo()
    info = {
        "kind": vocab.device_kind(device),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpu_flags": sorted(f for f in CPU_FLAGS if f in flags),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
        if vocab.device_kind(device) == "cuda" and torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info["gpu_name"] = p.name
            info["gpu_memory_bytes"] = int(p.total_memory)
            info["gpu_capability"] = f"{p.major}.{p.minor}"
    except Exception:
        pass
    return info


def label(env: dict) -> str:
    """A one-line description for figure captions."""
    if env.get("kind") == "cuda":
        return f"{env.get('gpu_name', 'GPU')} (CUDA)"
    flags = ",".join(f for f in env.get("cpu_flags", []) if "512" in f or "amx" in f or "vnni" in f)
    return f"{env.get('cpu_model', 'CPU')}, {env.get('cpu_count')} cores [{flags}]"


def default_threads() -> int:
    """Threads a runtime uses when none is asked for: ``OMP_NUM_THREADS`` when set (a sweep pins it per task,
    torch honours it), else every core. ONNX Runtime and OpenVINO read it here, so all runtimes agree."""
    v = os.environ.get("OMP_NUM_THREADS", "").strip()
    if v.isdigit() and int(v) >= 1:
        return int(v)
    return os.cpu_count() or 1


#: share of the machine's CPU time other processes may take during a timing window before the window is flagged
#: busy: a speed-up measured under load is another quantity, not a noisier one
BUSY_SHARE = 0.15


def _busy_seconds(t) -> float:
    return sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))


class LoadMeter:
    """What else ran on the machine while a window was timed: the 1-minute load average at both ends and
    the share of all cores' time that processes other than this one (and its children) took."""

    def __init__(self):
        import time

        import psutil
        self._proc = psutil.Process()
        self._t0 = time.monotonic()
        self._sys0 = _busy_seconds(psutil.cpu_times())
        self._own0 = self._own()
        self._load0 = os.getloadavg()[0]

    def _own(self) -> float:
        t = self._proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def stop(self) -> dict:
        import time

        import psutil
        wall = max(time.monotonic() - self._t0, 1e-9)
        cores = psutil.cpu_count() or 1
        other = max(0.0, (_busy_seconds(psutil.cpu_times()) - self._sys0) - (self._own() - self._own0))
        share = min(1.0, other / (wall * cores))
        return {"load_avg_start": round(self._load0, 2), "load_avg_end": round(os.getloadavg()[0], 2),
                "other_cpu_share": round(share, 3), "cores": cores, "seconds": round(wall, 1),
                "busy": share > BUSY_SHARE,
                "what": f"share of all {cores} cores' time taken by other processes while timing "
                        f"(busy above {BUSY_SHARE:.0%})"}
