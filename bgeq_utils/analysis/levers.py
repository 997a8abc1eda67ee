"""Levers of a quantization method, tried against its default (alone or combined): what each buys or costs in
speed, quality and fidelity, read from the measured table with intervals, and which one (if any) meets the
quality bar and is fastest.

The registry default of a method stays its fastest, smallest configuration (what the guide describes); the
choice here answers a narrower question: which configuration to run when the quality bar below must hold. A
variant is chosen over the default only when the default misses the bar, or when the variant meets it and is
faster, separated at 95%.
"""
from __future__ import annotations

import pandas as pd

from bgeq_utils.core import vocab
from bgeq_utils.core.uncertainty import from_row as estimate
from bgeq_utils.core.uncertainty import ratio_of

#: the quality bar of a lever: fidelity, nDCG@10 point loss, and no significant loss (paired CI includes 0)
MIN_COS = 0.998
MAX_NDCG_LOSS_PCT = 0.5


def try_variants(study, method: str, variants: list, calibration=None, config=None, default=None,
                 measured=()) -> list:
    """The method's default configuration (``default``, else its Result among ``measured``, else measured here),
    then each variant (a dict of options: one lever, or a combination); those measured here are timed together."""
    if isinstance(variants, dict) or not isinstance(variants, (list, tuple)) or \
            not all(isinstance(v, dict) for v in variants):
        raise ValueError(f"variants={variants!r}: use a list of option mappings, e.g. "
                         "[{'smooth_quant_alpha': 0.5}, {'keep_fp32_layers': 4, 'inference_precision': 'bf16'}]")
    if default is None:
        default = next((r for r in measured if r.method == method and r.is_default), None)
    jobs = study.jobs(([] if default is not None else [method]) + [(method, v) for v in variants],
                      calibration=calibration, config=config)
    runs = ([default] if default is not None else []) + study.measure_many(jobs)
    seen, out = set(), []
    for r in runs:                                   # a variant equal to the default is the default itself
        if r.key not in seen:
            seen.add(r.key)
            out.append(r)
    return out


def with_baselines(runs, lever_runs) -> list:
    """The levers with what their table reads beside them: the FP32 Results among ``runs`` (eager FP32, the
    group's reference, and the levers' own runtime's FP32)."""
    runtimes = {r.runtime for r in lever_runs}
    keep = {vocab.EAGER_BASELINE} | {vocab.RUNTIME_BASELINE.get(rt, vocab.EAGER_BASELINE) for rt in runtimes}
    return [r for r in runs if r.method in keep and r.is_default] + list(lever_runs)


def _meets_bar(row) -> tuple[bool, str]:
    cos, loss = estimate(row, "cos_mean"), estimate(row, "loss:ndcg@10")
    why = []
    if cos is None or cos.value < MIN_COS:
        why.append(f"cos mean {cos.fmt(4) if cos else 'not measured'} < {MIN_COS}")
    if loss is not None:
        if loss.value > MAX_NDCG_LOSS_PCT:
            why.append(f"nDCG@10 loss {loss.fmt(2)}% > {MAX_NDCG_LOSS_PCT}%")
        if loss.has_interval and loss.low > 0:
            why.append(f"nDCG@10 loss {loss.fmt(2)}% is significant (interval above 0)")
    return not why, "; ".join(why)


def table(m, runs) -> pd.DataFrame:
    """One row per lever Result: speed-ups (same runtime's FP32 and eager FP32) and share of the INT8 GEMM
    ceiling, nDCG@10 and headline loss with intervals and p, fidelity, batch invariance, and the quality bar."""
    labels = [r.label for r in runs if r.ok]
    t = m.table.set_index("label")
    rows = []
    for lab in labels:
        if lab not in t.index:
            continue
        r = t.loc[lab]
        ok, why = _meets_bar(r)
        share = r.get("share_of_ceiling")
        loss = estimate(r, "loss:ndcg@10")
        rows.append({"lever": lab, "x FP32 same runtime": _f(r, "speed_vs_runtime"),
                     "x eager FP32": _f(r, "speed_vs_eager"),
                     "% INT8 ceiling": None if share is None or pd.isna(share) else round(100 * float(share), 1),
                     "nDCG@10 loss %": _f(r, "loss:ndcg@10"),
                     "p": None if loss is None or loss.p_value is None else round(loss.p_value, 3),
                     "headline loss %": _f(r, "quality_loss_pct"), "cos mean": _f(r, "cos_mean", 4),
                     "batch cos min": None if pd.isna(r.get("batch_cos_min", float("nan")))
                     else round(float(r["batch_cos_min"]), 6),
                     "quality bar": "met" if ok else why})
    return pd.DataFrame(rows)


def _f(row, col, digits=2):
    e = estimate(row, col)
    return None if e is None else e.fmt(digits)


def choose(m, runs) -> tuple[str, str]:
    """(label, why): the configuration to run when the quality bar must hold: the fastest over the same
    runtime's FP32 among those meeting it; the default when it meets the bar and no variant is faster,
    separated at 95%."""
    ok_runs = [r for r in runs if r.ok]
    if not ok_runs:
        return "", "no lever was measured"
    t = m.table.set_index("label")
    default = ok_runs[0].label
    passing = [r.label for r in ok_runs if r.label in t.index and _meets_bar(t.loc[r.label])[0]]
    if not passing:
        return default, f"no lever meets the quality bar (cos mean >= {MIN_COS}, nDCG@10 loss <= " \
                        f"{MAX_NDCG_LOSS_PCT}% and not significant); the default stays"

    def speed(lab):
        e = estimate(t.loc[lab], "speed_vs_runtime")
        return -1.0 if e is None else e.value

    best = max(passing, key=speed)
    if best == default:
        return default, "the default meets the quality bar and is the fastest that does"
    e_best, e_def = estimate(t.loc[best], "speed_vs_runtime"), estimate(t.loc[default], "speed_vs_runtime")
    if e_best is None or e_def is None:
        return best, "meets the quality bar; speed not measured to compare"
    rel = ratio_of(e_best, e_def)
    separated = rel.has_interval and rel.low > 1
    meets_default = _meets_bar(t.loc[default])[0]
    together = best in (ok_runs[0].extra.get("timed_together") or [])
    where = ("speed-ups timed in one window, compared as independent" if together else
             "speed-ups from separate windows; `bgeq bench --window` times them side by side")
    if separated or not meets_default:
        return best, (f"meets the quality bar{'' if meets_default else ' (the default does not)'}; "
                      f"{rel.fmt(2)}x the default's speed-up over its runtime's FP32 ({where})")
    return default, (f"{best} meets the bar too, but its speed over the default, {rel.fmt(2)}x ({where}), is not "
                     "separated from 1 at 95%: the default stays")
