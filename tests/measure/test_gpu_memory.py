"""The NVML reader against a fake NVML: device and per-process memory, the scope chosen, the figures a CUDA
memory measurement reports (NVML over the baseline, torch's peak allocated beside it)."""
import sys
from types import SimpleNamespace

import pytest

from bgeq_utils.measure import gpu_memory

MB = 2 ** 20


class FakeNvml:
    """pynvml's functions over a scripted device: ``used`` and the process list change as a test says."""

    def __init__(self, used=0, procs=None, list_fails=False):
        self.used, self.procs, self.list_fails = used, procs or {}, list_fails
        self.calls = []

    def nvmlInit(self):
        self.calls.append("init")

    def nvmlShutdown(self):
        self.calls.append("shutdown")

    def nvmlDeviceGetHandleByUUID(self, uuid):
        if uuid != "GPU-abc":
            raise RuntimeError("NVML_ERROR_NOT_FOUND")
        return ("uuid", uuid)

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("index", index)

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=self.used, total=141 * 1024 * MB, free=0)

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        if self.list_fails:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return [SimpleNamespace(pid=p, usedGpuMemory=u) for p, u in self.procs.items()]


def test_reader_reads_device_and_own_process():
    nv = FakeNvml(used=5000 * MB, procs={11: 700 * MB, 12: 300 * MB})
    r = gpu_memory.NvmlReader(uuid="GPU-abc", nvml=nv, pid=11)
    assert r.handle == ("uuid", "GPU-abc")
    assert r.read() == {"device_used_bytes": 5000 * MB, "process_used_bytes": 700 * MB}
    r.close()
    assert nv.calls == ["init", "shutdown"]


def test_reader_falls_back_to_the_index_and_to_no_process_figure():
    nv = FakeNvml(used=10 * MB, procs={99: 1})
    r = gpu_memory.NvmlReader(index=3, uuid="GPU-unknown", nvml=nv, pid=11)
    assert r.handle == ("index", 3)
    assert r.process_used() is None                     # this process is not listed
    nv.list_fails = True
    assert r.read() == {"device_used_bytes": 10 * MB, "process_used_bytes": None}
    nv.procs, nv.list_fails = {11: None}, False
    assert r.process_used() is None                     # listed without accounting


def test_reader_without_pynvml_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)    # import fails
    with pytest.raises(gpu_memory.NvmlUnavailable, match="nvidia-ml-py"):
        gpu_memory.NvmlReader()


def test_reader_reports_a_driver_error_as_unavailable():
    class NoDriver(FakeNvml):
        def nvmlInit(self):
            raise RuntimeError("NVML_ERROR_DRIVER_NOT_LOADED")
    with pytest.raises(gpu_memory.NvmlUnavailable, match="DRIVER_NOT_LOADED"):
        gpu_memory.NvmlReader(nvml=NoDriver())


def test_over_baseline_per_process_when_every_reading_has_it():
    base = {"device_used_bytes": 1000 * MB, "process_used_bytes": 500 * MB}
    loaded = {"device_used_bytes": 2400 * MB, "process_used_bytes": 1200 * MB}
    after = {"device_used_bytes": 2600 * MB, "process_used_bytes": 1500 * MB}
    out = gpu_memory.over_baseline(base, loaded, after)
    assert out["nvml_scope"] == "process" and out["nvml_baseline_bytes"] == 500 * MB
    assert out["nvml_resident_over_baseline_bytes"] == 700 * MB and out["nvml_peak_over_baseline_bytes"] == 1000 * MB


def test_over_baseline_device_wide_when_a_process_reading_is_missing():
    base = {"device_used_bytes": 1000 * MB, "process_used_bytes": None}
    loaded = {"device_used_bytes": 2400 * MB, "process_used_bytes": 1200 * MB}
    after = {"device_used_bytes": 2600 * MB, "process_used_bytes": 1500 * MB}
    out = gpu_memory.over_baseline(base, loaded, after)
    assert out["nvml_scope"] == "device" and out["nvml_peak_over_baseline_bytes"] == 1600 * MB


def test_worker_readings_sequence():
    """Baseline, after the build, after one batch: what memory_worker's CUDA branch records."""
    nv = FakeNvml(used=800 * MB, procs={7: 500 * MB})
    reader = gpu_memory.NvmlReader(nvml=nv, pid=7)
    w = gpu_memory.WorkerReadings(reader, reader.read())
    nv.used, nv.procs = 1500 * MB, {7: 1200 * MB}      # weights on the device
    w.after_build()
    nv.used, nv.procs = 1900 * MB, {7: 1600 * MB}      # the allocator keeps the batch's activations
    out = w.result()
    assert out["nvml_scope"] == "process"
    assert out["nvml_resident_over_baseline_bytes"] == 700 * MB and out["nvml_peak_over_baseline_bytes"] == 1100 * MB
    assert nv.calls[-1] == "shutdown"
    assert gpu_memory.WorkerReadings(None, None, "pynvml is not installed").result() == {
        "nvml_error": "pynvml is not installed"}


def _run(peak, resident, torch_peak):
    return {"nvml_scope": "process", "nvml_peak_over_baseline_bytes": peak,
            "nvml_resident_over_baseline_bytes": resident, "peak_cuda_bytes": torch_peak}


def test_cuda_figures_read_nvml_with_torch_beside():
    runs = [_run(900 * MB, 700 * MB, 780 * MB), _run(910 * MB, 700 * MB, 780 * MB)]
    peak, resident, what, beside = gpu_memory.cuda_figures(runs, [780 * MB] * 2, [670 * MB] * 2,
                                                           "peak CUDA memory allocated")
    assert peak == [900 * MB, 910 * MB] and resident == [700 * MB] * 2
    assert what.startswith("device memory used (NVML, process) over a baseline process that initialised CUDA")
    assert beside["torch_peak_allocated"]["value"] == 780 * MB and beside["nvml_scope"] == "process"


def test_cuda_figures_keep_torch_when_nvml_is_missing():
    runs = [{"peak_cuda_bytes": 1, "nvml_error": "pynvml is not installed (pip install nvidia-ml-py)"}]
    peak, resident, what, beside = gpu_memory.cuda_figures(runs, [1], [2], "peak CUDA memory allocated")
    assert (peak, resident, what) == ([1], [2], "peak CUDA memory allocated")
    assert beside == {"nvml": "not read: pynvml is not installed (pip install nvidia-ml-py)"}
