"""Which method to export: a run's recommendation (as 09_comparison computes it) and the Result behind it."""
from __future__ import annotations

from dataclasses import dataclass, field

from bgeq_utils.compare import measured as mm
from bgeq_utils.compare.report import compute
from bgeq_utils.core import vocab
from bgeq_utils.export.formats import ExportError, check_exportable


@dataclass
class Choice:
    """The method to export, the Result measured for it (its figures go into the model card) and why."""
    method: str | None
    result: object = None                          # core.results.Result
    recommendation: object = None                  # compare.recommend.Recommendation
    comparison: object = field(default=None, repr=False)
    context: list = field(default_factory=list, repr=False)   # the run's Results (the FP32 baseline among them)
    why: str = ""


def choose(run: str = "default", method: str = "", model_id: str | None = None, device: str = "cpu",
           batch_size: int | None = None, seq_len: int | None = None, **constraints) -> Choice:
    """The method to export from ``run``: ``method`` if given (with its default-configuration Result when the
    run has one), else the run's recommendation on ``device`` in the group of ``model_id`` (any group of the
    run on that device when None). ``constraints``: memory_budget_mb, max_quality_loss_pct, min_speedup,
    objective, as in 09_comparison."""
    results, messages = mm.load([run])
    kind = vocab.device_kind(device)
    mine = [r for r in results if r.device_kind == kind and (model_id is None or r.model.get("id") == model_id)]
    if method:
        cands = [r for r in mine if r.method == method and r.is_default and r.ok]
        res = max(cands, key=lambda r: r.created or "") if cands else None
        why = "chosen by name" + ("" if res else f"; run {run!r} holds no ok default Result of it on {kind}")
        return Choice(method, res, context=results, why=why)
    if not mine:
        where = "; ".join(messages) or f"run {run!r}"
        return Choice(None, context=results, why=f"no Results of {model_id or 'any model'} on {kind} to recommend "
                      f"from ({where}): run the method notebooks first, or name a method")
    # without a cell, the comparison's default: each group is read there or at its nearest timed cell
    cmp = compute(mine, messages, device=kind, batch_size=batch_size or vocab.COMPARISON_CELL[0],
                  seq_len=seq_len or vocab.COMPARISON_CELL[1], **constraints)
    recs = [rec for rec in cmp.recommendations.values() if rec.device == kind and rec.ok]
    if not recs:
        return Choice(None, comparison=cmp, context=results,
                      why="no method meets the constraints: " + "; ".join(
                          rec.explanation for rec in cmp.recommendations.values()))
    rec = recs[0]
    t = cmp.measured.table
    ranked = [rec.choice]
    if rec.table is not None and not rec.table.empty and "eligible" in rec.table:
        ranked += [m for m in rec.table[rec.table["eligible"]]["method"] if m != rec.choice]
    skipped = []
    for label in ranked:
        rows = t[(t["group"] == rec.group) & (t["label"] == label) & (t["status"] == vocab.OK)]
        if rows.empty:
            continue
        res = cmp.measured.result(rows.iloc[-1])
        try:
            check_exportable(res.method, res.options)
        except ExportError as e:
            skipped.append(f"{label} cannot be shipped faithfully ({str(e).split(': ', 1)[-1]})")
            continue
        cell = next(iter(t.loc[t["group"] == rec.group, "speed_cell"].dropna()), "?").replace("x", " x ")
        why = f"the recommendation of run {run!r} on {kind} (batch {cell} tokens): {rec.explanation}"
        if skipped:
            why += (" Exported instead: " + label + ", the best-ranked method that meets the same constraints and "
                    "can be shipped; " + "; ".join(skipped))
        return Choice(res.method, res, rec, cmp, results, why)
    return Choice(None, recommendation=rec, comparison=cmp, context=results,
                  why=f"{rec.explanation} No method that meets the constraints can be shipped: " + "; ".join(skipped))
