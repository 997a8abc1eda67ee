"""Storage: quantized embeddings. Views of notebook 08's records (``analysis.embedding_quant.IndexResult``):
per model method x output precision x rescore multiplier, the index bytes and their ratio to float32, the
search speed-up over exact float32 search with its 95% interval, and the retention of nDCG@10 (and the other
retrieval metrics) in % of FP32 model + float32 index, with its paired 95% interval.

Like for like: a record is only compared within its own group (run, model, weights, data set, device), and
against the FP32 model's exact float32 search of that group.
"""
from __future__ import annotations

import pandas as pd

from bgeq_utils.analysis import embedding_quant as eq
from bgeq_utils.core import vocab
from bgeq_utils.core.uncertainty import Estimate

TITLE = "Storage: quantized embeddings"
NOTE = ("Each model method's corpus embeddings stored as a faiss index in each output precision "
        "(sentence-transformers quantize_embeddings, int8/uint8 ranges from the corpus embeddings): index bytes "
        "(the stored codes) and how many times smaller than float32; search latency per query, one faiss call per "
        "query, timed alternating with exact float32 search of the same embeddings (median of per-round ratios, "
        "95% interval); retention: % of FP32 model + float32 index, per query, paired bootstrap 95% interval. "
        f"Rescore x m: the top {eq.TOP_K} x m candidates re-scored by the float query.")
#: metric names as the tables show them
SHOWN = {"ndcg@10": "nDCG@10", "recall@10": "Recall@10", "recall@100": "Recall@100", "mrr@10": "MRR@10"}


def latest(records) -> list:
    """The newest record of each configuration (group, model method, output precision, multiplier): a re-run with
    other search budgets writes another key, and only the newest stands for the configuration."""
    newest = {}
    for r in records:
        k = (group_of(r), r.model_method, r.output_precision, r.rescore_multiplier)
        if k not in newest or (r.created or "") >= (newest[k].created or ""):
            newest[k] = r
    return list(newest.values())


def records_for(results) -> list:
    """The records of every run that the Results come from (outputs/<run>/results/embedding_quant), the newest of
    each configuration."""
    out = []
    for run in dict.fromkeys(r.run for r in results):
        try:
            recs, _ = eq.load_run(run)
        except ValueError:             # a run name that is not a folder name
            continue
        out += recs
    return latest(out)


def load(sources) -> tuple[list, list[str]]:
    """Records of run names and result folders (the newest of each configuration), with a message per source."""
    out, messages = [], []
    for src in [sources] if isinstance(sources, str) else list(sources or []):
        recs, msgs = eq.load_run(src)
        out += recs
        messages += [f"{src!r}: {m}" for m in msgs] + [f"{src!r}: {len(recs)} embedding-quantization records"]
    return latest(out), messages


def group_of(r) -> str:
    model = str(r.model.get("id", "?")).split("/")[-1]
    dataset = (r.dataset or {}).get("dataset") or "-"
    return f"{model} ({r.model.get('weights', '?')}) on {dataset}, {r.device_kind}, run '{r.run}'"


def _est(d) -> Estimate | None:
    return Estimate.from_dict(d) if isinstance(d, dict) else None


def rescore_label(m: int) -> str:
    return "none" if not m else f"x{m}"


def _order(records) -> list:
    prec = {p: i for i, p in enumerate(eq.PRECISIONS)}
    methods = list(dict.fromkeys(r.model_method for r in records))
    return sorted(records, key=lambda r: (group_of(r), r.model_method != "fp32", methods.index(r.model_method),
                                          prec.get(r.output_precision, 99), r.rescore_multiplier))


def _retained(r, metric: str) -> str | None:
    if not r.ok:
        return None
    why = next((n.split(":")[0] for n in r.notes if n.endswith(": quality is not applicable")), None)
    if why:
        return f"not applicable ({why})"
    if metric in r.retention and r.retention[metric] is None:
        return f"not applicable (corpus of {r.index.get('documents')} documents)"
    e = _est(r.retention.get(metric))
    return None if e is None else e.fmt(1)


def table(records, metric: str = "ndcg@10") -> pd.DataFrame:
    """One row per model method x output precision x rescore multiplier: index bytes, x smaller than float32,
    search latency and speed-up over exact float32 (95% interval), ``metric`` retained in % of FP32 + float32."""
    rows = []
    for r in _order(records):
        row = {"group": group_of(r), "model method": r.model_method, "output precision": r.output_precision,
               "rescore": rescore_label(r.rescore_multiplier), "status": r.status}
        if r.ok:
            lat, fx = _est(r.speed.get("latency_us")), _est(r.speed.get("faster_x"))
            row |= {"index bytes": r.index.get("bytes"), "x smaller": round(r.index.get("smaller_x", 0), 2),
                    "search µs/query": None if lat is None else lat.fmt(1),
                    "x faster than float32": None if fx is None else fx.fmt(2),
                    f"{SHOWN.get(metric, metric)} retained %": _retained(r, metric)}
        row["reason"] = r.reason or None
        rows.append(row)
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df[[c for c in df.columns if df[c].notna().any() or c in ("model method", "status")]]
    df.attrs["note"] = NOTE
    return df


def retention_table(records) -> pd.DataFrame:
    """Every retrieval metric's retention (% of FP32 model + float32 index, paired 95% interval) and mean."""
    rows = []
    for r in _order([r for r in records if r.ok]):
        row = {"model method": r.model_method, "output precision": r.output_precision,
               "rescore": rescore_label(r.rescore_multiplier)}
        for k, shown in SHOWN.items():
            if k in r.quality:
                row[shown] = round(r.quality[k], 4)
            row[f"{shown} retained %"] = _retained(r, k)
        rows.append(row)
    return pd.DataFrame(rows)


def bytes_table(records) -> pd.DataFrame:
    """Per output precision, the index's bytes: what does not depend on the CPU (the model method changes none of
    them: same documents, same dimension)."""
    rows, seen = [], set()
    for r in _order([r for r in records if r.ok and not r.rescore_multiplier]):
        if r.output_precision in seen:
            continue
        seen.add(r.output_precision)
        ix = r.index
        rows.append({"output precision": r.output_precision, "faiss index": ix["kind"], "documents": ix["documents"],
                     "dim": ix["dim"], "bits/dim": ix["bits"], "index bytes": ix["bytes"],
                     "x smaller": round(ix["smaller_x"], 2), "serialized bytes": ix["serialized_bytes"],
                     "serialized x smaller": round(ix["serialized_smaller_x"], 2)})
    return pd.DataFrame(rows)


def section(records) -> tuple[str, str, pd.DataFrame | None]:
    """(title, note, table) of the report's storage section; the table is None when no record was found (the
    note then says "not measured" and how to measure it)."""
    if not records:
        return TITLE, ("Not measured: the runs compared hold no embedding-quantization records "
                       "(results/embedding_quant/). Run notebook 08_embedding_quantization."), None
    return TITLE, NOTE, table(records)


def values(records, prefix: str) -> dict[str, float]:
    """The CPU-dependent figures worth asserting (notebook values): each configuration's nDCG@10, Recall@10 and
    MRR@10, named ``<prefix>.<label>@<device>.<metric>``."""
    out = {}
    for r in records:
        if not r.ok:
            continue
        for k in (k for k in vocab.HEADLINE_KEYS if k in vocab.RETRIEVAL_KEYS):
            if k in r.quality:
                out[f"{prefix}.{r.label}@{r.device_kind}.{k}"] = r.quality[k]
    return out


# --- what it means -------------------------------------------------------------------------------
def _pick(records, method, precision, multiplier):
    for r in records:
        if r.ok and (r.model_method, r.output_precision, r.rescore_multiplier) == (method, precision, multiplier):
            return r
    return None


def against(e: Estimate | None, published: float, unit: str = "%", digits: int = 1) -> str:
    """A measured figure with its 95% interval, and where the published figure lies relative to that interval."""
    if e is None:
        return "not measured"
    if not e.has_interval or e.low == e.high:
        return f"{e.fmt(digits)}{unit} (published {published:g}{unit}; no interval)"
    where = ("the published {p} lies inside the interval" if e.low <= published <= e.high else
             "above the published {p}" if published < e.low else "below the published {p}")
    return f"{e.fmt(digits)}{unit} ({where.format(p=f'{published:g}{unit}')})"


def reading(records, metric: str = "ndcg@10") -> list[str]:
    """What the records mean here, computed: index size, retention and speed against the published figures,
    and the combination with model quantization."""
    ok = [r for r in records if r.ok]
    if not ok:
        return ["Nothing measured: no model method ran here."]
    pub, out = eq.PUBLISHED, []
    ref = ok[0]
    n, d = ref.index.get("documents"), ref.index.get("dim")
    sizes = []
    for p in ("int8", "binary"):
        r = _pick(ok, ref.model_method, p, 0)
        if r is not None:
            sizes.append(f"{p} {r.index['smaller_x']:.1f}x (serialized with faiss's header: "
                         f"{r.index['serialized_smaller_x']:.1f}x; published {pub['smaller_x'][p]:g}x)")
    if sizes:
        out.append(f"Index size, {n} documents x {d} dimensions: " + "; ".join(sizes) + ". One byte / one bit per "
                   "dimension gives the published ratios by construction; only the fixed header of a serialized "
                   "index moves them, and it weighs less as the corpus grows.")
    methods = list(dict.fromkeys(r.model_method for r in ok))
    mults = sorted({r.rescore_multiplier for r in ok if r.rescore_multiplier})
    shown = SHOWN.get(metric, metric)
    for method in methods:
        parts = []
        for p in ("int8", "binary"):
            plain = _pick(ok, method, p, 0)
            if plain is None or not plain.retention:
                continue
            txt = f"{p}: {against(_est(plain.retention.get(metric)), pub['retention_pct'][(p, False)])}"
            if mults:
                best = _pick(ok, method, p, max(mults))
                if best is not None:
                    txt += (f", rescored (x{max(mults)}): "
                            f"{against(_est(best.retention.get(metric)), pub['retention_pct'][(p, True)])}")
            parts.append(txt)
        f32 = _pick(ok, method, "float32", 0)
        if parts:
            lead = f"{shown} retained with {method}"
            if method != "fp32" and f32 is not None and f32.retention.get(metric):
                lead += f" (its float32 index alone: {_est(f32.retention[metric]).fmt(1)}%)"
            out.append(lead + " - " + "; ".join(parts) + ".")
    speeds = []
    for p in ("int8", "binary"):
        r = _pick(ok, ref.model_method, p, 0)
        if r is not None:
            e = _est(r.speed.get("faster_x"))
            speeds.append(f"{p} {against(e, pub['faster_x'][p], 'x', 2)}")
    if speeds:
        lat = _est(_pick(ok, ref.model_method, "float32", 0).speed.get("float32_latency_us")) \
            if _pick(ok, ref.model_method, "float32", 0) else None
        resc = _pick(ok, ref.model_method, "binary", max(mults)) if mults else None
        rx = _est(resc.speed.get("faster_x")) if resc is not None else None
        out.append("Search speed over exact float32 (one query per call): " + "; ".join(speeds)
                   + (f"; binary rescored x{max(mults)}: {rx.fmt(2)}x" if rx is not None else "")
                   + (f". Exact float32 search of {n} documents takes {lat.fmt(1)} µs per query here: a faiss "
                      "call's fixed cost (Python, argument checks, result arrays) outweighs the scan itself, so "
                      "a smaller code cannot save much, and rescoring adds its own NumPy work per query. The "
                      "published speed-ups come from corpora of millions of documents, where the scan reads "
                      "gigabytes and its bytes decide the time." if lat is not None else "."))
    return out


# --- figure ----------------------------------------------------------------------------------------
def figure(records, metric: str = "ndcg@10", env_label: str = ""):
    """Retention of ``metric`` (% of FP32 + float32 index, 95% intervals) against the rescore setting, one
    line per output precision, one panel per model method; None when there is nothing to draw."""
    import matplotlib.pyplot as plt

    from bgeq_utils.compare import plots  # matplotlib and seaborn: only when a figure is drawn
    ok = [r for r in records if r.ok and _est(r.retention.get(metric)) is not None]
    if not ok:
        return None
    methods = list(dict.fromkeys(r.model_method for r in _order(ok)))
    mults = [0] + sorted({r.rescore_multiplier for r in ok if r.rescore_multiplier})
    precisions = [p for p in eq.PRECISIONS if any(r.output_precision == p for r in ok)]
    colors = plots.precision_palette(precisions)
    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods) + 1.6, 3.6), sharey=True, squeeze=False)
    for ax, method in zip(axes[0], methods):
        for j, p in enumerate(precisions):
            rs = sorted([r for r in ok if r.model_method == method and r.output_precision == p],
                        key=lambda r: r.rescore_multiplier)
            if not rs:
                continue
            es = [_est(r.retention[metric]) for r in rs]
            x = [mults.index(r.rescore_multiplier) + (j - (len(precisions) - 1) / 2) * 0.08 for r in rs]
            y = [e.value for e in es]
            err = [[max(e.value - (e.low if e.has_interval else e.value), 0) for e in es],
                   [max((e.high if e.has_interval else e.value) - e.value, 0) for e in es]]
            if p == "float32":
                x, y = [-0.3, len(mults) - 0.7], [y[0], y[0]]
                ax.plot(x, y, color="0.35", ls="--", lw=1, label="float32 index")
                continue
            ax.errorbar(x, y, yerr=err, marker="o", ms=4, capsize=2, lw=1.2, color=colors[p], label=p)
        ax.axhline(100, color="0.6", lw=0.8)
        ax.set_xticks(range(len(mults)), [rescore_label(m) for m in mults])
        ax.set_title(method, fontsize=10)
        ax.set_xlabel(f"rescore (top {eq.TOP_K} x m candidates)")
    axes[0][0].set_ylabel(f"{SHOWN.get(metric, metric)} retained (% of FP32)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.9), fontsize=8, frameon=False)
    plots.env_caption(axes[0][0], [env_label])
    fig.subplots_adjust(top=0.80)           # room for a title above the panels' own
    return fig
