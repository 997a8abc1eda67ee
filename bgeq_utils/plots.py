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
