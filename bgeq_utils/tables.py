"""Rounded, side-by-side tables of Results (what notebooks display)."""
from __future__ import annotations

import pandas as pd

from .metrics import QUALITY_KEYS

MB = 1e6


def _speed(r, b, L):
    row = r.speed_at(b, L)
    return row["tokens_per_s"] if row else None


def summary(results, baseline: str = "fp32", batch_sizes=(1, 32), seq_len: int = 128,
            quality_keys=QUALITY_KEYS) -> pd.DataFrame:
    """One row per Result: size, memory, speed (and ratio to the baseline), fidelity, quality (% of baseline)."""
    results = list(results)
    base = {r.device_kind: r for r in results if r.label == baseline and r.status == "ok"}
    rows = []
    for r in results:
        b = base.get(r.device_kind)
        row = {"method": r.label, "device": r.device_kind, "status": r.status,
               "size MB": r.size.get("disk_bytes", float("nan")) / MB if r.size.get("disk_bytes") else None,
               "resident MB": r.memory.get("model_rss_bytes", 0) / MB if r.memory.get("model_rss_bytes") else None,
               "peak MB": (r.memory.get("peak_cuda_bytes") or r.memory.get("peak_rss_bytes") or 0) / MB or None}
        for bs in batch_sizes:
            t = _speed(r, bs, seq_len)
            row[f"tok/s b{bs}"] = t
            bt = _speed(b, bs, seq_len) if b else None
            row[f"x fp32 b{bs}"] = t / bt if t and bt else None
        sp = r.speed_at(max(batch_sizes), seq_len) or {}
        row["% ceiling"] = 100 * sp["share_of_ceiling"] if sp.get("share_of_ceiling") is not None else None
        f = r.fidelity or {}
        row["cos mean"], row["cos min"] = f.get("cos_mean"), f.get("cos_min")
        row["top10 overlap"] = f.get("top10_overlap")
        for k in quality_keys:
            v = (r.quality or {}).get(k)
            row[k] = v
            bv = (b.quality or {}).get(k) if b else None
            row[f"{k} %"] = 100 * v / bv if v is not None and bv else None
        if r.status != "ok":
            row["reason"] = r.reason
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.dropna(axis=1, how="all")


def rounded(df: pd.DataFrame) -> pd.DataFrame:
    """Round for display: sizes and speeds to whole numbers, ratios to 2, metrics to 4 decimals."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype.kind != "f":
            continue
        if c.startswith(("tok/s", "size", "resident", "peak")):
            out[c] = out[c].round(0)
        elif c.startswith(("x ", "%")) or c.endswith("%"):
            out[c] = out[c].round(2)
        else:
            out[c] = out[c].round(4)
    return out


def speed_long(results) -> pd.DataFrame:
    """Long format speed rows (for seaborn)."""
    rows = []
    for r in results:
        for s in r.speed:
            rows.append({"method": r.label, "device": r.device_kind, **s})
    return pd.DataFrame(rows)
