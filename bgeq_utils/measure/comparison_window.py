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
    python -m bgeq_utils.measure.comparison_window '{..., "repeat": 2, "pairs": [["bf16", "fp16"]]}'
                                                   # the window twice: do its intervals hold between windows?
"""
from __future__ import annotations

import json
import sys
import time

from bgeq_utils import methods as registry
from bgeq_utils.core import env, paths, results, vocab
from bgeq_utils.core.uncertainty import Estimate, window_ratio
from bgeq_utils.measure import pipeline, speed

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


def _plan(run: str, names: list[str], parameters: dict):
    """The study a profile's parameters describe (as its notebooks build it), its bench configuration, the
    methods of ``names`` that can run on its device, and those packed into sub-windows that fit in memory."""
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
    return s, cfg, here, sub_windows(here, n_params, psutil.virtual_memory().available)


def measure(run: str, names: list[str], parameters: dict, progress: bool = True) -> list:
    """Every method of ``names`` that can run on the run's device, its default configuration built once and
    timed in one window (sub-windows when they do not fit in memory), saved to the run's Results."""
    s, cfg, here, groups = _plan(run, names, parameters)
    if len(groups) > 1:
        print(f"{len(here)} methods in {len(groups)} sub-windows (memory): "
              + " | ".join(", ".join(g) for g in groups), flush=True)
    out = []
    for g in groups:
        jobs = s.jobs(g, calibration=pipeline.DEFAULT_CALIBRATION, config=cfg)
        out += s.measure_many(jobs, window_kind=pipeline.WINDOW_COMPARISON)
        pipeline.release_baselines()
    return out


def repeat(run: str, names: list[str], parameters: dict, windows: int = 2, progress: bool = True) -> dict:
    """The comparison window timed ``windows`` times back to back on encoders built once (from the cache): each
    method's speed-up over eager FP32 and over its runtime's FP32 in every window, with their intervals, and
    whether each window's figure lies inside every other window's interval. Saved under
    ``outputs/<run>/windows/``; nothing else of the run is touched. What it shows: whether the intervals hold
    between windows on this machine, and the machine's load during each."""
    import warnings


    s, cfg, here, groups = _plan(run, names, parameters)
    if len(groups) > 1:
        raise MemoryError(f"{len(here)} methods do not fit in memory together here; check a shorter list")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoders, _, skipped = pipeline.build_configurations(s.reference, [(n, {}) for n in here], s.device)
    shared = {n: e for n, e in encoders.items() if n in pipeline.BASELINE_NAMES}
    entries = {n: (e, pipeline.baselines_for(n, e, {}, s.reference, s.device, shared)) for n, e in encoders.items()}
    out = {"run": run, "methods": list(encoders), "skipped": skipped, "windows": [],
           "cell": [cfg.batch_sizes[0], cfg.seq_lens[0]], "device": env.describe(s.device)}
    try:
        for _ in range(windows):
            meter = env.LoadMeter()
            rows = speed.speed_grid_many(entries, cfg.batch_sizes[:1], cfg.seq_lens[:1], budget=cfg.budget(),
                                         texts=pipeline.speed_texts(s.evalset), progress=progress)
            load = meter.stop()
            ok = {n: r[0] for n, r in rows.items() if not isinstance(r, Exception)}
            out["windows"].append({"load": load,
                                   "ratios": {n: {role: (r.get(f"vs_{role}") or {}) for role in ("eager", "runtime")}
                                              for n, r in ok.items()},
                                   "rounds_s": {n: r["rounds_s"] for n, r in ok.items()}})
    finally:
        for e in encoders.values():
            e.close()
        pipeline.release_baselines()
    agree = {}
    for n in out["methods"]:
        for role in ("eager", "runtime"):
            es = [Estimate.from_dict(w["ratios"].get(n, {}).get(role)) for w in out["windows"]]
            if any(e is None or not e.has_interval for e in es) or all(e.low == e.high for e in es):
                continue
            agree[f"{n} {role}"] = agree_all(es)
    out["agree"] = agree
    path = results.write_json(out, paths.run_dir(run) / "windows" / f"repeat-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out["path"] = paths.shown(path)
    return out


def agree_all(estimates) -> bool:
    """Whether every window's figure lies inside every other window's interval (those with one)."""
    return all(y.low <= x.value <= y.high for x in estimates for y in estimates if x is not y and y.has_interval)


def pair_table(record: dict, a: str, b: str):
    """``b``'s speed-up over ``a`` in each window of a repeat record (paired by round, window interval), and
    whether the windows agree: a comparison of two methods timed side by side, twice."""
    import pandas as pd

    es = [window_ratio(w["rounds_s"][a], w["rounds_s"][b]) for w in record["windows"]
          if a in w.get("rounds_s", {}) and b in w.get("rounds_s", {})]
    row = {"pair": f"{b} over {a}", **{f"window {i}": e.fmt(2) for i, e in enumerate(es, 1)},
           "agree": agree_all(es)}
    return pd.DataFrame([row])


def repeat_table(record: dict):
    """One row per method and baseline: the speed-up of each window with its interval, and whether they agree."""
    import pandas as pd

    rows = []
    for n in record["methods"]:
        for role in ("eager", "runtime"):
            key = f"{n} {role}"
            if key not in record["agree"]:
                continue
            row = {"method": n, "over": "eager fp32" if role == "eager" else
                   record["windows"][0]["ratios"][n][role].get("baseline")}
            for i, w in enumerate(record["windows"], 1):
                row[f"window {i}"] = Estimate.from_dict(w["ratios"][n][role]).fmt(2)
            row["agree"] = record["agree"][key]
            rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["load"] = [w["load"] for w in record["windows"]]
    return df


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    args = json.loads(argv[0])
    t0 = time.perf_counter()
    if args.get("repeat"):
        rec = repeat(args["run"], args["methods"], args.get("parameters", {}), int(args["repeat"]),
                     progress=args.get("progress", True))
        import pandas as pd
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(repeat_table(rec).to_string(index=False))
            for a, b in args.get("pairs", []):
                print(pair_table(rec, a, b).to_string(index=False))
        for i, w in enumerate(rec["windows"], 1):
            print(f"window {i}: {w['load']}")
        print(f"{sum(rec['agree'].values())} of {len(rec['agree'])} speed-ups agree between windows; "
              f"{rec['path']} ({time.perf_counter() - t0:.0f} s)")
        return 0
    res = measure(args["run"], args["methods"], args.get("parameters", {}), progress=args.get("progress", True))
    ok = [r for r in res if r.ok]
    print(f"comparison window of run {args['run']!r}: {len(ok)} of {len(res)} configurations ok in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    for r in res:
        if not r.ok:
            print(f"  {r.label}: {r.status} ({r.reason})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
