"""CUDA memory as a GPU user sees it: device memory in use, read from NVML, over a baseline process.

``torch.cuda.max_memory_allocated()`` counts only torch's own tensors: it leaves out the CUDA context, cuBLAS
and cuDNN workspaces, what torch's caching allocator holds beyond its tensors, and every allocator outside
torch (ONNX Runtime's CUDA provider would read about 0). NVML reports the memory the driver has given out,
which is what ``nvidia-smi`` shows and what decides whether a model fits beside others.

A fresh process (memory_worker.py) initialises CUDA after importing the method's libraries and reads NVML: its
baseline. It reads again after building the method (the weights, resident) and after embedding one batch
(allocators keep what the pass needed: torch's caching allocator and ONNX Runtime's arena hand nothing back to
the driver, so this is the pass's peak as the device sees it). Each figure is over the baseline. NVML gives
the memory of each process where the driver can see the process, else only the whole device's: the reading says
which (``scope``); a device-wide figure is right only while no other process changes its memory on that GPU.

``pynvml`` (package ``nvidia-ml-py``, the ``gpu`` extra) is optional: without it the worker says so and the
memory figure stays torch's peak allocated. The reader takes any object with pynvml's functions, so tests
give it a fake.
"""
from __future__ import annotations

import os

from bgeq_utils.core import uncertainty as stats


class NvmlUnavailable(RuntimeError):
    """NVML cannot be read here (no pynvml, no driver, no such device)."""


def _pynvml():
    try:
        import pynvml
    except ImportError as e:
        raise NvmlUnavailable("pynvml is not installed (pip install nvidia-ml-py, or the 'gpu' extra)") from e
    return pynvml


class NvmlReader:
    """Memory in use on one GPU: the device's, and this process's where the driver lists it."""

    def __init__(self, index: int = 0, uuid: str | None = None, nvml=None, pid: int | None = None):
        self.nvml = nvml if nvml is not None else _pynvml()
        self.pid = os.getpid() if pid is None else pid
        try:
            self.nvml.nvmlInit()
            self.handle = None
            if uuid:
                try:
                    self.handle = self.nvml.nvmlDeviceGetHandleByUUID(uuid)
                except Exception:  # an older driver or another spelling of the UUID: fall back to the index
                    self.handle = None
            if self.handle is None:
                self.handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
        except NvmlUnavailable:
            raise
        except Exception as e:
            raise NvmlUnavailable(f"NVML could not be read: {type(e).__name__}: {e}") from e

    def device_used(self) -> int:
        return int(self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used)

    def process_used(self) -> int | None:
        """This process's device memory, or None where the driver does not list it (no per-process accounting,
        another PID namespace)."""
        try:
            procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
        except Exception:
            return None
        for p in procs or ():
            if int(p.pid) == self.pid:
                used = getattr(p, "usedGpuMemory", None)
                return int(used) if used is not None else None
        return None

    def read(self) -> dict:
        return {"device_used_bytes": self.device_used(), "process_used_bytes": self.process_used()}

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:
            pass


def over_baseline(baseline: dict, loaded: dict, after: dict) -> dict:
    """Resident (after building) and peak (after one batch) over the baseline reading, per process where all
    three readings have this process's figure, else for the whole device."""
    key, scope = "process_used_bytes", "process"
    if any(r.get(key) is None for r in (baseline, loaded, after)):
        key, scope = "device_used_bytes", "device"
    base = baseline[key]
    return {"nvml_scope": scope, "nvml_baseline_bytes": base,
            "nvml_resident_over_baseline_bytes": loaded[key] - base,
            "nvml_peak_over_baseline_bytes": after[key] - base,
            "nvml_readings": {"baseline": baseline, "after_build": loaded, "after_batch": after}}


def _device_ids(device: str) -> tuple[int, str | None]:
    """NVML's view of a torch CUDA device: its UUID where torch reports one (CUDA_VISIBLE_DEVICES renumbers
    devices, NVML does not), else its index."""
    import torch
    dev = torch.device(device)
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is not None:
        uuid = str(uuid)
        uuid = uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"
    return index, uuid


class WorkerReadings:
    """The three NVML readings of one fresh memory process, or why there are none."""

    def __init__(self, reader: NvmlReader | None, baseline: dict | None, error: str | None = None):
        self.reader, self.baseline, self.error = reader, baseline, error
        self.loaded: dict | None = None

    @classmethod
    def start(cls, device: str, reader: NvmlReader | None = None) -> WorkerReadings:
        """Initialise CUDA on ``device`` (its context is part of the baseline, as in any CUDA process), then take
        the baseline reading."""
        import torch
        torch.zeros(1, device=device)
        torch.cuda.synchronize(device)
        try:
            if reader is None:
                index, uuid = _device_ids(device)
                reader = NvmlReader(index=index, uuid=uuid)
            return cls(reader, reader.read())
        except NvmlUnavailable as e:
            return cls(None, None, str(e))

    def after_build(self) -> None:
        if self.reader is not None:
            self.loaded = self.reader.read()

    def result(self) -> dict:
        """The worker's NVML fields (or the reason there are none)."""
        if self.reader is None or self.loaded is None:
            return {"nvml_error": self.error or "no reading after the build"}
        out = over_baseline(self.baseline, self.loaded, self.reader.read())
        self.reader.close()
        return out


def cuda_figures(runs: list[dict], torch_peak: list, torch_resident: list, torch_what: str):
    """The memory figures of a method's CUDA processes: NVML's device memory used over the baseline where every
    process has it (torch's peak allocated then stands beside it), else torch's own. Returns (peak values,
    resident values, what the peak is, fields to add)."""

    if not runs or any("nvml_peak_over_baseline_bytes" not in r for r in runs):
        why = next((r.get("nvml_error") for r in runs if r.get("nvml_error")), "no NVML reading")
        return torch_peak, torch_resident, torch_what, {"nvml": f"not read: {why}"}
    scopes = sorted({r["nvml_scope"] for r in runs})
    what = (f"device memory used (NVML, {'/'.join(scopes)}) over a baseline process that initialised CUDA and "
            "imported the method's libraries")
    beside = {"torch_peak_allocated": stats.spread(torch_peak).to_dict() | {"what": torch_what},
              "torch_resident_allocated": stats.spread(torch_resident).to_dict(), "nvml_scope": "/".join(scopes)}
    return ([r["nvml_peak_over_baseline_bytes"] for r in runs],
            [r["nvml_resident_over_baseline_bytes"] for r in runs], what, beside)
