"""The comparison: every Result of many runs, measured side by side against FP32 of the same run and device.

Nothing here knows a method by name. A Result's precision and library come from the record itself
(falling back to the method registry), its FP32 baseline is the reference method of its own run,
model and device, and the "best use" of a method is derived from its numbers by stated rules.
The same per-result metrics (:func:`measure_all`) feed the table, the claims ledger and the
recommendation, so the three never disagree about a number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import paths
from . import results as results_mod
from .metrics import QUALITY_KEYS
from .results import Result

GB = 1e9
MB = 1e6
#: the metrics the guide names when it speaks of retrieval degradation ("R@10, MRR")
RETRIEVAL_KEYS = ("recall@10", "mrr@10")
#: display order of precisions (others follow alphabetically)
PRECISION_ORDER = ("fp32", "bf16", "fp16", "int8", "int4", "nf4", "fp4")
#: model presets/ids whose absolute sizes the guide's GB figures describe
TARGET_MODEL = "bge-large"


# --- loading ------------------------------------------------------------------------------------
def resolve_source(source: str | Path) -> Path:
    """A run name -> outputs/<run>/results; a folder path -> itself (relative paths from the repo root)."""
    s = str(source)
    p = Path(s).expanduser()
    looks_like_path = p.is_absolute() or "/" in s or s.startswith(".")
    if looks_like_path:
        return p if p.is_absolute() else (paths.ROOT / p)
    return paths.results_dir(s)


def load(runs=(), extra_result_dirs=()) -> tuple[list[Result], list[str]]:
    """Results of run names and result folders, de-duplicated; plus messages about what was missing.

    A source that does not exist is reported, not raised: the comparison works with whatever subset
    of runs exists. Unreadable files are reported by name and left out.
    """
    found: dict[tuple, Result] = {}
    messages = []
    runs = [runs] if isinstance(runs, (str, Path)) else list(runs or [])
    extra = [extra_result_dirs] if isinstance(extra_result_dirs, (str, Path)) else list(extra_result_dirs or [])
    for src in runs + extra:
        try:
            folder = resolve_source(src)
        except ValueError as e:          # a run name that is not a valid folder name
            messages.append(f"{src!r}: {e}")
            continue
        if not folder.is_dir():
            messages.append(f"{src!r}: no results folder at {folder}")
            continue
        files = sorted(folder.glob("*.json"))
        if not files:
            messages.append(f"{src!r}: {folder} holds no result files")
            continue
        n = 0
        for f in files:
            try:
                r = results_mod.load(f)
            except results_mod.ResultsFileError as e:
                messages.append(f"{src!r}: left out {f.name}: {e}")
                continue
            key = (r.run, r.label, r.device_kind, r.model.get("id"), r.model.get("weights"),
                   r.device.get("gpu_name") or r.device.get("cpu_model"))
            if key not in found or (r.created or "") >= (found[key].created or ""):
                found[key] = r
            n += 1
        messages.append(f"{src!r}: {n} results from {folder}")
    return list(found.values()), messages


# --- registry metadata --------------------------------------------------------------------------
def spec_of(result: Result):
    """The registry entry of a Result's method, or None (a record of a method this install lacks)."""
    from . import methods
    try:
        return methods.get(result.method)
    except KeyError:
        return None


def precision_of(result: Result) -> str:
    if result.precision:
        return result.precision
    spec = spec_of(result)
    return spec.precision if spec else "?"


def library_of(result: Result) -> str:
    if result.library:
        return result.library
    spec = spec_of(result)
    return spec.library if spec else "?"


def precision_rank(p: str) -> tuple:
    return (PRECISION_ORDER.index(p), p) if p in PRECISION_ORDER else (len(PRECISION_ORDER), p)


# --- groups and baselines -----------------------------------------------------------------------
def group_key(r: Result) -> tuple:
    """Results are comparable within one run, model, weights and device."""
    return (r.run, r.model.get("id", "?"), r.model.get("weights", "?"), r.device_kind,
            r.device.get("gpu_name") or r.device.get("cpu_model") or "?")


def is_target_model(r: Result, target: str = TARGET_MODEL) -> bool:
    t = target.lower()
    return (r.model.get("preset") or "").lower() == t or t in str(r.model.get("id", "")).lower()


def find_baseline(group: list[Result], baseline: str = "fp32") -> Result | None:
    """The FP32 reference of a group: the Result labelled ``baseline``; failing that, the ok FP32-precision
    Result closest to the reference embeddings (highest mean cosine), ties by label."""
    ok = [r for r in group if r.status == "ok"]
    named = [r for r in ok if r.label == baseline]
    if named:
        return named[0]
    fp32 = [r for r in ok if precision_of(r) == "fp32"]
    if not fp32:
        return None
    return sorted(fp32, key=lambda r: (-(r.fidelity or {}).get("cos_mean", -1.0), r.label))[0]


# --- per-result metrics (one definition for table, ledger and recommendation) --------------------
METRICS = {
    # name: (unit, which direction is better)
    "disk_gb": ("GB", "lower"), "param_gb": ("GB", "lower"), "params_m": ("M", None),
    "memory_gb": ("GB", "lower"), "resident_gb": ("GB", "lower"), "activation_mb": ("MB", "lower"),
    "size_ratio": ("x FP32", "lower"), "memory_ratio": ("x FP32", "lower"),
    "tokens_per_s": ("tokens/s", "higher"), "speed_ratio": ("x FP32", "higher"),
    "quality_pct": ("% of FP32", "higher"), "quality_loss_pct": ("%", "lower"),
    "retrieval_degradation_pct": ("%", "lower"),
    "cos_mean": ("", "higher"), "cos_min": ("", "higher"), "l2_mean": ("", "lower"), "l2_max": ("", "lower"),
    "top10_overlap": ("", "higher"), "sim_pearson": ("", "higher"),
}


@dataclass
class Measured:
    """One Result's numbers, absolute and relative to its group's FP32 baseline, with reasons for gaps."""
    result: Result
    baseline: Result | None
    values: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)     # metric -> why it has no value
    quality_keys: tuple = ()                         # quality metrics that entered quality_pct

    @property
    def label(self) -> str:
        return self.result.label

    @property
    def precision(self) -> str:
        return precision_of(self.result)

    @property
    def is_baseline(self) -> bool:
        return self.baseline is not None and self.baseline is self.result

    def get(self, metric: str):
        return self.values.get(metric)


def _memory_bytes(r: Result) -> tuple[float | None, float | None]:
    """(peak during inference attributable to the model, resident model) in bytes for the Result's device."""
    m = r.memory or {}
    if r.device_kind == "cuda":
        return m.get("peak_cuda_bytes"), m.get("cuda_model_bytes")
    peak = m.get("inference_peak_over_baseline_bytes")
    if peak is None and m.get("peak_rss_bytes") is not None and m.get("baseline_rss_bytes") is not None:
        peak = m["peak_rss_bytes"] - m["baseline_rss_bytes"]
    return peak, m.get("model_rss_bytes")


def _saturated(key: str, r: Result) -> bool:
    """recall@k cannot move when the corpus has no more than k documents: such a metric is left out."""
    if not key.startswith("recall@"):
        return False
    docs = (r.dataset or {}).get("documents")
    try:
        return docs is not None and int(docs) <= int(key.split("@")[1])
    except ValueError:
        return False


def _fmt_run(r: Result) -> str:
    return f"run '{r.run}' ({r.device_kind})"


def measure(r: Result, base: Result | None, batch_size: int = 32, seq_len: int = 128) -> Measured:
    m = Measured(r, base)
    v, miss = m.values, m.missing
    if r.status != "ok":
        why = f"{r.status}: {r.reason or 'no reason recorded'}"
        for k in METRICS:
            miss[k] = why
        return m
    no_base = f"no FP32 baseline (status ok) in {_fmt_run(r)} to form the ratio"

    # size
    disk, pbytes = (r.size or {}).get("disk_bytes"), (r.size or {}).get("param_bytes")
    v["disk_gb"] = disk / GB if disk else None
    v["param_gb"] = pbytes / GB if pbytes else None
    v["params_m"] = r.model.get("parameters") / 1e6 if r.model.get("parameters") else None
    if not disk:
        miss["disk_gb"] = miss["size_ratio"] = f"size on disk was not measured in {_fmt_run(r)}"
    if not pbytes:
        miss["param_gb"] = "parameter bytes were not reported by this method's encoder"
    bdisk = (base.size or {}).get("disk_bytes") if base else None
    v["size_ratio"] = disk / bdisk if disk and bdisk else None
    if disk and not bdisk:
        miss["size_ratio"] = no_base if base is None else "the FP32 baseline has no size on disk"

    # memory
    peak, resident = _memory_bytes(r)
    v["memory_gb"] = peak / GB if peak else None
    v["resident_gb"] = resident / GB if resident else None
    v["activation_mb"] = (peak - resident) / MB if peak and resident is not None else None
    if not peak:
        why = (f"memory was not measured in {_fmt_run(r)} (BenchConfig(memory=False) or an older record)")
        for k in ("memory_gb", "resident_gb", "activation_mb", "memory_ratio"):
            miss[k] = why
    bpeak = _memory_bytes(base)[0] if base else None
    v["memory_ratio"] = peak / bpeak if peak and bpeak else None
    if peak and not bpeak:
        miss["memory_ratio"] = no_base if base is None else "memory of the FP32 baseline was not measured"

    # speed
    row = r.speed_at(batch_size, seq_len)
    v["tokens_per_s"] = row.get("tokens_per_s") if row else None
    v["latency_ms_p50_b1"] = (r.speed_at(1, seq_len) or {}).get("latency_ms_p50")
    v["share_of_ceiling"] = row.get("share_of_ceiling") if row else None
    if not row:
        have = sorted({(s.get("batch_size"), s.get("seq_len")) for s in r.speed})
        miss["tokens_per_s"] = miss["speed_ratio"] = (
            f"no speed row at batch {batch_size} x {seq_len} tokens in {_fmt_run(r)} (measured: {have or 'none'})")
    brow = base.speed_at(batch_size, seq_len) if base else None
    v["speed_ratio"] = row["tokens_per_s"] / brow["tokens_per_s"] if row and brow else None
    if row and not brow:
        miss["speed_ratio"] = no_base if base is None else \
            f"the FP32 baseline has no speed row at batch {batch_size} x {seq_len}"

    # quality, as % of the baseline's
    qkeys = ()
    if r.model.get("weights") == "random":
        why = f"random weights have no quality ({_fmt_run(r)}); quality needs a pretrained run"
        for k in ("quality_pct", "quality_loss_pct", "retrieval_degradation_pct"):
            miss[k] = why
    elif not r.quality:
        for k in ("quality_pct", "quality_loss_pct", "retrieval_degradation_pct"):
            miss[k] = f"quality was not measured in {_fmt_run(r)}"
    elif not base or not base.quality:
        for k in ("quality_pct", "quality_loss_pct", "retrieval_degradation_pct"):
            miss[k] = no_base if base is None else "the FP32 baseline has no quality"
    else:
        pct = {}
        for k in QUALITY_KEYS:
            a, b = r.quality.get(k), base.quality.get(k)
            if a is None or not b or _saturated(k, r):
                continue
            pct[k] = 100.0 * a / b
            v[f"quality_pct[{k}]"] = pct[k]
        qkeys = tuple(pct)
        if pct:
            v["quality_pct"] = float(np.mean(list(pct.values())))
            v["quality_loss_pct"] = 100.0 - v["quality_pct"]
        else:
            miss["quality_pct"] = miss["quality_loss_pct"] = "no quality metric shared with the baseline"
        ret = [pct[k] for k in RETRIEVAL_KEYS if k in pct]
        if ret:
            v["retrieval_degradation_pct"] = 100.0 - float(np.mean(ret))
        else:
            miss["retrieval_degradation_pct"] = f"no retrieval metric ({', '.join(RETRIEVAL_KEYS)}) measured"
    m.quality_keys = qkeys

    # fidelity to the FP32 embeddings
    f = r.fidelity or {}
    for k in ("cos_mean", "cos_min", "l2_mean", "l2_max", "top10_overlap", "sim_pearson"):
        v[k] = f.get(k)
        if f.get(k) is None:
            miss[k] = (f"fidelity was not measured in {_fmt_run(r)} (no reference embeddings)" if not f
                       else f"{k} was not computed (too few texts)")
    return m


def measure_all(results, batch_size: int = 32, seq_len: int = 128, baseline: str = "fp32") -> list[Measured]:
    groups: dict[tuple, list[Result]] = {}
    for r in results:
        groups.setdefault(group_key(r), []).append(r)
    out = []
    for key, group in groups.items():
        base = find_baseline(group, baseline)
        for r in group:
            out.append(measure(r, base, batch_size, seq_len))
    return out


# --- "best use": derived from the numbers by stated rules ----------------------------------------
@dataclass
class UseRules:
    """Thresholds that turn numbers into a 'best use' phrase. Shown with every table."""
    max_quality_loss_pct: float = 1.0   # quality counts as kept when the mean loss is at most this
    proxy_min_cos: float = 0.99         # without quality (random weights): mean cosine to FP32 at least this
    faster: float = 1.10                # a speed ratio at least this is a speedup (beyond timing noise)
    slower: float = 0.90                # below this it is a slowdown
    smaller: float = 0.75               # memory (or size, when memory is unmeasured) ratio at most this
    extreme_quality_loss_pct: float = 5.0   # beyond the tolerance but within this: extreme constraints only

    def describe(self) -> str:
        return (f"quality kept = mean quality loss <= {self.max_quality_loss_pct:g}% of FP32 "
                f"(without quality: mean cosine to FP32 >= {self.proxy_min_cos:g}); faster = speed >= "
                f"{self.faster:g}x FP32 on the same device; slower = < {self.slower:g}x; smaller = memory "
                f"(else size on disk) <= {self.smaller:g}x FP32; beyond the quality tolerance but within "
                f"{self.extreme_quality_loss_pct:g}% loss = extreme memory constraints only")


def quality_verdict(m: Measured, max_loss_pct: float, proxy_min_cos: float) -> tuple[bool | None, str]:
    """(kept?, evidence) from quality when measured, else from fidelity as a proxy, else (None, why)."""
    loss = m.get("quality_loss_pct")
    if loss is not None:
        return loss <= max_loss_pct + 1e-9, f"quality loss {loss:.2f}%"
    cos = m.get("cos_mean")
    if cos is not None:
        return cos >= proxy_min_cos, f"cos {cos:.4f} (fidelity proxy)"
    return None, "no quality or fidelity measured"


def best_use(m: Measured, rules: UseRules = UseRules()) -> str:
    r = m.result
    if r.status != "ok":
        return f"not measured: {r.status} ({r.reason or 'no reason'})"
    if m.is_baseline:
        return "reference: maximum accuracy"
    kept, qtxt = quality_verdict(m, rules.max_quality_loss_pct, rules.proxy_min_cos)
    speed, mem, size = m.get("speed_ratio"), m.get("memory_ratio"), m.get("size_ratio")
    shrink = mem if mem is not None else size
    shrink_txt = (f"{mem:.2f}x FP32 memory" if mem is not None else
                  f"{size:.2f}x FP32 size" if size is not None else "")
    dev = "GPU" if r.device_kind == "cuda" else "CPU"
    if kept is None:
        return "undetermined: " + qtxt
    parts = []
    if kept and speed is not None and speed >= rules.faster:
        parts.append(f"{dev} inference ({speed:.2f}x FP32, {qtxt})")
    if shrink is not None and shrink <= rules.smaller:
        if kept:
            parts.append(f"memory-constrained ({shrink_txt})")
        else:
            loss = m.get("quality_loss_pct")
            if loss is not None and loss <= rules.extreme_quality_loss_pct:
                parts.append(f"extreme memory constraints only ({shrink_txt}, {qtxt})")
    if parts:
        if speed is not None and speed < rules.slower:
            parts.append(f"but {speed:.2f}x FP32 speed")
        return "; ".join(parts)
    if not kept:
        return f"none measured here: {qtxt} exceeds the tolerance"
    if speed is not None and speed < rules.slower:
        return f"none measured here: slower than FP32 ({speed:.2f}x) without a memory saving"
    if speed is None and shrink is None:
        return "undetermined: no speed, memory or size ratio"
    return "no measured advantage over FP32"


# --- the tables ---------------------------------------------------------------------------------
def _model_name(r: Result) -> str:
    mid = str(r.model.get("id", "?")).split("/")[-1]
    return f"{mid} ({r.model.get('weights', '?')})"


def _device_name(r: Result) -> str:
    if r.device_kind == "cuda":
        return r.device.get("gpu_name") or "GPU"
    return f"{r.device.get('cpu_model', 'CPU')} x{r.device.get('cpu_count', '?')}"


def _pct_cols(measured) -> list[str]:
    keys = []
    for m in measured:
        for k in m.quality_keys:
            if k not in keys:
                keys.append(k)
    return [k for k in QUALITY_KEYS if k in keys]


def table(results_or_measured, batch_size: int = 32, seq_len: int = 128, baseline: str = "fp32",
          rules: UseRules = UseRules()) -> pd.DataFrame:
    """One row per Result: size, memory, speed on its device (ratio to FP32 of the same run), quality as %
    of FP32 per metric and their mean, fidelity, and the best use its numbers support."""
    items = list(results_or_measured)
    measured = items if items and isinstance(items[0], Measured) else measure_all(items, batch_size, seq_len,
                                                                                   baseline)
    qcols = _pct_cols(measured)
    rows = []
    for m in measured:
        r, v = m.result, m.values
        spec = spec_of(r)
        cuda = r.device_kind == "cuda"

        def mb(x):
            return None if x is None else x * GB / MB
        row = {
            "run": r.run, "model": _model_name(r), "device": r.device_kind, "device name": _device_name(r),
            "method": r.label, "precision": precision_of(r), "library": library_of(r),
            "needs": ", ".join(spec.needs) if spec else "", "status": r.status,
            "size MB": mb(v.get("disk_gb")), "size x fp32": v.get("size_ratio"),
            "memory MB": mb(v.get("memory_gb")), "memory x fp32": v.get("memory_ratio"),
            "cpu tok/s": None if cuda else v.get("tokens_per_s"),
            "cpu x fp32": None if cuda else v.get("speed_ratio"),
            "gpu tok/s": v.get("tokens_per_s") if cuda else None,
            "gpu x fp32": v.get("speed_ratio") if cuda else None,
            "b1 latency ms": v.get("latency_ms_p50_b1"),
        }
        for k in qcols:
            row[f"{k} %"] = v.get(f"quality_pct[{k}]")
        row["quality %"] = v.get("quality_pct")
        row["cos mean"], row["cos min"] = v.get("cos_mean"), v.get("cos_min")
        row["top10 overlap"], row["l2 mean"] = v.get("top10_overlap"), v.get("l2_mean")
        row["best use"] = best_use(m, rules)
        row["reason"] = r.reason if r.status != "ok" else ""
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=["run", "model", "device", "method", "precision", "status", "best use",
                                   "reason"])
    else:
        df["_p"] = df["precision"].map(precision_rank)
        df = df.sort_values(["run", "device", "_p", "method"], kind="stable").drop(columns="_p")
        df = df.reset_index(drop=True)
        keep = [c for c in df.columns if c in ("reason", "needs") or df[c].notna().any()]
        df = df[keep]
        if not (df["reason"] != "").any():
            df = df.drop(columns="reason")
        if not (df["needs"] != "").any():
            df = df.drop(columns="needs")
    df.attrs["batch_size"], df.attrs["seq_len"] = batch_size, seq_len
    df.attrs["notes"] = [
        f"speed: tokens/s at batch {batch_size} x {seq_len} tokens (median); 'x fp32' = ratio to the FP32 "
        f"baseline ('{baseline}') of the same run, model and device",
        "memory: peak during inference attributable to the model (CPU: peak RSS over the process baseline, "
        "fresh process; CUDA: peak allocated)",
        "quality %: each metric as % of FP32's; 'quality %' is their mean (recall@k is left out when the "
        "corpus has at most k documents: it cannot move)",
        "best use rules: " + rules.describe(),
    ]
    return df


#: how a representative method is chosen where the guide speaks per precision
REPRESENTATIVE_RULES = {
    "balanced": "the fastest method on the device whose quality is kept (mean loss within the tolerance, or "
                "mean cosine >= the proxy threshold without quality); if none is kept, the one with the "
                "highest quality (or cosine)",
    "best-quality": "the method with the highest mean quality % of FP32 (cosine without quality); ties by speed",
    "fastest": "the fastest method on the device, whatever its quality",
}


def _representative(ms: list[Measured], rule: str, rules: UseRules) -> Measured:
    def q(m):
        v = m.get("quality_pct")
        return v if v is not None else (m.get("cos_mean") or -math.inf) * 100

    def s(m):
        v = m.get("speed_ratio")
        return v if v is not None else -math.inf

    if rule == "fastest":
        return max(ms, key=lambda m: (s(m), q(m)))
    if rule == "best-quality":
        return max(ms, key=lambda m: (q(m), s(m)))
    kept = [m for m in ms if quality_verdict(m, rules.max_quality_loss_pct, rules.proxy_min_cos)[0]]
    if kept:
        return max(kept, key=lambda m: (s(m), q(m)))
    return max(ms, key=lambda m: (q(m), s(m)))


def by_precision(results_or_measured, batch_size: int = 32, seq_len: int = 128, baseline: str = "fp32",
                 rule: str = "balanced", rules: UseRules = UseRules()) -> pd.DataFrame:
    """The guide's comparison table, measured: one row per precision per run and device, from a
    representative method chosen by ``rule`` (see REPRESENTATIVE_RULES); all numbers of a row come from
    that one Result."""
    if rule not in REPRESENTATIVE_RULES:
        raise ValueError(f"unknown rule {rule!r}; use one of {sorted(REPRESENTATIVE_RULES)}")
    items = list(results_or_measured)
    measured = items if items and isinstance(items[0], Measured) else measure_all(items, batch_size, seq_len,
                                                                                   baseline)
    groups: dict[tuple, dict[str, list[Measured]]] = {}
    for m in measured:
        groups.setdefault(group_key(m.result), {}).setdefault(m.precision, []).append(m)
    rows = []
    for key, by_p in groups.items():
        for p in sorted(by_p, key=precision_rank):
            ms = by_p[p]
            ok = [m for m in ms if m.result.status == "ok"]
            r0 = ms[0].result
            base = {"run": r0.run, "model": _model_name(r0), "device": r0.device_kind, "precision": p,
                    "methods ok/total": f"{len(ok)}/{len(ms)}"}
            if not ok:
                reasons = "; ".join(sorted({f"{m.label}: {m.result.reason}" for m in ms}))
                rows.append(base | {"representative": "", "best use": f"not measured: {reasons}"})
                continue
            base_m = [x for x in ok if x.is_baseline]
            m = base_m[0] if base_m else _representative(ok, rule, rules)
            v = m.values
            cuda = m.result.device_kind == "cuda"
            rows.append(base | {
                "representative": m.label,
                "size MB": v["disk_gb"] * GB / MB if v.get("disk_gb") else None,
                "size x fp32": v.get("size_ratio"),
                "memory MB": v["memory_gb"] * GB / MB if v.get("memory_gb") else None,
                "memory x fp32": v.get("memory_ratio"),
                "speed GPU x fp32": v.get("speed_ratio") if cuda else None,
                "speed CPU x fp32": None if cuda else v.get("speed_ratio"),
                "tok/s": v.get("tokens_per_s"),
                "quality %": v.get("quality_pct"), "cos mean": v.get("cos_mean"),
                "best use": best_use(m, rules),
            })
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df[[c for c in df.columns if df[c].notna().any()]]
    df.attrs["rule"] = (f"representative per precision ({rule}): {REPRESENTATIVE_RULES[rule]}; the baseline's "
                        f"precision is represented by the baseline ('{baseline}') itself")
    df.attrs["batch_size"], df.attrs["seq_len"] = batch_size, seq_len
    return df


def rounded(df: pd.DataFrame) -> pd.DataFrame:
    """Display rounding: MB and tokens/s whole, ratios 2 decimals, % 2 decimals, fidelity 4 decimals."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype.kind != "f":
            continue
        if c.endswith(("MB", "tok/s", "latency ms")):
            out[c] = out[c].round(0)
        elif c.endswith(("x fp32", "%")):
            out[c] = out[c].round(2)
        else:
            out[c] = out[c].round(4)
    out.attrs = dict(df.attrs)
    return out


# --- Pareto frontier ----------------------------------------------------------------------------
def pareto_mask(x, y) -> np.ndarray:
    """True for points no other point beats on both x and y (higher is better on both)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    mask = np.zeros(len(x), bool)
    for i in np.flatnonzero(ok):
        dominated = ok & (x >= x[i]) & (y >= y[i]) & ((x > x[i]) | (y > y[i]))
        mask[i] = not dominated.any()
    return mask


def environments(results) -> list[str]:
    """Distinct environment labels (for captions) of a set of Results, in first-seen order."""
    from . import env
    seen = []
    for r in results:
        lab = env.label(r.device)
        if lab not in seen:
            seen.append(lab)
    return seen
