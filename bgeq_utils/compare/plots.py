"""One consistent figure style; figures of the measured table, each with its 95% intervals.

Every figure reads :class:`~bgeq_utils.compare.measured.Measured` (or Result records) and never a method by
name; each carries the environment it was measured in.
"""
from __future__ import annotations

import textwrap

import numpy as np

from bgeq_utils.compare.measured import default_rows
from bgeq_utils.core import paths, vocab

PALETTE = "colorblind"


def theme():
    import seaborn as sns
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)


def caption(ax, env_label: str):
    """Every figure carries the environment it was measured in."""
    ax.figure.text(0.01, 0.005, f"measured on: {env_label}", fontsize=7, color="0.4", ha="left", va="bottom")


def savefig(fig, run: str, name: str):
    path = paths.figures_dir(run) / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    path.chmod(0o644)
    return path


def env_caption(ax, labels):
    """Leave room at the bottom, then write the environment there (below the x label, never on it)."""
    labels = [lab for lab in dict.fromkeys(labels) if lab]
    ax.figure.tight_layout(rect=(0, 0.06 if labels else 0, 1, 1))
    if labels:
        caption(ax, " | ".join(labels))


def _drawn_texts(fig) -> list:
    """Every non-empty Text artist a drawn figure shows: titles, axis labels, the tick labels of the ticks in
    view, annotations, legend entries and titles, figure texts."""
    from matplotlib.text import Text
    ticks, drawn = set(), []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for t in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks.update((id(t.label1), id(t.label2)))
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        box = ax.get_window_extent()
        for axis, (lo, hi), k in ((ax.xaxis, (box.x0, box.x1), 0), (ax.yaxis, (box.y0, box.y1), 1)):
            for lab in axis.get_majorticklabels() + axis.get_minorticklabels():
                if lab.get_text().strip() and lo - 1 <= lab.get_window_extent().get_points().mean(axis=0)[k] <= hi + 1:
                    drawn.append(lab)                                    # a tick in view
    seen, out = set(), []
    for t in [t for t in fig.findobj(Text) if id(t) not in ticks] + drawn:
        a = getattr(t, "axes", None)
        if id(t) in seen or not t.get_visible() or not t.get_text().strip() or (a is not None and not a.get_visible()):
            continue
        seen.add(id(t))
        out.append(t)
    return out


def overlapping_labels(fig, tolerance_px: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of texts of ``fig`` that overlap once drawn (tick labels, axis labels, titles, annotations,
    legend entries, captions): each as (text, text), empty when every label reads on its own. Overlaps
    smaller than ``tolerance_px`` in either direction (touching boxes) do not count."""
    from matplotlib.text import Text
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for t in _drawn_texts(fig):
        b = Text.get_window_extent(t, renderer)                      # the text only (an annotation's arrow not)
        if b.width > 0 and b.height > 0:
            boxes.append((t.get_text().replace("\n", " "), b))
    out = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            (ta, a), (tb, b) = boxes[i], boxes[j]
            w = min(a.x1, b.x1) - max(a.x0, b.x0)
            h = min(a.y1, b.y1) - max(a.y0, b.y0)
            if w > tolerance_px and h > tolerance_px:
                out.append((ta, tb))
    return out


def precision_palette(precisions) -> dict:
    """One colour per precision, the same in every figure (known precisions keep their slot)."""
    import seaborn as sns
    colors = sns.color_palette(PALETTE, 10)
    order = list(vocab.PRECISIONS) + sorted(p for p in set(precisions) if p not in vocab.PRECISIONS)
    return {p: colors[order.index(p) % len(colors)] for p in set(precisions)}


def log_ratio_axis(ax, axis: str = "x"):
    """A log axis of ratios with plain labels (0.5x, 1x, 2x ...), never overlapping scientific notation."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    a = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    a.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    a.set_minor_formatter(NullFormatter())


def _err(df, col):
    """Asymmetric error bars (2 x n) from a column's _lo/_hi (zero where there is no interval)."""
    v = df[col].astype(float).to_numpy()
    lo = df.get(f"{col}_lo")
    hi = df.get(f"{col}_hi")
    lo = v if lo is None else lo.astype(float).fillna(df[col]).to_numpy()
    hi = v if hi is None else hi.astype(float).fillna(df[col]).to_numpy()
    return np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])


def speed_ratios(m, labels=None, env_label: str = "", ax=None):
    """Both speed-ups of each method, timed side by side with its baselines: over eager PyTorch FP32 and
    over FP32 in its own runtime, with 95% intervals; log scale, 1x marked."""
    import matplotlib.pyplot as plt
    t = m.table
    if t.empty or "speed_vs_eager" not in t:
        return None
    t = t[(t["status"] == vocab.OK) & t["speed_vs_eager"].notna()]
    if labels is not None:
        t = t[t["label"].isin(list(labels))]
    if t.empty:
        return None
    t = t.reset_index(drop=True)
    names = t["label"] + " (" + t["device"] + ")"
    if ax is None:
        _, ax = plt.subplots(figsize=(6 + 0.075 * names.str.len().max(), 0.42 * len(t) + 1.6))
    y = np.arange(len(t))
    ax.errorbar(t["speed_vs_eager"], y - 0.12, xerr=_err(t, "speed_vs_eager"), fmt="o", capsize=3,
                label="x eager PyTorch FP32")
    if "speed_vs_runtime" in t:
        ax.errorbar(t["speed_vs_runtime"], y + 0.12, xerr=_err(t, "speed_vs_runtime"), fmt="s", capsize=3,
                    label="x FP32 in the same runtime")
    ax.axvline(1.0, color="0.5", lw=0.8)
    log_ratio_axis(ax)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel(f"speed-up at batch {m.batch_size} x {m.seq_len} tokens (log; 95% intervals)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    env_caption(ax, [env_label])
    return ax


def quality_vs_speed(m, group: str, env_label: str = "", ax=None):
    """Quality loss (headline, % of FP32; 1 - mean cosine to FP32 where the group has no quality) against
    the speed-up over eager FP32 (log), both with 95% intervals. Labelled: each method's default
    configuration on the Pareto frontier (no other method both faster and better); others unlabelled."""
    import matplotlib.pyplot as plt

    t = m.table
    if t.empty:
        return None
    t = t[(t["group"] == group) & (t["status"] == vocab.OK)]
    if t.empty or "speed_vs_eager" not in t or not t["speed_vs_eager"].notna().any():
        return None
    if "quality_loss_pct" in t and t["quality_loss_pct"].notna().any():
        ycol, ylabel = "quality_loss_pct", "headline quality loss, % of FP32 (95% CI)"
        t = t[t["quality_loss_pct"].notna() & t["speed_vs_eager"].notna()].copy()
    else:
        t = t[t["cos_mean"].notna() & t["speed_vs_eager"].notna()].copy()
        t["one_minus_cos"] = 1 - t["cos_mean"]
        t["one_minus_cos_lo"] = 1 - t["cos_mean_hi"]
        t["one_minus_cos_hi"] = 1 - t["cos_mean_lo"]
        ycol, ylabel = "one_minus_cos", "1 - mean cosine to FP32 (95% CI)\nno quality in this group"
    if t.empty:
        return None
    defaults = set(default_rows(m)["uid"])
    pal = precision_palette(t["precision"])
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5))
    for p, sub in t.groupby("precision", sort=False):
        d = sub[sub["uid"].isin(defaults)]
        v = sub[~sub["uid"].isin(defaults)]
        if not d.empty:
            ax.errorbar(d["speed_vs_eager"], d[ycol], xerr=_err(d, "speed_vs_eager"), yerr=_err(d, ycol),
                        fmt="o", ms=7, capsize=2, color=pal[p], label=p)
        if not v.empty:
            ax.scatter(v["speed_vs_eager"], v[ycol], s=14, color=pal[p], alpha=0.45, marker=".",
                       label=f"{p} (variants)")
    x, y = t["speed_vs_eager"].to_numpy(float), -t[ycol].to_numpy(float)
    front = pareto_mask(x, y)
    ft = t[front].sort_values("speed_vs_eager")
    ax.plot(ft["speed_vs_eager"], ft[ycol], color="0.3", lw=1, ls="--", zorder=0, label="Pareto frontier")
    log_ratio_axis(ax)
    ax.axvline(1.0, color="0.6", lw=0.8)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xlabel(f"speed-up over eager PyTorch FP32 at batch {m.batch_size} x {m.seq_len} (log; 95% CI)")
    ax.set_ylabel(ylabel)
    ax.set_title(textwrap.fill(f"Quality loss against speed: {group}", 90)
                 + "\nlabelled: the Pareto frontier (lower loss, faster)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    env_caption(ax, [env_label])
    shown = ft if len(ft) <= 8 else ft[ft["uid"].isin(defaults)]
    place_labels(ax, zip(shown["speed_vs_eager"], shown[ycol], shown["label"]),
                 avoid=zip(t["speed_vs_eager"], t[ycol]))
    return ax


def place_labels(ax, labelled, avoid=(), fontsize: float = 7, step: float = 11):
    """Annotate each (x, y, text) of ``labelled`` beside its point where it overlaps no text already drawn
    (tick and axis labels, title, legend, caption, the labels placed before it) and no point of ``avoid``
    (x, y): above or below it, right or left of it, stepping away until free; inside the axes if it can be.
    Call it last, once the layout is done. Returns the annotations."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    taken = [Text.get_window_extent(t, renderer) for t in _drawn_texts(fig)]
    pts = ax.transData.transform(np.array([p for p in avoid if np.all(np.isfinite(p))], float).reshape(-1, 2))
    taken += [Bbox.from_extents(x - 4, y - 4, x + 4, y + 4) for x, y in pts]
    inside, whole = ax.get_window_extent(), fig.bbox
    tries = [(dx, dy, ha) for k in range(8) for dy in (8 + step * k, -14 - step * k)
             for dx, ha in ((4, "left"), (-4, "right"))]

    def free(box, within):
        return within.contains(box.x0, box.y0) and within.contains(box.x1, box.y1) and not any(
            box.overlaps(b) for b in taken)
    out = []
    for x, y, text in labelled:
        ann = ax.annotate(text, (x, y), fontsize=fontsize, xytext=tries[0][:2], textcoords="offset points",
                          ha="left", arrowprops=dict(arrowstyle="-", color="0.45", lw=0.6))
        boxes = []
        for dx, dy, ha in tries:
            ann.set_position((dx, dy))
            ann.set_horizontalalignment(ha)
            ann.update_positions(renderer)                               # where the text goes, not its arrow
            boxes.append(Text.get_window_extent(ann, renderer).padded(1))
        pick = next((i for i, b in enumerate(boxes) if free(b, inside)), None)
        if pick is None:
            pick = next((i for i, b in enumerate(boxes) if free(b, whole)), 0)
        ann.set_position(tries[pick][:2])
        ann.set_horizontalalignment(tries[pick][2])
        taken.append(boxes[pick])
        out.append(ann)
    return out


def pareto_mask(x, y) -> np.ndarray:
    """True for points no other point beats on both x and y (higher is better on both)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    mask = np.zeros(len(x), bool)
    for i in np.flatnonzero(ok):
        dominated = ok & (x >= x[i]) & (y >= y[i]) & ((x > x[i]) | (y > y[i]))
        mask[i] = not dominated.any()
    return mask


def size_memory_bars(m, env_label: str = ""):
    """Size on disk and inference memory (with its range over fresh processes) of each method's default
    configuration, one row of panels per group."""
    import matplotlib.pyplot as plt

    t = default_rows(m, ok_only=True)
    cols = [c for c in ("disk_mb", "memory_mb") if c in t and t[c].notna().any()]
    if t.empty or not cols:
        return None
    groups = list(dict.fromkeys(t["group"]))
    n = max(len(t[t["group"] == g]) for g in groups)
    fig, axes = plt.subplots(len(groups), len(cols), figsize=(5.2 * len(cols), 0.33 * n * len(groups) + 1.8),
                             squeeze=False)
    pal = precision_palette(t["precision"])
    names = {"disk_mb": "size on disk, MB", "memory_mb": "inference memory, MB (range over processes)"}
    for i, g in enumerate(groups):
        sub = t[t["group"] == g].reset_index(drop=True)
        for j, c in enumerate(cols):
            ax = axes[i][j]
            s = sub[sub[c].notna()].reset_index(drop=True)
            if s.empty:
                ax.set_axis_off()
                ax.set_title(f"{names[c]}: not measured", fontsize=8)
                continue
            ax.barh(np.arange(len(s)), s[c], xerr=_err(s, c) if c == "memory_mb" else None,
                    color=[pal[p] for p in s["precision"]], capsize=2)
            ax.set_yticks(np.arange(len(s)), s["label"], fontsize=8)
            ax.invert_yaxis()
            ax.set_title(f"{names[c]}\n{g}", fontsize=8)
    from matplotlib.patches import Patch
    order = sorted(pal, key=vocab.precision_rank)
    fig.legend(handles=[Patch(color=pal[p], label=p) for p in order], title="precision", fontsize=8,
               loc="upper left", bbox_to_anchor=(1.0, 0.98))
    env_caption(axes[0][0], [env_label])
    return fig


def fidelity_distributions(results, env_label: str = "", ax=None, floor: float = 1e-7):
    """Per method, the distribution of 1 - cosine between its embeddings and FP32's for the same texts
    (log scale; values below ``floor`` are drawn at it: identical to float precision)."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns
    rows = []
    for r in results:
        cos = (r.fidelity or {}).get("cosines")
        if not r.ok or not cos:
            continue
        name = f"{r.label} · {r.run}/{r.device_kind}"
        for c in cos:
            rows.append({"method": name, "precision": r.precision, "1 - cosine": max(1.0 - float(c), floor)})
    if not rows:
        return None
    df = pd.DataFrame(rows)
    med = df.groupby("method")["1 - cosine"].median().sort_values()
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.4 * len(med) + 1.6))
    sns.boxplot(df, x="1 - cosine", y="method", hue="precision", order=list(med.index), dodge=False,
                fliersize=0, ax=ax, log_scale=True, palette=precision_palette(df["precision"]))
    sns.stripplot(df, x="1 - cosine", y="method", order=list(med.index), color="0.25", size=2, alpha=0.4,
                  ax=ax, legend=False)
    ax.axvline(floor, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel(f"1 - cosine to FP32 (log; <= {floor:g} drawn at {floor:g})")
    ax.set_ylabel("")
    ax.set_title("Fidelity to FP32 per text")
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    env_caption(ax, [env_label])
    return ax


# --- the notebooks' own figures (one call each) ------------------------------------------------------
def finish(fig_or_ax, run: str, name: str, title: str | None = None) -> None:
    """Title, save under outputs/<run>/figures/<name>.png and show a figure; nothing when there is none.
    Returns nothing: a notebook cell ending in it shows the figure, not a machine's path."""
    import matplotlib.pyplot as plt
    if fig_or_ax is None:
        return None
    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    if title:
        (fig_or_ax.set_title if hasattr(fig_or_ax, "set_title") else fig.suptitle)(title)
    savefig(fig, run, name)
    plt.show()


def calibration_curves(sweep_df, env_label: str = ""):
    """Fidelity and headline quality loss against the number of calibration texts, per calibration method."""
    import matplotlib.pyplot as plt
    if sweep_df is None or sweep_df.empty:
        return None
    panels = [c for c in ("cos_mean", "quality_loss_pct") if c in sweep_df and sweep_df[c].notna().any()]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    sizes = sorted(set(sweep_df["calibration texts"]))
    for ax, col in zip(axes[0], panels):
        for cm, sub in sweep_df.groupby("calibration method"):
            sub = sub.sort_values("calibration texts")
            ax.errorbar(sub["calibration texts"], sub[col], yerr=_err(sub, col), capsize=3, marker="o", label=cm)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(n) for n in sizes])
        fid = col == "cos_mean"
        ax.set(title=("fidelity to FP32" if fid else "headline quality loss, %") + " vs calibration size",
               ylabel="mean cosine to FP32 (95% CI)" if fid else "% of FP32 (95% CI)", xlabel="calibration texts")
        ax.legend(fontsize=8)
    env_caption(axes[0][0], [env_label])
    return fig


def training_curve(result, env_label: str = ""):
    """The distillation loss per step of a quantization-aware training run, with a running mean."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator
    curve = pd.DataFrame((result.extra or {}).get("curve") or [])
    if not result.ok or curve.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.5))
    curve["running mean"] = curve["loss"].rolling(max(1, len(curve) // 5), min_periods=1).mean()
    sns.lineplot(curve, x="step", y="loss", ax=ax, alpha=0.4, label="loss per batch")
    sns.lineplot(curve, x="step", y="running mean", ax=ax, label="running mean")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    o = result.options or {}
    ax.set(title=f"{result.label}: distillation loss ({result.settings.get('calibration')} texts)",
           xlabel="step", ylabel=f"{o.get('loss', 'cosine')} loss")
    env_caption(ax, [env_label])
    return fig


def outlier_shares(shares, thresholds=(), env_label: str = ""):
    """% of Linear input columns LLM.int8() would send to 16 bits, by threshold and kind of layer."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    if shares is None or shares.empty:
        return None
    df = shares.groupby(["layer kind", "threshold"], as_index=False)["share"].mean()
    df["% of columns in FP16"] = 100 * df["share"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    sns.lineplot(df, x="threshold", y="% of columns in FP16", hue="layer kind", marker="o", ax=ax)
    for t in thresholds:
        if t > 0:
            ax.axvline(t, color="0.5", ls=":", lw=1)
    ax.set(title="LLM.int8(): input columns sent to FP16, by threshold (FP32 activations)",
           xlabel="llm_int8_threshold")
    env_caption(ax, [env_label])
    return fig


def bits_and_fidelity(pts, fp32=None, env_label: str = ""):
    """Fidelity (and nDCG@10) against measured bits per parameter, and fidelity against block size, per
    4-bit method (``pts``: analysis.weight_bytes.points)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import NullFormatter, ScalarFormatter
    if pts is None or pts.empty:
        return None
    order = list(dict.fromkeys(pts["method"]))
    palette = dict(zip(order, sns.color_palette(PALETTE, len(order))))
    style = dict(hue="method", style="method", hue_order=order, style_order=order, palette=palette)
    has_q = pts["ndcg@10"].notna().any()
    fig, axes = plt.subplots(1, 3 if has_q else 2, figsize=(15 if has_q else 10, 4))
    sns.scatterplot(pts, x="bits/param", y="cos mean", s=70, ax=axes[0], **style)
    axes[0].set(title="fidelity vs measured size", xlabel="measured bits per parameter (whole model)",
                ylabel="mean cosine to FP32")
    if fp32 is not None and fp32.size.get("param_bytes"):
        axes[0].axvline(8 * fp32.size["param_bytes"] / fp32.model["parameters"], color="0.6", ls=":")
    if has_q:
        sns.scatterplot(pts, x="bits/param", y="ndcg@10", s=70, ax=axes[1], legend=False, **style)
        if fp32 is not None and (fp32.quality or {}).get("ndcg@10") is not None:
            axes[1].axhline(fp32.quality["ndcg@10"], color="0.6", ls=":")
        axes[1].set(title="quality vs measured size (dotted: FP32)", xlabel="measured bits per parameter (whole model)")
    sweep = pts.dropna(subset=["block size"])
    sns.lineplot(sweep, x="block size", y="cos mean", markers=True, dashes=False, ax=axes[-1], legend=False, **style)
    axes[-1].set(title="fidelity vs block / group size", ylabel="mean cosine to FP32")
    if not sweep.empty:
        axes[-1].set_xscale("log", base=2)
        axes[-1].set_xticks(sorted(sweep["block size"].unique()))
        axes[-1].xaxis.set_major_formatter(ScalarFormatter())
        axes[-1].xaxis.set_minor_formatter(NullFormatter())
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.1), ncol=min(len(labels), 4), fontsize=8)
    env_caption(axes[0], [env_label])
    return fig


def overflow_by_layer(table, env_label: str = ""):
    """Largest |activation| per layer and site of the FP32 model against FP16's range (log scale)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    layers = table[table["layer"] >= 0]
    fig, ax = plt.subplots(figsize=(8, 4))
    sns.lineplot(layers, x="layer", y="max_abs", hue="site", marker="o", ax=ax)
    ax.axhline(vocab.FP16_MAX, color="crimson", ls="--", lw=1)
    ax.text(0, vocab.FP16_MAX * 1.15, f"FP16 max {vocab.FP16_MAX:.0f}", color="crimson", fontsize=8)
    ax.set_yscale("log")
    ax.set(title="Largest |activation| per layer (FP32 model) against FP16's range", xlabel="encoder layer",
           ylabel="max |x| (log)")
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left", title="site")
    env_caption(ax, [env_label])
    return fig
