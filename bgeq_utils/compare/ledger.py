"""The claims ledger: each quantitative claim of the quantization guide (claims.yaml) against the measurements.

Rules, stated once:
- A claim about a precision is checked on **each method** of that precision, by its registry default
  configuration (variants are detail), on the device the claim names, within the group the method was
  measured in (one run, model, weights, data set, device). Each method's verdict comes from its 95%
  interval: **holds** (the interval lies inside the claimed range), **fails** (wholly outside: better or worse
  than claimed) or **inconclusive** (the interval straddles a bound, or there is none).
- The claim's verdict is the most severe of its methods' (fails worse > fails better > inconclusive >
  holds): a general claim about a precision holds only if it holds for every method measured. The row
  lists each method's verdict.
- **Multiplicity.** A claim's methods (pairs, for a relation) are one family of judgments: a holds or fails
  stands only if it survives Holm's adjustment at a family-wise error of 5% over that family (p-values read
  from each 95% interval; with one judgment the rule is the unadjusted one). A judgment that decides at 95% alone
  but not after the adjustment is inconclusive and says so. The header (``attrs["multiplicity"]``) gives the
  number of judgments and of verdicts the adjustment changed. Recommendation claims are choices, not tests:
  they are not adjusted.
- **Intervals that are not 95% intervals do not decide as if they were.** A memory figure from fewer than six
  processes is a range: it decides only against a bound farther from its median than the range is wide. A
  zero-width interval decides only for a quantity exact by nature (bytes counted, a dtype read).
- Size claims are read on every model that measured them, labelled per model, once per model and method
  (size does not depend on the device); absolute sizes (a claim's ``model``) on that model only. Memory and
  speed claims are read on the target model's shape (bge-large, any weights) where it was measured; quality and
  fidelity claims on pretrained weights (the target model's first). Where the ledger falls back to another
  model, the row says so.
- Every speed claim is checked twice: against eager PyTorch FP32 (what a user runs today) and against FP32
  in the method's own runtime (what quantization adds); so are memory and size ratios. The ``baseline`` column
  says which.
- Memory claims are read twice, as the guide means memory (weights plus the activations of a small batch):
  peak while embedding one batch of the run's speed cell (the batch is named in each method's figure) and
  resident after loading (the weights); the ``definition`` column says which.
- ``~X`` figures are widened by ``approx_tolerance_pct`` on each side; ranges are read literally.
- Relation claims compare every method of one side with every method of the other within a group; the
  difference's interval comes from the two intervals (conservative).
- Recommendation claims ask :func:`recommend` within each group on the claim's device; a choice the 95%
  intervals do not separate from the expected precision's best is inconclusive.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from bgeq_utils import methods
from bgeq_utils.compare.measured import Measured, default_rows, estimate
from bgeq_utils.compare.recommend import _separated, compared_column, groups_on, recommend
from bgeq_utils.core import paths, vocab
from bgeq_utils.core import uncertainty as U
from bgeq_utils.core.uncertainty import Estimate

KINDS = ("value", "relation", "recommendation")
RELATIONS = (">", ">=", "<", "<=")
TARGET_MODEL = "bge-large"
#: claim metric -> (column of the measured table, scale to the claim's unit, which direction is better)
METRICS = {
    "disk_gb": ("disk_mb", 1e-3, "lower"), "param_gb": ("param_mb", 1e-3, "lower"), "params_m": ("params_m", 1, None),
    "memory_gb": ("memory_mb", 1e-3, "lower"), "activation_mb": ("activation_mb", 1, "lower"),
    "size_ratio": ("size_ratio", 1, "lower"), "memory_ratio": ("memory_ratio", 1, "lower"),
    "speed_ratio": ("speed_vs_eager", 1, "higher"),
    "quality_pct": ("quality_pct", 1, "higher"), "quality_loss_pct": ("quality_loss_pct", 1, "lower"),
    "retrieval_degradation_pct": ("retrieval_degradation_pct", 1, "lower"),
    "cos_mean": ("cos_mean", 1, "higher"), "sim_pearson": ("sim_pearson", 1, "higher"),
    "l2_mean": ("l2_mean", 1, "lower"), "loaded_fp16": ("loaded_fp16", 1, None),
}
#: metric families: where a claim is best read (see the rules above)
SHAPE_METRICS = {"disk_gb", "param_gb", "params_m", "memory_gb", "activation_mb", "size_ratio", "memory_ratio",
                 "speed_ratio", "loaded_fp16"}
#: device-free figures: read on every model that measured them, once per model and method
SIZE_METRICS = {"disk_gb", "param_gb", "params_m", "size_ratio"}
BASELINE_READINGS = {"speed_vs_eager": "eager PyTorch FP32", "speed_vs_runtime": "FP32 in the same runtime",
                     "memory_ratio": "eager PyTorch FP32", "memory_ratio_runtime": "FP32 in the same runtime",
                     "size_ratio": "eager PyTorch FP32", "size_ratio_runtime": "FP32 in the same runtime"}
#: the second (third) readings of one claim: column -> suffix of the row's id
READINGS = {"speed_vs_eager": ["speed_vs_eager", "speed_vs_runtime"],
            "memory_ratio": ["memory_ratio", "memory_ratio_runtime"],
            "size_ratio": ["size_ratio", "size_ratio_runtime"],
            "memory_mb": ["memory_mb", "resident_mb"]}
ID_SUFFIX = {"speed_vs_runtime": "@runtime", "memory_ratio_runtime": "@runtime", "size_ratio_runtime": "@runtime",
             "resident_mb": "@resident"}
#: what a memory figure is, named in each memory row
DEFINITIONS = {"memory_mb": "peak while embedding one batch of the run's speed cell (weights + activations)",
               "resident_mb": "resident after loading (weights)",
               "memory_ratio": "peak at the run's speed cell, over the baseline's",
               "memory_ratio_runtime": "peak at the run's speed cell, over the baseline's"}


class ClaimsFileError(ValueError):
    """claims.yaml is malformed: the message names the claim and the field to fix."""


@dataclass
class Claim:
    id: str
    paraphrase: str
    metric: str
    precision: list = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    unit: str = ""
    approx: bool = False
    model: str | None = None
    device: str | None = None
    reading: str = ""
    sections: list = field(default_factory=list)
    kind: str = "value"
    select: dict | None = None
    relation: str | None = None
    left: dict | None = None
    right: dict | None = None
    expected: list | None = None
    recommend: dict | None = None
    tolerance_pct: float = 0.0

    def bounds(self) -> tuple[float | None, float | None]:
        t = self.tolerance_pct / 100.0 if self.approx else 0.0
        lo = None if self.min is None else self.min * (1 - t)
        hi = None if self.max is None else self.max * (1 + t)
        return lo, hi

    def expected_text(self) -> str:
        if self.kind == "recommendation":
            return "recommended: " + " or ".join(self.expected or [])
        if self.kind == "relation":
            return f"{self.metric}: methods that {_sel_text(self.left)} {self.relation} methods that " \
                   f"{_sel_text(self.right)}"
        u = f" {self.unit}" if self.unit else ""
        tilde = "~" if self.approx else ""
        if self.min is not None and self.max is not None:
            core = f"{tilde}{self.min:g}{u}" if self.min == self.max else f"{tilde}{self.min:g}-{self.max:g}{u}"
        elif self.min is not None:
            core = f">= {self.min:g}{u}"
        else:
            core = f"<= {self.max:g}{u}"
        if self.approx:
            core += f" (±{self.tolerance_pct:g}%)"
        return core


def load_claims(path: str | Path | None = None) -> list[Claim]:
    """Read and validate claims.yaml (the package's own unless ``path`` is given)."""
    path = Path(path) if path else paths.CLAIMS
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ClaimsFileError(f"cannot read claims file {path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list):
        raise ClaimsFileError(f"{path}: expected a mapping with a 'claims' list")
    tol = float(doc.get("approx_tolerance_pct", 0))
    known = set(Claim.__dataclass_fields__)
    out, seen = [], set()
    for i, raw in enumerate(doc["claims"]):
        where = f"{path}: claim #{i + 1}"
        if not isinstance(raw, dict) or "id" not in raw:
            raise ClaimsFileError(f"{where} has no 'id'")
        where = f"{path}: claim {raw['id']!r}"
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ClaimsFileError(f"{where} has unknown fields {unknown}; known: {sorted(known)}")
        if raw["id"] in seen:
            raise ClaimsFileError(f"{where} is defined twice; ids must be unique")
        seen.add(raw["id"])
        for req in ("paraphrase", "metric"):
            if not raw.get(req):
                raise ClaimsFileError(f"{where} lacks '{req}'")
        kind = raw.get("kind", "value")
        if kind not in KINDS:
            raise ClaimsFileError(f"{where}: kind {kind!r} is not one of {KINDS}")
        prec = raw.get("precision", [])
        prec = [prec] if isinstance(prec, str) else list(prec or [])
        bad = [p for p in prec if p not in vocab.PRECISIONS]
        if bad:
            raise ClaimsFileError(f"{where}: precision {bad} unknown; use {vocab.PRECISIONS}")
        if kind in ("value", "relation") and raw["metric"] not in METRICS:
            raise ClaimsFileError(f"{where}: metric {raw['metric']!r} is unknown; use one of {sorted(METRICS)}")
        if kind == "value":
            if raw.get("min") is None and raw.get("max") is None:
                raise ClaimsFileError(f"{where} needs 'min' and/or 'max'")
            for b in ("min", "max"):
                if raw.get(b) is not None and not isinstance(raw[b], (int, float)):
                    raise ClaimsFileError(f"{where}: '{b}' must be a number, not {raw[b]!r}")
            if raw.get("min") is not None and raw.get("max") is not None and raw["min"] > raw["max"]:
                raise ClaimsFileError(f"{where}: min {raw['min']} > max {raw['max']}")
            if not prec:
                raise ClaimsFileError(f"{where} needs a 'precision'")
        elif kind == "relation":
            if raw.get("relation") not in RELATIONS or not raw.get("left") or not raw.get("right"):
                raise ClaimsFileError(f"{where}: a relation claim needs 'relation' (one of {list(RELATIONS)}), "
                                      "'left' and 'right' selectors")
        elif not raw.get("expected") or not isinstance(raw.get("recommend"), dict):
            raise ClaimsFileError(f"{where}: a recommendation claim needs 'expected' and a 'recommend' mapping")
        if raw.get("device") not in (None,) + vocab.DEVICE_KINDS:
            raise ClaimsFileError(f"{where}: device must be one of {vocab.DEVICE_KINDS}, not {raw['device']!r}")
        for sel in ("select", "left", "right"):
            if raw.get(sel) is not None:
                _check_selector(raw[sel], f"{where}: {sel}")
        fields = {k: v for k, v in raw.items() if k not in ("precision", "tolerance_pct")}
        c = Claim(**fields, precision=prec, tolerance_pct=float(raw.get("tolerance_pct", tol)))
        c.expected = [c.expected] if isinstance(c.expected, str) else c.expected
        out.append(c)
    return out


def not_encoded(path: str | Path | None = None) -> list[dict]:
    """The guide's statements that are not encoded as numbers, with why (claims.yaml's ``not_encoded``)."""
    doc = yaml.safe_load(Path(path or paths.CLAIMS).read_text()) or {}
    return list(doc.get("not_encoded") or [])


SELECTOR_KEYS = ("needs", "needs_none", "library", "runtime", "precision")


def _check_selector(sel, where):
    if not isinstance(sel, dict) or set(sel) - set(SELECTOR_KEYS):
        raise ClaimsFileError(f"{where} must be a mapping with keys among {SELECTOR_KEYS}, not {sel!r}")


def _selected(row, sel: dict | None) -> bool:
    if not sel:
        return True
    try:
        spec = methods.get(row["method"])
        needs = set(spec.needs)
    except KeyError:
        needs = set()
    if sel.get("needs") and not needs & set(sel["needs"]):
        return False
    if sel.get("needs_none") and needs & set(sel["needs_none"]):
        return False
    for k in ("library", "runtime", "precision"):
        if sel.get(k) and row[k] not in ([sel[k]] if isinstance(sel[k], str) else sel[k]):
            return False
    return True


def _sel_text(sel) -> str:
    sel, parts = sel or {}, []
    if sel.get("needs"):
        parts.append("need " + " or ".join(sel["needs"]))
    if sel.get("needs_none"):
        parts.append("need none of " + "/".join(sel["needs_none"]))
    for k in ("library", "runtime", "precision"):
        if sel.get(k):
            parts.append(f"{k} {sel[k]}")
    return " and ".join(parts) or "any"


# --- formatting ---------------------------------------------------------------------------------
def fmt_value(e: Estimate | None, unit: str = "") -> str:
    """A measured value with its interval in a claim's unit: 1.342 GB, 2.47x [2.31, 2.60], 99.81% ..."""
    if e is None:
        return "-"
    if unit == "x FP32":
        return e.fmt(2, "x")
    if unit in ("%", "% of FP32"):
        return e.fmt(2, "%")
    if unit == "GB":
        return e.fmt(3, " GB")
    if unit == "MB":
        return e.fmt(0, " MB")
    if unit in ("cosine", "Pearson r", "L2", ""):
        return e.fmt(4)
    return e.fmt(3, f" {unit}")


def _row(c: Claim, verdict=U.NOT_MEASURED, measured="", detail="", holds_for="", per_method="", baseline="",
         model="", definition="", judgments=0, unadjusted=None, summary="") -> dict:
    return {"id": c.id, "precision": "/".join(c.precision) or "-", "claim": c.paraphrase,
            "expected": c.expected_text(), "baseline": baseline, "definition": definition, "measured": measured,
            "verdict": verdict, "holds for": holds_for, "detail": detail, "per method": per_method, "model": model,
            "metric": c.metric, "reading": c.reading, "sections": ", ".join(c.sections), "judgments": judgments,
            "verdict at 95% alone": verdict if unadjusted is None else unadjusted, "summary": summary}


# --- which rows a claim is read on --------------------------------------------------------------
def _pool(c: Claim, m: Measured) -> tuple[pd.DataFrame, str]:
    """Default-configuration rows that can check ``c`` (status ok), and a note, or (empty, why not)."""
    d = default_rows(m)
    if d.empty:
        return d, "no results were loaded"
    if c.precision:
        d = d[d["precision"].isin(c.precision)]
    d = d[[_selected(r, c.select) for _, r in d.iterrows()]] if c.select and not d.empty else d
    if d.empty:
        reg = [s.name for s in methods.specs() if s.precision in c.precision]
        return d, (f"no {'/'.join(c.precision)} result{' selected' if c.select else ''} in the loaded runs"
                   + (f" (registered, not run: {', '.join(reg)})" if reg else ""))
    if c.device:
        on = d[d["device"] == c.device]
        if on.empty:
            name = "GPU (CUDA)" if c.device == "cuda" else "CPU"
            return on, f"needs a {name} result; the loaded ones are on {', '.join(sorted(set(d['device'])))}"
        d = on
    ok = d[d["status"] == vocab.OK]
    if ok.empty:
        reasons = "; ".join(sorted({f"{r.label}: {r.status} ({r.reason})" for r in d.itertuples()}))[:400]
        return ok, f"every result was skipped or failed: {reasons}"
    target = ok["model"].str.contains(c.model or TARGET_MODEL, case=False, regex=False)
    if c.model:
        if not target.any():
            return ok[target], (f"needs a {c.model} run (absolute sizes are the model's own; weights='random' gives "
                                f"its true size, memory and speed); loaded runs are on "
                                f"{', '.join(sorted(set(ok['model'])))}")
        return (_once(ok[target]) if c.metric in SIZE_METRICS else ok[target]), ""
    if c.metric in SIZE_METRICS:
        models = sorted(set(ok["model"]))
        return _once(ok), (f"read on every model that measured it ({', '.join(models)}), once per model"
                           if len(models) > 1 else "")
    if c.metric in SHAPE_METRICS:
        return (ok[target], "") if target.any() else (ok, f"measured on {', '.join(sorted(set(ok['model'])))}, "
                                                          f"not {TARGET_MODEL}")
    pre = ok[ok["weights"] == "pretrained"]
    if not pre.empty:
        t = pre["model"].str.contains(TARGET_MODEL, case=False, regex=False)
        if t.any():
            return pre[t], ""
        models = ", ".join(sorted(set(pre["model"])))
        return pre, f"quality and fidelity read on {models} (pretrained), not {TARGET_MODEL}"
    return ok, "no pretrained run: read on random weights (fidelity to that model's own FP32)"


def _once(d: pd.DataFrame) -> pd.DataFrame:
    """One row per model and method for a device-free figure (size): pretrained weights, CPU and the newest
    Result first, so that the same bytes are not judged once per device and weights."""
    if d.empty:
        return d
    d = d.assign(_w=d["weights"] != "pretrained", _d=d["device"] != "cpu", _c=d["created"].fillna(""))
    d = d.sort_values(["_w", "_d", "_c"], ascending=[True, True, False], kind="stable")
    d = d.drop_duplicates(["model", "method"]).drop(columns=["_w", "_d", "_c"])
    return d.loc[sorted(d.index)]


def _estimate(row, c: Claim, column: str) -> Estimate | None:
    scale = METRICS[c.metric][1]
    if column == "loaded_fp16":
        dt = row.get("loaded_dtype")
        return None if dt is None or pd.isna(dt) else Estimate.exact(1.0 if dt == "float16" else 0.0,
                                                                      f"exact: loaded {dt}")
    e = estimate(row, column)
    if e is None:
        return None
    if column in ("disk_mb", "param_mb", "params_m", "size_ratio", "size_ratio_runtime"):
        e = Estimate.exact(e.value, "exact (bytes counted)")
    return e.scaled(scale) if scale != 1 else e


def _src(row, c: Claim | None = None) -> str:
    """Where a judgment was read: method, model, run and device (no device for a device-free figure)."""
    where = f"{row['run']}" if c is not None and c.metric in SIZE_METRICS else f"{row['run']}/{row['device']}"
    model = f" ({row['model']})" if c is not None and c.metric in SIZE_METRICS else ""
    return f"{row['label']}{model} @ {where}"


def _figure(row, e: Estimate, c: Claim, column: str) -> str:
    """A judged figure with its unit, and for a memory peak the batch it was taken at."""
    out = fmt_value(e, c.unit)
    batch = row.get("memory_batch")
    if column in ("memory_mb", "memory_ratio", "memory_ratio_runtime") and isinstance(batch, str):
        out += f" (batch {batch})"
    return out


def _adjusted(judged: list, adjust: bool) -> tuple[list, int, int]:
    """Judgments ``(..., estimate, low, high, verdict, why)`` after Holm per claim (see the rules); returns the new
    list, the family's size and how many verdicts the adjustment changed."""
    if not judged:
        return judged, 0, 0
    fam = [(x[-5], x[-4], x[-3], x[-2], x[-1]) for x in judged]
    after = U.adjust_family(fam) if adjust else [(v, why, None) for *_, v, why in fam]
    m = sum(U.judgment_p(e, lo, hi, v) is not None for e, lo, hi, v, _ in fam)
    out = [(*x[:-2], v, why) for x, (v, why, _) in zip(judged, after)]
    return out, m, sum(a[-2] != b[-2] for a, b in zip(judged, out))


def _check_value(c: Claim, m: Measured, column: str, adjust: bool = True) -> dict:
    baseline, definition = BASELINE_READINGS.get(column, ""), DEFINITIONS.get(column, "")
    pool, note = _pool(c, m)
    if pool.empty:
        return _row(c, detail=note, baseline=baseline, definition=definition)
    lo, hi = c.bounds()
    better = METRICS[c.metric][2]
    raw = []
    for _, row in pool.iterrows():
        e = _estimate(row, c, column)
        if e is None:
            continue
        v, why = U.verdict(e, lo, hi, better)
        raw.append((row, e, lo, hi, v, why))
    if not raw:
        miss = Counter(f"{column} {r.get('quality_na') or 'not measured'} in {r['group']}"
                       if column.startswith("quality") else f"{column} not measured in {r['group']}"
                       for _, r in pool.iterrows())
        return _row(c, detail="; ".join(x for x, _ in miss.most_common(2)), baseline=baseline, definition=definition)
    judged, n_fam, changed = _adjusted(raw, adjust)
    verdict = U.combine(x[-2] for x in judged)
    counts = Counter(x[-2] for x in judged)
    n = len(judged)
    holds = [_src(r, c) for r, *_, v, _ in judged if v == U.HOLDS]
    per = "; ".join(f"{_src(r, c)}: {_figure(r, e, c, column)} → {v}" for r, e, *_, v, _ in judged)
    many = len({r["model"] for r, *_ in judged}) > 1
    measured = "; ".join(f"{r['label']}{' (' + r['model'] + ')' if many else ''} {_figure(r, e, c, column)}"
                         for r, e, *_ in judged)
    detail = f"holds for {counts[U.HOLDS]} of {n} {'/'.join(c.precision)} method{'s' if n != 1 else ''}" + \
        (f": {', '.join(h.split(' @ ')[0] for h in holds)}" if holds else "")
    others = [f"{cnt} {v}" for v, cnt in counts.items() if v != U.HOLDS]
    if others:
        detail += "; " + ", ".join(others)
    if verdict != U.HOLDS:
        worst = next((x for x in judged if x[-2] == verdict), None)
        if worst is not None:
            detail += f"; e.g. {_src(worst[0], c)} at {_figure(worst[0], worst[1], c, column)}: {worst[-1]}"
    if changed:
        detail += f"; Holm's adjustment over {n_fam} judgments made {changed} inconclusive"
    if note:
        detail += f"; {note}"
    models = ", ".join(sorted({f"{r['model']} ({r['weights']})" for r, *_ in judged}))
    unadj = U.combine(x[-2] for x in raw)
    return _row(c, verdict, measured, detail, f"{counts[U.HOLDS]}/{n} methods", per, baseline, models, definition,
                n_fam, unadj, f"{verdict}: holds for {counts[U.HOLDS]} of {n} methods")


def _check_relation(c: Claim, m: Measured, column: str, adjust: bool = True) -> dict:
    pool, note = _pool(c, m)
    baseline, definition = BASELINE_READINGS.get(column, ""), DEFINITIONS.get(column, "")
    if pool.empty:
        return _row(c, detail=note, baseline=baseline, definition=definition)
    raw, missing = [], []
    # a device-free figure (size) is compared within a model, whatever device its rows were read on
    by = ["model", "weights"] if c.metric in SIZE_METRICS else "group"
    for g, sub in pool.groupby(by, sort=False):
        g = " ".join(g) if isinstance(g, tuple) else g
        left = [(r, _estimate(r, c, column)) for _, r in sub.iterrows() if _selected(r, c.left)]
        right = [(r, _estimate(r, c, column)) for _, r in sub.iterrows() if _selected(r, c.right)]
        left, right = [x for x in left if x[1] is not None], [x for x in right if x[1] is not None]
        if not left or not right:
            missing.append(f"{g}: no method that {_sel_text(c.left if not left else c.right)} has {c.metric}")
            continue
        for a, ea in left:
            for b, eb in right:
                d = U.difference(ea, eb)
                lo, hi = (0.0, None) if c.relation in (">", ">=") else (None, 0.0)
                v, why = U.verdict(d, lo, hi, None)
                raw.append((a, b, ea, eb, d, lo, hi, v, why))
    if not raw:
        return _row(c, detail="; ".join(missing[:2]) or "no group measured both sides", baseline=baseline,
                    definition=definition)
    judged, n_fam, changed = _adjusted(raw, adjust)
    verdict = U.combine(x[-2] for x in judged)
    counts = Counter(x[-2] for x in judged)
    many = len({a["model"] for a, *_ in judged}) > 1
    per = "; ".join(f"{a['label']}{' (' + a['model'] + ')' if many else ''} {_figure(a, ea, c, column)} vs "
                    f"{b['label']} {_figure(b, eb, c, column)} (difference {d.fmt(3)}) → {v}"
                    for a, b, ea, eb, d, *_, v, _ in judged)
    detail = f"holds for {counts[U.HOLDS]} of {len(judged)} pairs" + \
        "".join(f", {cnt} {v}" for v, cnt in counts.items() if v != U.HOLDS)
    if changed:
        detail += f"; Holm's adjustment over {n_fam} judgments made {changed} inconclusive"
    if note:
        detail += f"; {note}"
    models = ", ".join(sorted({f"{a['model']} ({a['weights']})" for a, *_ in judged}))
    summary = f"{verdict}: holds for {counts[U.HOLDS]} of {len(judged)} pairs" + \
        "".join(f", {cnt} {v}" for v, cnt in counts.items() if v != U.HOLDS)
    return _row(c, verdict, per, detail, f"{counts[U.HOLDS]}/{len(judged)} pairs", per, baseline, models,
                definition, n_fam, U.combine(x[-2] for x in raw), summary)


def _check_recommendation(c: Claim, m: Measured) -> dict:
    params = dict(c.recommend or {})
    devices = params.pop("device", ["cpu"])
    devices = [devices] if isinstance(devices, str) else list(devices)
    objective = params.get("objective", "speed")
    expected = set(c.expected or [])
    judged, missing = [], []
    for dev in devices:
        for g in groups_on(m, dev):
            rec = recommend(m, device=dev, group=g, **params)
            t = rec.table
            if t is None or t.empty or not rec.ok:
                missing.append(f"{g}: {rec.explanation}")
                continue
            if not (t["precision"].isin(expected) & (t["status"] == vocab.OK)).any():
                missing.append(f"{g}: no {'/'.join(sorted(expected))} method measured there")
                continue
            d = default_rows(m)
            d = d[d["group"] == g].set_index("label", drop=False)
            ranked = t[t["eligible"]].sort_values("rank")
            won = rec.precision in expected
            # the best eligible method on the other side of the claim: the one the winner must beat clearly
            rival = ranked[~ranked["precision"].isin(expected)] if won else ranked[ranked["precision"].isin(expected)]
            best = d.loc[rec.choice]
            if rival.empty:
                v = (U.HOLDS if won else U.FAILS) if not rec.unsure else U.INCONCLUSIVE
                why = (f"{rec.choice} ({rec.precision}) won; " + (
                    "no other precision is eligible" if won else
                    f"no {'/'.join(sorted(expected))} method is eligible ("
                    + "; ".join(t[t["precision"].isin(expected)]["why not"].astype(str))[:300] + ")"))
            else:
                alt = d.loc[rival.iloc[0]["method"]]
                col = compared_column(best, alt, objective)[0]
                clear = _separated(best, alt, objective) and not rec.unsure
                v = (U.HOLDS if won else U.FAILS) if clear else U.INCONCLUSIVE
                why = (f"{rec.choice} ({rec.precision}) won over {alt['label']} ({alt['precision']}) "
                       f"({col}: {_fmt(best, col)} vs {_fmt(alt, col)})" + ("" if clear else "; not separated at 95%"))
            if rec.unsure:
                why += "; " + "; ".join(rec.unsure)
            judged.append((g, rec, v, why))
    if not judged:
        return _row(c, detail="; ".join(missing) or "no group on the claim's devices")
    verdict = U.combine(v for _, _, v, _ in judged)
    measured = "; ".join(f"{g}: {rec.choice} ({rec.precision})" for g, rec, _, _ in judged)
    per = "; ".join(f"{g}: {v}: {why}" for g, _, v, why in judged)
    detail = per + (f"; not judged: {'; '.join(missing)}" if missing else "")
    held = sum(v == U.HOLDS for _, _, v, _ in judged)
    return _row(c, verdict, measured, detail, f"{held}/{len(judged)} groups", per,
                model=", ".join(sorted({g.split(' on ')[0] for g, *_ in judged})),
                summary=f"{verdict}: holds in {held} of {len(judged)} groups")


def _fmt(row, col) -> str:
    e = estimate(row, col)
    return "-" if e is None else e.fmt(3)


def _columns(c: Claim) -> list[str]:
    col = METRICS[c.metric][0]
    return READINGS.get(col, [col])


def check(m: Measured, claims: list[Claim] | None = None, precision: str | list | None = None,
          adjust: bool = True) -> pd.DataFrame:
    """One row per claim and reading: id, paraphrase, expected, the baseline of a ratio reading, the definition
    of a memory figure, measured (each method with its interval), verdict, for how many methods it holds,
    detail (how, by how much, why not), per-method verdicts, the number of judgments of the claim and its
    verdict at 95% alone. ``precision`` keeps only the claims about that precision (the notebooks'
    "against the guide" cells). ``adjust=False`` skips Holm's adjustment (to see what it changed)."""
    claims = load_claims() if claims is None else claims
    if precision is not None:
        want = {precision} if isinstance(precision, str) else set(precision)
        claims = [c for c in claims if set(c.precision) & want or
                  (c.kind == "recommendation" and set(c.expected or []) & want)]
    rows = []
    for c in claims:
        if c.kind == "recommendation":
            rows.append(_check_recommendation(c, m))
            continue
        for col in _columns(c):
            r = _check_relation(c, m, col, adjust) if c.kind == "relation" else _check_value(c, m, col, adjust)
            r["id"] += ID_SUFFIX.get(col, "")
            rows.append(r)
    df = pd.DataFrame(rows)
    df.attrs["rules"] = __doc__.split("Rules, stated once:")[1].strip()
    df.attrs["multiplicity"] = multiplicity_text(df, adjust)
    return df


def multiplicity_text(ledger: pd.DataFrame, adjust: bool = True) -> str:
    """The error-rate policy in one line, with the number of judgments and what the adjustment changed."""
    if ledger is None or ledger.empty or "judgments" not in ledger:
        return ""
    n = int(ledger["judgments"].sum())
    fams = int((ledger["judgments"] > 0).sum())
    if not adjust:
        return f"{n} judgments in {fams} claims, each at 95% alone (no adjustment for multiplicity)"
    changed = ledger[ledger["verdict"] != ledger["verdict at 95% alone"]]
    return (f"{n} judgments in {fams} claims; Holm's adjustment per claim, family-wise error 5%: "
            f"{len(changed)} verdict{'s' if len(changed) != 1 else ''} changed from the 95%-alone reading"
            + (f" ({', '.join(changed['id'])})" if len(changed) else ""))


TALLY_ORDER = (U.HOLDS, U.FAILS_BETTER, U.FAILS_WORSE, U.FAILS, U.INCONCLUSIVE, U.NOT_MEASURED)


def tally(ledger: pd.DataFrame) -> dict:
    """Counts of verdicts, in a fixed order (zero counts included)."""
    if ledger is None or ledger.empty:
        return {}
    vc = ledger["verdict"].value_counts()
    return {k: int(vc.get(k, 0)) for k in TALLY_ORDER if k != U.FAILS or vc.get(k, 0)}


def tally_text(ledger: pd.DataFrame) -> str:
    t = tally(ledger)
    if not t:
        return "no claims"
    n_claims = len({i.split("@")[0] for i in ledger["id"]})
    out = ", ".join(f"{v} {k}" for k, v in t.items()) + f" (of {len(ledger)} checks of {n_claims} claims)"
    multi = ledger.attrs.get("multiplicity")
    return out + (f"; {multi}" if multi else "")
