"""Which method to run, given a device and constraints, from the measured table, with its evidence.

A recommendation ranks the methods of **one group** (one run, model, weights, data set and device): never
methods measured on different models. Each method stands by its registry default configuration. A
candidate must keep quality (headline loss within the tolerance; for a group without quality, mean cosine to
its own FP32 at least ``min_cos``), fit the memory budget and reach the required speed-up over eager FP32.
Eligibility and ranking use the point estimates; the evidence says where a 95% interval leaves a
constraint or the ranking undecided ("not established"), and the recommendation is then marked
undecided. Quality from a proxy model, where a group has none, is shown, labelled, and never ranks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from bgeq_utils.compare.measured import Measured, default_rows, estimate, window_label, window_note
from bgeq_utils.core import vocab

OBJECTIVES = {
    "speed": "the fastest (highest speed-up over eager FP32); ties by lower memory",
    "memory": "the smallest inference memory (size on disk where memory was not measured); ties by speed",
    "quality": "the smallest headline quality loss (closest to FP32 where quality was not measured); ties by speed",
}
WINNER = {"speed": "the fastest", "memory": "the one with the least inference memory",
          "quality": "the one with the smallest quality loss"}
#: the column each objective ranks by, and whether lower is better
RANK_COLUMN = {"speed": ("speed_vs_eager", False), "memory": ("memory_mb", True), "quality": ("quality_loss_pct", True)}
#: printed wherever fidelity on random weights stands in for quality
RANDOM_WEIGHTS_CAVEAT = ("random weights lack the outlier activations that make INT8 and 4-bit hard on the real model: "
                         "fidelity on them flatters quantization; judge quality on pretrained weights")


@dataclass
class Recommendation:
    device: str
    group: str | None
    constraints: dict
    choice: str | None
    precision: str | None
    evidence: dict
    runner_ups: list
    rejected: list
    what_would_change: list
    explanation: str
    decided: bool = False
    caveats: list = field(default_factory=list)
    unsure: list = field(default_factory=list)     # the winner's constraints met by point estimates only
    table: pd.DataFrame = field(repr=False, default=None)

    @property
    def ok(self) -> bool:
        return self.choice is not None

    def summary(self) -> str:
        lines = [f"Device: {self.device}; group: {self.group or '-'}. Constraints: " +
                 ", ".join(f"{k}={v}" for k, v in self.constraints.items()) + ".", self.explanation]
        if self.evidence:
            lines.append("Evidence: " + "; ".join(f"{k} {v}" for k, v in self.evidence.items()))
        if self.caveats:
            lines += [f"Not established: {c}" for c in self.caveats]
        if self.runner_ups:
            lines.append("Runner-ups: " + "; ".join(f"{r['method']} ({r['precision']}): {r['note']}"
                                                     for r in self.runner_ups))
        if self.what_would_change:
            lines.append("What would change the answer:")
            lines += [f"  - {w}" for w in self.what_would_change]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        head = f"**{self.choice or 'no recommendation'}**" + (f" ({self.precision})" if self.precision else "")
        out = [head + f" on {self.device} — {self.group or 'no group'}"
               + ("" if self.decided or not self.ok else " (undecided at 95%)"), "", self.explanation, ""]
        if self.evidence:
            out += ["| evidence | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in self.evidence.items()]
            out.append("")
        if self.caveats:
            out += ["Not established at 95%:"] + [f"- {c}" for c in self.caveats] + [""]
        if self.runner_ups:
            out.append("Runner-ups: " + "; ".join(f"{r['method']} ({r['precision']}): {r['note']}"
                                                   for r in self.runner_ups))
            out.append("")
        if self.what_would_change:
            out.append("What would change the answer:")
            out += [f"- {w}" for w in self.what_would_change]
        return "\n".join(out)

    def _repr_markdown_(self):
        return self.to_markdown()

    def __str__(self):
        return self.summary()


# --- candidates ---------------------------------------------------------------------------------
def groups_on(m: Measured, device: str) -> list[str]:
    """Groups measured on ``device``, the most useful first: the target model, pretrained, most methods."""
    t = m.table
    if t.empty:
        return []
    t = t[t["device"] == device]
    order = []
    for g, sub in t.groupby("group", sort=False):
        if not (sub["status"] == vocab.OK).any():
            continue                       # every method skipped or failed there: nothing to rank
        target = sub["model"].str.contains("bge-large", case=False).any()
        order.append((not target, sub["weights"].iloc[0] != "pretrained", -len(sub), g))
    return [g for *_, g in sorted(order)]


def _fmt_e(row, col, digits=2, unit="") -> str:
    e = estimate(row, col)
    return "-" if e is None else e.fmt(digits, unit)


def _status(e, bound, lower_is_ok: bool) -> str:
    """'yes' (the interval meets the bound), 'no' (wholly fails it), 'uncertain' (straddles or no interval)."""
    if e is None:
        return "unmeasured"
    meets = e.value <= bound + 1e-9 if lower_is_ok else e.value >= bound - 1e-9
    if not e.has_interval:
        return "yes?" if meets else "no"
    if (e.high <= bound + 1e-9) if lower_is_ok else (e.low >= bound - 1e-9):
        return "yes"
    if (e.low > bound + 1e-9) if lower_is_ok else (e.high < bound - 1e-9):
        return "no"
    return "uncertain" if meets else "no?"


def _bound(row, col: str, bound: float, lower_ok: bool, name: str, digits: int, unit: str, why: list,
           unsure: list, unmeasured: str | None = None) -> None:
    """One constraint on one candidate: a reason it is not eligible (``why``), or a note that only its point
    estimate meets the bound (``unsure``)."""
    e = estimate(row, col)
    if e is None:
        if unmeasured:
            why.append(unmeasured)
        return
    st = _status(e, bound, lower_ok)
    shown = f"{name} {e.fmt(digits, unit)}"
    if st.startswith("no"):
        why.append(f"{shown} {'>' if lower_ok else '<'} {bound:g}{unit}")
    elif st != "yes":
        unsure.append(f"{row['label']}: {shown} {'<=' if lower_ok else '>='} {bound:g}{unit} by the point "
                      "estimate only")


def _check(row, max_loss, min_cos, budget_mb, min_speedup, objective) -> tuple[list[str], list[str]]:
    """(why not eligible, constraints met by the point estimate but not by the 95% interval)."""
    why, unsure = [], []
    if row["status"] != vocab.OK:
        return [f"{row['status']}: {row['reason']}"], []
    if estimate(row, "quality_loss_pct") is not None:
        _bound(row, "quality_loss_pct", max_loss, True, "quality loss", 2, "%", why, unsure)
    else:
        _bound(row, "cos_mean", min_cos, False, "no quality in this group; mean cosine to FP32", 4, "", why, unsure,
               "no quality or fidelity measured")
    if budget_mb is not None:
        _bound(row, "memory_mb", budget_mb, True, "memory", 0, " MB", why, unsure,
               "memory not measured (a budget was set)")
    if objective == "speed" or min_speedup > 0:
        _bound(row, "speed_vs_eager", min_speedup, False, "speed", 2, "x", why, unsure,
               "speed not measured at the requested batch and sequence length")
    if objective == "memory" and estimate(row, "memory_mb") is None:
        why.append("memory not measured")
    return why, unsure


def _sort_key(row, objective: str):
    col, lower = RANK_COLUMN[objective]
    v = row.get(col)
    v = math.inf if v is None or pd.isna(v) else (v if lower else -v)
    if objective == "quality" and (row.get("quality_loss_pct") is None or pd.isna(row.get("quality_loss_pct"))):
        cos = row.get("cos_mean")
        v = math.inf if cos is None or pd.isna(cos) else -cos
    s = row.get("speed_vs_eager")
    mem = row.get("memory_mb")
    return (v, -(s if s is not None and not pd.isna(s) else -math.inf),
            mem if mem is not None and not pd.isna(mem) else math.inf, row["label"])


def compared_column(a, b, objective: str) -> tuple[str, bool]:
    """The column two candidates are compared on for an objective, and whether lower is better (for quality
    without measured quality: the mean cosine to FP32)."""
    col, lower = RANK_COLUMN[objective]
    if objective == "quality" and (estimate(a, col) is None or estimate(b, col) is None):
        return "cos_mean", False
    return col, lower


def _separated(a, b, objective: str) -> bool:
    """Whether candidate a beats b on the objective with non-overlapping 95% intervals."""
    col, lower = compared_column(a, b, objective)
    ea, eb = estimate(a, col), estimate(b, col)
    if ea is None or eb is None or not (ea.has_interval and eb.has_interval):
        return False
    return ea.high < eb.low if lower else ea.low > eb.high


def _note(row) -> str:
    parts = []
    for col, name, d, u in (("speed_vs_eager", "speed", 2, "x eager FP32"), ("memory_mb", "memory", 0, " MB"),
                            ("quality_loss_pct", "quality loss", 2, "%"), ("cos_mean", "cos", 4, "")):
        if estimate(row, col) is not None:
            parts.append(f"{name} {_fmt_e(row, col, d, u)}")
    return ", ".join(parts)


def candidates(m: Measured, group: str) -> pd.DataFrame:
    d = default_rows(m)
    return d[d["group"] == group]


def recommend(m: Measured, device: str = "cpu", memory_budget_mb: float | None = None,
              max_quality_loss_pct: float = 1.0, min_speedup: float = 1.0, objective: str = "speed",
              min_cos: float = 0.99, group: str | None = None) -> Recommendation:
    """The method to run on ``device`` under the constraints, best by ``objective`` (see OBJECTIVES), within
    one group (``group``, else the first of :func:`groups_on`: the target model's, pretrained first).

    ``min_cos``: in a group without quality (random weights, texts without labels), the least mean cosine to
    the group's own FP32 a method needs, standing in for the quality tolerance. No claim of the guide states
    it; the evidence names it, and on random weights a caveat says how little it shows."""
    device = vocab.device_kind(device)
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: use one of {sorted(OBJECTIVES)}")
    if max_quality_loss_pct < 0:
        raise ValueError("max_quality_loss_pct must be >= 0 (a loss in percent of FP32's quality)")
    if isinstance(min_cos, bool) or not isinstance(min_cos, (int, float)) or not -1 <= min_cos <= 1:
        raise ValueError(f"min_cos={min_cos!r}: use a cosine between -1 and 1, e.g. 0.99")
    constraints = {"objective": objective, "max_quality_loss_pct": max_quality_loss_pct, "min_cos": min_cos,
                   "memory_budget_mb": memory_budget_mb, "min_speedup": min_speedup,
                   "batch": f"{m.batch_size}x{m.seq_len}"}
    groups = groups_on(m, device)
    if group is None:
        group = groups[0] if groups else None
    if group is None or group not in groups:
        kinds = sorted(set(m.table["device"])) if not m.empty else []
        why = (f"no results on {device} in the loaded runs" +
               (f" (results exist for: {', '.join(kinds)})" if kinds else " (no results were loaded at all)"))
        return Recommendation(device, group, constraints, None, None, {}, [], [], [
            f"run the method notebooks with device='{device}' (or load a results folder measured there)"],
            why, table=pd.DataFrame())
    cands = candidates(m, group)
    args = (max_quality_loss_pct, min_cos, memory_budget_mb, min_speedup, objective)
    ranked, table, rejected, unsure = _rank(cands, *args)
    if not ranked:
        return Recommendation(device, group, constraints, None, None, {}, [], rejected,
                              _relaxations(cands, *args),
                              f"No method in {group} meets all constraints ({len(cands)} considered); each one's "
                              "reason is listed under 'rejected'.", table=table)
    best = ranked[0]
    caveats = [u for u in unsure if u.startswith(best["label"] + ":")]
    winner_unsure = list(caveats)
    if len(ranked) > 1 and not _separated(best, ranked[1], objective):
        caveats.append(f"{best['label']} and {ranked[1]['label']} are not separated on {objective} at 95% "
                       f"({RANK_COLUMN[objective][0]}: {_fmt_e(best, RANK_COLUMN[objective][0])} vs "
                       f"{_fmt_e(ranked[1], RANK_COLUMN[objective][0])})")
    decided = not caveats                    # how the windows were taken is said, not a reason to undecide
    windows = window_note(cands[cands["status"] == vocab.OK])
    if windows:
        caveats.append(windows)
    evidence = _evidence(best, m)
    if estimate(best, "quality_loss_pct") is None:
        evidence["quality stand-in"] = (f"mean cosine to this group's FP32 >= min_cos = {min_cos:g} (a parameter, "
                                        "stated by no claim)")
        if best.get("weights") == "random":
            caveats.append(f"fidelity stands in for quality (min_cos = {min_cos:g}): {RANDOM_WEIGHTS_CAVEAT}")
    n = len(ranked)
    basis = "measured quality" if estimate(best, "quality_loss_pct") is not None else \
        f"fidelity to this model's own FP32 (no quality in this group; mean cosine >= {min_cos:g} stands in)"
    expl = (f"{best['label']} ({best['precision']}, {best['library']}, runtime {best['runtime']}) is "
            f"{WINNER[objective]} of the {n} method{'s' if n != 1 else ''} in {group} that meet the "
            f"constraints ({_note(best)}); quality judged by {basis}.")
    return Recommendation(device, group, constraints, best["label"], best["precision"], evidence,
                          [{"method": r["label"], "precision": r["precision"], "note": _note(r)} for r in ranked[1:4]],
                          rejected, _what_would_change(best, cands, ranked, *args), expl,
                          decided=decided, caveats=caveats, unsure=winner_unsure, table=table)


def _rank(cands, max_loss, min_cos, budget, min_speedup, objective):
    rows, unsure_all, rejected = [], [], []
    for _, row in cands.iterrows():
        why, unsure = _check(row, max_loss, min_cos, budget, min_speedup, objective)
        rows.append((row, why, unsure))
        unsure_all += unsure
        if why:
            rejected.append({"method": row["label"], "precision": row["precision"], "why": "; ".join(why)})
    ranked = sorted([r for r, why, _ in rows if not why], key=lambda r: _sort_key(r, objective))
    rank = {r["label"]: i + 1 for i, r in enumerate(ranked)}
    table = pd.DataFrame([{
        "rank": rank.get(r["label"]), "method": r["label"], "precision": r["precision"], "runtime": r["runtime"],
        "status": r["status"], "speed x eager fp32": _fmt_e(r, "speed_vs_eager"),
        "speed x same-runtime fp32": _fmt_e(r, "speed_vs_runtime"),
        "memory MB": _fmt_e(r, "memory_mb", 0), "size MB": None if pd.isna(r.get("disk_mb", None))
        else round(float(r["disk_mb"])), "quality loss %": _fmt_e(r, "quality_loss_pct"),
        "proxy quality loss %": _fmt_e(r, "proxy_quality_loss_pct") if "proxy_quality_loss_pct" in r else "-",
        "cos mean": _fmt_e(r, "cos_mean", 4), "eligible": not why,
        "not established": "; ".join(u.split(": ", 1)[1] for u in unsure), "why not": "; ".join(why)}
        for r, why, unsure in rows])
    if not table.empty:
        table = table.sort_values(["rank", "method"], na_position="last", kind="stable").reset_index(drop=True)
        table["rank"] = table["rank"].astype("Int64")
    return ranked, table, rejected, unsure_all


def _evidence(best, m: Measured) -> dict:
    ev = {}
    cell = best.get("speed_cell") or f"{m.batch_size}x{m.seq_len}"      # the cell this group was read at
    for col, name, d, u in (("speed_vs_eager", "speed over eager PyTorch FP32", 2, "x"),
                            ("speed_vs_runtime", f"speed over FP32 in {best['runtime']}", 2, "x"),
                            ("tokens_per_s", f"tokens/s at batch {cell}", 0, ""),
                            ("memory_mb", "inference memory", 0, " MB"), ("memory_ratio", "memory x FP32", 2, "x"),
                            ("quality_loss_pct", "headline quality loss", 2, "%"),
                            ("cos_mean", "mean cosine to FP32", 4, "")):
        if estimate(best, col) is not None:
            ev[name] = _fmt_e(best, col, d, u)
    if best.get("disk_mb") is not None and not pd.isna(best.get("disk_mb")):
        ev["size on disk"] = f"{best['disk_mb']:.0f} MB" + (f" ({best['size_ratio']:.2f}x FP32)"
                                                             if not pd.isna(best.get("size_ratio")) else "")
    if best.get("quality_loss_metric") and not pd.isna(best.get("quality_loss_metric")):
        ev["headline quality loss"] += (f" (worst metric: {best['quality_loss_metric']}, "
                                        f"p = {best['quality_loss_pct_p']:.3g})")
    if "proxy_quality_loss_pct" in best and not pd.isna(best.get("proxy_quality_loss_pct")):
        ev[f"quality from a proxy: {best['proxy_source']} (not used to rank)"] = \
            _fmt_e(best, "proxy_quality_loss_pct", 2, "% loss")
    b = best.get("batch_cos_min")
    if b is not None and not pd.isna(b):
        ev["same text alone vs in a batch (lowest cosine)"] = f"{b:.6f}" + (
            ": its embedding depends on the batch it is in" if b < vocab.INVARIANCE_FLAG else "")
    ev["measured in"] = best["group"]
    if window_label(best):
        ev["timing window"] = window_label(best)
    return ev


def _pick_with(cands, max_loss, min_cos, budget, min_speedup, objective):
    ranked = _rank(cands, max_loss, min_cos, budget, min_speedup, objective)[0]
    return ranked[0] if ranked else None


def _describe(row) -> str:
    return f"{row['label']} ({row['precision']}; {_note(row)})" if row is not None else "no method at all"


def _what_would_change(best, cands, ranked, max_loss, min_cos, budget, min_speedup, objective) -> list[str]:
    out = []
    a = dict(max_loss=max_loss, min_cos=min_cos, budget=budget, min_speedup=min_speedup, objective=objective)

    def pick(**kw):
        return _pick_with(cands, **(a | kw))

    losses = sorted({float(r["quality_loss_pct"]) for _, r in cands.iterrows() if r["status"] == vocab.OK
                     and not pd.isna(r.get("quality_loss_pct", None)) and r["quality_loss_pct"] > max_loss})
    for need in losses:
        alt = pick(max_loss=need)
        if alt is not None and alt["label"] != best["label"]:
            out.append(f"Accepting {need:.2f}% quality loss (now {max_loss:g}%) would pick {_describe(alt)}.")
            break
    loss = best.get("quality_loss_pct")
    if loss is not None and not pd.isna(loss) and loss > 0.005:
        alt = pick(max_loss=max(loss - 1e-6, 0.0))
        if alt is None or alt["label"] != best["label"]:
            out.append(f"Allowing less than {loss:.2f}% quality loss would pick {_describe(alt)}.")
    mem = best.get("memory_mb")
    if mem is not None and not pd.isna(mem):
        out.append(f"A memory budget under {mem:.0f} MB would pick {_describe(pick(budget=mem * 0.999))}.")
    s = best.get("speed_vs_eager")
    if s is not None and not pd.isna(s):
        alt = pick(min_speedup=s * 1.001)
        out.append(f"Requiring more than {s:.2f}x eager FP32 speed would pick {_describe(alt)}.")
    for obj in OBJECTIVES:
        if obj != objective:
            alt = pick(objective=obj)
            if alt is not None and alt["label"] != best["label"]:
                out.append(f"Optimizing for {obj} instead of {objective} would pick {_describe(alt)}.")
    return out


def _relaxations(cands, max_loss, min_cos, budget, min_speedup, objective) -> list[str]:
    """For a no-candidate case: the single relaxation that admits a method, per constraint."""
    ok = cands[cands["status"] == vocab.OK]
    if ok.empty:
        return ["every method in this group was skipped or failed; see 'rejected' for the reasons"]
    out = []
    if "quality_loss_pct" in ok:
        for need in sorted(ok["quality_loss_pct"].dropna()):
            if need > max_loss:
                alt = _pick_with(cands, need, min_cos, budget, min_speedup, objective)
                if alt is not None:
                    out.append(f"Accepting {need:.2f}% quality loss (now {max_loss:g}%) would pick {_describe(alt)}.")
                    break
    if budget is not None and "memory_mb" in ok:
        alt = _pick_with(cands, max_loss, min_cos, None, min_speedup, objective)
        if alt is not None:
            out.append(f"Dropping the memory budget would pick {_describe(alt)}.")
    if "speed_vs_eager" in ok:
        for need in sorted(ok["speed_vs_eager"].dropna(), reverse=True):
            if need < min_speedup:
                alt = _pick_with(cands, max_loss, min_cos, budget, need, objective)
                if alt is not None:
                    out.append(f"Lowering the required speed-up to {need:.2f}x (now {min_speedup:g}x) would pick "
                               f"{_describe(alt)}.")
                    break
    return out or ["no single relaxation of one constraint admits a method; relax several, or measure more methods"]
