"""The `bench` resource: exactly one worker per host holds it, and tasks that require it never overlap."""
from __future__ import annotations

import time

import pytest

from bgeq_utils.sweep import cluster


def _interval(seconds: float) -> tuple[float, float]:
    t0 = time.time()
    time.sleep(seconds)
    return t0, time.time()


def _overlaps(intervals) -> bool:
    s = sorted(intervals)
    return any(b[0] < a[1] for a, b in zip(s, s[1:]))


def test_timing_tasks_never_overlap_and_quality_tasks_do():
    from distributed import Client
    local = cluster.local_cluster(workers=2, processes=False)
    with Client(local) as c:
        assert cluster.check_bench(c, needed=True) == {next(iter(cluster.worker_hosts(c).values()))["host"]: 1}
        timed = c.gather([c.submit(_interval, 0.3, pure=False, resources={cluster.BENCH: 1}) for _ in range(4)])
        free = c.gather([c.submit(_interval, 0.3, pure=False) for _ in range(4)])
    local.close()
    assert not _overlaps(timed)
    assert _overlaps(free)          # the control: without the resource the two workers run side by side


def test_a_cluster_without_a_bench_worker_or_with_two_on_a_host_is_refused():
    from distributed import Client
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        assert cluster.check_bench(c, needed=False) == {}
        with pytest.raises(cluster.ClusterError, match=r"none of the 1 workers holds the `bench` resource.*"
                                                       r"--resources bench=1.*timing: shared"):
            cluster.check_bench(c, needed=True)
    with Client(processes=False, n_workers=2, threads_per_worker=1, resources={"bench": 1},
                dashboard_address=None) as c:
        with pytest.raises(cluster.ClusterError, match=r"more than one `bench` slot.*exactly one worker per host"):
            cluster.check_bench(c, needed=True)
