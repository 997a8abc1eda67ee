"""Where an OpenVINO model's time goes, by layer type, and how much its Linear layers leave to gain.

A method well below the INT8 GEMM ceiling may be slow in its matrix products, or fast in them and slow
elsewhere: a speed window cannot tell which, a per-layer profile can. OpenVINO's CPU plugin times every layer
it executes (``PERF_COUNT``). :func:`profile` runs several configurations on one batch in interleaved rounds
and sums their layers by type and kernel; :func:`bound` says how fast each would run if every Linear layer
reached the measured GEMM ceiling while the rest took what it took: the most that a better quantization
recipe can give on this runtime, as long as its other kernels stay as they are.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bgeq_utils.core import uncertainty as stats
from bgeq_utils.inputs import data as data_mod
from bgeq_utils.measure import pipeline, speed

#: how the CPU plugin names a Linear layer once compiled (plain, and with quantized weights folded in)
LINEAR_LAYERS = ("FullyConnected", "FullyConnectedQuantizedLegacy")


@dataclass
class LayerProfile:
    """One configuration's per-layer times, per profiled round (milliseconds per inference)."""
    label: str
    precision: str
    batch_size: int
    seq_len: int
    wall_ms: list[float] = field(default_factory=list)     # the inference as timed from Python
    # the sum of the executed layers' own times: close to the wall time on a large batch, above it on a tiny
    # one (the counters' overhead), so it is used for shares, the wall time for speed
    layers_ms: list[float] = field(default_factory=list)
    linear_ms: list[float] = field(default_factory=list)   # of which the Linear layers
    by_layer: dict = field(default_factory=dict)          # (layer type, kernel) -> ([ms per round], layers)

    @property
    def tokens(self) -> int:
        return self.batch_size * self.seq_len


def profile(encoders: dict, batch_size: int = 8, seq_len: int = 128, rounds: int = 7, warmup: int = 2,
            texts: list[str] | None = None, precisions: dict | None = None) -> dict[str, LayerProfile]:
    """Per-layer times of OpenVINO encoders ({label: encoder}) on one padded batch, in rounds that interleave
    the labels (A B C, B C A, ...), so that any two are compared round by round. ``precisions``: label ->
    compute precision (the GEMM ceiling each is held against), by default each encoder's own."""
    if rounds < stats.MIN_REPEATS_FOR_CI:
        raise ValueError(f"rounds={rounds}: use at least {stats.MIN_REPEATS_FOR_CI} (the fewest for a 95% interval "
                         "of a median)")
    missing = [k for k, e in encoders.items() if not hasattr(e, "layer_timer")]
    if missing:
        raise ValueError(f"{missing}: per-layer times come from OpenVINO's CPU plugin; profile OpenVINO "
                         "configurations (fp32-openvino, int8-static-openvino)")
    labels = list(encoders)
    first = encoders[labels[0]]
    L = min(seq_len, *(e.max_seq_length for e in encoders.values()))
    feats = speed._inputs(first, batch_size, L, texts or data_mod.benchmark_texts(64))
    timers = {k: e.layer_timer() for k, e in encoders.items()}
    seen: dict = {k: [] for k in labels}     # every call's (wall seconds, layers), warm-up calls first
    calls = {k: (lambda k: (lambda: seen[k].append(timers[k](feats))))(k) for k in labels}
    # the speed windows' schedule, for a fixed count of rounds; the wall time is the timer's own, without the
    # reading of the counters that follows each inference
    speed.interleaved(calls, speed.Budget(warmup=warmup, min_repeats=rounds, max_repeats=rounds,
                                          seconds=float("inf")))
    precisions = precisions or {}
    out = {}
    for k in labels:
        p = out[k] = LayerProfile(k, precisions.get(k) or getattr(encoders[k], "compute_precision", "fp32"),
                                  batch_size, L)
        for wall, layers in seen[k][warmup:]:
            p.wall_ms.append(wall * 1e3)
            p.layers_ms.append(sum(ms for ms, _ in layers.values()))
            p.linear_ms.append(sum(ms for (kind, _), (ms, _) in layers.items() if kind in LINEAR_LAYERS))
            for key, (ms, n) in layers.items():
                p.by_layer.setdefault(key, [[], n])[0].append(ms)
    return out


def by_layer(profiles: dict[str, LayerProfile], top: int = 8) -> pd.DataFrame:
    """The layer types and kernels that take the most time, per configuration: layers per inference,
    milliseconds and share of the summed layer time (medians of the rounds with their 95% intervals)."""
    rows = []
    for p in profiles.values():
        layers = np.asarray(p.layers_ms, float)
        ranked = sorted(p.by_layer.items(), key=lambda kv: -float(np.median(kv[1][0])))
        for (kind, kernel), (ms, n) in ranked[:top]:
            ms = np.asarray(ms, float)
            rows.append({"configuration": p.label, "layer type": kind, "kernel": kernel, "layers": n,
                         "ms": stats.median(ms).fmt(1), "share %": stats.median(100 * ms / layers).fmt(1),
                         "Linear": kind in LINEAR_LAYERS})
    return pd.DataFrame(rows)


def kernel_precision(kernel: str) -> str:
    """The arithmetic of a CPU-plugin kernel from its name ('brgemm_avx512_I8' -> int8, 'gemm_mlas_f32' -> fp32)."""
    k = kernel.lower()
    for tag, precision in (("bf16", "bf16"), ("f16", "fp16"), ("i8", "int8"), ("u8", "int8"), ("f32", "fp32")):
        if k.endswith(tag):
            return precision
    return "unknown"


def linear_precisions(p: LayerProfile) -> dict:
    """{precision: Linear layers} of one profile, from the kernels that ran them."""
    out: dict = {}
    for (kind, kernel), (_, n) in p.by_layer.items():
        if kind in LINEAR_LAYERS:
            prec = kernel_precision(kernel)
            out[prec] = out.get(prec, 0) + n
    return out


def _ceiling(precision: str, ceilings: dict | None) -> float:
    g = (ceilings or {}).get(precision)
    if g is None:
        g = speed.gemm_ceiling(precision, "cpu").get("gflops")
    if not g:
        raise ValueError(f"no {precision} GEMM ceiling measured on this machine: pass ceilings={{'{precision}': "
                         "GFLOP/s}")
    return float(g)


def bound(profiles: dict[str, LayerProfile], config, baseline: str | None = None,
          ceilings: dict | None = None) -> pd.DataFrame:
    """Per configuration, with 95% intervals over the profiled rounds: the Linear layers' share of the time and
    of their GEMM ceiling, the whole model's share of that ceiling, the same if every Linear layer ran at the
    ceiling (the rest as measured), and the speed-up over ``baseline`` now and in that case, paired by round.
    ``config``: the model's configuration (its arithmetic); ``ceilings``: precision -> GFLOP/s, by default
    measured here (``speed.gemm_ceiling``)."""
    baseline = baseline or next(iter(profiles))
    if baseline not in profiles:
        raise ValueError(f"baseline {baseline!r} is not among the profiled configurations {list(profiles)}")
    base = profiles[baseline]
    rows = []
    for p in profiles.values():
        mixed = {k: n for k, n in linear_precisions(p).items() if k != p.precision}
        g = _ceiling(p.precision, ceilings)
        whole = speed.flops_per_token(config, p.seq_len) * p.tokens / 1e9     # GFLOP per inference
        linear = speed.linear_flops_per_token(config) * p.tokens / 1e9
        wall, layers, lin = (np.asarray(x, float) for x in (p.wall_ms, p.layers_ms, p.linear_ms))
        # the counters give the split, the wall clock the time: scaled to the wall, the inference if the Linear
        # layers ran at the ceiling and every other layer took its measured share
        ideal = wall * (layers - lin) / layers + 1e3 * linear / g
        row = {"configuration": p.label, "precision": p.precision, "ceiling GFLOP/s": round(g),
               "ms per batch": stats.median(wall).fmt(1),
               "Linear % of time": stats.median(100 * lin / layers).fmt(1),
               "Linear % of ceiling": stats.median(100 * 1e3 * linear / (wall * lin / layers) / g).fmt(1),
               "model % of ceiling": stats.median(100 * 1e3 * whole / wall / g).fmt(1),
               "if Linear at ceiling: model %": stats.median(100 * 1e3 * whole / ideal / g).fmt(1)}
        if p.label != baseline and len(base.wall_ms) == len(p.wall_ms):
            row[f"x {baseline}"] = stats.paired_ratio(base.wall_ms, wall).fmt(2)
            row[f"x {baseline} if Linear at ceiling"] = stats.paired_ratio(base.wall_ms, ideal).fmt(2)
        if mixed:   # one ceiling cannot hold layers that run in two precisions: no share, no bound
            why = "mixed: " + ", ".join(f"{n} Linear layers in {k}" for k, n in sorted(mixed.items()))
            for col in ("Linear % of ceiling", "model % of ceiling", "if Linear at ceiling: model %",
                        f"x {baseline} if Linear at ceiling"):
                if col in row:
                    row[col] = why
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["note"] = (f"batch {base.batch_size} x {base.seq_len}, {len(base.wall_ms)} interleaved rounds with "
                        "OpenVINO's per-layer counters on; 'if Linear at ceiling' keeps every other layer's measured "
                        "time and sets each Linear layer to the measured GEMM ceiling of its precision")
    return df


def profile_configurations(study, configurations, calibration: int | None = None, batch_size: int = 8,
                           seq_len: int = 128, rounds: int = 7) -> dict[str, LayerProfile]:
    """Build OpenVINO configurations ((method, options) pairs) on a study's reference, profile them together
    (:func:`profile`) and release them; one that cannot be built here is left out with a message."""
    kwargs = {} if calibration is None else {"calibration": calibration}
    encoders, precisions, skipped = pipeline.build_configurations(study.reference, configurations, **kwargs)
    for label, why in skipped.items():
        print(f"{label}: not profiled ({why})")
    try:
        if not encoders:
            return {}
        return profile(encoders, batch_size, seq_len, rounds, texts=pipeline.speed_texts(study.evalset),
                       precisions=precisions)
    finally:
        for e in encoders.values():
            e.close()
