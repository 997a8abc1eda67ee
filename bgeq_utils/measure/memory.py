"""Memory, one definition, measured in fresh processes (see memory_worker.py).

Peak RSS while embedding one batch (the run's speed cell) over a baseline process that imported the method's
libraries and loaded and released the reference once (CUDA: peak allocated); resident after loading over the
same baseline. Each is the median of a few processes, their range as its interval.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from bgeq_utils.core import uncertainty as stats
from bgeq_utils.core import vocab
from bgeq_utils.measure.gpu_memory import cuda_figures
from bgeq_utils.methods import get

#: the one memory definition's batch when none is given; a run measures at its own speed cell (BenchConfig)
MEMORY_BATCH, MEMORY_SEQ = 32, 128
#: fresh processes at once: each is mostly start-up and loading, and its peak RSS is its own whatever runs beside
#: it, so two at a time halve the wait without changing a figure (no timing runs while they do)
MEMORY_WORKERS = 2


def measure_memory(method: str, reference_spec: dict, device: str = "cpu", options: dict | None = None,
                   calibration: int | list[str] | None = None, batch_size: int = MEMORY_BATCH,
                   seq_len: int = MEMORY_SEQ, repeats: int = 2, timeout: float = 1800) -> dict:
    """Memory of a method, each time in a new Python process that first imports the method's libraries.

    ``peak``: peak RSS while embedding one batch (``batch_size`` x ``seq_len`` tokens) over the process's
    baseline (the same libraries imported, the reference loaded and released once); on CUDA the peak
    allocated. ``resident``: resident memory after loading, over the same baseline (the weights). Each is
    the median of ``repeats`` processes with their range as its interval."""
    spec = get(method)
    args = {"method": method, "reference": reference_spec, "device": device, "options": options or {},
            "batch_size": batch_size, "seq_len": seq_len, "imports": list(spec.imports)}
    tmp = None
    if isinstance(calibration, list):
        fd, tmp = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(calibration, f)
        args["calibration_file"] = tmp
    else:
        args["calibration_n"] = calibration
    runs = []
    try:
        for _ in range(max(1, repeats)):
            proc = subprocess.run([sys.executable, "-m", "bgeq_utils.measure.memory_worker", json.dumps(args)],
                                  capture_output=True, text=True, timeout=timeout)
            lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
            if proc.returncode != 0 or not lines:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                raise RuntimeError(f"memory worker for {method} failed (exit {proc.returncode}): {' | '.join(tail)}")
            runs.append(json.loads(lines[-1]))
    finally:
        if tmp:
            os.unlink(tmp)
    cuda = vocab.device_kind(device) == "cuda"
    peak = [r["peak_cuda_bytes"] if cuda else r["peak_over_baseline_bytes"] for r in runs]
    resident = [r["cuda_model_bytes"] if cuda else r["resident_over_baseline_bytes"] for r in runs]
    what = "peak CUDA memory allocated" if cuda else "peak RSS over the baseline process"
    beside = {}
    if cuda:  # device memory used (NVML) where every process read it; torch's peak allocated beside it
        peak, resident, what, beside = cuda_figures(runs, peak, resident, what)
    return {"peak": stats.spread(peak).to_dict() | {"what": f"{what}, batch {batch_size} x {seq_len} tokens"},
            "resident": stats.spread(resident).to_dict() | {"what": "resident after loading, over the baseline"},
            "batch_size": batch_size, "seq_len": seq_len, "imports": list(spec.imports), "processes": runs,
            **beside}


def _measured(job: dict):
    """One job's memory dict, or the exception that ended it (recorded by the caller against its method)."""
    try:
        return measure_memory(**job)
    except Exception as e:
        return e


class MemoryProcesses:
    """Memory measurements (:func:`measure_memory`'s keyword arguments each), ``workers`` fresh processes at a
    time, collected by key: a measurement that fails gives its exception (recorded by the caller against its
    method) instead of ending the others."""

    def __init__(self, workers: int | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self.workers = workers or MEMORY_WORKERS
        self._pool = ThreadPoolExecutor(max_workers=self.workers)
        self._futures: dict = {}

    def submit(self, key, job: dict) -> None:
        self._futures[key] = self._pool.submit(_measured, job)

    def wait(self, progress: bool = True, desc: str = "memory") -> dict:
        """{key: memory dict or exception} of every submitted job, once all are done."""
        bar = None
        if progress and self._futures:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(self._futures), desc=desc, leave=False)
        out = {}
        for key, f in self._futures.items():
            out[key] = f.result()
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


#: memory that must be free for a fresh process to start beside the work that goes on building the next methods
EARLY_HEADROOM = 6 * 2 ** 30


class EarlyMemory(MemoryProcesses):
    """Memory processes started while the caller goes on building the next methods, collected before its timing
    window (no window runs beside them). CPU only: a process's peak RSS is its own whatever runs beside it; on
    CUDA, where a driver without per-process figures leaves only the device's, and whenever less than
    ``headroom`` bytes are free, :meth:`start` declines and the caller measures after its window instead."""

    def __init__(self, device: str, wanted: bool = True, workers: int | None = None,
                 headroom: int = EARLY_HEADROOM):
        super().__init__(workers)
        self.on = bool(wanted) and vocab.device_kind(device) == "cpu"
        self.headroom = headroom

    def start(self, key, job: dict) -> bool:
        """Start ``job`` under ``key``; False when declined."""
        import psutil

        if not self.on or psutil.virtual_memory().available < self.headroom:
            return False
        self.submit(key, job)
        return True

    def wait(self, progress: bool = True, desc: str = "memory (started while building)") -> dict:
        return super().wait(progress, desc)


def measure_memory_many(jobs: list[dict], workers: int | None = None, progress: bool = True) -> list:
    """:func:`measure_memory` for several methods (each job: its keyword arguments), ``workers`` fresh processes
    at a time (default :data:`MEMORY_WORKERS`; give 1 on CUDA, where a driver that lists no per-process memory
    leaves only the device's, which two processes would share). Returns each job's memory dict, or the
    exception that ended it, in order."""
    if not jobs:
        return []
    pool = MemoryProcesses(min(workers or MEMORY_WORKERS, len(jobs)))
    try:
        for i, job in enumerate(jobs):
            pool.submit(i, job)
        got = pool.wait(progress, f"memory ({pool.workers} fresh processes at a time)")
    finally:
        pool.close()
    return [got[i] for i in range(len(jobs))]
