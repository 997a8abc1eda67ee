"""The shareable report: outputs/<run>/report.html (self-contained), comparison.csv, comparison.md, ledger.csv.

``compute`` turns Results into the comparison (tables, claims ledger, recommendations), ``make_figures``
draws and saves the figures, ``export`` writes the files; ``build`` does all three. The HTML embeds its
figures as base64 PNG and its own style sheet: it opens in any browser, without Jupyter or a network.
"""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from . import compare, env, ledger as ledger_mod, paths, plots
from .recommend import Recommendation, recommend


@dataclass
class Comparison:
    results: list
    sources: list = field(default_factory=list)        # messages about what was loaded / missing
    params: dict = field(default_factory=dict)
    table: pd.DataFrame = None
    by_precision: pd.DataFrame = None
    ledger: pd.DataFrame = None
    recommendations: dict = field(default_factory=dict)  # device -> Recommendation
    primary_device: str = "cpu"
    not_encoded: list = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.results


def compute(results, sources=(), device: str = "cpu", memory_budget_mb: float | None = None,
            max_quality_loss_pct: float = 1.0, min_speedup: float = 1.0, objective: str = "speed",
            batch_size: int = 32, seq_len: int = 128, baseline: str = "fp32", rule: str = "balanced",
            claims=None) -> Comparison:
    results = list(results)
    rules = compare.UseRules(max_quality_loss_pct=max_quality_loss_pct)
    measured = compare.measure_all(results, batch_size, seq_len, baseline)
    params = {"device": device, "memory_budget_mb": memory_budget_mb, "max_quality_loss_pct": max_quality_loss_pct,
              "min_speedup": min_speedup, "objective": objective, "batch_size": batch_size, "seq_len": seq_len,
              "baseline": baseline, "representative rule": rule}
    cmp = Comparison(results, list(sources), params, primary_device=device)
    cmp.table = compare.table(measured, batch_size, seq_len, baseline, rules)
    cmp.by_precision = compare.by_precision(measured, batch_size, seq_len, baseline, rule, rules)
    cmp.ledger = ledger_mod.check(results, claims, batch_size, seq_len, baseline, measured=measured)
    devices = [device] + [d for d in ("cpu", "cuda") if d != device and any(r.device_kind == d for r in results)]
    for d in devices:
        cmp.recommendations[d] = recommend(results, device=d, memory_budget_mb=memory_budget_mb,
                                           max_quality_loss_pct=max_quality_loss_pct, min_speedup=min_speedup,
                                           objective=objective, batch_size=batch_size, seq_len=seq_len,
                                           baseline=baseline, measured=measured)
    try:
        import yaml
        cmp.not_encoded = (yaml.safe_load(paths.CLAIMS.read_text()) or {}).get("not_encoded", [])
    except OSError:
        cmp.not_encoded = []
    return cmp


def _env_label(results) -> str:
    return " | ".join(compare.environments(results))


def make_figures(cmp: Comparison, out_run: str, close: bool = True) -> dict[str, Path]:
    """Draw the comparison figures, save them under outputs/<out_run>/figures; name -> PNG path."""
    import matplotlib.pyplot as plt
    plots.theme()
    out = {}
    if cmp.empty:
        return out
    ok = [r for r in cmp.results if r.status == "ok"]
    for dev in ("cpu", "cuda"):
        rs = [r for r in ok if r.device_kind == dev]
        if not rs:
            continue
        ax = plots.quality_vs_speed(cmp.table, device=dev, env_label=_env_label(rs))
        if ax is not None:
            out[f"quality_vs_speed_{dev}"] = plots.savefig(ax.figure, out_run, f"quality_vs_speed_{dev}")
            if close:
                plt.close(ax.figure)
    fig = plots.size_memory_bars(cmp.table, env_label=_env_label(ok))
    if fig is not None:
        out["size_memory"] = plots.savefig(fig, out_run, "size_memory")
        if close:
            plt.close(fig)
    ax = plots.fidelity_distributions(ok, env_label=_env_label(ok))
    if ax is not None:
        out["fidelity_cosines"] = plots.savefig(ax.figure, out_run, "fidelity_cosines")
        if close:
            plt.close(ax.figure)
    return out


FIGURE_CAPTIONS = {
    "quality_vs_speed_cpu": "Quality (mean % of FP32, or mean cosine where quality was not measured) against CPU "
                            "speed as a ratio to FP32 of the same run; ringed points form the Pareto frontier.",
    "quality_vs_speed_cuda": "Quality against GPU speed as a ratio to FP32 of the same run; ringed points form "
                             "the Pareto frontier.",
    "size_memory": "Size on disk and peak inference memory per method, per run and device.",
    "fidelity_cosines": "Per text, 1 - cosine between a method's embedding and FP32's (log scale).",
}


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
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_cell(v) for v in row.tolist()) + " |")
    return "\n".join(lines)


LEDGER_COLUMNS = ["id", "precision", "claim", "expected", "measured", "verdict", "detail"]


def to_markdown(cmp: Comparison) -> str:
    out = ["# Precision comparison", "",
           f"Generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}.", ""]
    out += ["## Sources", ""] + [f"- {s}" for s in cmp.sources or ["(none given)"]] + [""]
    if cmp.empty:
        out += ["**No results were found**, so there is nothing to compare. Run the method notebooks first.", ""]
    out += ["## The guide's table, measured", "", cmp.by_precision.attrs.get("rule", ""), "",
            markdown_table(compare.rounded(cmp.by_precision)), "",
            "## All methods", ""] + [f"- {n}" for n in cmp.table.attrs.get("notes", [])] + [
            "", markdown_table(compare.rounded(cmp.table)), "",
            "## Claims ledger", "", _tally_text(cmp.ledger), "",
            markdown_table(cmp.ledger[LEDGER_COLUMNS] if not cmp.ledger.empty else cmp.ledger), ""]
    out += ["## Recommendation", ""]
    for d, rec in cmp.recommendations.items():
        out += [f"### {d}", "", rec.to_markdown(), ""]
    return "\n".join(out)


def _tally_text(df) -> str:
    t = ledger_mod.tally(df)
    return ", ".join(f"{v} {k}" for k, v in t.items()) + f" (of {len(df)} claims)" if t else "no claims"


# --- html ---------------------------------------------------------------------------------------
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:12px;margin:.6em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0}
tr.holds td.verdict{background:#d9f2d9}tr.fails td.verdict{background:#f8d7d7}
tr.not-measured td.verdict{background:#eee;color:#555}
.note{color:#555;font-size:.9em}.box{background:#f6f8fa;border:1px solid #ddd;padding:.8em 1em;border-radius:4px}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.9em;color:#444}
code{background:#f3f3f3;padding:0 .2em}
"""


def _esc(x) -> str:
    return html.escape("" if x is None else str(x))


def _df_html(df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return "<p class='note'>(empty)</p>"
    return df.to_html(index=False, na_rep="", escape=True, border=0)


def _ledger_html(df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return "<p class='note'>(no claims)</p>"
    cols = LEDGER_COLUMNS + ["holds for", "evidence", "reading"]
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    rows = []
    for _, r in df.iterrows():
        cls = str(r["verdict"]).replace(" ", "-")
        cells = "".join(f"<td class='{_esc(c)}'>{_esc(r.get(c, ''))}</td>" for c in cols)
        rows.append(f"<tr class='{_esc(cls)}'>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _rec_html(rec: Recommendation) -> str:
    parts = [f"<div class='box'><p><b>{_esc(rec.choice or 'No recommendation')}</b>"
             + (f" ({_esc(rec.precision)})" if rec.precision else "") + f" on <b>{_esc(rec.device)}</b></p>",
             f"<p>{_esc(rec.explanation)}</p>",
             "<p class='note'>Constraints: " + _esc(", ".join(f"{k}={v}" for k, v in rec.constraints.items()))
             + "</p>"]
    if rec.evidence:
        parts.append("<table><tbody>" + "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>"
                                                for k, v in rec.evidence.items()) + "</tbody></table>")
    if rec.runner_ups:
        parts.append("<p>Runner-ups:</p><ul>" + "".join(
            f"<li>{_esc(r['method'])} ({_esc(r['precision'])}): {_esc(r['note'])}</li>" for r in rec.runner_ups)
            + "</ul>")
    if rec.what_would_change:
        parts.append("<p>What would change the answer:</p><ul>" +
                     "".join(f"<li>{_esc(w)}</li>" for w in rec.what_would_change) + "</ul>")
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
                 "GPU capability": d.get("gpu_capability"), "platform": d.get("platform"),
                 "python": d.get("python"),
                 "packages": ", ".join(f"{k} {v}" for k, v in (r.packages or {}).items() if v)}
        runs = sorted({x.run for x in results if (x.device or {}).get("cpu_model") == d.get("cpu_model")
                       and (x.device or {}).get("gpu_name") == d.get("gpu_name")})
        items["runs"] = ", ".join(runs)
        blocks.append("<table><tbody>" + "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>"
                                                 for k, v in items.items() if v) + "</tbody></table>")
    return "".join(blocks) or "<p class='note'>(no results, no environment)</p>"


def _registry_html(results) -> str:
    from . import methods
    t = methods.table()
    seen = {r.method for r in results}
    t["in these results"] = t["method"].map(lambda m: "yes" if m in seen else "no")
    return _df_html(t)


def to_html(cmp: Comparison, figures: dict[str, Path] | None = None) -> str:
    figures = figures or {}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    primary = cmp.recommendations.get(cmp.primary_device)
    body = ["<h1>Which precision to run: measured comparison</h1>",
            f"<p class='note'>Generated {now}. Parameters: "
            + _esc(", ".join(f"{k}={v}" for k, v in cmp.params.items())) + "</p>",
            "<h2>Sources</h2><ul>" + "".join(f"<li>{_esc(s)}</li>" for s in cmp.sources or ["(none given)"])
            + "</ul>"]
    if cmp.empty:
        body.append("<div class='box'><b>No results were found</b> in the sources above, so there is nothing to "
                    "compare yet. Run the method notebooks (or pass the folders that hold their results).</div>")
    body.append("<h2>Summary</h2><div class='box'>")
    if primary is not None:
        body.append(f"<p>Recommendation on {_esc(primary.device)}: <b>{_esc(primary.choice or 'none')}</b>"
                    + (f" ({_esc(primary.precision)})" if primary.precision else "")
                    + f". {_esc(primary.explanation)}</p>")
    body.append(f"<p>Claims of the guide: {_esc(_tally_text(cmp.ledger))}.</p></div>")
    body += ["<h2>The guide's comparison table, measured</h2>",
             f"<p class='note'>{_esc(cmp.by_precision.attrs.get('rule', ''))}</p>",
             _df_html(compare.rounded(cmp.by_precision)),
             "<h2>All methods</h2><ul class='note'>" +
             "".join(f"<li>{_esc(n)}</li>" for n in cmp.table.attrs.get("notes", [])) + "</ul>",
             _df_html(compare.rounded(cmp.table))]
    if figures:
        body.append("<h2>Figures</h2>")
        for name, p in figures.items():
            data = base64.b64encode(Path(p).read_bytes()).decode("ascii")
            body.append(f"<figure><img alt='{_esc(name)}' src='data:image/png;base64,{data}'>"
                        f"<figcaption>{_esc(FIGURE_CAPTIONS.get(name, name))} The environment is printed "
                        f"under each figure.</figcaption></figure>")
    body += ["<h2>Claims ledger</h2>", f"<p>{_esc(_tally_text(cmp.ledger))}</p>",
             "<p class='note'>" + _esc(cmp.ledger.attrs.get("rules", "")).replace("\n", "<br>") + "</p>",
             _ledger_html(cmp.ledger)]
    if cmp.not_encoded:
        body.append("<details><summary>Statements of the guide not encoded as numbers</summary><ul>" + "".join(
            f"<li>{_esc(x.get('statement'))}: {_esc(x.get('why'))}</li>" for x in cmp.not_encoded) + "</ul></details>")
    body.append("<h2>Recommendation</h2>")
    for rec in cmp.recommendations.values():
        body.append(f"<h3>{_esc(rec.device)}</h3>" + _rec_html(rec))
    body += ["<h2>Environment</h2>", _environment_html(cmp.results),
             "<h2>Methods in the registry</h2>", _registry_html(cmp.results)]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Precision comparison</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def export(cmp: Comparison, out_run: str, figures: dict[str, Path] | None = None) -> dict[str, Path]:
    """Write report.html, comparison.csv, comparison.md and ledger.csv under outputs/<out_run>/."""
    folder = paths.run_dir(out_run)
    folder.mkdir(parents=True, exist_ok=True)
    out = {"html": folder / "report.html", "csv": folder / "comparison.csv", "md": folder / "comparison.md",
           "ledger_csv": folder / "ledger.csv"}
    out["html"].write_text(to_html(cmp, figures), encoding="utf-8")
    cmp.table.to_csv(out["csv"], index=False)
    cmp.ledger.to_csv(out["ledger_csv"], index=False)
    out["md"].write_text(to_markdown(cmp), encoding="utf-8")
    return out


def build(runs=(), extra_result_dirs=(), out_run: str = "comparison", **kwargs) -> tuple[Comparison, dict]:
    """Load the runs, compute the comparison, draw the figures and write the report files."""
    paths.check_run_name(out_run)
    results, messages = compare.load(runs, extra_result_dirs)
    cmp = compute(results, messages, **kwargs)
    figs = make_figures(cmp, out_run)
    files = export(cmp, out_run, figs)
    return cmp, files | {f"figure:{k}": v for k, v in figs.items()}
