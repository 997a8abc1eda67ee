"""The shareable report: outputs/<run>/report.html (self-contained), comparison.csv, comparison.md, ledger.csv.

``compute`` turns Results into the comparison (measured table, views, claims ledger, a recommendation per
group), ``make_figures`` draws and saves the figures, ``export`` writes the files; ``build`` does all three.
The HTML embeds its figures as base64 PNG and its own style sheet: it opens in any browser, without Jupyter
or a network. It leads with the answer: the recommendation per device, then the guide's table measured,
then the ledger, then the detail. It reads on a phone (400 px) and a wide screen: tables scroll sideways in
their own box, figures shrink to fit; ``scripts/report_check.py`` checks both in a headless browser.
"""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bgeq_utils import methods
from bgeq_utils.compare import embedding_storage, plots, tables
from bgeq_utils.compare import ledger as ledger_mod
from bgeq_utils.compare.measured import Measured, load, tabulate
from bgeq_utils.compare.recommend import Recommendation, groups_on, recommend
from bgeq_utils.core import env, paths, vocab


@dataclass
class Comparison:
    measured: Measured
    sources: list = field(default_factory=list)        # messages about what was loaded / missing
    params: dict = field(default_factory=dict)
    ledger: pd.DataFrame = None
    recommendations: dict = field(default_factory=dict)  # group -> Recommendation
    primary_device: str = "cpu"
    not_encoded: list = field(default_factory=list)
    unmeasured: dict = field(default_factory=dict)      # device -> why nothing was measured there
    storage: list = field(default_factory=list)         # notebook 08's records (embedding_quant.IndexResult)

    @property
    def results(self) -> list:
        return list(self.measured.results.values())

    @property
    def empty(self) -> bool:
        return self.measured.empty

    @property
    def primary(self) -> Recommendation | None:
        recs = [r for r in self.recommendations.values() if r.device == self.primary_device]
        return recs[0] if recs else None


def compute(results, sources=(), device: str = "cpu", memory_budget_mb: float | None = None,
            max_quality_loss_pct: float = 1.0, min_speedup: float = 1.0, objective: str = "speed",
            batch_size: int = vocab.COMPARISON_CELL[0], seq_len: int = vocab.COMPARISON_CELL[1], claims=None,
            storage=None, min_cos: float = 0.99) -> Comparison:
    """The comparison of ``results``; ``storage``: notebook 08's records (by default those of the Results' runs);
    ``min_cos``: the fidelity that stands in for quality in groups without it (see :func:`recommend`)."""
    m = tabulate(results, batch_size, seq_len)
    params = {"device": device, "memory_budget_mb": memory_budget_mb, "max_quality_loss_pct": max_quality_loss_pct,
              "min_speedup": min_speedup, "objective": objective, "min_cos": min_cos, "batch_size": batch_size,
              "seq_len": seq_len}
    cmp = Comparison(m, list(sources), params, primary_device=device)
    cmp.ledger = ledger_mod.check(m, claims)
    devices = [device] + [d for d in ("cpu", "cuda") if d != device]
    for d in devices:
        for g in groups_on(m, d):
            cmp.recommendations[g] = recommend(m, device=d, group=g, memory_budget_mb=memory_budget_mb,
                                               max_quality_loss_pct=max_quality_loss_pct, min_speedup=min_speedup,
                                               objective=objective, min_cos=min_cos)
    cmp.not_encoded = ledger_mod.not_encoded()
    cmp.storage = list(embedding_storage.records_for(cmp.results) if storage is None else storage)
    t = m.table
    for d in devices:
        if not any(r.device == d for r in cmp.recommendations.values()) and not t.empty and (t["device"] == d).any():
            why = sorted(set(t[t["device"] == d]["reason"]))
            cmp.unmeasured[d] = f"every {d} method was skipped or failed: {'; '.join(why)[:300]}"
    return cmp


def _env_label(results) -> str:
    return " | ".join(dict.fromkeys(env.label(r.device) for r in results))


def make_figures(cmp: Comparison, out_run: str, close: bool = True) -> dict[str, Path]:
    """Draw the comparison figures, save them under outputs/<out_run>/figures; name -> PNG path."""
    import matplotlib.pyplot as plt
    plots.theme()
    out = {}
    if cmp.empty:
        return out
    m = cmp.measured
    for i, g in enumerate(dict.fromkeys(m.table["group"])):
        rs = [cmp.measured.results[u] for u in m.table[m.table["group"] == g]["uid"]]
        ax = plots.quality_vs_speed(m, g, env_label=_env_label(rs))
        if ax is not None:
            out[f"quality_vs_speed_{i + 1}"] = plots.savefig(ax.figure, out_run, f"quality_vs_speed_{i + 1}")
            if close:
                plt.close(ax.figure)
    ok = [r for r in cmp.results if r.ok]
    fig = plots.size_memory_bars(m, env_label=_env_label(ok))
    if fig is not None:
        out["size_memory"] = plots.savefig(fig, out_run, "size_memory")
        if close:
            plt.close(fig)
    ax = plots.fidelity_distributions([r for r in ok if r.is_default], env_label=_env_label(ok))
    if ax is not None:
        out["fidelity_cosines"] = plots.savefig(ax.figure, out_run, "fidelity_cosines")
        if close:
            plt.close(ax.figure)
    return out


def caption_of(name: str) -> str:
    if name.startswith("quality_vs_speed"):
        return ("Headline quality loss (or 1 - cosine to FP32 where the group has no quality) against the speed-up "
                "over eager FP32, with 95% intervals; labelled points form the Pareto frontier.")
    return {"size_memory": "Size on disk and inference memory (range over fresh processes) per method, per group.",
            "fidelity_cosines": "Per text, 1 - cosine between a method's embedding and FP32's (log scale)."
            }.get(name, name)


# --- markdown -----------------------------------------------------------------------------------
def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, float):
        return f"{v:g}" if abs(v) >= 1e-4 or v == 0 else f"{v:.2e}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (no tabulate needed)."""
    if df is None or df.empty:
        return "_(empty)_"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_cell(v) for v in row.tolist()) + " |")
    return "\n".join(lines)


LEDGER_COLUMNS = ["id", "precision", "claim", "expected", "baseline", "definition", "verdict", "holds for", "detail"]


def guide_tables(m: Measured) -> list[tuple[str, pd.DataFrame]]:
    """The guide's table, measured, once per group: (the group, its rows without the group column)."""
    gt = tables.guide_table(m)
    if gt.empty or "group" not in gt:
        return [("", gt)] if not gt.empty else []
    return [(g, sub.drop(columns="group").reset_index(drop=True)) for g, sub in gt.groupby("group", sort=False)]


def to_markdown(cmp: Comparison) -> str:
    out = ["# Which precision to run: measured comparison", "",
           f"Generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}.", ""]
    if cmp.empty:
        out += ["**No results were found**, so there is nothing to compare. Run the method notebooks first.", ""]
    out += ["## Recommendation", ""]
    for g, rec in cmp.recommendations.items():
        out += [f"### {g}", "", rec.to_markdown(), ""]
    out += [f"### {d}\n\nNot measured: {why}\n" for d, why in cmp.unmeasured.items()]
    gt = tables.guide_table(cmp.measured)
    out += ["## The guide's table, measured", "", gt.attrs.get("note", ""), ""]
    for g, sub in guide_tables(cmp.measured):
        out += [f"### {g}", "", markdown_table(sub), ""]
    out += ["## Claims ledger", "", ledger_mod.tally_text(cmp.ledger), "",
            markdown_table(cmp.ledger[LEDGER_COLUMNS] if not cmp.ledger.empty else cmp.ledger), ""]
    title, note, st = embedding_storage.section(cmp.storage)
    out += [f"## {title}", "", note, ""] + ([markdown_table(st), ""] if st is not None else [])
    out += ["## Sources", ""] + [f"- {s}" for s in cmp.sources or ["(none given)"]]
    return "\n".join(out)


# --- html ---------------------------------------------------------------------------------------
CSS = """
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1240px;color:#222;
line-height:1.45;padding:0 1em;font-size:16px;overflow-wrap:break-word}
h1{font-size:1.6em;line-height:1.25}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%;margin:.6em 0;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-size:13px;margin:0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:normal}
th{background:#f3f3f3}thead th{position:sticky;top:0}table.kv td{overflow-wrap:anywhere}
tr.holds td.verdict{background:#d9f2d9}tr.fails-worse-than-claimed td.verdict,tr.fails td.verdict{background:#f8d7d7}
tr.fails-better-than-claimed td.verdict{background:#dbe8f8}tr.inconclusive td.verdict{background:#fbf0c9}
tr.not-measured td.verdict{background:#eee;color:#555}
.note{color:#555;font-size:.9em}.box{background:#f6f8fa;border:1px solid #ddd;padding:.8em 1em;border-radius:4px}
figure{margin:1em 0}figure img{display:block;max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}
code{background:#f3f3f3;padding:0 .2em;overflow-wrap:anywhere}pre{overflow-x:auto;white-space:pre-wrap}
summary{cursor:pointer}li{margin:.15em 0}
@media (max-width:600px){body{margin:.8em auto;padding:0 .7em}h1{font-size:1.35em}h2{font-size:1.2em}
h3{font-size:1.05em}.box{padding:.6em .7em}ul{padding-left:1.2em}table{font-size:12px}}
@media (max-width:900px){td.claim,td.detail,td.measured,td.reading{min-width:12em}td.id{min-width:8em}}
"""

#: a data table is at least as wide as its columns' contents need (each column counted as MIN_COL_CH to
#: MAX_COL_CH characters) but never wider than MAX_TABLE_PX, so that on a phone it scrolls sideways in its
#: container instead of squeezing every column into a tall sliver, and on a wide screen it need not scroll
MIN_COL_CH, MAX_COL_CH, MAX_TABLE_PX = 4, 28, 1100


def _min_width_ch(header, rows) -> int:
    """A table's minimum width in characters: per column, its longest value (clipped to MIN/MAX_COL_CH) or its
    header's longest word, plus padding."""
    cols = list(header)
    total = 0
    for j, h in enumerate(cols):
        longest = max([len(w) for w in str(h).split()] + [len(str(r[j])) for r in rows if r[j] is not None] + [0])
        total += min(max(longest, MIN_COL_CH), MAX_COL_CH) + 2
    return total


def _scroll(table_html: str, min_ch: int | None = None) -> str:
    """A table in a container that scrolls sideways; ``min_ch`` gives the table a minimum width (at most
    MAX_TABLE_PX)."""
    if min_ch:
        table_html = table_html.replace("<table", f"<table style='min-width:min({min_ch}ch,{MAX_TABLE_PX}px)'", 1)
    return f"<div class='scroll'>{table_html}</div>"


def _esc(x) -> str:
    return html.escape("" if x is None else str(x))


def _df_html(df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return "<p class='note'>(empty)</p>"
    rows = [["" if _blank(v) else v for v in row] for row in df.astype(object).itertuples(index=False)]
    return _scroll(df.to_html(index=False, na_rep="", escape=True, border=0), _min_width_ch(df.columns, rows))


def _blank(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _ledger_html(df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return "<p class='note'>(no claims)</p>"
    cols = LEDGER_COLUMNS + ["measured", "model", "reading"]
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    rows, values = [], []
    for _, r in df.iterrows():
        cls = "".join(ch if ch.isalnum() else "-" for ch in str(r["verdict"])).strip("-").replace("--", "-")
        values.append(["" if _blank(r.get(c)) else r.get(c) for c in cols])
        folded = str(r.get("holds for") or "").endswith("pairs") and not _blank(r.get("summary"))
        cells = "".join(f"<td class='{_esc(c)}'>{_ledger_cell(c, v, r, folded)}</td>" for c, v in zip(cols, values[-1]))
        rows.append(f"<tr class='{_esc(cls)}'>{cells}</tr>")
    return _scroll(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>",
                   _min_width_ch(cols, values))


def _ledger_cell(col: str, v, row, folded: bool) -> str:
    """A ledger cell; a relation claim's pair-by-pair evidence folded behind a one-line summary."""
    if folded and col == "measured" and v:
        pairs = str(v).split("; ")
        return (f"<details><summary>{_esc(row['summary'])} ({len(pairs)} pairs)</summary><ul>"
                + "".join(f"<li>{_esc(p)}</li>" for p in pairs) + "</ul></details>")
    return _esc(v).replace("/", "/<wbr>")          # bf16/fp16/... wraps


def _rec_html(rec: Recommendation) -> str:
    parts = [f"<div class='box'><p><b>{_esc(rec.choice or 'No recommendation')}</b>"
             + (f" ({_esc(rec.precision)})" if rec.precision else "") + f" on <b>{_esc(rec.device)}</b>"
             + ("" if rec.decided or not rec.ok else " <i>(undecided at 95%)</i>") + "</p>",
             f"<p>{_esc(rec.explanation)}</p>"]
    if rec.evidence:
        parts.append(_scroll("<table class='kv'><tbody>" + "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>"
                                                        for k, v in rec.evidence.items()) + "</tbody></table>"))
    if rec.caveats:
        parts.append("<p>Not established at 95%:</p><ul>" + "".join(f"<li>{_esc(c)}</li>" for c in rec.caveats)
                     + "</ul>")
    if rec.runner_ups:
        parts.append("<p>Runner-ups:</p><ul>" + "".join(
            f"<li>{_esc(r['method'])} ({_esc(r['precision'])}): {_esc(r['note'])}</li>" for r in rec.runner_ups)
            + "</ul>")
    if rec.what_would_change:
        parts.append("<details><summary>What would change the answer</summary><ul>" +
                     "".join(f"<li>{_esc(w)}</li>" for w in rec.what_would_change) + "</ul></details>")
    if rec.rejected:
        parts.append("<details><summary>Rejected methods</summary><ul>" + "".join(
            f"<li>{_esc(r['method'])} ({_esc(r['precision'])}): {_esc(r['why'])}</li>" for r in rec.rejected)
            + "</ul></details>")
    parts.append("</div>")
    return "".join(parts)


def _environment_html(results) -> str:
    seen, blocks = set(), []
    for r in results:
        d = r.device or {}
        key = (d.get("kind"), d.get("cpu_model"), d.get("gpu_name"), tuple(sorted((r.packages or {}).items())))
        if key in seen:
            continue
        seen.add(key)
        items = {"device": env.label(d), "CPU": d.get("cpu_model"), "cores": d.get("cpu_count"),
                 "ISA flags": ", ".join(d.get("cpu_flags", [])), "GPU": d.get("gpu_name"),
                 "GPU capability": d.get("gpu_capability"), "platform": d.get("platform"), "python": d.get("python"),
                 "packages": ", ".join(f"{k} {v}" for k, v in (r.packages or {}).items() if v),
                 "runs": ", ".join(sorted({x.run for x in results if (x.device or {}).get("cpu_model") == d.get(
                     "cpu_model") and (x.device or {}).get("gpu_name") == d.get("gpu_name")}))}
        blocks.append(_scroll("<table class='kv'><tbody>" + "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>"
                                                         for k, v in items.items() if v) + "</tbody></table>"))
    return "".join(blocks) or "<p class='note'>(no results, no environment)</p>"


def to_html(cmp: Comparison, figures: dict[str, Path] | None = None) -> str:
    figures = figures or {}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    m = cmp.measured
    body = ["<h1>Which precision to run: measured comparison</h1>",
            f"<p class='note'>Generated {now}. Constraints: "
            + _esc(", ".join(f"{k}={v}" for k, v in cmp.params.items())) + "</p>"]
    if cmp.empty:
        body.append("<div class='box'><b>No results were found</b> in the sources listed at the end, so there is "
                    "nothing to compare yet. Run the method notebooks (or pass the folders that hold their "
                    "results).</div>")
    warnings = [x for x in cmp.sources if x.startswith("warning:")]
    if warnings:
        body.append("<div class='box'>" + "".join(f"<p><b>{_esc(w)}</b></p>" for w in warnings) + "</div>")
    body.append("<h2>Recommendation</h2>")
    for g, rec in cmp.recommendations.items():
        body.append(f"<h3>{_esc(g)}</h3>" + _rec_html(rec))
    for d, why in cmp.unmeasured.items():
        body.append(f"<h3>{_esc(d)}</h3><p class='note'>Not measured: {_esc(why)}</p>")
    gt = tables.guide_table(m)
    body += ["<h2>The guide's comparison table, measured</h2>", f"<p class='note'>{_esc(gt.attrs.get('note', ''))}</p>"]
    body += [f"<h3>{_esc(g)}</h3>" + _df_html(sub) for g, sub in guide_tables(m)] or [_df_html(gt)]
    body += ["<h2>Claims ledger</h2>", f"<p><b>{_esc(ledger_mod.tally_text(cmp.ledger))}</b></p>",
             "<details><summary>How claims are checked</summary><p class='note'>"
             + _esc(cmp.ledger.attrs.get("rules", "")).replace("\n", "<br>") + "</p></details>",
             _ledger_html(cmp.ledger)]
    if cmp.not_encoded:
        body.append("<details><summary>Statements of the guide not encoded as numbers</summary><ul>" + "".join(
            f"<li>{_esc(x.get('statement'))}: {_esc(x.get('why'))}</li>" for x in cmp.not_encoded) + "</ul></details>")
    if figures:
        body.append("<h2>Figures</h2>")
        for name, p in figures.items():
            data = base64.b64encode(Path(p).read_bytes()).decode("ascii")
            body.append(f"<figure><img alt='{_esc(name)}' src='data:image/png;base64,{data}'>"
                        f"<figcaption>{_esc(caption_of(name))} The environment is printed under each figure."
                        "</figcaption></figure>")
    title, note, st = embedding_storage.section(cmp.storage)
    body += [f"<h2>{_esc(title)}</h2>", f"<p class='note'>{_esc(note)}</p>"]
    body += [_df_html(st)] if st is not None else []
    t = m.table
    if not t.empty and (t["latest_attempt"].fillna("") != "").any():
        body += ["<h2>Re-runs that failed beside a good Result</h2><p class='note'>The figures above are the good "
                 "Result's; the later attempt is recorded under results/attempts/.</p>",
                 _df_html(tables.status(m).query("`latest attempt` != ''"))]
    for title, view in (("Speed", tables.speed), ("Size and memory", tables.footprint), ("Quality", tables.quality),
                        ("Fidelity to FP32", tables.fidelity)):
        df = view(m)
        body += [f"<h2>{title}: every configuration</h2>", f"<p class='note'>{_esc(df.attrs.get('note', ''))}</p>",
                 _df_html(df)]
    body += ["<h2>Environment</h2>", _environment_html(cmp.results),
             "<h2>Methods in the registry</h2>", _df_html(methods.table()),
             "<h2>Sources</h2><ul>" + "".join(f"<li>{_esc(s)}</li>" for s in cmp.sources or ["(none given)"]) + "</ul>"]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Precision comparison</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def export(cmp: Comparison, out_run: str, figures: dict[str, Path] | None = None) -> dict[str, Path]:
    """Write report.html, comparison.csv, comparison.md and ledger.csv under outputs/<out_run>/ (group-readable)."""
    folder = paths.run_dir(out_run)
    folder.mkdir(parents=True, exist_ok=True)
    out = {"html": folder / "report.html", "csv": folder / "comparison.csv", "md": folder / "comparison.md",
           "ledger_csv": folder / "ledger.csv"}
    out["html"].write_text(to_html(cmp, figures), encoding="utf-8")
    cmp.measured.table.drop(columns=["uid"], errors="ignore").to_csv(out["csv"], index=False)
    cmp.ledger.to_csv(out["ledger_csv"], index=False)
    out["md"].write_text(to_markdown(cmp), encoding="utf-8")
    for p in out.values():
        p.chmod(0o644)
    return out


def build(runs=(), extra_result_dirs=(), out_run: str = "comparison", **kwargs) -> tuple[Comparison, dict]:
    """Load the runs, compute the comparison, draw the figures and write the report files."""
    paths.check_run_name(out_run)
    results, messages = load(runs, extra_result_dirs)
    cmp = compute(results, messages, **kwargs)
    figs = make_figures(cmp, out_run)
    files = export(cmp, out_run, figs)
    return cmp, files | {f"figure:{k}": v for k, v in figs.items()}
