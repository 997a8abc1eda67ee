"""Views of the measured table for people: every figure with its 95% interval, rounded for display.

Each view reads :class:`~bgeq_utils.compare.measured.Measured` and nothing else; a cell with an interval
reads ``value [low, high]``; a quality cell of a Result whose quality cannot be measured by design reads
``not applicable (<why>)`` (random weights, no labels), never an empty "not measured".
"""
from __future__ import annotations

import pandas as pd

from bgeq_utils.compare.measured import (
    HEADLINE_KEYS,
    QUALITY_KEYS,
    Measured,
    default_rows,
    estimate,
    window_label,
    window_note,
)
from bgeq_utils.core import vocab
from bgeq_utils.core.uncertainty import Estimate
from bgeq_utils.measure import corpus

TARGET_MODEL = "bge-large"


def fmt(row, col: str, digits: int = 2, unit: str = "") -> str | None:
    e = estimate(row, col)
    return None if e is None else e.fmt(digits, unit)


def _num(row, col, digits):
    v = row.get(col)
    return None if v is None or pd.isna(v) else round(float(v), digits)


def quality_na(row) -> str | None:
    """``"not applicable (<why>)"`` for a row whose quality cannot be measured by design, else None."""
    v = row.get("quality_na")
    return None if v is None or pd.isna(v) else str(v)


def _rows(m: Measured, defaults_only: bool, labels=None) -> pd.DataFrame:
    t = default_rows(m) if defaults_only else m.table
    if labels is not None and not t.empty:
        t = t[t["label"].isin(list(labels))]
    return t


def _id(r) -> dict:
    return {"method": r["label"], "precision": r["precision"], "runtime": r["runtime"], "status": r["status"]}


def _finish(rows, m: Measured, note: str = "") -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df[[c for c in df.columns if df[c].notna().any() or c in ("method", "status")]]
    df.attrs.update(batch_size=m.batch_size, seq_len=m.seq_len, note=note)
    return df


def speed(m: Measured, defaults_only: bool = False, labels=None) -> pd.DataFrame:
    """Speed at the comparison's batch and length: tokens/s, and both speed-ups timed side by side."""
    rows, shown = [], _rows(m, defaults_only, labels)
    for _, r in shown.iterrows():
        rows.append(_id(r) | {
            "group": r["group"], "tok/s": fmt(r, "tokens_per_s", 0),
            "x eager fp32": fmt(r, "speed_vs_eager"),
            "x same-runtime fp32": fmt(r, "speed_vs_runtime"), "runtime baseline": r.get("runtime_baseline"),
            "repeats": _num(r, "repeats", 0), "% GEMM ceiling": None if pd.isna(r.get("share_of_ceiling", None))
            else round(100 * float(r["share_of_ceiling"]), 1),
            "b1 latency ms": _num(r, "latency_ms_p50_b1", 2), "window": window_label(r),
            "reason": r["reason"] or None})
    note = window_note(shown)
    df = _finish(rows, m, f"batch {m.batch_size} x {m.seq_len} tokens; speed-ups are medians of per-round "
                          "ratios timed in one window with their baselines, 95% intervals in brackets"
                          + (f"; {note}" if note else ""))
    asked = f"{m.batch_size}x{m.seq_len}"
    cells = shown.get("speed_cell")
    if cells is not None and len(df) == len(cells) and (cells.dropna() != asked).any():
        at = df.columns.get_loc("tok/s") if "tok/s" in df.columns else len(df.columns)
        df.insert(at, "cell", list(cells))                             # a group timed on another grid
    return df


def footprint(m: Measured, defaults_only: bool = False, labels=None) -> pd.DataFrame:
    """Size on disk, weight bytes, inference memory (one definition) and resident memory."""
    rows = []
    for _, r in _rows(m, defaults_only, labels).iterrows():
        rows.append(_id(r) | {
            "group": r["group"], "size MB": _num(r, "disk_mb", 1), "size x fp32": _num(r, "size_ratio", 3),
            "weights MB": _num(r, "param_mb", 1), "memory MB": fmt(r, "memory_mb", 0),
            "memory x fp32": fmt(r, "memory_ratio"), "memory at": r.get("memory_batch") or None,
            "resident MB": fmt(r, "resident_mb", 0), "reason": r["reason"] or None})
    return _finish(rows, m, "memory: peak RSS while embedding one batch of the run's speed cell ('memory at': batch "
                            "x tokens) over a baseline process that imported the method's libraries (CUDA: peak "
                            "allocated), median of fresh processes with their range; resident: after loading, over "
                            "the same baseline")


def fidelity(m: Measured, defaults_only: bool = False, labels=None) -> pd.DataFrame:
    rows = []
    for _, r in _rows(m, defaults_only, labels).iterrows():
        rows.append(_id(r) | {"cos mean": fmt(r, "cos_mean", 4), "cos min": _num(r, "cos_min", 4),
                              "top10 overlap": fmt(r, "top10_overlap", 3), "sim pearson": fmt(r, "sim_pearson", 4),
                              "L2 mean": fmt(r, "l2_mean", 4), "batch cos min": _invariance(r)})
    return _finish(rows, m, "agreement with FP32's embeddings of the same texts; 95% bootstrap intervals over "
                   "texts; batch cos min: the lowest cosine between a text embedded alone and the same text in a "
                   f"length-sorted or a padded batch ({_invariance_texts(m)} texts; 'drifts' below "
                   f"{vocab.INVARIANCE_FLAG}{_not_checked(m)})")


def _not_checked(m: Measured) -> str:
    """Why some rows have no invariance figure, when some do not (random weights)."""
    skipped = m.table.get("batch_skipped", pd.Series(dtype=object)).dropna()
    return f"; not checked: {skipped.iloc[0]}" if len(skipped) else ""


def _invariance_texts(m: Measured) -> str:
    """How many texts the rows' invariance checks used, as recorded (the current default where none is)."""
    n = sorted({int(v) for v in m.table.get("batch_texts", pd.Series(dtype=float)).dropna()})
    return "/".join(map(str, n)) if n else str(corpus.INVARIANCE_BATCH)


def _invariance(row) -> str | None:
    v = _num(row, "batch_cos_min", 6)
    if v is None and isinstance(row.get("batch_skipped"), str):
        return "not checked"      # random weights (the reason is in the Result)
    return None if v is None else f"{v:.6f}" + (" drifts" if v < vocab.INVARIANCE_FLAG else "")


def quality(m: Measured, defaults_only: bool = False, labels=None, metrics=None) -> pd.DataFrame:
    """Quality loss per metric in % of FP32 (paired 95% interval, p of a paired randomization test), and the
    headline: the worst loss over nDCG@10, Recall@10, MRR@10 and Spearman."""
    metrics = metrics or [k for k in QUALITY_KEYS if f"loss:{k}" in m.table]
    rows = []
    for _, r in _rows(m, defaults_only, labels).iterrows():
        row = _id(r)
        for k in metrics:
            row[f"{k}"] = _num(r, f"q:{k}", 4)
            row[f"{k} loss %"] = fmt(r, f"loss:{k}")
        row["headline loss %"] = fmt(r, "quality_loss_pct") or quality_na(r)
        row["worst metric"] = r.get("quality_loss_metric")
        p = r.get("quality_loss_pct_p")
        row["p"] = None if p is None or pd.isna(p) else round(float(p), 4)
        if "proxy_quality_loss_pct" in r and not pd.isna(r.get("proxy_quality_loss_pct")):
            row[f"proxy loss % ({r['proxy_source']})"] = fmt(r, "proxy_quality_loss_pct")
        rows.append(row)
    return _finish(rows, m, "loss = 100 x (1 - metric / FP32's); headline = worst of " + ", ".join(HEADLINE_KEYS)
                   + "; 95% paired bootstrap intervals; p: paired randomization test; not applicable: random "
                   "weights or data without labels (fidelity and speed still measured)")


def quality_values(m: Measured, labels=None) -> pd.DataFrame:
    """The quality metrics themselves (no deltas), rounded: what FP32 scores on the data."""
    rows = []
    for _, r in _rows(m, False, labels).iterrows():
        rows.append({"method": r["label"]} | {k: _num(r, f"q:{k}", 4) for k in QUALITY_KEYS}
                    | {"quality": quality_na(r)})
    return _finish(rows, m)


def guide_table(m: Measured) -> pd.DataFrame:
    """The guide's comparison table, measured: each method's default configuration, by precision, for the
    target model's shape where it was measured (else each group), with quality from the group itself or,
    labelled, from a proxy model."""
    d = default_rows(m)
    if d.empty:
        return pd.DataFrame()
    target = d[d["model"].str.contains(TARGET_MODEL, case=False, regex=False)]
    d = target if not target.empty else d
    rows = []
    for _, r in d.iterrows():
        q = fmt(r, "quality_loss_pct")
        src = "own" if q is not None else None
        if q is None and "proxy_quality_loss_pct" in r and not pd.isna(r.get("proxy_quality_loss_pct")):
            q, src = fmt(r, "proxy_quality_loss_pct"), f"proxy: {r['proxy_source']}"
        q = q or quality_na(r)
        rows.append({"group": r["group"], "precision": r["precision"], "method": r["label"], "status": r["status"],
                     "size MB": _num(r, "disk_mb", 0), "memory MB": fmt(r, "memory_mb", 0),
                     "speed x eager fp32": fmt(r, "speed_vs_eager"),
                     "speed x same-runtime fp32": fmt(r, "speed_vs_runtime"),
                     "quality loss %": q, "quality from": src, "cos to fp32": fmt(r, "cos_mean", 4),
                     "reason": r["reason"] or None})
    windows = [f"{g}: {n}" for g, rows_g in d.groupby("group", sort=False) if (n := window_note(rows_g))]
    return _finish(rows, m, "one row per method (its registry default configuration); quality loss = worst of "
                            + ", ".join(HEADLINE_KEYS) + " in % of FP32, from the group itself or, labelled, from "
                            "the same configuration on a pretrained proxy model (never ranked with this model)"
                            + "".join(f"; {w}" for w in windows))


def variants(m: Measured, method: str) -> pd.DataFrame:
    """Every configuration of one method (detail): speed-ups, memory, fidelity and headline loss."""
    t = m.table[m.table["method"] == method]
    rows = [{"configuration": r["label"], "default": r["is_default"], "status": r["status"],
             "x eager fp32": fmt(r, "speed_vs_eager"), "x same-runtime fp32": fmt(r, "speed_vs_runtime"),
             "memory MB": fmt(r, "memory_mb", 0), "cos mean": fmt(r, "cos_mean", 4),
             "headline loss %": fmt(r, "quality_loss_pct") or quality_na(r), "reason": r["reason"] or None}
            for _, r in t.iterrows()]
    return _finish(rows, m)


def status(m: Measured) -> pd.DataFrame:
    """Which methods ran, and why the others did not (and a later attempt that failed beside a good Result):
    no figure, independent of the CPU."""
    df = pd.DataFrame([{"method": r["label"], "device": r["device"], "status": r["status"], "reason": r["reason"],
                        "latest attempt": r.get("latest_attempt") or ""} for _, r in m.table.iterrows()])
    if not df.empty and not (df["latest attempt"] != "").any():
        df = df.drop(columns="latest attempt")
    return df


def speed_grid(result) -> pd.DataFrame:
    """Every cell of one Result's speed grid: tokens/s, latency, and both speed-ups with their 95% intervals."""
    rows = []
    for r in result.speed:
        t = Estimate(r["tokens_per_s"], r.get("tokens_per_s_low"), r.get("tokens_per_s_high"))
        row = {"batch": r["batch_size"], "seq": r["seq_len"], "repeats": r.get("repeats"), "tok/s": t.fmt(0),
               "p50 ms": round(r["latency_ms_p50"], 2), "p95 ms": round(r["latency_ms_p95"], 2)}
        for role in ("eager", "runtime"):
            d = r.get(f"vs_{role}") or {}
            e = Estimate.from_dict(d)
            row[f"x {d.get('baseline', role)}"] = e.fmt(2) if e is not None else d.get("missing")
        if r.get("share_of_ceiling") is not None:
            row["% GEMM ceiling"] = round(100 * r["share_of_ceiling"], 1)
        if r.get("stopped"):
            row["stopped"] = r["stopped"]
        rows.append(row)
    return pd.DataFrame(rows)


def fastest(m: Measured, method: str, column: str = "speed_vs_runtime") -> str:
    """The configuration of ``method`` with the highest speed-up (and its interval), and whether the intervals
    separate it from the next one."""
    t = m.table[(m.table["method"] == method) & (m.table["status"] == vocab.OK)]
    if column not in t or t[column].dropna().empty:
        return "not measured"
    t = t.sort_values(column, ascending=False)
    best = t.iloc[0]
    out = f"{best['label']} ({fmt(best, column)}x)"
    if len(t) > 1:
        nxt = t.iloc[1]
        b, n = estimate(best, column), estimate(nxt, column)
        clear = b is not None and n is not None and b.has_interval and n.has_interval and b.low > n.high
        out += f", {'ahead of' if clear else 'not separated at 95% from'} {nxt['label']} ({fmt(nxt, column)}x)"
    return out


def corpus_throughput(record: dict) -> pd.DataFrame:
    """Whole passes over a corpus of real lengths in length-sorted batches (``measure.corpus``), side by side."""
    rows = []
    for r in record.get("rows", []):
        s = Estimate(r["sentences_per_s"], r.get("sentences_per_s_low"), r.get("sentences_per_s_high"))
        ratio = Estimate.from_dict(r["vs_baseline"])
        rows.append({"method": r["method"], "sentences/s": s.fmt(1), "real tokens/s": round(r["tokens_per_s"]),
                     f"x {r['vs_baseline']['baseline']}": ratio.fmt(2), "padding %": round(100 * r["padding_waste"], 1),
                     "padding % unsorted": round(100 * r["unsorted_padding_waste"], 1), "passes": r["repeats"],
                     "stopped": r["stopped"]})
    df = pd.DataFrame(rows)
    df.attrs["note"] = (f"{record.get('corpus')}: {record['rows'][0]['texts'] if record.get('rows') else 0} texts, "
                        f"batches of {record.get('batch_size')} sorted by length, cut at {record.get('max_length')} "
                        "tokens; medians over whole passes with 95% intervals, ratios paired by pass; padding %: "
                        "share of computed tokens that are padding (unsorted: batches in corpus order)")
    return df


def window(rows: list[dict]) -> pd.DataFrame:
    """Configurations timed in one interleaved window (``measure.speed.window``): tokens/s, the speed-up over
    the window's first configuration and over its fastest FP32 one, share of the same-precision GEMM ceiling."""
    out = []
    for r in rows:
        t = Estimate(r["tokens_per_s"], r.get("tokens_per_s_low"), r.get("tokens_per_s_high"))
        row = {"configuration": r["label"], "batch": f"{r['batch_size']}x{r['seq_len']}", "tok/s": t.fmt(0)}
        for role in ("first", "best_fp32"):
            d = r.get(f"vs_{role}")
            if d:
                row[f"x {d['baseline']}" if role == "first" else "x best FP32"] = Estimate.from_dict(d).fmt(2)
        best = (r.get("vs_best_fp32") or {}).get("baseline")
        row["best FP32"] = best
        row["% GEMM ceiling"] = None if r.get("share_of_ceiling") is None else round(100 * r["share_of_ceiling"], 1)
        row["rounds"] = r["repeats"]
        out.append(row)
    df = pd.DataFrame(out)
    df.attrs["note"] = ("one interleaved window: every configuration alternates call by call on the same inputs; "
                        "ratios are medians of per-round ratios with 95% intervals; % GEMM ceiling against the "
                        "best square GEMM of the configuration's compute precision measured here")
    return df
