"""One method, end to end: build -> evaluate -> benchmark -> Result (never crashes the run)."""
from __future__ import annotations

import gc
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import bench, env, metrics, paths, results
from . import methods as registry
from .results import Result


@dataclass
class BenchConfig:
    batch_sizes: tuple = (1, 32)
    seq_lens: tuple = (128,)
    warmup: int = 1
    repeats: int = 5
    max_seconds: float = 30.0
    memory: bool = True            # fresh-process memory measurement
    memory_batch: int = 32
    memory_seq: int = 128
    size: bool = True


def embed_evalset(encoder, evalset, query_prompt: str | None = None, batch_size: int = 32,
                  progress: bool = False) -> dict[str, np.ndarray]:
    out = {"corpus": encoder.encode(list(evalset.corpus.values()), batch_size, progress=progress)}
    if evalset.symmetric:
        out["queries"] = out["corpus"] if list(evalset.queries) == list(evalset.corpus) else \
            encoder.encode(list(evalset.queries.values()), batch_size)
    else:
        out["queries"] = encoder.encode(list(evalset.queries.values()), batch_size, prompt=query_prompt)
    return out


def quality(emb: dict[str, np.ndarray], evalset) -> dict:
    ranked = metrics.rank(emb["queries"], emb["corpus"], list(evalset.queries), list(evalset.corpus),
                          k=100, exclude_self=evalset.exclude_self)
    q = metrics.retrieval(ranked, evalset.qrels)
    if evalset.pairs:
        index = {t: i for i, t in enumerate(evalset.corpus.values())}
        a = np.stack([emb["corpus"][index[x]] for x, _ in evalset.pairs])
        b = np.stack([emb["corpus"][index[y]] for _, y in evalset.pairs])
        q |= metrics.similarity(a, b, evalset.pair_scores)
    return q


def fidelity(emb: dict, ref_emb: dict, keep: int = 2000) -> dict:
    a = np.concatenate([ref_emb["corpus"]] + ([] if ref_emb["queries"] is ref_emb["corpus"] else [ref_emb["queries"]]))
    b = np.concatenate([emb["corpus"]] + ([] if emb["queries"] is emb["corpus"] else [emb["queries"]]))
    f = metrics.fidelity(a, b)
    f["cosines"] = np.round(metrics.cosine_samples(a, b)[:keep], 6).tolist()
    return f


def _emb_file(run: str, evalset_name: str) -> Path:
    return paths.embeddings_dir(run) / f"fp32__{evalset_name}.npz"


def reference_embeddings(reference, evalset, run: str = "default", batch_size: int = 32,
                         recompute: bool = False) -> dict[str, np.ndarray]:
    """FP32 embeddings of the evaluation texts: saved by 01, reused by every later notebook."""
    f = _emb_file(run, evalset.name)
    ids = np.array(list(evalset.corpus) + ["|"] + list(evalset.queries))
    if f.is_file() and not recompute:
        z = np.load(f, allow_pickle=False)
        if z["ids"].shape == ids.shape and (z["ids"] == ids).all() and str(z["model"]) == reference.model_id:
            out = {"corpus": z["corpus"], "queries": z["queries"]}
            if evalset.symmetric and np.array_equal(out["corpus"], out["queries"]):
                out["queries"] = out["corpus"]
            return out
    from .methods import build
    enc = build("fp32", reference, device=str(next(reference.model.parameters()).device))
    emb = embed_evalset(enc, evalset, reference.query_prompt, batch_size)
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp.npz")
    np.savez(tmp, corpus=emb["corpus"], queries=emb["queries"], ids=ids, model=reference.model_id)
    tmp.replace(f)
    return emb


def _compute_precision(encoder, spec) -> str:
    return getattr(encoder, "compute_precision", None) or {
        "int4": "fp32", "nf4": "fp32", "fp4": "fp32"}.get(spec.precision, spec.precision)


def run_method(method: str, reference, evalset=None, *, run: str = "default", device: str = "cpu",
               calibration: int | list[str] | None = None, options: dict | None = None,
               label: str | None = None, bench_config: BenchConfig | None = None,
               reference_emb: dict | None = None, save: bool = True, progress: bool = True,
               keep_encoder: bool = False):
    """Build, evaluate, benchmark and save one method. Returns the Result (and the encoder if asked).

    A method that cannot run here is recorded as ``skipped`` with the reason; one that breaks is
    recorded as ``failed`` with the error; neither stops the caller.
    """
    from . import data as data_mod

    spec = registry.get(method)          # unknown names fail loudly: that is a typo, not a skip
    device = env.resolve_device(device) if device == "auto" else device
    options = dict(options or {})
    cfg = bench_config or BenchConfig()
    res = Result(run=run, method=method, label=label or method, precision=spec.precision, library=spec.library,
                 model=reference.info(), dataset=evalset.summary() if evalset is not None else None,
                 device=env.describe(device), packages=env.package_versions(), options=dict(options))
    if calibration is not None:
        res.options["calibration"] = calibration if isinstance(calibration, int) else f"{len(calibration)} texts"
    cal_texts = data_mod.calibration_texts(calibration) if isinstance(calibration, int) else calibration
    encoder = None
    try:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encoder = registry.build(method, reference, device=device, calibration=cal_texts, **options)
        res.timings["build_s"] = time.perf_counter() - t0
        res.extra.update(getattr(encoder, "info", {}) or {})
        if evalset is not None:
            t0 = time.perf_counter()
            emb = embed_evalset(encoder, evalset, reference.query_prompt, progress=progress)
            if reference.has_quality:
                res.quality = quality(emb, evalset)
            else:
                res.notes.append("random weights: quality is not applicable")
            if reference_emb is not None:
                res.fidelity = fidelity(emb, reference_emb)
            res.timings["eval_s"] = time.perf_counter() - t0
        if cfg.size:
            res.size = {"disk_bytes": encoder.size_on_disk()}
            try:
                res.size["param_bytes"] = encoder.param_bytes()
            except NotImplementedError:
                pass
        t0 = time.perf_counter()
        rows = bench.speed_grid(encoder, cfg.batch_sizes, cfg.seq_lens, warmup=cfg.warmup, repeats=cfg.repeats,
                                max_seconds=cfg.max_seconds, config=reference.model.config, progress=progress)
        res.ceiling = bench.gemm_ceiling(_compute_precision(encoder, spec), device)
        res.speed = bench.add_ceiling_share(rows, res.ceiling)
        res.timings["bench_s"] = time.perf_counter() - t0
        if cfg.memory:
            if not keep_encoder:
                encoder.close()
                encoder = None
                gc.collect()
            res.memory = bench.measure_memory(method, reference.spec(), device, options, calibration,
                                              cfg.memory_batch, cfg.memory_seq)
    except registry.MethodUnavailable as e:
        res.status, res.reason = "skipped", str(e)
    except Exception as e:  # recorded, not raised: one broken method must not end a run
        res.status, res.reason = "failed", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500]
        res.notes.append(traceback.format_exc(limit=6)[-3000:])
        warnings.warn(f"{method} failed: {res.reason}")
    if save:
        results.save(res)
    if keep_encoder:
        return res, encoder
    if encoder is not None:
        encoder.close()
    return res


def skipped(method: str, reference, reason: str, *, run: str = "default", device: str = "cpu",
            label: str | None = None, save: bool = True) -> Result:
    """Record a method that was not attempted here (e.g. the CUDA half of a notebook on a CPU box)."""
    spec = registry.get(method)
    res = Result(run=run, method=method, label=label or method, precision=spec.precision, library=spec.library,
                 status="skipped", reason=reason, model=reference.info(), device=env.describe(device),
                 packages=env.package_versions())
    if save:
        results.save(res)
    return res
