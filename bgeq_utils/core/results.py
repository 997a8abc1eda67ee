"""The Result record: one method, one configuration, one run, one device, written as versioned JSON.

A Result is filed under its **key**: the method and a short stable hash of everything that changes a
figure (options, calibration, model, weights, data set, device, speed grid and budget). The label is for
people. Two configurations of one method never share a file; re-running the same configuration replaces
only its own file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bgeq_utils.core import paths, vocab

SCHEMA_VERSION = 2
STATUSES = vocab.STATUSES
#: group-readable files: Results are shared
FILE_MODE = 0o644


class ResultsFileError(ValueError):
    """A results file that cannot be read: corrupt, partial, or of another schema version."""


def canonical(obj) -> str:
    """Stable JSON of settings (sorted keys, tuples as lists) for hashing."""
    return json.dumps(obj, sort_keys=True, default=_default, separators=(",", ":"))


def make_key(method: str, options: dict, settings: dict) -> str:
    """``<method>-<8 hex digits>``: the method and a hash of its options and measurement settings."""
    digest = hashlib.sha1(canonical({"method": method, "options": options, "settings": settings}).encode())
    return f"{method}-{digest.hexdigest()[:8]}"


class Record:
    """What every measured record shares (a method's Result, an embedding index's record): a status from the
    vocabulary, a creation stamp, the device kind, and the file name its key and device give it."""
    status: str
    device: dict
    key: str
    created: str

    def check_and_stamp(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")
        self.created = self.created or datetime.now(timezone.utc).isoformat(timespec="seconds")

    @property
    def ok(self) -> bool:
        """Measured (not skipped, not failed)."""
        return self.status == vocab.OK

    @property
    def device_kind(self) -> str:
        return self.device.get("kind", "cpu")

    @property
    def file_name(self) -> str:
        return f"{safe_name(self.key)}__{self.device_kind}.json"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Result(Record):
    run: str
    method: str
    label: str = ""                     # for people: the method, or method[option=value,...] for a variant
    precision: str = ""
    library: str = ""
    runtime: str = ""                   # what executes the graph: torch, inductor, onnxruntime, openvino
    key: str = ""                       # file stem: method + hash of options and settings (see make_key)
    is_default: bool = True             # the registry default configuration of the method
    status: str = vocab.OK
    reason: str = ""
    model: dict = field(default_factory=dict)
    dataset: dict | None = None
    device: dict = field(default_factory=dict)
    packages: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)     # options that differ from the method's defaults
    settings: dict = field(default_factory=dict)    # what else the key hashes: calibration, grid, budgets
    size: dict = field(default_factory=dict)        # disk_bytes, param_bytes (exact)
    memory: dict = field(default_factory=dict)      # peak_over_baseline_bytes, resident_bytes (+ per process)
    speed: list = field(default_factory=list)       # rows per (batch, seq): tokens/s with CI, ratios with CI
    ceiling: dict = field(default_factory=dict)     # gflops, library, precision
    fidelity: dict = field(default_factory=dict)    # cos_mean, l2_mean, ... each {value, low, high, n, how}
    quality: dict = field(default_factory=dict)     # aggregate metrics (means over queries / pair correlations)
    per_query: dict = field(default_factory=dict)   # query_ids + per-query metric values; pair cosines
    timings: dict = field(default_factory=dict)     # build_s, eval_s, bench_s
    notes: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    created: str = ""
    schema: int = SCHEMA_VERSION

    def __post_init__(self):
        self.label = self.label or self.method
        self.check_and_stamp()
        self.key = self.key or make_key(self.method, self.options, self.settings)

    def speed_at(self, batch_size: int, seq_len: int) -> dict | None:
        for row in self.speed:
            if row.get("batch_size") == batch_size and row.get("seq_len") == seq_len:
                return row
        return None


def safe_name(text: str) -> str:
    """A file-name stem of letters, digits and ``._=-`` only (anything else becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", str(text))


def file_name(result: Result) -> str:
    return result.file_name


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
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


ATTEMPTS = "attempts"
#: set by ``bgeq sweep`` in the environment of each notebook it runs (JSON: the sweep, the task, its fixed thread
#: count, whether it held its host's ``bench`` resource): a Result measured there records it as ``extra["sweep"]``
SWEEP_CONTEXT_ENV = "BGEQ_SWEEP_CONTEXT"


def save(result: Result, folder: str | Path | None = None) -> Path:
    """Atomic write: a crash mid-write leaves the previous file intact, never half a file.

    A skipped or failed Result never replaces an ``ok`` one of the same key: it is written beside it,
    under ``attempts/``, where :func:`latest_attempt` finds it (the comparison reports it). Under ``bgeq sweep``
    a Result not yet stamped records the sweep task that measured it (``extra["sweep"]``)."""
    context = os.environ.get(SWEEP_CONTEXT_ENV)
    if context and "sweep" not in result.extra:
        result.extra["sweep"] = json.loads(context)
    folder = Path(folder) if folder else paths.results_dir(result.run)
    target = folder / file_name(result)
    if not result.ok and target.is_file():
        try:
            kept = load(target).ok
        except ResultsFileError:
            kept = False
        if kept:
            target = folder / ATTEMPTS / target.name
    return write_json(result.to_dict(), target)


def write_json(obj, target: str | Path) -> Path:
    """Atomic, group-readable JSON: a crash mid-write leaves the previous file intact, never half a file."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, default=_default, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
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


def find(run: str, key: str, device_kind: str) -> Result | None:
    """The Result of one key in a run, if it was saved."""
    p = paths.results_dir(run) / f"{re.sub(r'[^A-Za-z0-9._=-]+', '_', key)}__{device_kind}.json"
    if not p.is_file():
        return None
    try:
        return load(p)
    except ResultsFileError:
        return None


def latest_attempt(result: Result, folder: str | Path | None = None) -> Result | None:
    """A later skipped/failed attempt at the same key as an ``ok`` Result, if one was recorded."""
    folder = Path(folder) if folder else paths.results_dir(result.run)
    p = folder / ATTEMPTS / file_name(result)
    if not p.is_file():
        return None
    try:
        att = load(p)
    except ResultsFileError:
        return None
    return att if (att.created or "") >= (result.created or "") else None
