"""The measured table: every Result side by side with the FP32 of its own group, with intervals.

One function, :func:`measure`, builds it; every table, figure, ledger row and recommendation reads it, so
no two views disagree about a number. Rules:

- **Like for like.** A Result is compared only within its group: one run, model, weights, data set and
  device. Its FP32 baseline is the default-configuration ``fp32`` Result of that group.
- **Speed.** Two speed-ups, both timed side by side with the method in one window: over eager PyTorch FP32
  (``speed_vs_eager``) and over FP32 in the method's own runtime (``speed_vs_runtime``: ONNX Runtime,
  OpenVINO, Inductor or eager PyTorch). Each is the median of per-round ratios with its 95% interval.
- **Quality.** Loss in % of FP32 per metric, paired by query (pairs for correlations), with a bootstrap 95%
  interval and a paired randomization test. The headline loss is the worst loss over nDCG@10, Recall@10,
  MRR@10 and Spearman: gains never offset losses. Recall@k is left out when the corpus has at most k
  documents (it cannot move).
- **Memory.** One definition: peak RSS while embedding one batch of the run's speed cell (``memory_batch``)
  over a baseline process that imported the method's libraries (CUDA: peak allocated); resident after loading
  for the weights. Ratios over eager FP32 (``memory_ratio``, ``resident_ratio``, ``size_ratio``) and over FP32 in
  the method's own runtime (``*_runtime``), so a change of runtime is not credited to quantization. A memory
  interval from fewer than six processes is their range, and says so.
- **Not applicable.** A Result whose quality cannot be measured by design (random weights; a file of your own
  texts, which has no labels) says why in a note ``"<why>: quality is not applicable"``; its row carries
  ``quality_na`` = ``"not applicable (<why>)"``, which the views show instead of an empty quality cell.
- **Proxy quality.** A group without quality (random weights, or texts without labels) shows, in its own
  labelled columns, the quality loss of the same configuration in a pretrained group with quality on the
  same device kind; it never enters a ranking of that group.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bgeq_utils.core import paths, vocab
from bgeq_utils.core import results as results_mod
from bgeq_utils.core.results import Result
from bgeq_utils.core.uncertainty import Estimate, correlation_loss, difference, ratio_of, relative_loss, simultaneous
from bgeq_utils.core.uncertainty import from_row as estimate  # noqa: F401  (the table's columns read back)

RETRIEVAL_KEYS, QUALITY_KEYS, HEADLINE_KEYS = vocab.RETRIEVAL_KEYS, vocab.QUALITY_KEYS, vocab.HEADLINE_KEYS
RETRIEVAL_DEGRADATION_KEYS = vocab.RETRIEVAL_DEGRADATION_KEYS
GROUP_COLUMNS = ("run", "model", "weights", "dataset", "device", "device_name")
MB = 1e6
BASELINE = vocab.EAGER_BASELINE


# --- loading ------------------------------------------------------------------------------------
def resolve_source(source: str | Path) -> Path:
    """A run name -> outputs/<run>/results; a folder path -> itself (relative paths from the repo root)."""
    s = str(source)
    p = Path(s).expanduser()
    if p.is_absolute() or "/" in s or s.startswith("."):
        return p if p.is_absolute() else (paths.ROOT / p)
    return paths.results_dir(s)


def load(runs=(), extra_result_dirs=()) -> tuple[list[Result], list[str]]:
    """Results of run names and result folders (newest per key), plus messages about what was missing.

    A source that does not exist is reported, not raised: the comparison works with the runs there are.
    Unreadable files are reported by name and left out."""
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
            messages.append(f"{src!r}: no results folder at {paths.shown(folder)}")
            continue
        marker = folder.parent / "RUNNING"
        if marker.is_file():
            messages.append(f"warning: run {src!r} did not finish ({marker.read_text().strip()}): its Results are "
                            "those saved before it stopped")
        files = sorted(folder.glob("*.json"))
        if not files:
            messages.append(f"{src!r}: {paths.shown(folder)} holds no result files")
            continue
        n = 0
        for f in files:
            try:
                r = results_mod.load(f)
            except results_mod.ResultsFileError as e:
                messages.append(f"{src!r}: left out {f.name}: {e}")
                continue
            att = results_mod.latest_attempt(r, folder)
            if att is not None:
                r.extra["latest_attempt"] = f"{att.status} at {att.created}: {att.reason}"
            k = (r.run, r.key, r.device_kind, device_name(r))
            if k not in found or (r.created or "") >= (found[k].created or ""):
                found[k] = r
            n += 1
        messages.append(f"{src!r}: {n} results from {paths.shown(folder)}")
    return list(found.values()), messages


# --- groups -------------------------------------------------------------------------------------
def model_name(r: Result) -> str:
    return str(r.model.get("id", "?")).split("/")[-1]


def device_name(r: Result) -> str:
    if r.device_kind == "cuda":
        return r.device.get("gpu_name") or "GPU"
    return f"{r.device.get('cpu_model', 'CPU')} x{r.device.get('cpu_count', '?')}"


def dataset_name(r: Result) -> str:
    return (r.dataset or {}).get("dataset") or "-"


def group_key(r: Result) -> tuple:
    """Results are comparable within one run, model, weights, data set and device."""
    return (r.run, model_name(r), r.model.get("weights", "?"), dataset_name(r), r.device_kind, device_name(r))


def group_label(key: tuple) -> str:
    run, model, weights, dataset, device, _ = key
    named = f" ({weights})" if weights not in model else ""     # "<id> (random weights)" says it already
    return f"{model}{named} on {dataset}, {device}, run '{run}'"


def baseline_of(group: list[Result], method: str = BASELINE) -> Result | None:
    """The default-configuration Result of ``method`` in a group (newest, status ok): eager FP32 unless asked."""
    cands = [r for r in group if r.method == method and r.is_default and r.ok]
    return max(cands, key=lambda r: r.created or "") if cands else None


def runtime_baseline_of(r: Result, group: list[Result]) -> Result | None:
    """FP32 in ``r``'s own runtime in its group (ONNX Runtime FP32 for ORT methods, ...), if measured there."""
    return baseline_of(group, vocab.RUNTIME_BASELINE.get(r.runtime, BASELINE))


# --- quality deltas -----------------------------------------------------------------------------
def quality_not_applicable(r: Result) -> str | None:
    """Why ``r`` has no quality by design ("random weights", "no labels", ...), or None: read from the note
    ``"<why>: quality is not applicable"`` the pipeline writes; a random-weights record without notes counts too."""
    suffix = ": " + vocab.QUALITY_NOT_APPLICABLE
    for note in r.notes or []:
        if isinstance(note, str) and note.endswith(suffix):
            return note[:-len(suffix)]
    return "random weights" if r.model.get("weights") == "random" else None


def _saturated(key: str, r: Result) -> bool:
    """Recall@k cannot move when the corpus has no more than k documents."""
    if not key.startswith("recall@"):
        return False
    docs = (r.dataset or {}).get("documents")
    try:
        return docs is not None and int(docs) <= int(key.split("@")[1])
    except ValueError:
        return False


_LOSSES: dict[tuple, Estimate | None] = {}
_HELD: dict[int, Result] = {}      # keeps every cached Result alive, so its id() is never reused


def _loss_cached(r: Result, b: Result, metric: str, confidence: float | None = None) -> Estimate | None:
    """Intervals are resampled once per (Result, baseline, metric, level) in a process: the views all read them."""
    k = (id(r), id(b), metric, confidence)
    if k not in _LOSSES:
        _HELD[id(r)], _HELD[id(b)] = r, b
        _LOSSES[k] = _loss(r, b, metric, confidence)
    return _LOSSES[k]


def uid(r: Result) -> str:
    return f"{r.run}/{r.key}/{r.device_kind}/{device_name(r)}/{r.created}"


def _loss(r: Result, b: Result, metric: str, confidence: float | None = None) -> Estimate | None:
    """Loss of ``metric`` in % of the baseline's, with its paired interval (95%, with a p-value; at
    ``confidence`` without one when given); None if not measured."""
    pr, pb = r.per_query or {}, b.per_query or {}
    level = {} if confidence is None else {"confidence": confidence, "with_p": False}
    if metric in RETRIEVAL_KEYS:
        if metric in pr and metric in pb and pr.get("query_ids") == pb.get("query_ids"):
            return relative_loss(pr[metric], pb[metric], "queries", **level)
    elif "pair_cosines" in pr and "pair_cosines" in pb and len(pr["pair_cosines"]) == len(pb["pair_cosines"]):
        return correlation_loss(pr["pair_cosines"], pb["pair_cosines"], pr["pair_gold"], pr.get("pair_docs"),
                                kind=metric, **level)
    a, c = (r.quality or {}).get(metric), (b.quality or {}).get(metric)
    if a is None or not c:
        return None
    return Estimate(100.0 * (1 - a / c), None, None, None, "no per-query values: no interval")


def quality_losses(r: Result, b: Result, keys=QUALITY_KEYS, confidence: float | None = None) -> dict[str, Estimate]:
    """Per quality metric measured by both (recall@k left out on corpora of at most k documents); intervals at
    ``confidence`` (no p-values) when given, else 95% with p-values."""
    out = {}
    for k in keys:
        if _saturated(k, r) or (r.quality or {}).get(k) is None or (b.quality or {}).get(k) is None:
            continue
        e = _loss_cached(r, b, k, confidence)
        if e is not None:
            out[k] = e
    return out


def worst(losses: dict[str, Estimate], keys, simultaneous_losses: dict[str, Estimate] | None = None
          ) -> tuple[str | None, Estimate | None]:
    """The largest loss among ``keys`` (a gain on one metric never offsets a loss on another), and the metric.

    Its interval runs from the largest lower bound to the largest upper bound of the metrics' intervals (the
    worst loss lies there whenever every interval covers). For that to be a 95% interval the metrics' intervals
    must cover all at once: ``simultaneous_losses`` holds them at the Bonferroni level
    (:func:`~bgeq_utils.core.uncertainty.simultaneous`: 98.75% each for four metrics); from 95% intervals the
    result is said not to be simultaneous. The p-value is the worst metric's, Bonferroni-adjusted (x k): the
    metric was chosen for being the worst."""
    have = [(k, losses[k]) for k in keys if k in losses]
    if not have:
        return None, None
    n = len(have)
    k, e = max(have, key=lambda kv: kv[1].value)
    p = None if e.p_value is None else min(1.0, n * e.p_value)
    if not all(x.has_interval for _, x in have):
        return k, Estimate(e.value, None, None, None, "worst metric; a metric without an interval", p)
    sim = [(simultaneous_losses or {}).get(kk) for kk, _ in have]
    if n > 1 and all(x is not None and x.has_interval for x in sim):
        return k, Estimate(e.value, max(x.low for x in sim), max(x.high for x in sim), e.n,
                           f"worst loss over {n} metrics; simultaneous 95% interval (each metric's at "
                           f"{100 * simultaneous(n):.4g}%, Bonferroni); p Bonferroni-adjusted", p)
    how = ("worst loss over the metrics; interval from their 95% intervals' largest bounds (not simultaneous)"
           if n > 1 else "the one metric's loss")
    return k, Estimate(e.value, max(x.low for _, x in have), max(x.high for _, x in have), e.n, how, p)


# --- the table ----------------------------------------------------------------------------------
def _put(row: dict, name: str, e: Estimate | None, p: bool = False):
    row[name] = None if e is None else e.value
    row[f"{name}_lo"] = e.low if e is not None and e.has_interval else None
    row[f"{name}_hi"] = e.high if e is not None and e.has_interval else None
    if e is not None and e.how:          # what the interval is (a range, exact, simultaneous): verdicts read it
        row[f"{name}_how"] = e.how
    if p:
        row[f"{name}_p"] = None if e is None else e.p_value


def _memory(r: Result, what: str) -> Estimate | None:
    """A memory figure in MB. Bytes the CUDA allocator handed out are counted, not sampled: where every process
    counted the same bytes the figure is exact (it may decide a verdict); anything else keeps its interval."""
    m = (r.memory or {}).get(what)
    e = Estimate.from_dict(m) if isinstance(m, dict) else None
    if e is None:
        return None
    counted = "allocated" in str(m.get("what", "")) or (what == "resident" and "allocated" in str(
        ((r.memory or {}).get("peak") or {}).get("what", "")))
    if counted and (e.n or 0) >= 2 and e.zero_width:
        e = Estimate.exact(e.value, f"exact: CUDA bytes allocated, the same in all {e.n} processes")
    return e.scaled(1 / MB)


def _speed(r: Result, b: int, L: int, role: str) -> tuple[Estimate | None, str | None]:
    row = r.speed_at(b, L) or {}
    d = row.get(f"vs_{role}") or {}
    return Estimate.from_dict(d), d.get("baseline")


@dataclass
class Measured:
    """The measured table (one row per Result) and the Results behind it, by row uid."""
    table: pd.DataFrame
    results: dict = field(default_factory=dict)
    batch_size: int = vocab.COMPARISON_CELL[0]
    seq_len: int = vocab.COMPARISON_CELL[1]

    def result(self, row) -> Result:
        return self.results[row["uid"]]

    @property
    def empty(self) -> bool:
        return self.table.empty


def speed_cell(group: list[Result], batch_size: int, seq_len: int) -> tuple[int, int]:
    """The (batch, length) cell a group's speed is read at: the one asked for where the group timed it, else
    the group's nearest (same length first, then the batch closest on a log scale, the larger on a tie).
    Speed-ups are only compared within a group, so a group measured on another grid (a GPU reference pass)
    is read at its own nearest cell, which its rows name, rather than shown as not measured."""
    cells = {(row["batch_size"], row["seq_len"]) for r in group if r.ok for row in r.speed or []
             if row.get("batch_size") and row.get("seq_len")}
    if not cells or (batch_size, seq_len) in cells:
        return batch_size, seq_len
    return min(cells, key=lambda c: (c[1] != seq_len, abs(math.log(c[0] / batch_size)), -c[0]))


def tabulate(results, batch_size: int = vocab.COMPARISON_CELL[0], seq_len: int = vocab.COMPARISON_CELL[1]
             ) -> Measured:
    """Build the measured table of ``results`` (any mix of runs, models and devices)."""
    results = list(results)
    groups: dict[tuple, list[Result]] = {}
    for r in results:
        groups.setdefault(group_key(r), []).append(r)
    rows, by_uid = [], {}
    for key, group in groups.items():
        base = baseline_of(group)
        b, L = speed_cell(group, batch_size, seq_len)
        for r in group:
            rows.append(_row(r, base, key, b, L, runtime_baseline_of(r, group)))
            rows[-1]["speed_cell"] = f"{b}x{L}"
            rows[-1]["uid"] += f"#{len(rows)}"          # unique within this table even for twin records
            by_uid[rows[-1]["uid"]] = r
    df = pd.DataFrame(rows)
    if not df.empty:
        _add_proxy_quality(df)
        df["_p"] = df["precision"].map(vocab.precision_rank)
        df = df.sort_values(["run", "device", "_p", "method", "label"], kind="stable").drop(columns="_p")
        df = df.reset_index(drop=True)
    df.attrs.update(batch_size=batch_size, seq_len=seq_len)
    return Measured(df, by_uid, batch_size, seq_len)


def _row(r: Result, base: Result | None, key: tuple, b: int, L: int, rbase: Result | None = None) -> dict:
    row = {"uid": uid(r), "group": group_label(key), "run": r.run, "model": model_name(r),
           "weights": r.model.get("weights", "?"), "dataset": dataset_name(r), "device": r.device_kind,
           "device_name": device_name(r), "method": r.method, "label": r.label, "key": r.key,
           "precision": r.precision, "library": r.library, "runtime": r.runtime, "is_default": bool(r.is_default),
           "status": r.status, "reason": r.reason, "created": r.created,
           "latest_attempt": (r.extra or {}).get("latest_attempt", ""),
           "baseline": base.label if base is not None else None,
           "is_baseline": base is not None and r is base}
    if not r.ok:
        return row
    why = quality_not_applicable(r) if not r.quality else None
    row["quality_na"] = f"not applicable ({why})" if why else None
    size, bsize = r.size or {}, (base.size or {}) if base is not None else {}
    row["params_m"] = r.model.get("parameters", 0) / 1e6 or None
    row["disk_mb"] = size["disk_bytes"] / MB if size.get("disk_bytes") else None
    row["param_mb"] = size["param_bytes"] / MB if size.get("param_bytes") else None
    row["size_ratio"] = size["disk_bytes"] / bsize["disk_bytes"] if size.get("disk_bytes") and \
        bsize.get("disk_bytes") else None
    rsize = (rbase.size or {}) if rbase is not None else {}
    row["runtime_fp32"] = rbase.method if rbase is not None else None
    row["size_ratio_runtime"] = size["disk_bytes"] / rsize["disk_bytes"] if size.get("disk_bytes") and \
        rsize.get("disk_bytes") else None
    mem, res = _memory(r, "peak"), _memory(r, "resident")
    _put(row, "memory_mb", mem)
    _put(row, "resident_mb", res)
    mb = (r.memory or {}).get("batch_size")
    row["memory_batch"] = f"{mb}x{(r.memory or {}).get('seq_len', '?')}" if mb else None
    if mem is not None and res is not None:
        _put(row, "activation_mb", difference(mem, res))
    for col, what in (("memory_ratio", "peak"), ("resident_ratio", "resident")):
        mine = mem if what == "peak" else res
        for suffix, b0 in (("", base), ("_runtime", rbase)):
            other = _memory(b0, what) if b0 is not None else None
            _put(row, col + suffix, ratio_of(mine, other) if mine is not None and other is not None else None)
    s = r.speed_at(b, L) or {}
    w = (r.extra or {}).get("window") or {}
    if s and w:
        load = w.get("load") or {}
        row.update(window_id=w.get("id"), window_kind=w.get("kind"), window_busy=bool(load.get("busy")),
                   window_other_cpu=load.get("other_cpu_share"))
    t = Estimate(s["tokens_per_s"], s.get("tokens_per_s_low"), s.get("tokens_per_s_high")) if s else None
    _put(row, "tokens_per_s", t)
    row["repeats"] = s.get("repeats")
    row["share_of_ceiling"] = s.get("share_of_ceiling")
    row["latency_ms_p50_b1"] = (r.speed_at(1, L) or {}).get("latency_ms_p50")
    for role in ("eager", "runtime"):
        e, name = _speed(r, b, L, role)
        _put(row, f"speed_vs_{role}", e)
        row[f"{role}_baseline"] = name
    f = r.fidelity or {}
    iv = f.get("intervals") or {}
    for k in ("cos_mean", "l2_mean", "top10_overlap", "sim_pearson"):
        e = Estimate.from_dict(iv.get(k)) if k in iv else (Estimate(f[k]) if f.get(k) is not None else None)
        _put(row, k, e)
    row["cos_min"], row["l2_max"] = f.get("cos_min"), f.get("l2_max")
    row["batch_cos_min"] = (f.get("batch_invariance") or {}).get("cos_min")
    row["batch_texts"] = (f.get("batch_invariance") or {}).get("texts")
    row["batch_skipped"] = (f.get("batch_invariance") or {}).get("skipped")
    row["loaded_dtype"] = (r.extra or {}).get("loaded_dtype")
    if r.quality:
        for k in QUALITY_KEYS:
            row[f"q:{k}"] = r.quality.get(k)
    if base is not None and r.quality and base.quality:
        losses = quality_losses(r, base)
        for k, e in losses.items():
            _put(row, f"loss:{k}", e, p=True)
        k, e = worst(losses, HEADLINE_KEYS, _simultaneous(r, base, losses, HEADLINE_KEYS))
        _put(row, "quality_loss_pct", e, p=True)
        row["quality_loss_metric"] = k
        _put(row, "quality_pct", None if e is None else Estimate(
            100 - e.value, 100 - e.high if e.has_interval else None, 100 - e.low if e.has_interval else None,
            e.n, e.how, e.p_value))
        k2, e2 = worst(losses, RETRIEVAL_DEGRADATION_KEYS,
                       _simultaneous(r, base, losses, RETRIEVAL_DEGRADATION_KEYS))
        _put(row, "retrieval_degradation_pct", e2, p=True)
    return row


def _simultaneous(r: Result, base: Result, losses: dict, keys) -> dict[str, Estimate]:
    """The metrics' losses at the Bonferroni level for a simultaneous interval of their worst (see :func:`worst`)."""
    have = [k for k in keys if k in losses]
    if len(have) < 2:
        return {}
    return quality_losses(r, base, have, confidence=simultaneous(len(have)))


def _add_proxy_quality(df: pd.DataFrame) -> None:
    """For groups without quality (random weights, texts without labels): the same configuration's loss in a
    pretrained group with quality, labelled; the same model's first where there is one."""
    if "quality_loss_pct" not in df or "quality_na" not in df:
        return
    pre = df[(df["weights"] == "pretrained") & (df["status"] == vocab.OK) & df["quality_loss_pct"].notna()]
    for i in df.index[df["quality_na"].notna() & (df["status"] == vocab.OK)]:
        same = pre[(pre["label"] == df.at[i, "label"]) & (pre["device"] == df.at[i, "device"])]
        if same.empty:
            continue
        same = same.assign(_other=same["model"] != df.at[i, "model"])
        src = same.sort_values(["_other", "run"], kind="stable").iloc[0]
        for c in ("quality_loss_pct", "quality_loss_pct_lo", "quality_loss_pct_hi"):
            df.at[i, "proxy_" + c] = src[c]
        df.at[i, "proxy_source"] = f"{src['model']} on {src['dataset']} (run '{src['run']}')"


def window_label(row) -> str | None:
    """Which window a row's speed comes from: '<kind> <id>', and the other processes' share when it was busy."""
    wid = row.get("window_id")
    if wid is None or (isinstance(wid, float) and np.isnan(wid)):
        return None
    busy = row.get("window_busy") is True or row.get("window_busy") == 1.0
    return f"{row.get('window_kind')} {wid}" + (f" (busy: {100 * float(row['window_other_cpu']):.0f}% of the CPU "
                                                 "taken by other processes)" if busy else "")


def window_note(rows: pd.DataFrame) -> str | None:
    """What a reader must know about the windows behind a set of rows (one group's defaults, say): several
    windows (their speed-ups were not timed side by side), or a window taken on a busy machine. None when all
    come from one quiet window."""
    if rows.empty or "window_id" not in rows:
        return None
    timed = rows[rows["window_id"].notna()]
    ids = list(dict.fromkeys(timed["window_id"]))
    notes = []
    if len(ids) > 1:
        kinds = dict(zip(timed["window_id"], timed["window_kind"]))
        notes.append(f"speed from {len(ids)} windows ({', '.join(f'{kinds[i]} {i}' for i in ids)}): speed-ups "
                     "of methods in different windows were not timed side by side, compare them with care")
    busy = timed[timed["window_busy"] == True]  # noqa: E712  (NaN for rows without a window record)
    if not busy.empty:
        worst = float(busy["window_other_cpu"].max())
        notes.append(f"timed on a busy machine (other processes took up to {100 * worst:.0f}% of the CPU): "
                     "a speed-up measured under load is another quantity, not a noisier one")
    return "; ".join(notes) or None


def default_rows(m: Measured, ok_only: bool = False) -> pd.DataFrame:
    """One row per method and group: its registry default configuration (variants are detail)."""
    t = m.table
    if t.empty:
        return t
    d = t[t["is_default"]]
    if ok_only:
        d = d[d["status"] == vocab.OK]
    # several default Results of one method in a group (other grids or budgets): the newest
    d = d.sort_values("created").drop_duplicates(["group", "method"], keep="last")
    return d.loc[sorted(d.index)]
