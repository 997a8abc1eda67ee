"""Which method to run, given a device and constraints, from the measured Results, with the evidence.

Each method's evidence is gathered from every loaded run on the requested device: speed, memory and
size from a run of the target model's shape when there is one (bge-large; random weights give its true
speed and memory), quality from a run with pretrained weights. Every number says which run it came from.
Quality is the mean quality % of FP32; where no run measured quality, the mean cosine to FP32's
embeddings stands in (stated in the evidence).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from . import compare
from .compare import Measured

#: how the winner of each objective is named in an explanation
WINNER = {"speed": "the fastest", "memory": "the one with the least inference memory",
          "quality": "the one with the highest quality"}
OBJECTIVES = {
    "speed": "the fastest (highest speed ratio to FP32); ties by lower memory",
    "memory": "the smallest inference memory (size on disk where memory was not measured); ties by speed",
    "quality": "the highest quality % of FP32 (mean cosine where quality was not measured); ties by fidelity to "
               "FP32, then speed",
}


@dataclass
class Candidate:
    label: str
    precision: str
    library: str
    status: str = "ok"
    reason: str = ""
    values: dict = field(default_factory=dict)      # speed_ratio, tokens_per_s, memory_mb, ...
    sources: dict = field(default_factory=dict)     # metric -> "run (device)"
    eligible: bool = False
    why_not: list = field(default_factory=list)
    quality_basis: str = ""                          # "quality" | "fidelity" | ""

    def quality_score(self):
        if self.values.get("quality_pct") is not None:
            return self.values["quality_pct"]
        if self.values.get("cos_mean") is not None:
            return 100.0 * self.values["cos_mean"]
        return None

    def memory_score(self, basis: str = "memory_mb"):
        return self.values.get(basis)


@dataclass
class Recommendation:
    device: str
    constraints: dict
    choice: str | None
    precision: str | None
    evidence: dict
    runner_ups: list
    rejected: list
    what_would_change: list
    explanation: str
    table: pd.DataFrame = field(repr=False, default=None)

    @property
    def ok(self) -> bool:
        return self.choice is not None

    def summary(self) -> str:
        lines = [f"Device: {self.device}. Constraints: " +
                 ", ".join(f"{k}={v}" for k, v in self.constraints.items()) + ".", self.explanation]
        if self.evidence:
            lines.append("Evidence (vs FP32): " + "; ".join(f"{k} {v}" for k, v in self.evidence.items()))
        if self.runner_ups:
            lines.append("Runner-ups: " + "; ".join(f"{r['method']} ({r['precision']}): {r['note']}"
                                                     for r in self.runner_ups))
        if self.what_would_change:
            lines.append("What would change the answer:")
            lines += [f"  - {w}" for w in self.what_would_change]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        out = [f"**{self.choice or 'no recommendation'}**" + (f" ({self.precision})" if self.precision else "")
               + f" on {self.device}", "", self.explanation, ""]
        if self.evidence:
            out += ["| evidence | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in self.evidence.items()]
            out.append("")
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


# --- evidence per method ------------------------------------------------------------------------
def _src(m: Measured) -> str:
    return f"run '{m.result.run}' ({m.result.device_kind}, {str(m.result.model.get('id', '?')).split('/')[-1]})"


def _pick(ms: list[Measured], metric: str, device: str, target: str):
    """The value of ``metric`` from the most relevant Result: the device asked for first, then the target
    model's shape, then the newest."""
    newest_first = sorted(ms, key=lambda m: m.result.created or "", reverse=True)
    order = sorted(newest_first, key=lambda m: (m.result.device_kind != device,
                                                not compare.is_target_model(m.result, target)))
    for m in order:
        v = m.get(metric)
        if v is not None:
            return v, m
    return None, None


def candidates(measured: list[Measured], device: str = "cpu", target_model: str = compare.TARGET_MODEL
               ) -> list[Candidate]:
    """One Candidate per method label with results on ``device``; quality may come from another device."""
    by_label: dict[str, list[Measured]] = {}
    for m in measured:
        by_label.setdefault(m.label, []).append(m)
    out = []
    for label, ms in by_label.items():
        on_dev = [m for m in ms if m.result.device_kind == device]
        if not on_dev:
            continue
        ok = [m for m in on_dev if m.result.status == "ok"]
        first = on_dev[0].result
        c = Candidate(label, compare.precision_of(first), compare.library_of(first))
        if not ok:
            c.status = first.status
            c.reason = "; ".join(sorted({m.result.reason or m.result.status for m in on_dev}))
            c.why_not.append(f"{c.status}: {c.reason}")
            out.append(c)
            continue
        perf = ok  # speed / memory / size come from this device only
        for metric, key, scale in (("speed_ratio", "speed_ratio", 1), ("tokens_per_s", "tokens_per_s", 1),
                                   ("memory_gb", "memory_mb", 1e3), ("memory_ratio", "memory_ratio", 1),
                                   ("disk_gb", "size_mb", 1e3), ("size_ratio", "size_ratio", 1)):
            v, src = _pick(perf, metric, device, target_model)
            if v is not None:
                c.values[key] = v * scale
                c.sources[key] = _src(src)
        pretrained_ok = [m for m in ms if m.result.status == "ok" and m.result.model.get("weights") != "random"]
        for metric in ("quality_pct", "quality_loss_pct"):
            v, src = _pick(pretrained_ok, metric, device, target_model)
            if v is not None:
                c.values[metric] = v
                c.sources[metric] = _src(src)
        v, src = _pick(pretrained_ok, "cos_mean", device, target_model)
        if v is None:
            v, src = _pick([m for m in ms if m.result.status == "ok"], "cos_mean", device, target_model)
        if v is not None:
            c.values["cos_mean"] = v
            c.sources["cos_mean"] = _src(src)
        out.append(c)
    return out


# --- selection ----------------------------------------------------------------------------------
def _check(c: Candidate, max_loss: float, min_cos: float, budget_mb, min_speedup: float, objective: str) -> list:
    why = []
    if c.status != "ok":
        return [f"{c.status}: {c.reason}"]
    loss = c.values.get("quality_loss_pct")
    cos = c.values.get("cos_mean")
    if loss is not None:
        c.quality_basis = "quality"
        if loss > max_loss + 1e-9:
            why.append(f"quality loss {loss:.2f}% > {max_loss:g}%")
    elif cos is not None:
        c.quality_basis = "fidelity"
        if cos < min_cos:
            why.append(f"no quality measured and mean cosine {cos:.4f} < {min_cos:g}")
    else:
        why.append("no quality or fidelity measured")
    if budget_mb is not None:
        mem = c.values.get("memory_mb")
        if mem is None:
            why.append("memory not measured (a budget was set)")
        elif mem > budget_mb:
            why.append(f"memory {mem:.0f} MB > budget {budget_mb:g} MB")
    speed = c.values.get("speed_ratio")
    if speed is None:
        if objective == "speed" or min_speedup > 0:
            why.append("speed not measured at the requested batch and sequence length")
    elif speed < min_speedup - 1e-9:
        why.append(f"speed {speed:.2f}x < required {min_speedup:g}x")
    if objective == "memory" and c.values.get("memory_mb") is None and c.values.get("size_mb") is None:
        why.append("neither memory nor size measured")
    return why


def _memory_basis(cands) -> str:
    """Rank by inference memory when any candidate has it measured, else by size on disk: never a mix."""
    return "memory_mb" if any(c.values.get("memory_mb") is not None for c in cands) else "size_mb"


def _key(c: Candidate, objective: str, basis: str = "memory_mb"):
    s = c.values.get("speed_ratio", -math.inf)
    mem = c.memory_score(basis)
    mem = math.inf if mem is None else mem
    q = c.quality_score()
    q = -math.inf if q is None else q
    if objective == "speed":
        return (-s, mem, -q, c.label)
    if objective == "memory":
        return (mem, -s, -q, c.label)
    cos = c.values.get("cos_mean")
    return (-q, -(cos if cos is not None else -math.inf), -s, mem, c.label)   # equal quality: closest to FP32


def _select(cands, max_loss, min_cos, budget_mb, min_speedup, objective):
    for c in cands:
        c.why_not = _check(c, max_loss, min_cos, budget_mb, min_speedup, objective)
        c.eligible = not c.why_not
    basis = _memory_basis(cands)
    if objective == "memory":
        for c in cands:
            if c.eligible and c.values.get(basis) is None:
                c.why_not.append("memory not measured (other methods' memory was)")
                c.eligible = False
    return sorted([c for c in cands if c.eligible], key=lambda c: _key(c, objective, basis))


def _fmt(c: Candidate) -> str:
    v = c.values
    parts = []
    if v.get("speed_ratio") is not None:
        parts.append(f"{v['speed_ratio']:.2f}x FP32 speed")
    if v.get("memory_mb") is not None:
        parts.append(f"{v['memory_mb']:.0f} MB memory")
    elif v.get("size_mb") is not None:
        parts.append(f"{v['size_mb']:.0f} MB on disk")
    if v.get("quality_loss_pct") is not None:
        parts.append(f"quality loss {v['quality_loss_pct']:.2f}%")
    elif v.get("cos_mean") is not None:
        parts.append(f"cos {v['cos_mean']:.4f}")
    return ", ".join(parts)


def recommend(results, device: str = "cpu", memory_budget_mb: float | None = None,
              max_quality_loss_pct: float = 1.0, min_speedup: float = 1.0, objective: str = "speed",
              batch_size: int = 32, seq_len: int = 128, min_cos: float = 0.99, baseline: str = "fp32",
              target_model: str = compare.TARGET_MODEL, measured: list[Measured] | None = None
              ) -> Recommendation:
    """The method to run on ``device`` under the constraints, best by ``objective`` (see OBJECTIVES).

    A candidate must keep quality (mean loss <= ``max_quality_loss_pct``; where quality was not measured,
    mean cosine to FP32 >= ``min_cos``), fit ``memory_budget_mb`` (inference memory, when given) and reach
    ``min_speedup`` x FP32's speed on that device. FP32 itself is a candidate.
    """
    device = "cuda" if str(device).startswith("cuda") else str(device)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: use 'cpu' or 'cuda'")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: use one of {sorted(OBJECTIVES)}")
    if max_quality_loss_pct < 0:
        raise ValueError("max_quality_loss_pct must be >= 0 (a loss in percent of FP32's quality)")
    constraints = {"objective": objective, "max_quality_loss_pct": max_quality_loss_pct,
                   "memory_budget_mb": memory_budget_mb, "min_speedup": min_speedup,
                   "batch": f"{batch_size}x{seq_len}"}
    if measured is None:
        measured = compare.measure_all(results, batch_size, seq_len, baseline)
    cands = candidates(measured, device, target_model)
    if not cands:
        kinds = sorted({m.result.device_kind for m in measured})
        why = (f"no results on {device} in the loaded runs" +
               (f" (results exist for: {', '.join(kinds)})" if kinds else " (no results were loaded at all)"))
        return Recommendation(device, constraints, None, None, {}, [], [], [
            f"run the method notebooks with device='{device}' (or load a results folder measured there)"],
            why, pd.DataFrame())

    args = (max_quality_loss_pct, min_cos, memory_budget_mb, min_speedup, objective)
    ranked = _select(cands, *args)
    table = _table(cands, ranked)
    rejected = [{"method": c.label, "precision": c.precision, "why": "; ".join(c.why_not)}
                for c in cands if not c.eligible]
    if not ranked:
        changes = _relaxations(cands, *args)
        expl = (f"No method on {device} meets all constraints ({len(cands)} considered). " +
                "Each one's reason is listed under 'rejected'.")
        return Recommendation(device, constraints, None, None, {}, [], rejected, changes, expl, table)

    best = ranked[0]
    evidence = {}
    v = best.values
    if v.get("speed_ratio") is not None:
        evidence["speed"] = f"{v['speed_ratio']:.2f}x FP32" + (
            f" ({v['tokens_per_s']:.0f} tokens/s at batch {batch_size}x{seq_len})" if v.get("tokens_per_s") else "")
    if v.get("memory_mb") is not None:
        evidence["memory"] = f"{v['memory_mb']:.0f} MB" + (
            f" ({v['memory_ratio']:.2f}x FP32)" if v.get("memory_ratio") is not None else "")
    if v.get("size_mb") is not None:
        evidence["size on disk"] = f"{v['size_mb']:.0f} MB" + (
            f" ({v['size_ratio']:.2f}x FP32)" if v.get("size_ratio") is not None else "")
    if v.get("quality_pct") is not None:
        evidence["quality"] = f"{v['quality_pct']:.2f}% of FP32 (loss {v['quality_loss_pct']:.2f}%)"
    if v.get("cos_mean") is not None:
        evidence["mean cosine to FP32"] = f"{v['cos_mean']:.4f}"
    by_src: dict[str, list[str]] = {}
    for k, src in best.sources.items():
        by_src.setdefault(src, []).append(k)
    evidence["measured in"] = "; ".join(f"{src}: {', '.join(ks)}" for src, ks in by_src.items())
    runner_ups = [{"method": c.label, "precision": c.precision, "note": _fmt(c)} for c in ranked[1:4]]
    basis = ("measured quality" if best.quality_basis == "quality" else
             f"fidelity (no quality measured; mean cosine >= {min_cos:g} stands in)")
    n = len(ranked)
    expl = (f"{best.label} ({best.precision}, {best.library}) is {WINNER[objective]} of the "
            f"{n} method{'s' if n != 1 else ''} on {device} that meet the constraints ({_fmt(best)}); "
            f"quality judged by {basis}.")
    changes = _what_would_change(best, cands, ranked, *args)
    return Recommendation(device, constraints, best.label, best.precision, evidence, runner_ups, rejected,
                          changes, expl, table)


def _table(cands, ranked) -> pd.DataFrame:
    rank = {c.label: i + 1 for i, c in enumerate(ranked)}
    rows = []
    for c in cands:
        rows.append({"rank": rank.get(c.label), "method": c.label, "precision": c.precision,
                     "library": c.library, "status": c.status,
                     "speed x fp32": c.values.get("speed_ratio"), "memory MB": c.values.get("memory_mb"),
                     "size MB": c.values.get("size_mb"), "quality %": c.values.get("quality_pct"),
                     "cos mean": c.values.get("cos_mean"), "eligible": c.eligible,
                     "why not": "; ".join(c.why_not)})
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df.sort_values(["rank", "method"], na_position="last", kind="stable").reset_index(drop=True)
        df["rank"] = df["rank"].astype("Int64")
    return df


def _pick_with(cands, max_loss, min_cos, budget, min_speedup, objective):
    import copy
    cs = copy.deepcopy(cands)
    ranked = _select(cs, max_loss, min_cos, budget, min_speedup, objective)
    return ranked[0] if ranked else None


def _what_would_change(best, cands, ranked, max_loss, min_cos, budget, min_speedup, objective) -> list[str]:
    out = []
    v = best.values
    basis = _memory_basis(cands)

    def beats(c):
        return _key(c, objective, basis) < _key(best, objective, basis)

    def pick(**kw):
        a = dict(max_loss=max_loss, min_cos=min_cos, budget=budget, min_speedup=min_speedup, objective=objective)
        a.update(kw)
        return _pick_with(cands, **a)

    def describe(c):
        return f"{c.label} ({c.precision}; {_fmt(c)})" if c else "no method at all"

    # looser quality: the smallest tolerance that makes a better-by-objective method eligible
    better = [c for c in cands if c.status == "ok" and c.label != best.label
              and beats(c) and c.values.get("quality_loss_pct") is not None
              and c.values["quality_loss_pct"] > max_loss]
    if better:
        need = min(c.values["quality_loss_pct"] for c in better)
        alt = pick(max_loss=need)
        if alt is not None and alt.label != best.label:
            out.append(f"Accepting {need:.2f}% quality loss (now {max_loss:g}%) would pick {describe(alt)}.")
    # stricter quality
    loss = v.get("quality_loss_pct")
    if loss is not None and loss >= 0.005:      # a loss that shows as 0.00% is no loss to tighten
        alt = pick(max_loss=max(loss - 1e-6, 0.0) if loss > 1e-6 else 0.0)
        if alt is None or alt.label != best.label:
            out.append(f"Allowing less than {loss:.2f}% quality loss would pick {describe(alt)}.")
    # memory budget
    mem = v.get("memory_mb")
    if mem is not None:
        tighter = mem * 0.999 - 1e-9
        alt = pick(budget=tighter)
        out.append(f"A memory budget under {mem:.0f} MB would pick {describe(alt)}.")
    if budget is not None:
        bigger = [c for c in cands if c.status == "ok" and c.values.get("memory_mb") is not None
                  and c.values["memory_mb"] > budget and beats(c)]
        if bigger:
            need = min(c.values["memory_mb"] for c in bigger)
            alt = pick(budget=need)
            if alt is not None and alt.label != best.label:
                out.append(f"Raising the memory budget to {need:.0f} MB would pick {describe(alt)}.")
    # speed requirement
    s = v.get("speed_ratio")
    if s is not None:
        alt = pick(min_speedup=s * 1.001 + 1e-9)
        out.append(f"Requiring more than {s:.2f}x FP32 speed would pick {describe(alt)}.")
    # another objective
    for obj in OBJECTIVES:
        if obj != objective:
            alt = pick(objective=obj)
            if alt is not None and alt.label != best.label:
                out.append(f"Optimizing for {obj} instead of {objective} would pick {describe(alt)}.")
    return out


def _relaxations(cands, max_loss, min_cos, budget, min_speedup, objective) -> list[str]:
    """For a no-candidate case: the single relaxation that admits a method, per constraint."""
    out = []
    ok = [c for c in cands if c.status == "ok"]
    if not ok:
        return ["every method on this device was skipped or failed; see 'rejected' for the reasons"]
    losses = [c.values["quality_loss_pct"] for c in ok if c.values.get("quality_loss_pct") is not None]
    for need in sorted(set(losses)):
        if need > max_loss:
            alt = _pick_with(cands, need, min_cos, budget, min_speedup, objective)
            if alt is not None:
                out.append(f"Accepting {need:.2f}% quality loss (now {max_loss:g}%) would pick {alt.label} "
                           f"({alt.precision}; {_fmt(alt)}).")
                break
    if budget is not None:
        mems = sorted({c.values["memory_mb"] for c in ok if c.values.get("memory_mb") is not None})
        for need in mems:
            if need > budget:
                alt = _pick_with(cands, max_loss, min_cos, need, min_speedup, objective)
                if alt is not None:
                    out.append(f"A memory budget of {need:.0f} MB (now {budget:g} MB) would pick {alt.label} "
                               f"({alt.precision}; {_fmt(alt)}).")
                    break
        alt = _pick_with(cands, max_loss, min_cos, None, min_speedup, objective)
        if alt is not None and not any("memory budget" in o for o in out):
            out.append(f"Dropping the memory budget would pick {alt.label} ({alt.precision}; {_fmt(alt)}).")
    speeds = sorted({c.values["speed_ratio"] for c in ok if c.values.get("speed_ratio") is not None}, reverse=True)
    for need in speeds:
        if need < min_speedup:
            alt = _pick_with(cands, max_loss, min_cos, budget, need, objective)
            if alt is not None:
                out.append(f"Lowering the required speedup to {need:.2f}x (now {min_speedup:g}x) would pick "
                           f"{alt.label} ({alt.precision}; {_fmt(alt)}).")
                break
    if not out:
        out.append("no single relaxation of one constraint admits a method; relax several, or measure more methods")
    return out
