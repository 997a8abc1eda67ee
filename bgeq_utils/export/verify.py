"""Verification of an exported folder: reload it with the target library alone, compare with what was measured.

The folder is reloaded in a fresh Python process that runs each loader's code exactly as the model card
shows it (``reload_worker.py``, which imports no bgeq and says so), and embeds every text alone. The
embeddings are compared text by text with bgeq's own encoder of the same method and options (the model
measured must be the model shipped: mean and minimum cosine at least ``MIN_COSINE``) and with the FP32
reference (fidelity, reported).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bgeq_utils.core import vocab
from bgeq_utils.core.uncertainty import Estimate
from bgeq_utils.measure import metrics

#: the shipped model must reproduce bgeq's encoder of the same method to this cosine (mean and worst text)
MIN_COSINE = 0.9999
WORKER = Path(__file__).with_name("reload_worker.py")


@dataclass
class LoaderRun:
    """One loader's reload: its status and, when it ran, its embeddings (one row per text)."""
    name: str
    status: str                          # ok | unavailable | error
    reason: str = ""
    embeddings: np.ndarray | None = field(default=None, repr=False)
    versions: dict = field(default_factory=dict)
    python: str = ""
    seconds: float | None = None


@dataclass
class Check:
    """A loader's embeddings against bgeq's encoder of the method and against FP32."""
    loader: str
    status: str
    reason: str = ""
    vs_method: dict = field(default_factory=dict)   # metrics.fidelity: cos_mean, cos_min, intervals, ...
    vs_fp32: dict = field(default_factory=dict)
    passed: bool | None = None
    environment: str = ""

    def estimate(self, which: str) -> Estimate | None:
        f = self.vs_method if which == "method" else self.vs_fp32
        iv = (f.get("intervals") or {}).get("cos_mean")
        return Estimate.from_dict(iv) if iv else (Estimate(f["cos_mean"]) if "cos_mean" in f else None)


def reload(folder: str | Path, loaders, texts: list[str], python: str | None = None,
           timeout_s: float = 900) -> list[LoaderRun]:
    """Run every loader's code (rendered for ``folder``) in a fresh process and return its embeddings."""
    folder = Path(folder)
    work = Path(tempfile.mkdtemp(prefix="bgeq-export-check-"))
    try:
        shutil.copy2(WORKER, work / WORKER.name)
        job = {"folder": str(folder), "texts": list(texts), "out": str(work),
               "loaders": [{"name": ld.name, "code": ld.render(folder), "optional": ld.optional} for ld in loaders]}
        (work / "job.json").write_text(json.dumps(job))
        # Offline: a loader that reaches for the hub instead of the folder fails here, as it would for a user.
        run_env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        interpreter = python or sys.executable
        try:
            proc = subprocess.run([interpreter, str(work / WORKER.name), str(work / "job.json")], cwd=work,
                                  env=run_env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return [LoaderRun(ld.name, "error", f"reloading took longer than {timeout_s:.0f} s") for ld in loaders]
        out = work / "worker.json"
        if not out.is_file():
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-12:]
            return [LoaderRun(ld.name, "error", f"the reload process exited with {proc.returncode} before "
                              "reporting: " + " | ".join(tail)) for ld in loaders]
        rep = json.loads(out.read_text())
        if rep.get("bgeq_imported"):
            raise RuntimeError("the reload process imported bgeq_utils: the check would not be independent")
        runs = []
        for e in rep["loaders"]:
            emb = np.load(work / f"{e['name']}.npy") if e.get("status") == vocab.OK else None
            runs.append(LoaderRun(e["name"], e.get("status", "error"), e.get("reason", ""), emb,
                                  rep.get("versions", {}), rep.get("python", interpreter), e.get("seconds")))
        return runs
    finally:
        shutil.rmtree(work, ignore_errors=True)


def environment_of(run: LoaderRun, packages=()) -> str:
    """The versions, in the reloading interpreter, of what a loader uses."""
    names = packages or ("sentence-transformers", "transformers", "torch")
    return ", ".join(f"{k} {run.versions[k]}" for k in names if run.versions.get(k))


def compare(runs: list[LoaderRun], method_emb: np.ndarray, fp32_emb: np.ndarray,
            min_cosine: float = MIN_COSINE, loaders=()) -> list[Check]:
    """Each loader's embeddings against the method's (pass: mean and min cosine >= min_cosine) and FP32's."""
    packages = {ld.name: ld.packages for ld in loaders}
    out = []
    for r in runs:
        c = Check(r.name, r.status, r.reason, environment=environment_of(r, packages.get(r.name, ())))
        if r.status == vocab.OK:
            if r.embeddings is None or r.embeddings.shape != method_emb.shape:
                c.status, c.passed = "error", False
                c.reason = (f"the reloaded model gave embeddings of shape "
                            f"{None if r.embeddings is None else r.embeddings.shape}, expected {method_emb.shape}")
            elif not np.isfinite(r.embeddings).all():
                c.status, c.passed = "error", False
                c.reason = "the reloaded model gave non-finite embeddings"
            else:
                c.vs_method = metrics.fidelity(method_emb, r.embeddings)
                c.vs_fp32 = metrics.fidelity(fp32_emb, r.embeddings)
                c.passed = c.vs_method["cos_mean"] >= min_cosine and c.vs_method["cos_min"] >= min_cosine
        elif r.status == "error":
            c.passed = False
        out.append(c)
    return out


def passed(checks: list[Check]) -> bool:
    """Every loader that ran passes, none failed to run, and at least one ran."""
    ran = [c for c in checks if c.status == vocab.OK]
    return bool(ran) and all(c.passed for c in ran) and not any(c.status == "error" for c in checks)
