"""ONNX export of the FP32 reference, and a verified on-disk cache for ONNX artifacts.

Every ONNX method starts from one exported FP32 graph. Exporting (and quantizing) takes long for a
large model, and the fresh process that measures memory builds the method again, so the exported
and derived graphs are kept under ``paths.cache_dir()/onnx/<kind>-<key>``. The key hashes the model
folder (path, size and modification time of its weight files), the options, and the versions of the
tools that wrote the graph. Each cached folder holds a manifest with the size and SHA-256 of every
file; an entry whose files are missing or do not match is rebuilt, never used.
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
import shutil
import time
import uuid
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from bgeq_utils.core import paths
from bgeq_utils.core.env import package_versions
from bgeq_utils.methods.encoders import pool_numpy

CACHE_FORMAT = 1
MANIFEST = "bgeq_cache.json"
MODEL_FILE = "model.onnx"
OUTPUT_NAME = "last_hidden_state"
DEFAULT_OPSET = 17
# Above this size a graph is written with its weights in a separate file (protobuf's 2 GB limit).
EXTERNAL_DATA_BYTES = 1_800_000_000
# Exported graph vs PyTorch on the check inputs: below this, the export is wrong and is not cached.
EXPORT_MIN_COSINE = 0.9999

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")


class OnnxCacheError(RuntimeError):
    """A cached ONNX artifact cannot be used and could not be rebuilt."""


# --- cache ----------------------------------------------------------------------------------------
def cache_root() -> Path:
    return paths.cache_dir() / "onnx"


def model_fingerprint(folder: str | Path) -> dict:
    """Identifies the weights a reference was loaded from (path + size + mtime of the weight files)."""
    folder = Path(folder).resolve()
    files = {}
    for f in sorted(folder.iterdir()) if folder.is_dir() else []:
        if f.is_file() and (f.suffix in WEIGHT_SUFFIXES or f.name == "config.json"):
            st = f.stat()
            files[f.name] = [st.st_size, st.st_mtime_ns]
    return {"folder": str(folder), "files": files}


def _versions(*names: str) -> dict:
    return package_versions(names)


def cache_key(kind: str, parts: dict) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, "kind": kind, **parts}, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def texts_hash(texts: list[str]) -> str:
    """The calibration texts as a cache key part: a build calibrated on other texts is another artifact."""
    return hashlib.sha256(json.dumps(texts).encode()).hexdigest()


def _sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _manifest(folder: Path) -> dict:
    return {f.name: {"bytes": f.stat().st_size, "sha256": _sha256(f)}
            for f in sorted(folder.iterdir()) if f.is_file() and f.name != MANIFEST}


def check_cached(folder: str | Path) -> str | None:
    """None when the cached folder is complete and intact, else what is wrong with it."""
    folder = Path(folder)
    man = folder / MANIFEST
    if not man.is_file():
        return f"{folder} has no manifest (incomplete or foreign)"
    try:
        meta = json.loads(man.read_text())
        files = meta["files"]
        main = meta.get("main", MODEL_FILE)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{man} is unreadable"
    if main not in files:
        return f"{man} lists no {main}"
    for name, want in files.items():
        f = folder / name
        if not f.is_file():
            return f"{f} is missing"
        if f.stat().st_size != want.get("bytes"):
            return f"{f} has {f.stat().st_size} bytes, {want.get('bytes')} expected"
        if _sha256(f) != want.get("sha256"):
            return f"{f} does not match its recorded SHA-256 (corrupt)"
    return None


def read_meta(folder: str | Path) -> dict:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text()).get("meta", {})
    except (OSError, ValueError):
        return {}


def cached_artifact(kind: str, parts: dict, build: Callable[[Path], dict | None], rebuild: bool = False,
                    main_file: str = MODEL_FILE, root: Path | None = None) -> Path:
    """The folder of a cached artifact, built by ``build(tmp_folder)`` when absent or damaged.

    ``build`` writes ``main_file`` (``model.onnx`` and any external data, by default) into the folder
    it is given and may return a dict of metadata stored in the manifest. The folder appears under its
    final name only once it is complete, so an interrupted build leaves nothing that a later run could
    mistake for a result.
    """
    root = Path(root) if root else cache_root()
    key = cache_key(kind, parts)
    folder = root / key
    replace = rebuild
    if folder.exists() and not rebuild:
        problem = check_cached(folder)
        if problem is None:
            return folder
        warnings.warn(f"rebuilding cached artifact: {problem}")
        replace = True
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:6]}.partial"
    tmp.mkdir(parents=True)
    try:
        with _quiet():
            meta = build(tmp) or {}
        if not (tmp / main_file).is_file():
            raise OnnxCacheError(f"building {kind} wrote no {main_file}")
        man = {"format": CACHE_FORMAT, "kind": kind, "key": key, "main": main_file, "parts": parts, "meta": meta,
               "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "files": _manifest(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(man, indent=1, default=str))
        if folder.exists() and not replace and check_cached(folder) is None:
            return folder  # another process finished the same artifact meanwhile: keep it
        if folder.exists():
            old = root / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:6]}.old"
            try:
                folder.rename(old)
                shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        try:
            tmp.rename(folder)
        except OSError:
            # Another process finished the same artifact first: use it if it is intact.
            if check_cached(folder) is not None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    problem = check_cached(folder)
    if problem:
        raise OnnxCacheError(f"cached artifact {folder} is unusable right after building it: {problem}. "
                             f"Delete {root} and try again.")
    return folder


def clear_cache() -> None:
    shutil.rmtree(cache_root(), ignore_errors=True)


# --- graph facts ----------------------------------------------------------------------------------
def _elem_bytes(data_type: int) -> float:
    from onnx import TensorProto, helper
    if data_type in (getattr(TensorProto, "INT4", -1), getattr(TensorProto, "UINT4", -1),
                     getattr(TensorProto, "FLOAT4E2M1", -1)):
        return 0.5
    if data_type == TensorProto.STRING:
        return 0.0
    return float(np.dtype(helper.tensor_dtype_to_np_dtype(data_type)).itemsize)


def graph_stats(model_path: str | Path) -> dict:
    """Op counts and the bytes of every stored weight tensor, by element type (no weights are loaded)."""
    import onnx
    from onnx import helper
    m = onnx.load(str(model_path), load_external_data=False)
    ops = Counter()
    by_type: Counter = Counter()
    n_tensors = 0

    def add(t):
        nonlocal n_tensors
        numel = int(np.prod(t.dims)) if len(t.dims) else 1
        by_type[helper.tensor_dtype_to_np_dtype(t.data_type).name if t.data_type not in (
            getattr(onnx.TensorProto, "INT4", -1), getattr(onnx.TensorProto, "UINT4", -1))
            else onnx.TensorProto.DataType.Name(t.data_type).lower()] += numel * _elem_bytes(t.data_type)
        n_tensors += 1

    def walk(graph):
        for t in graph.initializer:
            add(t)
        for node in graph.node:
            ops[node.op_type] += 1
            for a in node.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    add(a.t)
                elif a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for g in a.graphs:
                        walk(g)

    walk(m.graph)
    weight_bytes = int(round(sum(by_type.values())))
    return {"op_counts": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
            "weight_bytes": weight_bytes,
            "weight_bytes_by_type": {k: int(round(v)) for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])},
            "weight_tensors": n_tensors,
            "opset": {o.domain or "ai.onnx": o.version for o in m.opset_import}}


def folder_bytes(folder: str | Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).iterdir() if f.is_file() and f.name != MANIFEST)


def model_files(model_path: str | Path) -> list[Path]:
    """The .onnx file and the external-data files it refers to."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors
    model_path = Path(model_path)
    m = onnx.load(str(model_path), load_external_data=False)
    files = [model_path]
    for t in _get_all_tensors(m):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = {e.key: e.value for e in t.external_data}.get("location")
            if loc and (model_path.parent / loc) not in files:
                files.append(model_path.parent / loc)
    return files


def copy_model_files(model_path: str | Path, dst_folder: str | Path) -> Path:
    """Copy what a deployment ships: the .onnx and its external data (not the cache manifest)."""
    dst = Path(dst_folder)
    dst.mkdir(parents=True, exist_ok=True)
    for f in model_files(model_path):
        if not f.is_file():
            raise OnnxCacheError(f"{model_path} refers to external data {f.name}, which is missing")
        shutil.copy2(f, dst / f.name)
    return dst


def needs_external_data(model_path: str | Path) -> bool:
    return folder_bytes(Path(model_path).parent) > EXTERNAL_DATA_BYTES


# --- export ---------------------------------------------------------------------------------------
def input_names(model) -> list[str]:
    params = inspect.signature(model.forward).parameters
    return [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in params]


@contextmanager
def _quiet():
    """Silence the exporters' and quantizers' warnings, advice and progress lines while building."""
    import contextlib
    import io
    import logging
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        # ONNX Runtime's quantization tools log advice through the root logger.
        loggers = [logging.getLogger(n) for n in ("torch.onnx", "")]
        prev = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, lvl in zip(loggers, prev):
                lg.setLevel(lvl)


def _check_texts() -> list[str]:
    return ["A short one.",
            "ONNX Runtime should reproduce the PyTorch encoder to within float32 rounding, "
            "whatever the batch size, the sequence length and the amount of padding in the batch.",
            "Third text, of medium length, to exercise padding."]


def check_export(model_path: str | Path, reference, torch_model=None) -> float:
    """Smallest cosine between pooled ONNX Runtime and PyTorch embeddings on a few padded batches."""
    import onnxruntime as ort
    import torch

    torch_model = torch_model or reference.model
    dev = next(torch_model.parameters()).device
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    worst = 1.0
    texts = _check_texts()
    for batch in (texts[:1], texts):
        enc = reference.tokenizer(batch, padding=True, truncation=True, max_length=reference.max_seq_length,
                                  return_tensors="np", return_token_type_ids=True)
        feats = {k: enc[k].astype(np.int64) for k in names}
        got = pool_numpy(sess.run([OUTPUT_NAME], feats)[0], feats["attention_mask"], reference.pooling)
        with torch.inference_mode():
            out = torch_model(**{k: torch.from_numpy(v).to(dev) for k, v in feats.items()})
        want = pool_numpy(out.last_hidden_state.float().cpu().numpy(), feats["attention_mask"], reference.pooling)
        worst = min(worst, float((got * want).sum(1).min()))
    return worst


def _last_hidden_state(model, names):
    """Wraps a Hugging Face encoder so the exported graph has named inputs and one output."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kw = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None and "token_type_ids" in names:
                kw["token_type_ids"] = token_type_ids
            return self.model(**kw).last_hidden_state

    return LastHiddenState().eval()


def _export(reference, out: Path, opset: int, exporter: str, attn: str) -> dict:
    import torch
    model = copy.deepcopy(reference.model).float().cpu().eval()
    if attn and hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation(attn)
        except Exception:  # the architecture may not offer it; the default implementation is exported
            attn = getattr(model.config, "_attn_implementation", None)
    names = input_names(model)
    enc = reference.tokenizer(_check_texts()[:2], padding=True, return_tensors="pt", return_token_type_ids=True)
    kwargs = {k: enc[k] for k in names}
    wrapper = _last_hidden_state(model, names)
    path = out / MODEL_FILE
    t0 = time.perf_counter()
    with _quiet(), torch.inference_mode():
        if exporter == "legacy":
            axes = {k: {0: "batch", 1: "sequence"} for k in names}
            axes[OUTPUT_NAME] = {0: "batch", 1: "sequence"}
            torch.onnx.export(wrapper, (), str(path), kwargs=kwargs, input_names=names, output_names=[OUTPUT_NAME],
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
        elif exporter == "dynamo":
            batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
            torch.onnx.export(wrapper, (), str(path), kwargs=kwargs, input_names=names, output_names=[OUTPUT_NAME],
                              dynamic_shapes={k: {0: batch, 1: seq} for k in names}, opset_version=opset,
                              dynamo=True, external_data=reference.num_parameters * 4 > EXTERNAL_DATA_BYTES)
        else:
            raise ValueError(f"exporter={exporter!r}: use 'legacy' (torch.onnx.export dynamo=False) or 'dynamo'")
    export_s = time.perf_counter() - t0
    cos = check_export(path, reference, model)
    if not cos >= EXPORT_MIN_COSINE:
        raise OnnxCacheError(f"the exported ONNX graph does not reproduce PyTorch (min cosine {cos:.6f} < "
                             f"{EXPORT_MIN_COSINE}); try exporter='dynamo' or another opset")
    return {"export_s": round(export_s, 2), "check_min_cosine": cos, "inputs": names, "attn_implementation": attn}


def _optimize(src: Path, out: Path, config) -> dict:
    from onnxruntime.transformers import optimizer
    t0 = time.perf_counter()
    with _quiet():
        opt = optimizer.optimize_model(str(src), model_type="bert", num_heads=int(config.num_attention_heads),
                                       hidden_size=int(config.hidden_size), use_gpu=False)
    opt.save_model_to_file(str(out / MODEL_FILE), use_external_data_format=needs_external_data(src))
    fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    return {"optimize_s": round(time.perf_counter() - t0, 2), "fused_operators": fused}


def export_fp32(reference, *, opset: int = DEFAULT_OPSET, optimize: bool = False, exporter: str = "legacy",
                attn: str = "eager", rebuild: bool = False) -> Path:
    """Path of the FP32 ONNX graph of ``reference`` (exported once, then read from the cache).

    exporter: 'legacy' (TorchScript-based torch.onnx.export, the default: its BERT graph is the one ONNX
    Runtime's transformer optimizer recognises) or 'dynamo'. attn: attention implementation exported
    ('eager' gives the plain MatMul/Softmax pattern that the optimizer fuses into one Attention op).
    optimize: apply onnxruntime.transformers' BERT optimizer (Attention, SkipLayerNorm, BiasGelu fusion).
    """
    if exporter not in ("legacy", "dynamo"):
        raise ValueError(f"exporter={exporter!r}: use 'legacy' or 'dynamo'")
    parts = {"model": model_fingerprint(reference.folder), "opset": int(opset), "exporter": exporter, "attn": attn,
             "versions": _versions("torch", "transformers", "onnx")}
    base = cached_artifact("fp32", parts, lambda out: _export(reference, out, int(opset), exporter, attn),
                           rebuild=rebuild)
    if not optimize:
        return base / MODEL_FILE
    parts_opt = {"base": read_file_hash(base), "versions": _versions("onnxruntime", "onnx")}
    folder = cached_artifact("fp32opt", parts_opt,
                             lambda out: _optimize(base / MODEL_FILE, out, reference.model.config),
                             rebuild=rebuild)
    return folder / MODEL_FILE


def read_file_hash(folder: str | Path) -> str:
    """The recorded SHA-256 of a cached folder's model.onnx: derived artifacts are keyed by it."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())["files"][MODEL_FILE]["sha256"]
    except (OSError, ValueError, KeyError) as e:
        raise OnnxCacheError(f"{folder} has no readable manifest") from e


def derived(kind: str, source_model: str | Path, options: dict, build: Callable[[Path, Path], dict | None],
            extra_key: dict | None = None, rebuild: bool = False) -> Path:
    """A graph derived from a cached one (quantized, optimized...), cached under its own key."""
    src = Path(source_model)
    parts = {"source": read_file_hash(src.parent), "options": options, **(extra_key or {}),
             "versions": _versions("onnxruntime", "onnx")}
    return cached_artifact(kind, parts, lambda out: build(src, out), rebuild=rebuild) / MODEL_FILE
