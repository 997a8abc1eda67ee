"""python -m bgeq_utils.sweep GRID [--scheduler tcp://host:8786]: run a sweep's notebooks on Dask.

    python -m bgeq_utils.sweep params/sweeps/example.yaml               # a local cluster sized to this machine
    python -m bgeq_utils.sweep example --scheduler tcp://host:8786      # an existing cluster
    python -m bgeq_utils.sweep example --dry-run                        # the runs and tasks, nothing run

Re-running a sweep runs only the tasks that are missing or failed. Exit code: 0 when every task is ok, 1 when
some failed (they are in outputs/sweep-<name>/sweep.json), 2 when the grid or the cluster cannot be used.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys

from bgeq_utils.core import vocab


def parser(prog: str = "python -m bgeq_utils.sweep") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("grid", help="a grid file (YAML), or the name of one in params/sweeps/")
    ap.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    ap.add_argument("--workers", type=int, help="workers of the local cluster (default: the cores, fewer when "
                    "memory is short)")
    ap.add_argument("--outputs", help="outputs folder (default: outputs/, or $BGEQ_OUTPUTS); on a cluster, a folder "
                    "every worker sees at the same path")
    ap.add_argument("--rerun-all", action="store_true", help="run every task, done or not")
    ap.add_argument("--dry-run", action="store_true", help="print the runs and tasks; run nothing")
    return ap


def dry_run(g) -> str:
    lines = [f"sweep {g.name}: {len(g.runs)} runs, {len(g.tasks)} tasks (timing: {g.timing}); "
             f"manifest and comparison in outputs/{g.sweep_run}/"]
    for t in g.tasks:
        after = f"  after {', '.join(a.split('/')[-1] if a.startswith(t.run) else a for a in t.after)}" \
            if t.after and len(t.after) < 4 else (f"  after all {len(t.after)} others" if t.after else "")
        lines.append(f"  {t.id}{' [bench]' if t.bench else ''}{after}")
    return "\n".join(lines)


def main(argv=None, prog: str = "python -m bgeq_utils.sweep") -> int:
    a = parser(prog).parse_args(argv)
    from bgeq_utils.sweep import cluster, grid, schedule  # after parsing: --help costs no dask import
    try:
        g = grid.load_grid(a.grid)
        if a.dry_run:
            print(dry_run(g))
            return 0
        if importlib.util.find_spec("distributed") is None:
            raise ValueError("a sweep runs its tasks on Dask, which is not installed: "
                             + vocab.install_hint("distributed"))
        m = schedule.run_sweep(g, scheduler=a.scheduler, workers=a.workers, outputs=a.outputs,
                               rerun_all=a.rerun_all)
    except (grid.GridError, cluster.ClusterError, FileNotFoundError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(schedule.summary(m, g))
    return 1 if m.failed([t.id for t in g.tasks]) else 0


if __name__ == "__main__":
    sys.exit(main())
