"""The Result record: one method, one run, one device, written as versioned JSON."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import paths

SCHEMA_VERSION = 1
STATUSES = ("ok", "skipped", "failed")


class ResultsFileError(ValueError):
    """A results file that cannot be read: corrupt, partial, or of another schema version."""


@dataclass
class Result:
    run: str
    method: str
    label: str = ""                     # distinguishes variants of one method (sweeps); defaults to method
    precision: str = ""
    library: str = ""
    status: str = "ok"
    reason: str = ""
    model: dict = field(default_factory=dict)
    dataset: dict | None = None
    device: dict = field(default_factory=dict)
    packages: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    size: dict = field(default_factory=dict)        # disk_bytes, param_bytes
    memory: dict = field(default_factory=dict)      # peak_rss_bytes, model_rss_bytes, peak_cuda_bytes, ...
    speed: list = field(default_factory=list)       # rows: batch_size, seq_len, sentences_per_s, tokens_per_s, ...
    ceiling: dict = field(default_factory=dict)     # gflops, library, precision
    fidelity: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)     # build_s, eval_s, bench_s
    notes: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    created: str = ""
    schema: int = SCHEMA_VERSION

    def __post_init__(self):
        self.label = self.label or self.method
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")
        self.created = self.created or datetime.now(timezone.utc).isoformat(timespec="seconds")

    @property
    def device_kind(self) -> str:
        return self.device.get("kind", "cpu")

    def speed_at(self, batch_size: int, seq_len: int) -> dict | None:
        for row in self.speed:
            if row.get("batch_size") == batch_size and row.get("seq_len") == seq_len:
                return row
        return None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _file_name(result: Result) -> str:
    safe = re.sub(r"[^A-Za-z0-9._=-]+", "_", result.label)
    return f"{safe}__{result.device_kind}.json"


def _default(o):
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def save(result: Result, folder: str | Path | None = None) -> Path:
    """Atomic write: a crash mid-write leaves the previous file intact, never half a file."""
    folder = Path(folder) if folder else paths.results_dir(result.run)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / _file_name(result)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result.to_dict(), f, indent=1, default=_default, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load(path: str | Path) -> Result:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise ResultsFileError(f"{path} is not valid JSON ({e}); it is corrupt or was cut short. "
                               "Delete it and rerun that method's notebook.") from None
    if not isinstance(data, dict) or "method" not in data:
        raise ResultsFileError(f"{path} is not a bgeq Result (no 'method' field)")
    version = data.get("schema")
    if version != SCHEMA_VERSION:
        raise ResultsFileError(f"{path} has schema version {version!r}; this bgeq reads version {SCHEMA_VERSION}. "
                               "Rerun the method to rewrite it.")
    known = {f.name for f in dataclasses.fields(Result)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ResultsFileError(f"{path} has fields this schema does not know: {unknown}")
    try:
        return Result(**data)
    except (TypeError, ValueError) as e:
        raise ResultsFileError(f"{path}: {e}") from None


def load_run(run_or_folder: str | Path, strict: bool = True) -> list[Result]:
    """All Results of a run name (outputs/<run>/results) or of a folder of JSON files."""
    p = Path(run_or_folder)
    folder = p if p.is_dir() else paths.results_dir(str(run_or_folder))
    if not folder.is_dir():
        return []
    out = []
    for f in sorted(folder.glob("*.json")):
        try:
            out.append(load(f))
        except ResultsFileError:
            if strict:
                raise
    return out
