"""export(): the chosen method's model as a folder its own library loads, verified against what was measured.

1. The method's Encoder is built as bgeq builds it for measuring (same registry, options, calibration).
2. Its model is written, in the form its ecosystem loads natively (see ``formats``), into a temporary folder
   beside ``out_dir``.
3. The folder is reloaded in a fresh process by the exact load code of its model card, with nothing of bgeq
   imported; its embeddings of the evaluation texts must reproduce bgeq's encoder (mean and smallest cosine
   >= 0.9999); fidelity to FP32 is reported.
4. Only then is the folder renamed into place. A folder that fails is renamed ``<out_dir>.failed`` with its
   report (and a card that says so) and the error names the cosines. An existing non-empty ``out_dir`` is
   never replaced unless ``overwrite=True``.
"""
from __future__ import annotations

import gc
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from bgeq_utils import methods
from bgeq_utils.core import env, paths, vocab
from bgeq_utils.core.results import Result
from bgeq_utils.core.uncertainty import Estimate
from bgeq_utils.export import card as card_mod
from bgeq_utils.export import formats, verify
from bgeq_utils.export.formats import ExportError, Loader
from bgeq_utils.inputs import data, models
from bgeq_utils.measure import pipeline

#: texts embedded at verification when none are given: the Lee corpus documents, at most this many
MAX_TEXTS = 50
FORMAT_DESCRIPTIONS = {
    "onnx": "the ONNX graph bgeq ran, for ONNX Runtime, in a sentence-transformers folder (backend='onnx')",
    "openvino": "the OpenVINO IR bgeq ran, in a sentence-transformers folder (backend='openvino')",
    "bitsandbytes": "transformers' save_pretrained of the bitsandbytes-quantized model (quantization_config in "
                    "config.json), in a sentence-transformers folder",
    "torch": "PyTorch weights (safetensors) as measured, in a sentence-transformers folder",
    "ct2": "CTranslate2's own model folder (converted and quantized by its converter), with the tokenizer and the "
           "pooling config",
    "torch-recipe": "FP32 PyTorch weights in a sentence-transformers folder, plus load_quantized.py, which applies "
                    "the quantization recipe at load time",
}
VERSION_PACKAGES = ("torch", "transformers", "sentence-transformers", "onnxruntime", "onnx", "openvino", "nncf",
                    "bitsandbytes", "torchao", "optimum-quanto", "ctranslate2")


class ExportExistsError(ExportError, FileExistsError):
    """out_dir exists and is not empty (pass overwrite=True to replace it)."""


class ExportVerificationError(ExportError):
    """The exported folder does not reproduce the model bgeq measured; ``report`` holds the figures."""

    def __init__(self, message: str, report: ExportReport):
        super().__init__(message)
        self.report = report


@dataclass(repr=False)
class ExportReport:
    """What was exported, where, how to load it, and how well the reloaded folder matches what was measured."""
    method: str
    label: str
    model_id: str
    weights: str
    precision: str
    runtime: str
    format: str
    out_dir: Path
    options: dict                        # options that differ from the method's defaults
    effective_options: dict              # every option with its value
    calibration: str | None
    device: str
    device_label: str
    pooling: str
    max_seq_length: int
    loaders: list[Loader]
    checks: list[verify.Check]
    min_cosine: float
    n_texts: int
    texts_source: str
    files: list[dict] = field(default_factory=list)
    size_bytes: int = 0
    versions: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    summary: str = ""
    result_key: str | None = None
    created: str = ""
    seconds: float | None = None

    @property
    def passed(self) -> bool:
        return verify.passed(self.checks)

    @property
    def format_description(self) -> str:
        return FORMAT_DESCRIPTIONS.get(self.format, self.format)

    @property
    def load_code(self) -> str:
        """The code that loads the folder (the first loader's), with the folder's path as the project shows
        paths: relative to the repository (or ``<outputs>/`` when outputs live elsewhere)."""
        return self.loaders[0].render(paths.shown(self.out_dir))

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6

    def check(self, loader: str | None = None) -> verify.Check | None:
        """The verification of one loader (by default the first that ran)."""
        ran = [c for c in self.checks if c.status == vocab.OK]
        if loader is None:
            return ran[0] if ran else None
        return next((c for c in self.checks if c.loader == loader), None)

    def table(self) -> pd.DataFrame:
        """The verification figures, one row per loader."""
        return card_mod.verification_table(self)

    def to_dict(self) -> dict:
        return {"method": self.method, "label": self.label, "model": self.model_id, "weights": self.weights,
                "precision": self.precision, "runtime": self.runtime, "format": self.format,
                "out_dir": str(self.out_dir), "options": self.options, "effective_options": self.effective_options,
                "calibration": self.calibration, "device": self.device, "device_label": self.device_label,
                "pooling": self.pooling, "max_seq_length": self.max_seq_length,
                "loaders": [{"name": ld.name, "library": ld.library, "optional": ld.optional, "code": ld.code}
                            for ld in self.loaders],
                "verification": {"min_cosine": self.min_cosine, "texts": self.n_texts,
                                 "texts_source": self.texts_source, "passed": self.passed,
                                 "checks": [{"loader": c.loader, "status": c.status, "reason": c.reason,
                                             "environment": c.environment, "passed": c.passed,
                                             "vs_method": c.vs_method, "vs_fp32": c.vs_fp32} for c in self.checks]},
                "files": self.files, "size_bytes": self.size_bytes, "versions": self.versions, "notes": self.notes,
                "result_key": self.result_key, "created": self.created, "seconds": self.seconds}

    def __repr__(self) -> str:
        state = "verified" if self.passed else "FAILED verification"
        return f"ExportReport({self.label!r} -> {paths.shown(self.out_dir)!r}, {self.format}, {self.size_mb:.1f} MB, " \
               f"{state})"

    def what_it_means(self) -> str:
        """A paragraph for people, every figure read from the verification."""
        c = self.check()
        head = (f"`{self.label}` ships as {self.format_description}: {Estimate(self.size_mb).fmt(1)} MB in "
                f"{len(self.files)} files under `{paths.shown(self.out_dir)}`.")
        if c is None:
            return head + " No loader could reload it here, so it was not verified."
        verdict = "reproduces" if self.passed else "does NOT reproduce"
        out = (f"{head} Reloaded by `{c.loader}` ({c.environment}), it {verdict} the model bgeq measured on "
               f"{self.n_texts} texts (cosine to bgeq's `{self.method}` encoder: mean "
               f"{c.estimate('method').fmt(6)}, smallest {Estimate(c.vs_method['cos_min']).fmt(6)}; required "
               f"{self.min_cosine}), and keeps a mean cosine of {c.estimate('fp32').fmt(4)} to FP32's embeddings "
               f"of the same texts.")
        for u in self.checks:
            if u.status == "unavailable":
                out += f" `{u.loader}` could not be tried in this environment ({u.reason.split('. ')[0]})."
        return out

    def _repr_markdown_(self):
        state = "verified" if self.passed else "FAILED verification"
        return (f"**{self.label}** -> `{paths.shown(self.out_dir)}` ({self.format}, "
                f"{self.size_mb:.1f} MB, {state})\n\n```python\n{self.load_code}```\n")


# --- inputs ---------------------------------------------------------------------------------------
def _options(spec, options: dict | None, result: Result | None) -> dict:
    if result is not None:
        if result.method != spec.name:
            raise ValueError(f"the Result is of method {result.method!r}, not {spec.name!r}")
        given = spec.normalize_options(options) if options is not None else None
        if given is not None and given != spec.normalize_options(result.options):
            raise ValueError(f"options {given} differ from those of the Result ({result.options}); pass one or "
                             "the other")
        return spec.normalize_options(result.options)
    return spec.normalize_options(options)


def _calibration(spec, calibration, result: Result | None) -> tuple[list[str] | None, str | None]:
    """Calibration texts for a method that needs them (the Result's, else the registry default's), described."""
    if "calibration" not in spec.needs:
        return None, None
    wanted = (result.settings or {}).get("calibration") if result is not None else None
    if calibration is None:
        if isinstance(wanted, str):
            raise ValueError(f"the Result was calibrated on custom texts ({wanted}); pass the same texts as "
                             "calibration=[...]")
        calibration = wanted if isinstance(wanted, int) else pipeline.DEFAULT_CALIBRATION
    texts = data.calibration_texts(calibration) if isinstance(calibration, int) else list(calibration)
    cid = pipeline.calibration_id(texts)
    if wanted is not None and cid != wanted:
        raise ValueError(f"calibration {cid!r} is not the Result's ({wanted!r})")
    desc = (f"{cid} texts of bgeq's calibration set (unlabelled Lee background news, never evaluation texts)"
            if isinstance(cid, int) else f"{cid} given")
    return texts, desc


def _texts(texts, max_texts: int) -> tuple[list[str], str]:
    if texts is not None:
        texts = [t for t in texts if isinstance(t, str) and t.strip()]
        if not texts:
            raise ValueError("texts: give at least one non-empty string (or None for the Lee corpus documents)")
        return list(texts)[:max_texts], f"{min(len(texts), max_texts)} texts given to export()"
    docs = list(data.load_evalset("lee").corpus.values())[:max_texts]
    return docs, f"the first {len(docs)} documents of the Lee corpus, bgeq's default evaluation set"


def default_out_dir(method: str, options: dict, run: str = "default") -> Path:
    """``outputs/<run>/export/<method>`` (``<method>-<hash of options>`` for a variant)."""
    import hashlib
    name = method
    if options:
        name += "-" + hashlib.sha1(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return paths.run_dir(run) / "export" / name


def _check_target(out: Path, overwrite: bool) -> None:
    if out.is_file():
        raise ExportExistsError(f"{out} is a file; out_dir must be a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportExistsError(f"{out} exists and is not empty; choose another out_dir or pass overwrite=True "
                                "to replace it (only once the new export has passed its check)")


def _files(folder: Path) -> list[dict]:
    return [{"file": str(p.relative_to(folder)), "bytes": p.stat().st_size}
            for p in sorted(folder.rglob("*")) if p.is_file()]


def _fail_message(report: ExportReport, where: Path | None) -> str:
    parts = []
    for c in report.checks:
        if c.status == vocab.OK:
            parts.append(f"{c.loader}: cosine to bgeq's {report.method} mean {c.vs_method['cos_mean']:.6f}, "
                         f"min {c.vs_method['cos_min']:.6f} (both must be >= {report.min_cosine}); "
                         f"to FP32 mean {c.vs_fp32['cos_mean']:.6f}")
        else:
            parts.append(f"{c.loader}: {c.status}: {c.reason}")
    kept = f" The folder and its report were kept for inspection in {where}." if where else ""
    return (f"export of {report.label} failed its check: the reloaded folder does not reproduce the model bgeq "
            f"measured. " + "; ".join(parts) + "." + kept)


# --- the export -----------------------------------------------------------------------------------
def export(method: str, model: str = "default", out_dir: str | Path | None = None, options: dict | None = None,
           calibration=None, result: Result | None = None, texts: list[str] | None = None, device: str = "cpu", *,
           weights: str = "pretrained", run: str | None = None, overwrite: bool = False, python: str | None = None,
           max_texts: int = MAX_TEXTS, min_cosine: float = verify.MIN_COSINE, context: list | None = None,
           reference=None, keep_failed: bool = True, timeout_s: float = 900,
           texts_source: str | None = None) -> ExportReport:
    """Export ``method``'s model of ``model`` to ``out_dir`` as its own library loads it, and verify it.

    options / calibration: as for ``methods.build`` (calibration: texts or a number of bgeq's calibration texts;
    default: the Result's, else 64). result: the Result measured for this configuration; its options and
    calibration are used, its figures go into the model card (``context``: other Results of its run, for the
    FP32 baseline; default: those saved in its run). texts: verification texts (default: the Lee corpus
    documents, at most ``max_texts``; ``texts_source`` says where given texts come from for the card).
    python: the interpreter that reloads the folder (default: this one), e.g. a virtual environment with
    ``sentence-transformers[onnx]``. Raises :class:`ExportError` (not exportable, cannot run here),
    :class:`ExportExistsError` and :class:`ExportVerificationError`."""
    t0 = time.perf_counter()
    spec = methods.get(method)
    device = env.check_device(device)
    opts = _options(spec, options, result)
    formats.check_exportable(method, opts)
    run = run or (result.run if result is not None else "default")
    out = Path(out_dir).expanduser() if out_dir else default_out_dir(method, opts, run)
    out = out if out.is_absolute() else (Path.cwd() / out)
    _check_target(out, overwrite)
    cal_texts, cal_desc = _calibration(spec, calibration, result)
    check_texts, source = _texts(texts, max_texts)
    texts_source = texts_source or source
    if reference is None:
        reference = models.load_reference(model, weights=weights, device=device)
    if result is not None and result.model.get("id") not in (None, reference.model_id):
        raise ValueError(f"the Result measured {result.model.get('id')!r}, but the model to export is "
                         f"{reference.model_id!r}")
    try:
        encoder = methods.build(method, reference, device=device, calibration=cal_texts, **opts)
    except methods.MethodUnavailable as e:
        raise ExportError(f"{method} cannot run here ({e}): there is no model to export") from e

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.partial"
    tmp.mkdir()
    try:
        written = formats.write(method, encoder, reference, tmp, opts, device)
        method_emb = encoder.encode(check_texts, batch_size=1)
        info = dict(getattr(encoder, "info", {}) or {})
        encoder.close()
        del encoder
        fp32 = methods.build("fp32", reference, device=device)
        fp32_emb = fp32.encode(check_texts)
        del fp32
        gc.collect()
        files = _files(tmp)
        runs = verify.reload(tmp, written.loaders, check_texts, python=python, timeout_s=timeout_s)
        checks = verify.compare(runs, method_emb, fp32_emb, min_cosine, written.loaders)
        report = ExportReport(
            method=method, label=pipeline.variant_label(method, opts, cal_texts), model_id=reference.model_id,
            weights=reference.weights, precision=spec.precision, runtime=getattr(spec, "runtime", ""),
            format=written.format, out_dir=out, options=opts, effective_options=spec.option_defaults() | opts,
            calibration=cal_desc, device=device, device_label=env.label(env.describe(device)),
            pooling=reference.pooling, max_seq_length=int(reference.max_seq_length), loaders=written.loaders,
            checks=checks, min_cosine=min_cosine, n_texts=len(check_texts), texts_source=texts_source, files=files,
            size_bytes=sum(f["bytes"] for f in files), versions=env.package_versions(VERSION_PACKAGES),
            notes=list(written.notes), summary=spec.summary, result_key=result.key if result is not None else None,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        api = info.get("api") or (info.get("settings") or {}).get("api")
        if api:
            report.notes.insert(0, f"Built as bgeq builds it for measuring: {api}.")
        if written.format == "bitsandbytes":
            ran = report.check("sentence-transformers")
            report.notes.append(
                f"Reloads on {device} here with bitsandbytes {report.versions.get('bitsandbytes')}: "
                + ("yes, and it reproduces the measured model (see Verification)." if ran and ran.passed
                   else "no (see Verification)."))
        if result is not None and result.device_kind != ("cuda" if device.startswith("cuda") else "cpu"):
            report.notes.append(f"The Result was measured on {result.device_kind}; this export was verified on "
                                f"{device}.")
        measured, notes = (None, [])
        if result is not None and result.ok:
            measured, notes = card_mod.measured_figures(result, context)
        report.seconds = round(time.perf_counter() - t0, 1)
        _write_card(tmp, report, measured, notes, result)
        report.files = _files(tmp)
        report.size_bytes = sum(f["bytes"] for f in report.files)
        if not report.passed:
            where = None
            if keep_failed:
                where = out.with_name(out.name + ".failed")
                shutil.rmtree(where, ignore_errors=True)
                tmp.rename(where)
            raise ExportVerificationError(_fail_message(report, where), report)
        _put_in_place(tmp, out)
        return report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_card(folder: Path, report: ExportReport, measured, notes, result) -> None:
    (folder / formats.CARD).write_text(card_mod.render(report, measured, notes, result))
    (folder / formats.MANIFEST).write_text(json.dumps(report.to_dict(), indent=1, default=_json_default))


def _json_default(o):
    if isinstance(o, (np.generic,)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _put_in_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.old")
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_manifest(folder: str | Path) -> dict:
    """The export report written into a folder (``bgeq_export.json``)."""
    return json.loads((Path(folder) / formats.MANIFEST).read_text())
