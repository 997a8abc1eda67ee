"""One consistent figure style, and saving figures under outputs/<run>/figures."""
from __future__ import annotations

from . import paths

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
    return path


def speed_bars(results, env_label: str = "", ax=None):
    """Tokens/s per method for each (batch, seq) cell of the grid."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from .tables import speed_long
    df = speed_long([r for r in results if r.status == "ok"])
    if df.empty:
        return None
    df["shape"] = "b" + df["batch_size"].astype(str) + " x L" + df["seq_len"].astype(str)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    sns.barplot(df, x="shape", y="tokens_per_s", hue="method", ax=ax)
    ax.set_xlabel("batch size x sequence length")
    ax.set_ylabel("tokens / s (median)")
    if env_label:
        caption(ax, env_label)
    return ax


# --- comparison figures (read compare.table() rows and Result records; never a method by name) -------
def _env_caption(ax, labels):
    """Leave room at the bottom, then write the environment there (below the x label, never on it)."""
    labels = [l for l in dict.fromkeys(labels) if l]
    ax.figure.tight_layout(rect=(0, 0.06 if labels else 0, 1, 1))
    if labels:
        caption(ax, " | ".join(labels))


def precision_palette(precisions) -> dict:
    """One colour per precision, the same in every comparison figure (known precisions keep their slot)."""
    import seaborn as sns
    from .compare import PRECISION_ORDER
    colors = sns.color_palette(PALETTE, 10)
    extra = sorted(p for p in set(precisions) if p not in PRECISION_ORDER)
    order = list(PRECISION_ORDER) + extra
    return {p: colors[order.index(p) % len(colors)] for p in set(precisions)}


def _group_labels(df):
    """'run · device' per row, to tell groups apart when a table holds several runs."""
    return df["run"].astype(str) + " · " + df["device"].astype(str)


def quality_vs_speed(table, device: str = "cpu", env_label: str = "", ax=None, annotate: bool = True):
    """Quality (% of FP32; mean cosine x 100 where no quality was measured) against speed ratio to FP32 on
    ``device``, with each run's Pareto frontier (no other method both faster and better) drawn and ringed."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from .compare import pareto_mask
    xcol = "gpu x fp32" if device == "cuda" else "cpu x fp32"
    if table is None or table.empty or xcol not in table:
        return None
    df = table[table[xcol].notna()].copy()
    ycol, ylabel = None, None
    if "quality %" in df and df["quality %"].notna().any():
        ycol, ylabel = "quality %", "quality, mean % of FP32"
    elif "cos mean" in df and df["cos mean"].notna().any():
        df["cos x100"] = 100 * df["cos mean"]
        ycol, ylabel = "cos x100", "mean cosine to FP32 x 100 (no quality measured)"
    if ycol is None:
        return None
    left_out = int(df[ycol].isna().sum())
    df = df[df[ycol].notna()]
    if df.empty:
        return None
    df["group"] = _group_labels(df)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.5))
    sns.scatterplot(df, x=xcol, y=ycol, hue="precision", style="group", s=70, ax=ax,
                    palette=precision_palette(df["precision"]))
    for g, sub in df.groupby("group", sort=False):
        mask = pareto_mask(sub[xcol], sub[ycol])
        front = sub[mask].sort_values(xcol)
        ax.plot(front[xcol], front[ycol], color="0.3", lw=1, ls="--", zorder=0)
        ax.scatter(front[xcol], front[ycol], s=180, facecolors="none", edgecolors="0.2", lw=1,
                   label="Pareto frontier" if g == df["group"].iloc[0] else None)
    if annotate:
        for _, r in df.iterrows():
            ax.annotate(str(r["method"]), (r[xcol], r[ycol]), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")
    ax.axvline(1.0, color="0.6", lw=0.8)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.set_xlabel(f"{'GPU' if device == 'cuda' else 'CPU'} speed, x FP32 (same run and device)")
    ax.set_ylabel(ylabel)
    ax.set_title("Quality against speed (ringed: Pareto frontier)" +
                 (f"\n{left_out} result(s) without quality not shown" if left_out else ""), fontsize=11)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    _env_caption(ax, [env_label])
    return ax


def size_memory_bars(table, env_label: str = ""):
    """Size on disk and inference memory per method, one row of panels per run and device."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    if table is None or table.empty:
        return None
    cols = [c for c in ("size MB", "memory MB") if c in table and table[c].notna().any()]
    if not cols:
        return None
    df = table[table["status"] == "ok"].copy()
    df["group"] = _group_labels(df)
    groups = [g for g in dict.fromkeys(df["group"]) if df.loc[df["group"] == g, cols].notna().any().any()]
    if not groups:
        return None
    n = max(df.loc[df["group"] == g].shape[0] for g in groups)
    fig, axes = plt.subplots(len(groups), len(cols), figsize=(5 * len(cols), 0.35 * n * len(groups) + 1.6),
                             squeeze=False)
    from .compare import precision_rank
    order = sorted(dict.fromkeys(df["precision"]), key=precision_rank)
    for i, g in enumerate(groups):
        sub = df[df["group"] == g]
        for j, c in enumerate(cols):
            ax = axes[i][j]
            s = sub[sub[c].notna()]
            if s.empty:
                ax.set_axis_off()
                ax.set_title(f"{c}: not measured ({g})", fontsize=9)
                continue
            sns.barplot(s, x=c, y="method", hue="precision", hue_order=order, dodge=False, ax=ax,
                        palette=precision_palette(order))
            ax.set_title(f"{c} ({g})", fontsize=9)
            ax.set_ylabel("")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
    from matplotlib.patches import Patch
    pal = precision_palette(order)
    fig.legend(handles=[Patch(color=pal[p], label=p) for p in order], title="precision", fontsize=8,
               loc="upper left", bbox_to_anchor=(1.0, 0.98))
    _env_caption(axes[0][0], [env_label])
    return fig


def fidelity_distributions(results, env_label: str = "", ax=None, floor: float = 1e-7):
    """Per method, the distribution of 1 - cosine between its embeddings and FP32's for the same texts
    (log scale; values below ``floor`` are drawn at it: identical to float precision)."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns
    from .compare import precision_of
    rows = []
    for r in results:
        cos = (r.fidelity or {}).get("cosines")
        if r.status != "ok" or not cos:
            continue
        name = f"{r.label} · {r.run}/{r.device_kind}"
        for c in cos:
            rows.append({"method": name, "precision": precision_of(r), "1 - cosine": max(1.0 - float(c), floor)})
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
    _env_caption(ax, [env_label])
    return ax
