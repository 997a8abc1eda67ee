"""The ``bgeq`` command line: run the notebooks, time the methods, build the report, recommend, export.

Each subcommand is a thin door onto the package (the runner, the speed suite, the comparison, the export),
so the command line and the notebooks give the same figures. Errors are one line on stderr and exit code 2.
Each subcommand imports its floor of the package when it is chosen: `bgeq --help` and a usage error load no
torch, dask or plotting library.
"""
from __future__ import annotations

import argparse
import sys

from bgeq_utils.core import vocab

DEFAULT_RUNS = ["default", "bge-large-random"]


class UsageError(ValueError):
    """A command line that cannot be carried out: the message says what to change."""


def _runs_and_dirs(runs: list[str]) -> tuple[list[str], list[str]]:
    """Run names, and folders of Results given as paths (an exported reference such as outputs/gpu-reference)."""
    from pathlib import Path
    names, dirs = [], []
    for r in runs:
        (dirs if ("/" in r or Path(r).is_dir()) else names).append(r)
    return names, dirs


def _results(runs: list[str]):
    from bgeq_utils.compare import load
    names, dirs = _runs_and_dirs(runs or DEFAULT_RUNS)
    results, messages = load(names, dirs)
    if not results:
        raise UsageError(f"no Results in {', '.join(runs or DEFAULT_RUNS)} ({'; '.join(messages)[:300]}); "
                         "run `bgeq run` first, or name a run that has outputs/<run>/results")
    return results, messages


def cmd_run(a) -> int:
    from bgeq_utils.cli import runner
    argv = ["--profile", *a.profile] + (["--notebooks", *a.notebooks] if a.notebooks else [])
    for k, v in a.p:
        argv += ["-p", k, v]
    return runner.main(argv)


def cmd_bench(a) -> int:
    from bgeq_utils.cli import benchmark
    return benchmark.main(a.rest)


def cmd_report(a) -> int:
    from bgeq_utils.compare import report
    from bgeq_utils.core import paths
    names, dirs = _runs_and_dirs(a.runs or DEFAULT_RUNS)
    out_run = a.out or (names[0] if names else "comparison")
    cmp, files = report.build(names, dirs, out_run=out_run, device=a.device, batch_size=a.batch_size,
                              seq_len=a.seq_len)
    if cmp.empty:
        raise UsageError(f"no Results in {', '.join(a.runs or DEFAULT_RUNS)}; run `bgeq run` first")
    print(f"report: {paths.shown(files['html'])}")
    for k in ("csv", "md", "ledger_csv"):
        print(f"        {paths.shown(files[k])}")
    return 0


def cmd_recommend(a) -> int:
    from bgeq_utils.compare import tabulate
    from bgeq_utils.compare.recommend import groups_on, recommend
    results, _ = _results(a.runs)
    m = tabulate(results, a.batch_size, a.seq_len)
    device = vocab.device_kind(a.device)
    groups = groups_on(m, device)
    if not groups:
        raise UsageError(f"nothing measured on {device} in {', '.join(a.runs or DEFAULT_RUNS)}")
    for g in groups if a.all_groups else groups[:1]:
        rec = recommend(m, device=device, group=g, memory_budget_mb=a.memory_budget_mb,
                        max_quality_loss_pct=a.max_quality_loss, min_speedup=a.min_speedup, objective=a.objective)
        print(rec.summary())
        print()
    return 0


def cmd_export(a) -> int:
    from bgeq_utils.export.__main__ import main as export_main
    return export_main(a.rest)


def cmd_sweep(a) -> int:
    from bgeq_utils.sweep.__main__ import main as sweep_main
    return sweep_main(a.rest, prog="bgeq sweep")


def cmd_methods(a) -> int:
    import pandas as pd

    from bgeq_utils import methods
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 90)
    t = methods.table()
    print(t.to_string(index=False))
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bgeq", description="In which precision to run a sentence-embedding model: "
                                 "measured side by side, with intervals.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("run", help="execute the notebooks of one or more profiles (default: the main job)")
    p.add_argument("--profile", nargs="+", default=["default", "bge-large-random"],
                   help="params/<profile>.yaml, run in sequence, the report notebook last")
    p.add_argument("--notebooks", nargs="*", help="only these (prefixes, e.g. 01 09)")
    p.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                   help="override a parameter (YAML value)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("bench", help="the speed suite on bge-large's shape (arguments as `python -m "
                       "bgeq_utils.cli.benchmark --help`)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)

    def comparison_args(p):
        p.add_argument("runs", nargs="*", metavar="RUN",
                       help=f"run names or folders of Results (default: {' '.join(DEFAULT_RUNS)})")
        p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
        p.add_argument("--batch-size", type=int, default=vocab.COMPARISON_CELL[0],
                       help=f"the speed cell compared (default: {vocab.COMPARISON_CELL[0]}, make run's)")
        p.add_argument("--seq-len", type=int, default=vocab.COMPARISON_CELL[1])

    p = sub.add_parser("report", help="build report.html, comparison.csv/.md and ledger.csv from runs")
    comparison_args(p)
    p.add_argument("--out", help="run folder the report goes to (default: the first run)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("recommend", help="the method to run under your constraints, its evidence and what "
                       "would change it")
    comparison_args(p)
    p.add_argument("--max-quality-loss", type=float, default=1.0, help="largest headline quality loss, %% of FP32")
    p.add_argument("--memory-budget-mb", type=float, default=None, help="inference memory limit in MB")
    p.add_argument("--min-speedup", type=float, default=1.0, help="smallest speed-up over eager FP32")
    p.add_argument("--objective", default="speed", choices=["speed", "memory", "quality"])
    p.add_argument("--all-groups", action="store_true", help="one recommendation per measured group")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("export", help="write METHOD's model as a folder its own library loads, verified against "
                       "bgeq's encoder (arguments as `python -m bgeq_utils.export --help`)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("sweep", help="a grid of models x data sets x devices x notebooks on Dask, a local cluster "
                       "or --scheduler tcp://host:8786 (arguments as `python -m bgeq_utils.sweep --help`)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("methods", help="the registry: every method, its precision, library, runtime, devices")
    p.set_defaults(func=cmd_methods)
    return ap


#: subcommands that hand every argument to their own parser (argparse's REMAINDER drops a leading option such as
#: --help, so they are split off before parsing)
PASSTHROUGH = ("bench", "export", "sweep")


def main(argv=None) -> int:
    ap = parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PASSTHROUGH:
        a = ap.parse_args(argv[:1])
        a.rest = argv[1:]
    else:
        a = ap.parse_args(argv)
    try:
        return a.func(a)
    except (UsageError, ValueError, FileNotFoundError, KeyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"bgeq {a.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
