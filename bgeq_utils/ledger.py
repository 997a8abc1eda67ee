"""The claims ledger: each quantitative claim of the quantization guide (claims.yaml) against the measurements.

Verdicts: ``holds``, ``fails`` (with by how much and on which side) or ``not measured`` (with why).

Rules, stated once:
- A claim about a precision is checked on every method of that precision (precision as recorded in the
  Result, else the method registry's), on the device it names and, for absolute sizes, on the model it
  names. It **holds** when at least one method meets it (the guide says "depending on the method");
  the ledger shows how many did, and the best and the worst method.
- Ratio, quality and fidelity claims use the bge-large run when it has the number, else the runs there
  are (the model is then named in the detail).
- ``~X`` figures are widened by ``approx_tolerance_pct`` on each side; ranges are read literally, and a
  miss says whether it lies on the favourable or the unfavourable side of the claim.
- Relation claims compare the best method of each side within one run and device; they hold when they
  hold in every run and device where both sides were measured.
- Recommendation claims ask :func:`bgeq_utils.recommend.recommend` under the claim's constraints.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from . import compare, paths
from .compare import METRICS, Measured

KINDS = ("value", "relation", "recommendation")
RELATIONS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
             ">=": lambda a, b: a >= b}


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
            core = f"{tilde}{_num(self.min)}{u}" if self.min == self.max else \
                f"{tilde}{_num(self.min)}-{_num(self.max)}{u}"
        elif self.min is not None:
            core = f">= {_num(self.min)}{u}"
        else:
            core = f"<= {_num(self.max)}{u}"
        if self.approx:
            core += f" (±{self.tolerance_pct:g}%)"
        return core


def _num(x: float) -> str:
    return f"{x:g}"


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
    known = {f for f in Claim.__dataclass_fields__} | {"sections"}
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
        if kind == "value":
            if raw["metric"] not in METRICS:
                raise ClaimsFileError(f"{where}: metric {raw['metric']!r} is unknown; use one of {sorted(METRICS)}")
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
            if raw["metric"] not in METRICS:
                raise ClaimsFileError(f"{where}: metric {raw['metric']!r} is unknown")
        else:
            if not raw.get("expected") or not isinstance(raw.get("recommend"), dict):
                raise ClaimsFileError(f"{where}: a recommendation claim needs 'expected' and a 'recommend' mapping")
        if raw.get("device") not in (None, "cpu", "cuda"):
            raise ClaimsFileError(f"{where}: device must be 'cpu' or 'cuda', not {raw['device']!r}")
        fields = {k: v for k, v in raw.items() if k not in ("precision", "tolerance_pct")}
        c = Claim(**fields, precision=prec, tolerance_pct=float(raw.get("tolerance_pct", tol)))
        c.expected = [c.expected] if isinstance(c.expected, str) else c.expected
        out.append(c)
    return out


# --- formatting ---------------------------------------------------------------------------------
def fmt_value(v: float, unit: str = "") -> str:
    """A measured value in a claim's unit: 1.342 GB, 415 MB, 2.47x, 99.81%, 0.9993."""
    if v is None:
        return "-"
    if unit == "x FP32":
        return f"{v:.2f}x"
    if unit in ("%", "% of FP32"):
        return f"{v:.2f}%"
    if unit == "GB":
        return f"{v:.3f} GB"
    if unit == "MB":
        return f"{v:.0f} MB"
    if unit in ("cosine", "Pearson r", "L2", ""):
        return f"{v:.4f}"
    return f"{v:.4g} {unit}"


def _src(m: Measured) -> str:
    r = m.result
    return f"{r.label} @ {r.run}/{r.device_kind}"


def _registered(precisions) -> list[str]:
    from . import methods
    return [s.name for s in methods.specs() if s.precision in precisions]


def _within(v, lo, hi) -> bool:
    return (lo is None or v >= lo - 1e-12) and (hi is None or v <= hi + 1e-12)


def _fmt_dist(d: float, unit: str) -> str:
    if unit in ("%", "% of FP32"):
        return f"{d:.2f} points"
    if unit in ("GB", "MB"):
        return f"{d:.3g} {unit}"
    return f"{d:.3g}"


def _miss(v, lo, hi, better, unit: str = "") -> tuple[float, str]:
    """(absolute distance outside the range, text) for a value outside [lo, hi]."""
    if lo is not None and v < lo:
        dist, side, bound = lo - v, "below", lo
    else:
        dist, side, bound = v - hi, "above", hi
    pct = 100 * dist / abs(bound) if bound else None
    rel = "" if pct is None else f" ({pct:.0f}% of the bound)" if pct >= 10 else f" ({pct:.2g}% of the bound)"
    fav = ""
    if better in ("higher", "lower"):
        good = (side == "above") == (better == "higher")
        fav = "; better than claimed" if good else "; worse than claimed"
    return dist, (f"{side} the claimed {'minimum' if side == 'below' else 'maximum'} by "
                  f"{_fmt_dist(dist, unit)}{rel}{fav}")


# --- checking -----------------------------------------------------------------------------------
def _row(c: Claim, measured="", verdict="not measured", detail="", evidence="", rule="", holds_for="") -> dict:
    return {"id": c.id, "precision": "/".join(c.precision) or "-", "claim": c.paraphrase,
            "expected": c.expected_text(), "measured": measured, "verdict": verdict, "detail": detail,
            "holds for": holds_for, "evidence": evidence, "metric": c.metric, "reading": c.reading,
            "sections": ", ".join(c.sections), "rule": rule}


def _pool(c: Claim, measured: list[Measured]) -> tuple[list[Measured], str | None]:
    """The ok Results that can check a claim, or (empty, why not)."""
    pool = [m for m in measured if m.precision in c.precision]
    if not pool:
        reg = _registered(c.precision)
        return [], (f"no {'/'.join(c.precision)} result in the loaded runs" +
                    (f" (registered, not run: {', '.join(reg)})" if reg else
                     " (no method of this precision is registered)"))
    if c.device:
        on = [m for m in pool if m.result.device_kind == c.device]
        if not on:
            have = sorted({m.result.device_kind for m in pool})
            name = "GPU (CUDA)" if c.device == "cuda" else "CPU"
            return [], f"needs a {name} result; the loaded {'/'.join(c.precision)} results are on {', '.join(have)}"
        pool = on
    ok = [m for m in pool if m.result.status == "ok"]
    if not ok:
        reasons = "; ".join(sorted({f"{m.label}: {m.result.status} ({m.result.reason})" for m in pool}))[:400]
        return [], f"every result was skipped or failed: {reasons}"
    if c.model:
        scoped = [m for m in ok if compare.is_target_model(m.result, c.model)]
        if not scoped:
            models = sorted({str(m.result.model.get('id', '?')).split('/')[-1] for m in ok})
            return [], (f"needs a {c.model} run (absolute sizes are the model's own; weights='random' gives "
                        f"its true size, memory and speed); loaded runs are on {', '.join(models)}")
        ok = scoped
    return ok, None


def _values(c: Claim, ok: list[Measured], target: str) -> tuple[list[tuple[Measured, float]], str, str | None]:
    vals = [(m, m.get(c.metric)) for m in ok if m.get(c.metric) is not None]
    if not vals:
        reasons = Counter(m.missing.get(c.metric, f"{c.metric} not available") for m in ok)
        return [], "", "; ".join(r for r, _ in reasons.most_common(2))
    note = ""
    if not c.model:
        tv = [(m, v) for m, v in vals if compare.is_target_model(m.result, target)]
        if tv:
            vals = tv
        else:
            models = sorted({str(m.result.model.get('id', '?')).split('/')[-1] for m, _ in vals})
            note = f"measured on {', '.join(models)}, not {target}"
    return vals, note, None


def _check_value(c: Claim, measured, target) -> dict:
    rule = "holds if at least one method of the precision meets it"
    ok, why = _pool(c, measured)
    if why:
        return _row(c, detail=why, rule=rule)
    vals, note, why = _values(c, ok, target)
    if why:
        return _row(c, detail=why, rule=rule)
    lo, hi = c.bounds()
    better = METRICS[c.metric][1]

    def f(v):
        return fmt_value(v, c.unit)

    inside = [(m, v) for m, v in vals if _within(v, lo, hi)]
    order = sorted(vals, key=lambda mv: mv[1], reverse=(better != "lower"))
    best, worst = order[0], order[-1]
    if len(vals) == 1:
        measured_txt = f"{f(best[1])} ({_src(best[0])})"
    else:
        measured_txt = (f"best {f(best[1])} ({_src(best[0])}); worst {f(worst[1])} ({_src(worst[0])})"
                        if better else "; ".join(f"{f(v)} ({_src(m)})" for m, v in order))
    evidence = "; ".join(f"{_src(m)}: {f(v)} {'✓' if _within(v, lo, hi) else '✗'}" for m, v in order)
    holds_for = f"{len(inside)}/{len(vals)} methods"
    if inside:
        verdict = "holds"
        detail = f"{len(inside)} of {len(vals)} methods within {c.expected_text()}"
        if c.approx:
            exact = [(m, v) for m, v in inside if _within(v, c.min, c.max)]
            if not exact:
                detail += " (only within the ~ tolerance)"
    else:
        verdict = "fails"
        closest = min(vals, key=lambda mv: _miss(mv[1], lo, hi, better)[0])
        detail = f"closest: {_src(closest[0])} at {f(closest[1])}, " + _miss(closest[1], lo, hi, better, c.unit)[1]
    if note:
        detail += f"; {note}"
    return _row(c, measured_txt, verdict, detail, evidence, rule, holds_for)


def _selector(spec, sel: dict) -> bool:
    needs = set(spec.needs) if spec else set()
    if sel.get("needs") and not needs & set(sel["needs"]):
        return False
    if sel.get("needs_none") and needs & set(sel["needs_none"]):
        return False
    return True


def _check_relation(c: Claim, measured, target) -> dict:
    rule = "best method of each side, compared within each run and device; holds if it holds in all of them"
    ok, why = _pool(c, measured)
    if why:
        return _row(c, detail=why, rule=rule)
    better = METRICS[c.metric][1] or "higher"
    pick = min if better == "lower" else max
    groups: dict[tuple, list[Measured]] = {}
    for m in ok:
        groups.setdefault(compare.group_key(m.result), []).append(m)
    compared, missing = [], []
    for key, ms in groups.items():
        sides = []
        for sel in (c.left, c.right):
            vs = [(m, m.get(c.metric)) for m in ms
                  if _selector(compare.spec_of(m.result), sel) and m.get(c.metric) is not None]
            sides.append(vs)
        if sides[0] and sides[1]:
            a = pick(sides[0], key=lambda mv: mv[1])
            b = pick(sides[1], key=lambda mv: mv[1])
            compared.append((key, a, b, RELATIONS[c.relation](a[1], b[1])))
        else:
            side = "left" if not sides[0] else "right"
            sel = c.left if side == "left" else c.right
            missing.append(f"run '{key[0]}' ({key[3]}): no method that {_sel_text(sel)} has {c.metric}")
    if not compared:
        return _row(c, detail="; ".join(missing[:2]) or "no run measured both sides", rule=rule)
    txt = "; ".join(f"{_src(a[0])} {a[1]:.4g} vs {_src(b[0])} {b[1]:.4g}" for _, a, b, _ in compared)
    held = [x for x in compared if x[3]]
    verdict = "holds" if len(held) == len(compared) else "fails"
    detail = f"holds in {len(held)} of {len(compared)} run/device comparisons"
    if verdict == "fails":
        _, a, b, _ = next(x for x in compared if not x[3])
        detail += f"; e.g. {a[0].label} {a[1]:.4g} vs {b[0].label} {b[1]:.4g} (difference {a[1] - b[1]:+.4g})"
    return _row(c, txt, verdict, detail, txt, rule, f"{len(held)}/{len(compared)} runs")


def _sel_text(sel) -> str:
    sel, parts = sel or {}, []
    if sel.get("needs"):
        parts.append("need " + " or ".join(sel["needs"]))
    if sel.get("needs_none"):
        parts.append("need none of " + "/".join(sel["needs_none"]))
    return " and ".join(parts) or "any"


def _check_recommendation(c: Claim, results, measured, batch_size, seq_len, baseline) -> dict:
    from .recommend import recommend
    params = dict(c.recommend or {})
    devices = params.pop("device", ["cpu"])
    devices = [devices] if isinstance(devices, str) else list(devices)
    rule = "recommend() under the claim's constraints; holds if the chosen precision is the expected one " \
           "on every device with results"
    outcomes, missing = [], []
    for dev in devices:
        rec = recommend(results, device=dev, batch_size=batch_size, seq_len=seq_len, baseline=baseline,
                        measured=measured, **params)
        if rec.table is None or rec.table.empty:
            missing.append(f"{dev}: {rec.explanation}")
            continue
        if not rec.ok:
            missing.append(f"{dev}: no method meets the constraints ({rec.explanation})")
            continue
        outcomes.append((dev, rec))
    if not outcomes:
        return _row(c, detail="; ".join(missing), rule=rule)
    expected = set(c.expected or [])
    judged = []
    for d, r in outcomes:
        t = r.table
        if (t["precision"].isin(expected) & (t["status"] == "ok")).any():
            judged.append((d, r))
        else:
            missing.append(f"{d}: no {'/'.join(sorted(expected))} method measured there (so the choice between "
                           f"precisions cannot be judged; {r.choice} ({r.precision}) leads)")
    outcomes = judged
    if not outcomes:
        return _row(c, detail="; ".join(missing), rule=rule)
    measured_txt = "; ".join(f"{d}: {r.choice} ({r.precision})" for d, r in outcomes)
    fails = [(d, r) for d, r in outcomes if r.precision not in (c.expected or [])]
    if not fails:
        detail = "; ".join(f"{d}: {r.explanation.rstrip('.')}" for d, r in outcomes)
        verdict = "holds"
    else:
        verdict = "fails"
        parts = []
        for d, r in fails:
            t = r.table
            exp = t[t["precision"].isin(c.expected or []) & (t["status"] == "ok")]
            e = exp.iloc[0]
            rank = f"ranked #{int(e['rank'])}" if pd.notna(e["rank"]) else f"not eligible ({e['why not']})"
            parts.append(f"{d}: {r.choice} ({r.precision}) won; the best {'/'.join(c.expected)} method, "
                         f"{e['method']}, is {rank}" + _gap(r, e, params.get("objective", "speed")))
        detail = "; ".join(parts)
    if missing:
        detail += "; not judged on " + "; ".join(missing)
    return _row(c, measured_txt, verdict, detail, measured_txt, rule,
                f"{len(outcomes) - len(fails)}/{len(outcomes)} devices")


def _gap(rec, row, objective) -> str:
    t = rec.table
    won = t[t["method"] == rec.choice].iloc[0]
    col = {"speed": "speed x fp32", "memory": "memory MB", "quality": "quality %"}[objective]
    if col == "memory MB" and pd.isna(won.get(col)):
        col = "size MB"
    a, b = won.get(col), row.get(col)
    if a is None or b is None or pd.isna(a) or pd.isna(b):
        return ""
    return f" ({col}: {b:.4g} vs {a:.4g})"


def check(results, claims: list[Claim] | None = None, batch_size: int = 32, seq_len: int = 128,
          baseline: str = "fp32", target_model: str = compare.TARGET_MODEL,
          measured: list[Measured] | None = None) -> pd.DataFrame:
    """One row per claim: id, paraphrase, expected, measured, verdict, detail (by how much / why not),
    how many methods it holds for, the evidence (method @ run/device per value), and how it was read."""
    results = list(results)
    claims = load_claims() if claims is None else claims
    if measured is None:
        measured = compare.measure_all(results, batch_size, seq_len, baseline)
    rows = []
    for c in claims:
        if c.kind == "recommendation":
            rows.append(_check_recommendation(c, results, measured, batch_size, seq_len, baseline))
        elif c.kind == "relation":
            rows.append(_check_relation(c, measured, target_model))
        else:
            rows.append(_check_value(c, measured, target_model))
    df = pd.DataFrame(rows)
    df.attrs["rules"] = __doc__.split("Rules, stated once:")[1].strip()
    df.attrs["batch_size"], df.attrs["seq_len"] = batch_size, seq_len
    return df


def tally(ledger: pd.DataFrame) -> dict:
    """Counts of verdicts (for a one-line summary)."""
    return {k: int(v) for k, v in ledger["verdict"].value_counts().items()} if not ledger.empty else {}
