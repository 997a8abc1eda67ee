"""Where a sweep runs: a local cluster sized to this machine, or an existing Dask scheduler.

Every worker runs one task at a time (one thread). Timing is kept honest by a Dask worker resource: a task that
measures speed or memory requires ``bench=1``, and exactly one worker per host holds it, so at most one timing
task runs on a host at a time; quality-only tasks (the comparison, shard encoding) need no resource. The local
cluster is built from explicit worker specs (``distributed.SpecCluster``, what ``LocalCluster`` builds on)
because ``LocalCluster`` gives every worker the same resources: here one worker holds ``bench`` and the others
none. On a cluster, start one worker per host with the resource:

    dask scheduler                                                   # on one machine: tcp://host:8786
    dask worker tcp://host:8786 --nthreads 1 --resources bench=1     # once per host: timing tasks
    dask worker tcp://host:8786 --nthreads 1 --nworkers 3            # optional, quality-only tasks
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from contextlib import contextmanager
from urllib.parse import urlparse

from bgeq_utils.sweep.tasks import host_cores

BENCH = "bench"
#: memory one notebook process may take (bge-large FP32 plus a quantized copy and the runtimes)
TASK_MEMORY_BYTES = 4 * 2**30


class ClusterError(RuntimeError):
    """A cluster that cannot run the sweep as asked: the message says what to change."""


def default_workers() -> int:
    """As many single-threaded workers as the machine allows: its cores, fewer when memory is short."""
    import psutil

    by_memory = int(psutil.virtual_memory().available // TASK_MEMORY_BYTES)
    return max(1, min(host_cores(), by_memory))


def local_cluster(workers: int | None = None, processes: bool = True):
    """A cluster on this machine: ``workers`` one-thread workers (default: :func:`default_workers`), the first
    holding the ``bench`` resource. ``processes=False`` keeps the workers in this process (threads)."""
    from distributed import Nanny, Scheduler, SpecCluster, Worker

    n = workers or default_workers()
    if n < 1:
        raise ClusterError(f"workers={n}: a cluster needs at least one worker")
    options = {"nthreads": 1, "memory_limit": 0, "dashboard": False, "silence_logs": logging.ERROR}
    cls = Nanny if processes else Worker
    specs = {f"sweep-{i}": {"cls": cls, "options": {**options, **({"resources": {BENCH: 1}} if i == 0 else {})}}
             for i in range(n)}
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None, "dashboard": False}}
    return SpecCluster(workers=specs, scheduler=scheduler, name="bgeq-sweep", silence_logs=logging.ERROR)


@contextmanager
def connect(scheduler: str | None = None, workers: int | None = None, processes: bool = True, client=None):
    """A Dask client: ``client`` as given, the scheduler at ``scheduler`` (tcp://host:8786), or a local cluster
    started (and closed afterwards) for the sweep."""
    if client is not None:
        yield client
        return
    from distributed import Client
    if scheduler:
        try:
            c = Client(scheduler, timeout="20s")
        except OSError as e:
            raise ClusterError(f"no Dask scheduler answers at {scheduler} ({e}); start one with `dask scheduler` and "
                               "workers with `dask worker ADDRESS --nthreads 1 --resources bench=1`") from None
        try:
            yield c
        finally:
            c.close()
        return
    cluster = local_cluster(workers, processes)
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def worker_hosts(client) -> dict[str, dict]:
    """{worker address: {"host": ..., "resources": {...}, "nthreads": n}} of the connected cluster."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    return {addr: {"host": w.get("host") or urlparse(addr).hostname, "resources": dict(w.get("resources") or {}),
                   "nthreads": w.get("nthreads")} for addr, w in info.items()}


def check_bench(client, needed: bool, wait: float = 20.0) -> dict[str, int]:
    """Bench workers per host. Fails when timing tasks wait for a ``bench`` worker that no host has (they would
    wait forever), or when a host has two (its timing tasks could overlap)."""
    if needed:
        try:
            client.wait_for_workers(1, timeout=wait)
        except Exception:
            pass
    hosts = worker_hosts(client)
    per_host = Counter(w["host"] for w in hosts.values() if w["resources"].get(BENCH, 0) > 0)
    over = {h: n for h, n in per_host.items() if n > 1}
    lopsided = {a: w["resources"][BENCH] for a, w in hosts.items() if w["resources"].get(BENCH, 0) > 1}
    if over or lopsided:
        raise ClusterError(f"hosts with more than one `bench` slot: {over or lopsided}; timing tasks there could run "
                           "side by side. Give bench=1 to exactly one worker per host")
    if needed and not per_host:
        raise ClusterError(f"none of the {len(hosts)} workers holds the `bench` resource, so the notebooks that time "
                           "would wait forever: start one worker per host with `dask worker ADDRESS --nthreads 1 "
                           "--resources bench=1`, or set `timing: shared` in the grid (speed then not a fair timing)")
    return dict(per_host)


def describe(client) -> str:
    hosts = worker_hosts(client)
    n_hosts = len({w["host"] for w in hosts.values()})
    return (f"{len(hosts)} workers on {n_hosts} host{'s' if n_hosts != 1 else ''} "
            f"({sum(1 for w in hosts.values() if w['resources'].get(BENCH))} with `bench`), scheduler "
            f"{client.scheduler.address}, {os.cpu_count()} cores here")
