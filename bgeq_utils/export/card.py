"""The model card (README.md) of an exported folder: what it is, how to load it, how it was verified, and
(when a Result is given) what was measured, every figure read from the Result through the comparison's own
views and formatting, none typed by hand."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bgeq_utils.compare import measured as mm
from bgeq_utils.compare import tables
from bgeq_utils.compare.report import markdown_table as md
from bgeq_utils.core import env, vocab
from bgeq_utils.core import results as results_mod
from bgeq_utils.core.uncertainty import Estimate

#: the identity columns of the comparison's views (the card shows one method: they are said once, above)
_ID_COLUMNS = ("method", "precision", "runtime", "status", "group", "reason")


def _blank(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def markdown_table(df: pd.DataFrame) -> str:
    return md(df)


def measured_figures(result, context=None) -> tuple[pd.DataFrame, list[str]]:
    """The Result's row of the comparison, as (figure, value) pairs, and each view's note.

    Deltas and speed-ups need the FP32 Result of the same group: ``context`` (Results of the same run; by
    default those saved under ``outputs/<run>/results``) supplies it."""
    if context is None:
        context = results_mod.load_run(result.run, strict=False)
    same = (result.run, result.key, result.device_kind)
    pool = [r for r in context if (r.run, r.key, r.device_kind) != same] + [result]
    m = mm.tabulate(pool)            # the comparison's cell, or this group's nearest (measured.speed_cell)
    keep = [i for i, u in zip(m.table.index, m.table["uid"]) if m.results[u] is result]
    sub = mm.Measured(m.table.loc[keep], m.results, m.batch_size, m.seq_len)
    rows, notes = [], []
    for what, view in (("size and memory", tables.footprint), ("speed", tables.speed),
                       ("fidelity to FP32", tables.fidelity), ("quality", tables.quality)):
        df = view(sub)
        if df.empty:
            continue
        r = df.iloc[0]
        added = False
        for col in df.columns:
            if col in _ID_COLUMNS or _blank(r[col]):
                continue
            rows.append({"measured": what, "figure": col, "value": r[col]})
            added = True
        if added and df.attrs.get("note"):
            notes.append(f"{what}: {df.attrs['note']}")
    base = mm.baseline_of([x for x in pool if mm.group_key(x) == mm.group_key(result)])
    if base is None:
        notes.append("no FP32 Result of the same run, model, data and device was found: no quality deltas or "
                     "size and memory ratios")
    return pd.DataFrame(rows), notes


def verification_table(report) -> pd.DataFrame:
    """One row per loader: how it reloaded, and its cosines to bgeq's encoder and to FP32."""
    rows = []
    for c in report.checks:
        row = {"loader": c.loader, "status": c.status, "environment": c.environment or None}
        if c.status == vocab.OK:
            em, ef = c.estimate("method"), c.estimate("fp32")
            row |= {"texts": c.vs_method.get("n"),
                    f"cos vs bgeq {report.method} mean [95% CI]": em.fmt(6) if em else None,
                    f"cos vs bgeq {report.method} min": Estimate(c.vs_method["cos_min"]).fmt(6),
                    "cos vs FP32 mean [95% CI]": ef.fmt(4) if ef else None,
                    "cos vs FP32 min": Estimate(c.vs_fp32["cos_min"]).fmt(4),
                    f"passes (>= {report.min_cosine})": "yes" if c.passed else "NO"}
        else:
            row["reason"] = c.reason
        rows.append(row)
    return pd.DataFrame(rows)


def _front_matter(report) -> str:
    tags = ["sentence-transformers", "feature-extraction", "sentence-similarity", report.precision, report.format,
            "bgeq"]
    library = "ctranslate2" if report.format == "ct2" else "sentence-transformers"
    return (f"---\nlibrary_name: {library}\npipeline_tag: sentence-similarity\n"
            f"base_model: {report.model_id}\ntags:\n" + "".join(f"- {t}\n" for t in dict.fromkeys(tags)) + "---\n")


def render(report, measured: pd.DataFrame | None = None, measured_notes=(), result=None) -> str:
    """The README.md of the folder."""
    out = [_front_matter(report)]
    title = f"# {report.model_id} · {report.label}"
    if not report.passed:
        out += ["# NOT VERIFIED: this folder failed its export check", "",
                "Its embeddings do not reproduce the model bgeq measured (figures below). Do not deploy it.", ""]
    out += [title, "", f"{report.summary}", "",
            f"Exported by bgeq on {report.created} from `{report.model_id}` ({report.weights} weights), "
            f"method `{report.method}` ({report.precision}), verified on {report.device_label}.", ""]
    opts = report.effective_options
    out += ["## What it is", "", f"- method: `{report.method}` ({report.precision}, runs in {report.runtime})",
            f"- format: {report.format} ({report.format_description})",
            "- options: " + (", ".join(f"`{k}={v!r}`" for k, v in opts.items()) or "none")
            + (f" (changed from the defaults: {', '.join(f'`{k}`' for k in report.options)})" if report.options
               else " (the registry defaults)")]
    if report.calibration is not None:
        out.append(f"- calibration: {report.calibration}")
    out.append(f"- pooling: {report.pooling}, then L2 normalization; at most {report.max_seq_length} tokens")
    out.append("")
    here = Path(report.out_dir).name            # the card travels with the folder: no machine's absolute path
    first = report.loaders[0].render(here)
    out += ["## How to load it", "", f"Needs: {report.loaders[0].library}. The code below is exactly what the "
            f"export check ran, with the folder's path written relative to its parent folder ({here}).", "",
            "```python", first.rstrip(),
            'embeddings = model.encode(["A sentence to embed", "Another one"])' if "model = " in first
            else 'embeddings = encode(["A sentence to embed", "Another one"])', "```", ""]
    for ld in report.loaders[1:]:
        out += [f"Without sentence-transformers ({ld.library}):", "", "```python", ld.render(here).rstrip(),
                "", "",
                'embeddings = encode(["A sentence to embed", "Another one"])', "```", ""]
    out += ["## Verification", "",
            f"At export, the folder was reloaded in a fresh Python process by each loader above, with nothing of "
            f"bgeq imported, and {report.n_texts} texts ({report.texts_source}) were embedded one at a time. "
            f"The shipped model must reproduce bgeq's own `{report.method}` encoder with these options (the model "
            f"that was measured): mean and smallest cosine at least {report.min_cosine}. Fidelity to FP32 is "
            "the same comparison against the FP32 reference.", "", markdown_table(verification_table(report)), ""]
    unavailable = [c for c in report.checks if c.status == "unavailable"]
    for c in unavailable:
        out += [f"Not verified here: `{c.loader}`: {c.reason}", ""]
    if measured is not None and not measured.empty:
        out += ["## Measured by bgeq", "",
                f"From Result `{result.key}` of run `{result.run}` ({result.label}, {result.created}), measured on "
                f"{env.label(result.device)}.", "", markdown_table(measured), ""]
        out += [f"- {n}" for n in measured_notes] + [""]
    elif result is not None:
        out += ["## Measured by bgeq", "", f"Result `{result.key}` of run `{result.run}`: status {result.status}"
                + (f" ({result.reason})" if result.reason else "") + "; no figures.", ""]
    if report.notes:
        out += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    out += ["## Files", "", markdown_table(pd.DataFrame(report.files)), "",
            f"Total: {Estimate(report.size_bytes / 1e6).fmt(1)} MB, with this card (README.md) and the export "
            "report (bgeq_export.json) besides.", "",
            "## Environment", "", f"- exported on: {report.device_label}",
            "- libraries at export: " + ", ".join(f"{k} {v}" for k, v in report.versions.items() if v), ""]
    return "\n".join(out)
