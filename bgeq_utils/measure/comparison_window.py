"""The run's comparison window: every default method of a group built once and timed in one interleaved window.

The comparison, the ledger and the recommendation set speed-ups of different methods side by side. Two
windows on one shared machine can differ by more than either interval, so those figures come from one window
per group: this step builds every default method the run's notebooks measure, times them all together with
their eager and same-runtime FP32 baselines (each baseline once per round), measures fidelity, size and memory,
and saves the Results. The notebooks that follow reuse those Results (same key) instead of building and timing
the same configuration again; their own windows serve their own studies (variants, levers) and say so.

Methods that do not fit in memory together are timed in sub-windows, packed in the order given, each with the
eager FP32 baseline (and each member's same-runtime baseline): a method's speed-ups over its baselines are
paired within its sub-window, and two methods of different sub-windows are compared through their ratios over
eager FP32 (``compare`` says so where it happens).

    python -m bgeq_utils.measure.comparison_window '{"run": ..., "methods": [...], "parameters": {...}}'
"""
from __future__ import annotations

import json
import sys
import time

from bgeq_utils import methods as registry
from bgeq_utils.core import vocab
from bgeq_utils.measure import pipeline

#: share of the memory available at the start that the encoders of one sub-window may take
MEMORY_SHARE = 0.6
#: bytes an encoder holds besides its weights (runtime, buffers), in the estimate that packs sub-windows
OVERHEAD_BYTES = 300 * 2 ** 20
#: the study parameters a comparison window reads from a profile (the same names the notebooks declare)
STUDY_PARAMETERS = ("model", "weights", "dataset", "device", "max_docs", "max_queries", "batch_sizes", "seq_lens",
                    "seconds_per_cell", "min_repeats", "measure_memory", "memory_repeats", "output_dir")


def check_methods(names) -> list[str]:
    """The methods a profile lists for its comparison window: registered names, each once."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:
        raise ValueError(f"comparison={names!r}: use a list of method names, e.g. [fp32, int8-dynamic-onnx]")
    for n in names:
        registry.get(n)                     # unknown names fail with the known ones and a suggestion
    return list(dict.fromkeys(names))


def config_of(parameters: dict) -> pipeline.BenchConfig:
    """The BenchConfig a method notebook builds from the same parameters (so that keys match and notebooks
    reuse what the window measured)."""
    p = parameters
    return pipeline.BenchConfig(batch_sizes=tuple(p.get("batch_sizes", (1, 32))),
                                seq_lens=tuple(p.get("seq_lens", (128,))),
                                seconds=p.get("seconds_per_cell", 5.0), min_repeats=p.get("min_repeats", 6),
                                memory=p.get("measure_memory", False), memory_repeats=p.get("memory_repeats", 1))


def weight_estimate(method: str, parameters: int) -> int:
    """Bytes an encoder of ``method`` holds, for packing sub-windows: its nominal weight bytes plus overhead
    (a compiled FP32 graph keeps a frozen copy beside the module)."""
    spec = registry.get(method)
    copies = 2 if spec.runtime == "inductor" else 1
    return int(parameters * spec.weight_bits / 8 * copies) + OVERHEAD_BYTES


def sub_windows(names: list[str], parameters: int, available: int, share: float = MEMORY_SHARE) -> list[list[str]]:
    """``names`` packed in order into groups whose encoders (with eager FP32 and each member's same-runtime
    FP32 baseline, counted once per group) fit in ``share`` of ``available`` bytes. A method too large for
    any group gets one of its own."""
    budget = available * share
    out: list[list[str]] = []
    current: list[str] = []
    held: set[str] = set()

    def needs(n: str) -> set[str]:
        return {n, vocab.EAGER_BASELINE, registry.get(n).baseline_in_runtime}

    for n in names:
        trial = held | needs(n)
        if current and sum(weight_estimate(m, parameters) for m in trial) > budget:
            out.append(current)
            current, trial = [], needs(n)
        current.append(n)
        held = trial
    if current:
        out.append(current)
    return out


def measure(run: str, names: list[str], parameters: dict, progress: bool = True) -> list:
    """Every method of ``names`` that can run on the run's device, its default configuration built once and
    timed in one window (sub-windows when they do not fit in memory), saved to the run's Results."""
    import psutil

    names = check_methods(names)
    p = {k: v for k, v in parameters.items() if k in STUDY_PARAMETERS and v is not None}
    cfg = config_of(p)
    s = pipeline.study(p.get("model", "default"), p.get("weights", "pretrained"), p.get("dataset", "lee"),
                       p.get("device", "auto"), run, max_docs=p.get("max_docs"), max_queries=p.get("max_queries"),
                       config=cfg, output_dir=p.get("output_dir", ""))
    here = [n for n in names if registry.get(n).unavailable_reason(s.device) is None]
    left = [n for n in names if n not in here]
    if left:
        print(f"not on {s.device} here (each notebook records why): {', '.join(left)}", flush=True)
    n_params = int(s.reference.info().get("parameters") or sum(x.numel() for x in s.reference.model.parameters()))
    groups = sub_windows(here, n_params, psutil.virtual_memory().available)
    if len(groups) > 1:
        print(f"{len(here)} methods in {len(groups)} sub-windows (memory): "
              + " | ".join(", ".join(g) for g in groups), flush=True)
    out = []
    for g in groups:
        jobs = s.jobs(g, calibration=pipeline.DEFAULT_CALIBRATION, config=cfg)
        out += s.measure_many(jobs, window_kind=pipeline.WINDOW_COMPARISON)
        pipeline.release_baselines()
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    args = json.loads(argv[0])
    t0 = time.perf_counter()
    res = measure(args["run"], args["methods"], args.get("parameters", {}), progress=args.get("progress", True))
    ok = [r for r in res if r.status == "ok"]
    print(f"comparison window of run {args['run']!r}: {len(ok)} of {len(res)} configurations ok in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    for r in res:
        if r.status != "ok":
            print(f"  {r.label}: {r.status} ({r.reason})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
