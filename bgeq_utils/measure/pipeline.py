"""Methods, end to end: build -> evaluate -> time side by side -> Result (never crashes the run).

``run_method`` measures a method, ``run_methods`` several timed together in one window; ``measure_or_reuse``
returns the Result this run already holds for the same key (same method, options and settings) or measures it.
A Result's key hashes every setting that changes a figure, so a notebook never reuses a figure taken under
other settings and never overwrites another configuration's Result.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bgeq_utils import methods as registry
from bgeq_utils.core import env, paths, results, vocab
from bgeq_utils.core import progress as progress_events
from bgeq_utils.core.results import Result
from bgeq_utils.measure import corpus, metrics, speed
from bgeq_utils.measure.memory import measure_memory_many

#: calibration texts of a method's registry default configuration
DEFAULT_CALIBRATION = 64
#: what a timing window served: the run's comparison (every default method of a group, one window) or a
#: notebook's own study (variants, levers), shown as such wherever its figures appear
WINDOW_COMPARISON, WINDOW_NOTEBOOK = "comparison", "notebook"
#: the one way a Result says it has no quality: a note "<why>: quality is not applicable" (the comparison reads it)
QUALITY_NOT_APPLICABLE = "quality is not applicable"


@dataclass
class BenchConfig:
    """What is measured and how long: the speed grid and its time budget per cell, memory and size."""
    batch_sizes: tuple = (1, 32)
    seq_lens: tuple = (128,)
    seconds: float = 20.0          # budget per (batch, seq) cell and method; methods timed together add theirs
    min_repeats: int = 6           # rounds at least (6: the fewest for a 95% interval of a median)
    max_repeats: int = 60
    target: float = 0.03           # stop a cell early once every ratio's 95% interval is within +-3%
    warmup: int = 1
    baselines: bool = True         # time beside eager PyTorch FP32 and FP32 in the method's own runtime
    memory: bool = True            # memory in fresh processes
    memory_repeats: int = 2
    memory_batch: int | None = None   # None: the largest cell of the speed grid (the run's speed cell)
    memory_seq: int | None = None
    size: bool = True
    invariance: bool = True        # the same texts alone, in a length-sorted batch and in a padded batch
    invariance_texts: int = corpus.INVARIANCE_BATCH

    def __post_init__(self):
        """Every field checked before any work, the message naming the notebook parameter to fix."""
        for name, param in (("batch_sizes", "batch_sizes"), ("seq_lens", "seq_lens")):
            v = getattr(self, name)
            if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__") or not list(v) or \
                    not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v):
                raise ValueError(f"{param}={v!r}: use a list of positive whole numbers, e.g. [1, 32]")
            setattr(self, name, tuple(v))
        if self.memory_batch is None:
            self.memory_batch = max(self.batch_sizes)
        if self.memory_seq is None:
            self.memory_seq = max(self.seq_lens)
        checks = (("seconds", "seconds_per_cell", (int, float), 0.0), ("min_repeats", "min_repeats", int, 1),
                  ("max_repeats", "max_repeats", int, 1), ("target", "target", (int, float), 0.0),
                  ("warmup", "warmup", int, 0), ("memory_repeats", "memory_repeats", int, 1),
                  ("memory_batch", "memory_batch", int, 1), ("memory_seq", "memory_seq", int, 1),
                  ("invariance_texts", "invariance_texts", int, 2))
        for name, param, types, low in checks:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, types) or v < low:
                kind = "a whole number" if types is int else "a number"
                raise ValueError(f"{param}={v!r}: use {kind} >= {low:g}")
        for name in ("baselines", "memory", "size", "invariance"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{'measure_memory' if name == 'memory' else name}={getattr(self, name)!r}: "
                                 "use True or False")
        if self.max_repeats < self.min_repeats:
            raise ValueError(f"max_repeats={self.max_repeats} is below min_repeats={self.min_repeats}")

    def budget(self) -> speed.Budget:
        return speed.Budget(warmup=self.warmup, min_repeats=self.min_repeats, max_repeats=self.max_repeats,
                            seconds=self.seconds, target=self.target)

    def settings(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# --- evaluation ---------------------------------------------------------------------------------
def embed_evalset(encoder, evalset, query_prompt: str | None = None, batch_size: int = 32,
                  progress: bool = False) -> dict[str, np.ndarray]:
    out = {"corpus": encoder.encode(list(evalset.corpus.values()), batch_size, progress=progress)}
    if not evalset.queries:                 # a file of your own texts: no queries
        out["queries"] = np.zeros((0, out["corpus"].shape[1]), out["corpus"].dtype)
    elif evalset.symmetric:
        out["queries"] = out["corpus"] if list(evalset.queries) == list(evalset.corpus) else \
            encoder.encode(list(evalset.queries.values()), batch_size)
    else:
        out["queries"] = encoder.encode(list(evalset.queries.values()), batch_size, prompt=query_prompt)
    return out


def quality(emb: dict[str, np.ndarray], evalset) -> tuple[dict, dict]:
    """(aggregate metrics, per-query values): means over judged queries, correlations over scored pairs.

    The per-query values (and the pair cosines) are what paired intervals and tests resample."""
    ranked = metrics.rank(emb["queries"], emb["corpus"], list(evalset.queries), list(evalset.corpus),
                          k=100, exclude_self=evalset.exclude_self)
    qids, per = metrics.retrieval_per_query(ranked, evalset.qrels)
    q = {m: float(np.mean(v)) for m, v in per.items()} | {"queries": len(qids)}
    per_query = {"query_ids": qids, **{m: np.round(v, 6).tolist() for m, v in per.items()}}
    if evalset.pairs:
        index = {t: i for i, t in enumerate(evalset.corpus.values())}
        docs = np.array([(index[x], index[y]) for x, y in evalset.pairs])
        cos = np.sum(emb["corpus"][docs[:, 0]] * emb["corpus"][docs[:, 1]], axis=1)
        q |= metrics.similarity(emb["corpus"][docs[:, 0]], emb["corpus"][docs[:, 1]], evalset.pair_scores)
        per_query |= {"pair_cosines": np.round(cos, 7).tolist(),
                      "pair_gold": np.asarray(evalset.pair_scores, float).tolist(),
                      "pair_docs": docs.tolist()}
    return q, per_query


def fidelity(emb: dict, ref_emb: dict, keep: int = 2000) -> dict:
    a = np.concatenate([ref_emb["corpus"]] + ([] if ref_emb["queries"] is ref_emb["corpus"] else [ref_emb["queries"]]))
    b = np.concatenate([emb["corpus"]] + ([] if emb["queries"] is emb["corpus"] else [emb["queries"]]))
    f = metrics.fidelity(a, b)
    f["cosines"] = np.round(metrics.cosine_samples(a, b)[:keep], 6).tolist()
    return f


def _emb_file(run: str, evalset) -> Path:
    """A file of texts is named with its fingerprint too: two files of one name never share embeddings."""
    fp = getattr(evalset, "fingerprint", "")
    return paths.embeddings_dir(run) / f"fp32__{evalset.name}{'-' + fp if fp else ''}.npz"


def reference_embeddings(reference, evalset, run: str = "default", batch_size: int = 32,
                         recompute: bool = False) -> dict[str, np.ndarray]:
    """FP32 embeddings of the evaluation texts: saved by 01, reused by every later notebook."""
    f = _emb_file(run, evalset)
    ids = np.array(list(evalset.corpus) + ["|"] + list(evalset.queries))
    if f.is_file() and not recompute:
        z = np.load(f, allow_pickle=False)
        if z["ids"].shape == ids.shape and (z["ids"] == ids).all() and str(z["model"]) == reference.model_id:
            out = {"corpus": z["corpus"], "queries": z["queries"]}
            if evalset.symmetric and np.array_equal(out["corpus"], out["queries"]):
                out["queries"] = out["corpus"]
            return out
    enc = registry.build("fp32", reference, device=str(next(reference.model.parameters()).device))
    emb = embed_evalset(enc, evalset, reference.query_prompt, batch_size)
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp.npz")
    np.savez(tmp, corpus=emb["corpus"], queries=emb["queries"], ids=ids, model=reference.model_id)
    tmp.replace(f)
    return emb


# --- configuration: key, label, calibration -------------------------------------------------------
def calibration_id(calibration) -> int | str | None:
    """How a Result records its calibration texts: their number when they are the standard calibration
    texts (data.calibration_texts(n)), else a hash of the texts."""
    if calibration is None:
        return None
    if isinstance(calibration, int):
        return calibration
    from bgeq_utils.inputs import data as data_mod
    texts = list(calibration)
    if texts == data_mod.calibration_texts(len(texts)):
        return len(texts)
    return f"{len(texts)} texts sha1:{hashlib.sha1(chr(0).join(texts).encode()).hexdigest()[:8]}"


def is_default(options: dict, calibration) -> bool:
    """The registry default configuration: no option changed, and default calibration if any."""
    return not options and calibration_id(calibration) in (None, DEFAULT_CALIBRATION)


def variant_label(method: str, options: dict | None = None, calibration=None) -> str:
    """``method`` for the default configuration, else ``method[option=value,...,n=texts]``."""
    spec = registry.get(method)
    opts = spec.normalize_options(options)
    parts = [f"{k}={v}" for k, v in opts.items()]
    cal = calibration_id(calibration)
    if cal is not None and cal != DEFAULT_CALIBRATION:
        parts.append(f"n={cal}")
    return f"{method}[{','.join(parts)}]" if parts else method


def dataset_id(evalset) -> dict | None:
    """What a Result's key records of its data: a file of your own texts adds that it has no labels and the
    fingerprint of its texts (its speed is timed on them, so they change figures)."""
    if evalset is None:
        return None
    out = {"name": evalset.name, "documents": len(evalset.corpus), "queries": len(evalset.queries),
           "pairs": len(evalset.pairs)}
    if not getattr(evalset, "has_labels", True):
        out |= {"labels": False, "sha1": evalset.fingerprint}
    return out


def quality_not_applicable(reference, evalset) -> str | None:
    """Why quality is not measured for this reference and data, or None when it is: random weights have no
    meaningful quality, and a file of your own texts has no labels to score against."""
    why = []
    if not reference.has_quality:
        why.append("random weights")
    if evalset is not None and not getattr(evalset, "has_labels", True):
        why.append("no labels")
    return " and ".join(why) or None


def speed_texts(evalset) -> list[str] | None:
    """The texts the speed grid times: a file of your own texts is timed on those texts (each batch is still
    padded or cut to exactly each length of the grid, so the lengths are the grid's and the content is
    yours); a labelled data set keeps the standard benchmark texts (None), so that speed does not depend on
    which labelled set a run evaluates."""
    if evalset is None or getattr(evalset, "has_labels", True):
        return None
    return list(evalset.corpus.values())


def _token_lengths(reference, texts: list[str]) -> dict:
    """Token counts of ``texts`` with the reference's tokenizer (special tokens included, nothing cut): which
    cells of the grid match the texts' real lengths."""
    ids = reference.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    n = np.array([len(x) for x in ids])
    return {"tokens median": float(np.median(n)), "tokens p95": round(float(np.percentile(n, 95)), 1),
            "tokens max": int(n.max()), "longer than max_seq_length": int((n > reference.max_seq_length).sum())}


def machine_of(device: str) -> dict:
    """The machine a timing or memory figure belongs to: CPU model, core count and the threads the runtimes
    use; on CUDA the GPU's name too. Part of every Result's key, so that the same run on another host (a sweep
    across machines) neither reuses nor replaces figures taken here."""
    d = env.describe(device)
    out = {"cpu": d.get("cpu_model"), "cores": d.get("cpu_count"), "threads": env.default_threads()}
    if vocab.device_kind(device) == "cuda":
        out["gpu"] = d.get("gpu_name")
    return out


def settings_of(reference, evalset, device: str, calibration, cfg: BenchConfig, with_fidelity: bool) -> dict:
    return {"model": reference.model_id, "weights": reference.weights, "dataset": dataset_id(evalset),
            "device": vocab.device_kind(device), "machine": machine_of(device),
            "calibration": calibration_id(calibration), "fidelity": with_fidelity, "bench": cfg.settings()}


# --- baselines timed beside each method ------------------------------------------------------------
_BASELINES: dict[tuple, object] = {}
_BASELINE_NAMES = {vocab.EAGER_BASELINE, *vocab.RUNTIME_BASELINE.values()}


def baseline_encoder(name: str, reference, device: str):
    """The FP32 baseline ``name`` for this reference and device, built once per process (None if it
    cannot run here)."""
    k = (name, id(reference.model), reference.model_id, device)
    if k not in _BASELINES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _BASELINES[k] = registry.build(name, reference, device=device)
        except (registry.MethodUnavailable, ImportError) as e:
            warnings.warn(f"baseline {name} cannot run here: {e}")
            _BASELINES[k] = None
    return _BASELINES[k]


def release_baselines() -> None:
    """Free the baselines kept for side-by-side timing (they hold a copy of the model each)."""
    for enc in _BASELINES.values():
        if enc is not None:
            enc.close()
    _BASELINES.clear()
    gc.collect()


def baselines_for(method: str, encoder, options: dict, reference, device: str, shared: dict | None = None) -> dict:
    """{"eager": (name, encoder), "runtime": (name, encoder)}; a method's default configuration that is
    itself a baseline is timed as its own baseline, and a baseline measured in the same window as a method of
    its own (``shared``: name -> encoder) is that encoder, not a second copy."""
    out = {}
    for role, name in (("eager", vocab.EAGER_BASELINE),
                       ("runtime", vocab.RUNTIME_BASELINE.get(getattr(encoder, "runtime", "torch"),
                                                              vocab.EAGER_BASELINE))):
        if name == method and not options:
            out[role] = (name, encoder)
        elif shared and name in shared:
            out[role] = (name, shared[name])
        else:
            out[role] = (name, baseline_encoder(name, reference, device))
    return out


# --- one method ---------------------------------------------------------------------------------
def _compute_precision(encoder, spec) -> str:
    return getattr(encoder, "compute_precision", None) or vocab.compute_precision(spec.precision)


def new_result(method: str, reference, evalset=None, *, run: str = "default", device: str = "cpu",
               calibration=None, options: dict | None = None, label: str | None = None,
               bench_config: BenchConfig | None = None, with_fidelity: bool = True) -> Result:
    """The Result record a measurement will fill: identity, key and settings, nothing measured yet."""
    spec = registry.get(method)             # unknown names fail loudly: that is a typo, not a skip
    paths.check_run_name(run)
    if "calibration" not in spec.needs:
        calibration = None                  # texts a method does not use change none of its figures
    opts = spec.normalize_options(options)  # unknown options fail before any work
    cfg = bench_config or BenchConfig()
    settings = settings_of(reference, evalset, device, calibration, cfg, with_fidelity)
    return Result(run=run, method=method, label=label or variant_label(method, opts, calibration),
                  precision=spec.precision, library=spec.library, runtime=spec.runtime,
                  key=results.make_key(method, opts, settings), is_default=is_default(opts, calibration),
                  model=reference.info(), dataset=evalset.summary() if evalset is not None else None,
                  device=env.describe(device), packages=env.package_versions(), options=opts, settings=settings)


def run_method(method: str, reference, evalset=None, *, run: str = "default", device: str = "cpu",
               calibration: int | list[str] | None = None, options: dict | None = None,
               label: str | None = None, bench_config: BenchConfig | None = None,
               reference_emb: dict | None = None, save: bool = True, progress: bool = True,
               keep_encoder: bool = False):
    """Build, evaluate, time (beside its baselines), size and save one method. Returns the Result (and the
    encoder if asked).

    A method that cannot run here is recorded as ``skipped`` with the reason; one that breaks is recorded as
    ``failed`` with the error; neither stops the caller. Unknown methods and options are errors.

    On a file of your own texts (``evalset.has_labels`` False) quality is not applicable (a note says so, as
    for random weights), fidelity is measured on the texts, and the speed grid times those texts
    (``extra["speed_texts"]`` records it, with their token lengths). Calibration stays on the standard
    calibration texts unless ``calibration`` is a list (see data.calibration_texts for why)."""
    job = {"method": method, "calibration": calibration, "options": options, "label": label,
           "bench_config": bench_config}
    out = run_methods([job], reference, evalset, run=run, device=device, reference_emb=reference_emb, save=save,
                      progress=progress, keep_encoders=keep_encoder)
    return out[0]


@dataclass
class _Job:
    res: Result
    cfg: BenchConfig
    calibration: object = None
    encoder: object = None


def _record_error(res: Result, e: Exception) -> None:
    """A method that cannot run here is skipped with the reason; one that breaks is failed with the error."""
    if isinstance(e, registry.MethodUnavailable):
        res.status, res.reason = "skipped", str(e)
        return
    res.status, res.reason = "failed", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500]
    res.notes.append("".join(traceback.format_exception(e, limit=6))[-3000:])
    warnings.warn(f"{res.method} failed: {res.reason}")


def _prepare(method, reference, evalset, *, run, device, calibration, options, label, cfg, reference_emb,
             progress) -> _Job:
    """Build the method and measure what needs no other method: quality, fidelity, batch invariance, size."""
    from bgeq_utils.inputs import data as data_mod

    spec = registry.get(method)
    if "calibration" not in spec.needs:
        calibration = None
    res = new_result(method, reference, evalset, run=run, device=device, calibration=calibration,
                     options=options, label=label, bench_config=cfg, with_fidelity=reference_emb is not None)
    if calibration is not None:
        res.settings["calibration_texts"] = calibration if isinstance(calibration, int) else len(calibration)
    job = _Job(res, cfg, calibration)
    cal_texts = data_mod.calibration_texts(calibration) if isinstance(calibration, int) else calibration
    try:
        t0 = time.perf_counter()
        with warnings.catch_warnings(), progress_events.phase("build", res.label):
            warnings.simplefilter("ignore")
            job.encoder = registry.build(method, reference, device=device, calibration=cal_texts, **res.options)
        res.timings["build_s"] = time.perf_counter() - t0
        res.runtime = getattr(job.encoder, "runtime", spec.runtime)
        res.extra.update(getattr(job.encoder, "info", {}) or {})
        if evalset is not None:
            t0 = time.perf_counter()
            progress_events.event("fidelity", res.label)
            emb = embed_evalset(job.encoder, evalset, reference.query_prompt, progress=progress)
            why = quality_not_applicable(reference, evalset)
            if why is None:
                res.quality, res.per_query = quality(emb, evalset)
            else:
                res.notes.append(f"{why}: {QUALITY_NOT_APPLICABLE}")
            if reference_emb is not None:
                res.fidelity = fidelity(emb, reference_emb)
            res.timings["eval_s"] = time.perf_counter() - t0
            progress_events.event("fidelity", res.label, res.timings["eval_s"])
        if cfg.invariance:
            with progress_events.phase("invariance", res.label):
                res.fidelity["batch_invariance"] = corpus.batch_invariance(job.encoder, data_mod.sentence_texts(
                    cfg.invariance_texts), batch_size=cfg.invariance_texts)
        if cfg.size:
            res.size = {"disk_bytes": job.encoder.size_on_disk()}
            try:
                res.size["param_bytes"] = job.encoder.param_bytes()
            except NotImplementedError:
                pass
        texts = speed_texts(evalset)
        if texts is not None:
            res.extra["speed_texts"] = {"source": f"dataset {evalset.name}", "texts": len(texts),
                                        **_token_lengths(reference, texts),
                                        "how": "each batch padded or cut to exactly each sequence length"}
    except Exception as e:  # recorded, not raised: one broken method must not end a run
        _record_error(res, e)
        _close(job)
    return job


def _close(job: _Job) -> None:
    if job.encoder is not None:
        job.encoder.close()
        job.encoder = None
        gc.collect()


def _window_key(cfg: BenchConfig) -> tuple:
    """Configurations with the same grid and budgets are timed in one window."""
    return (cfg.batch_sizes, cfg.seq_lens, cfg.seconds, cfg.min_repeats, cfg.max_repeats, cfg.target, cfg.warmup,
            cfg.baselines)


def _time_together(jobs: list[_Job], reference, evalset, device: str, progress: bool,
                   window_kind: str = WINDOW_NOTEBOOK) -> None:
    """One interleaved window per grid cell for all ``jobs`` (same grid and budgets) and the union of their
    baselines; a baseline that is also a measured method's default configuration is that same encoder.

    Each Result records the window it was timed in (``extra["window"]``: an id shared by its members, what
    it served, its members, and the machine's load while it ran), so a table can tell figures of one window
    from figures of several."""
    cfg = jobs[0].cfg
    shared = {j.res.method: j.encoder for j in jobs if not j.res.options and j.res.method in _BASELINE_NAMES}
    entries, keys = {}, {}
    for j in jobs:
        try:
            base = baselines_for(j.res.method, j.encoder, j.res.options, reference, device, shared) \
                if cfg.baselines else {}
        except Exception as e:
            _record_error(j.res, e)
            continue
        k = j.res.label
        while k in entries:
            k += "'"
        entries[k], keys[id(j)] = (j.encoder, base), k
    if not entries:
        return
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    meter = env.LoadMeter()
    try:
        with progress_events.phase("window", f"{window_kind}: {len(entries)} configurations"):
            by_key = speed.speed_grid_many(entries, cfg.batch_sizes, cfg.seq_lens, budget=cfg.budget(),
                                           texts=speed_texts(evalset), config=reference.model.config,
                                           progress=progress)
    except Exception as e:
        by_key = {k: e for k in entries}
    elapsed = time.perf_counter() - t0
    load = meter.stop()
    together = sorted(entries) if len(entries) > 1 else None
    window = {"id": hashlib.sha1(f"{started} {sorted(entries)}".encode()).hexdigest()[:10], "kind": window_kind,
              "started": started, "seconds": round(elapsed, 1), "members": sorted(entries), "load": load}
    for j in jobs:
        k = keys.get(id(j))
        if k is None:
            continue
        rows = by_key[k]
        if isinstance(rows, Exception):
            _record_error(j.res, rows)
            continue
        spec = registry.get(j.res.method)
        j.res.ceiling = speed.gemm_ceiling(_compute_precision(j.encoder, spec), device)
        j.res.speed = speed.add_ceiling_share(rows, j.res.ceiling)
        j.res.timings["bench_s"] = elapsed
        j.res.extra["window"] = window
        if together:
            j.res.extra["timed_together"] = together


def run_methods(jobs: list[dict], reference, evalset=None, *, run: str = "default", device: str = "cpu",
                reference_emb: dict | None = None, save: bool = True, progress: bool = True,
                keep_encoders: bool = False, window_kind: str = WINDOW_NOTEBOOK) -> list:
    """Several configurations measured as :func:`run_method` measures one, except that configurations with the
    same grid and budgets are timed together: one window per cell holds all of them and their baselines once
    (each shared baseline is timed once per round, not once per method), so their speed-ups over the
    baselines and over each other are paired by round. Each job: {"method", "options", "calibration",
    "label", "bench_config"}. Returns the Results in order (with their encoders when ``keep_encoders``).

    Every method's encoder is kept while the window runs (a model copy each); memory is then measured for
    each in fresh processes, as for one."""
    device = env.check_device(device)
    paths.check_run_name(run)
    check_methods([(j["method"], j.get("options")) for j in jobs])  # unknown names and options: before any work
    prepared = [_prepare(j["method"], reference, evalset, run=run, device=device,
                         calibration=j.get("calibration"), options=j.get("options"), label=j.get("label"),
                         cfg=j.get("bench_config") or BenchConfig(), reference_emb=reference_emb, progress=progress)
                for j in jobs]
    groups: dict[tuple, list[_Job]] = {}
    for j in prepared:
        if j.res.status == "ok" and j.encoder is not None:
            groups.setdefault(_window_key(j.cfg), []).append(j)
    for group in groups.values():
        _time_together(group, reference, evalset, device, progress, window_kind)
    todo = [j for j in prepared if j.res.status == "ok" and j.cfg.memory]
    if not keep_encoders:
        for j in todo:
            _close(j)
    with progress_events.phase("memory", f"{len(todo)} configurations") if todo else contextlib.nullcontext():
        measured = measure_memory_many(
            [dict(method=j.res.method, reference_spec=reference.spec(), device=device, options=j.res.options,
                  calibration=j.calibration, batch_size=j.cfg.memory_batch, seq_len=j.cfg.memory_seq,
                  repeats=j.cfg.memory_repeats) for j in todo], progress=progress,
            workers=1 if vocab.device_kind(device) == "cuda" else None)
    for j, mem in zip(todo, measured):
        if isinstance(mem, Exception):
            _record_error(j.res, mem)
        else:
            j.res.memory = mem
    out = []
    for j in prepared:
        if save:
            results.save(j.res)
        if keep_encoders:
            out.append((j.res, j.encoder))
        else:
            _close(j)
            out.append(j.res)
    return out


def _reusable(method: str, reference, evalset, *, run: str, device: str, calibration, options, label,
              bench_config, with_fidelity: bool, verbose: bool) -> Result | None:
    """The Result this run already holds for exactly this configuration on this machine, if it is ok (the key
    hashes the machine; a record whose settings name another machine is not reused even so)."""
    probe = new_result(method, reference, evalset, run=run, device=device, calibration=calibration,
                       options=options, label=label, bench_config=bench_config, with_fidelity=with_fidelity)
    old = results.find(run, probe.key, probe.device_kind)
    if old is not None and old.status == "ok" and (old.settings or {}).get("machine") == probe.settings["machine"]:
        if verbose:
            print(f"{old.label} on {old.device_kind}: reusing Result {old.key} of run {run!r} ({old.created})")
        return old
    return None


def measure_or_reuse(method: str, reference, evalset=None, *, run: str = "default", device: str = "cpu",
                     calibration=None, options: dict | None = None, label: str | None = None,
                     bench_config: BenchConfig | None = None, reference_emb: dict | None = None,
                     progress: bool = True, verbose: bool = True) -> Result:
    """The Result this run already holds for exactly this configuration (same key: method, options,
    calibration, model, data, device, grid and budgets) with status ok, else a new measurement."""
    device = env.check_device(device)
    old = _reusable(method, reference, evalset, run=run, device=device, calibration=calibration, options=options,
                    label=label, bench_config=bench_config, with_fidelity=reference_emb is not None, verbose=verbose)
    if old is not None:
        return old
    return run_method(method, reference, evalset, run=run, device=device, calibration=calibration,
                      options=options, label=label, bench_config=bench_config, reference_emb=reference_emb,
                      progress=progress)


def skipped(method: str, reference, reason: str, *, run: str = "default", device: str = "cpu",
            options: dict | None = None, label: str | None = None, save: bool = True) -> Result:
    """Record a method that was not attempted here (e.g. the CUDA half of a notebook on a CPU box)."""
    res = new_result(method, reference, None, run=run, device=device, options=options, label=label)
    res.status, res.reason = "skipped", reason
    if save:
        results.save(res)
    return res


def build_configurations(reference, configurations, device: str = "cpu", calibration: int = DEFAULT_CALIBRATION
                         ) -> tuple[dict, dict, dict]:
    """Encoders of several (method, options) configurations, for timing them together: ({label: encoder},
    {label: compute precision}, {label: why skipped}). Calibration texts go only to methods that need them."""
    from bgeq_utils.inputs import data as data_mod
    cal = data_mod.calibration_texts(calibration)
    encoders, precisions, skipped = {}, {}, {}
    for name, options in configurations:
        spec, label = registry.get(name), variant_label(name, options)
        try:
            enc = registry.build(name, reference, device=device,
                                 calibration=cal if "calibration" in spec.needs else None, **options)
        except registry.MethodUnavailable as e:
            skipped[label] = str(e)
            continue
        encoders[label], precisions[label] = enc, _compute_precision(enc, spec)
    return encoders, precisions, skipped


def measure_corpus(reference, method_names: list[str], texts: list[str], corpus_name: str, run: str,
                   device: str = "cpu", batch_size: int = 32, max_length: int | None = None,
                   budget: speed.Budget | None = None, calibration: int | None = None) -> dict:
    """Build each method (its registry default), time whole passes over ``texts`` side by side (the first
    method is the baseline of the ratios), save the record under ``outputs/<run>/corpus/`` and return it."""
    budget = budget or speed.Budget()
    paths.check_run_name(run)
    if not method_names:
        raise ValueError("corpus throughput needs at least one method")
    encoders, _, skipped = build_configurations(reference, [(m, {}) for m in method_names], device,
                                                calibration or DEFAULT_CALIBRATION)
    rows = corpus.corpus_throughput(encoders, texts, batch_size, max_length, budget, corpus=corpus_name) \
        if encoders else []
    for e in encoders.values():
        e.close()
    record = {"run": run, "corpus": corpus_name, "model": reference.info(), "device": env.describe(device),
              "batch_size": batch_size, "max_length": max_length or reference.max_seq_length,
              "rows": rows, "skipped": skipped, "budget": vars(budget).copy()}
    name = f"{results.safe_name(reference.model_id)[:80]}__{results.safe_name(corpus_name)[:80]}.json"
    record["path"] = paths.shown(results.write_json(record, paths.run_dir(run) / "corpus" / name))
    return record


# --- what a method notebook measures against --------------------------------------------------------
@dataclass
class Study:
    """The FP32 reference, the evaluation data, its saved FP32 embeddings, the bench configuration and the
    run: everything a method notebook measures against, so that its cells are calls."""
    reference: object
    evalset: object
    reference_emb: dict | None
    config: BenchConfig
    device: str
    run: str
    requested_device: str = ""

    @property
    def devices(self) -> list[str]:
        """The devices a notebook covers: 'auto' means the CPU and CUDA (recorded as skipped where there is no
        GPU, so a report says so), any other request that device alone."""
        return ["cpu", "cuda"] if self.requested_device == "auto" else [self.device]

    def check(self, *configurations) -> None:
        """Method names and options a notebook will measure, checked before any work: an unknown method or
        option is an error naming the known ones. Each item: a name, or (name, options)."""
        check_methods(configurations)

    def jobs(self, configurations, calibration=None, config: BenchConfig | None = None) -> list[dict]:
        """The jobs (for :meth:`measure_many`) of several configurations: a name, (name, options) or
        {"method", "options"} each; a method this installation does not register is left out with a message."""
        out = []
        for name, options in _configurations(configurations):
            if name not in registry.names():
                print(f"{name}: not registered here, left out")
                continue
            out.append({"method": name, "options": options, "calibration": calibration,
                        "bench_config": config or self.config})
        return out

    def sweep_jobs(self, method: str, grid: dict | None = None, fixed: dict | None = None, calibrations=(None,),
                   variant_config: BenchConfig | None = None) -> list[dict]:
        """The jobs of every combination of the options in ``grid`` (name -> list of values, with ``fixed`` ones
        added) and of ``calibrations``: the method's default configuration with the study's configuration, every
        variant with ``variant_config`` (by default the same without memory: variants are detail)."""
        import itertools
        variant_config = variant_config or dataclasses.replace(self.config, memory=False)
        grid = grid or {}
        out = []
        for values in itertools.product(*grid.values()):
            options = {**dict(zip(grid, values)), **(fixed or {})}
            for cal in calibrations:
                default = variant_label(method, options, cal) == method
                out.append({"method": method, "options": options, "calibration": cal,
                            "bench_config": self.config if default else variant_config})
        return out

    def measure_all(self, configurations, calibration=None, device: str | None = None,
                    config: BenchConfig | None = None) -> list[Result]:
        """Each configuration (as for :meth:`jobs`) measured or reused, those measured timed together."""
        return self.measure_many(self.jobs(configurations, calibration, config), device=device)

    def sweep(self, method: str, grid: dict | None = None, fixed: dict | None = None, calibrations=(None,),
              device: str | None = None, variant_config: BenchConfig | None = None) -> list[Result]:
        """The configurations of :meth:`sweep_jobs` measured or reused, those measured timed together."""
        return self.measure_many(self.sweep_jobs(method, grid, fixed, calibrations, variant_config), device=device)

    def measure(self, method: str, options: dict | None = None, calibration=None, device: str | None = None,
                config: BenchConfig | None = None, label: str | None = None, reuse: bool = True) -> Result:
        """A method's Result in this run: reused when this exact configuration was measured before."""
        return self.measure_many([{"method": method, "options": options, "calibration": calibration,
                                   "label": label, "bench_config": config or self.config}], device, reuse)[0]

    def measure_many(self, jobs: list[dict], device: str | None = None, reuse: bool = True,
                     window_kind: str = WINDOW_NOTEBOOK) -> list[Result]:
        """Results of several configurations ({"method", "options", "calibration", "label", "bench_config"}):
        those this run holds for exactly the same key are reused, the rest measured by :func:`run_methods`,
        so that the new ones with the same grid and budgets share one timing window with their baselines."""
        device = env.check_device(device or self.device)
        jobs = [{"bench_config": self.config, **{k: v for k, v in j.items() if v is not None}} for j in jobs]
        out: list = [None] * len(jobs)
        todo = []
        for i, j in enumerate(jobs):
            old = _reusable(j["method"], self.reference, self.evalset, run=self.run, device=device,
                            calibration=j.get("calibration"), options=j.get("options"), label=j.get("label"),
                            bench_config=j["bench_config"], with_fidelity=self.reference_emb is not None,
                            verbose=True) if reuse else None
            if old is not None:
                out[i] = old
            else:
                todo.append(i)
        if todo:
            new = run_methods([jobs[i] for i in todo], self.reference, self.evalset, run=self.run, device=device,
                              reference_emb=self.reference_emb, window_kind=window_kind)
            for i, r in zip(todo, new):
                out[i] = r
        return out


def _configurations(configurations):
    """(name, options) of each item: a method name, (name, options) or {"method": name, "options": {...}}."""
    for item in configurations:
        if isinstance(item, dict):
            name, options = item.get("method"), item.get("options") or {}
        elif isinstance(item, (tuple, list)):
            name, options = item[0], (item[1] if len(item) > 1 else {}) or {}
        else:
            name, options = item, {}
        if not isinstance(options, dict):
            raise ValueError(f"options of {name!r} must be a mapping of option names to values, not {options!r}")
        yield name, dict(options)


def check_methods(configurations) -> None:
    """Unknown method names and options fail here, before any work (items as for Study.measure_all)."""
    for name, options in _configurations(configurations):
        registry.get(name).normalize_options(options)


def check_numbers(name: str, values, minimum: float = 0.0, whole: bool = False) -> list:
    """A notebook parameter holding a number or a list of numbers, each at least ``minimum`` (whole numbers
    when ``whole``); the error names the parameter."""
    listed = values if isinstance(values, (list, tuple)) else [values]
    kinds = int if whole else (int, float)
    if not listed or any(isinstance(v, bool) or not isinstance(v, kinds) or v < minimum for v in listed):
        what = f"{'whole ' if whole else ''}number{'s' if isinstance(values, (list, tuple)) else ''} >= {minimum:g}"
        raise ValueError(f"{name}={values!r}: use {what}")
    return list(listed)


def check_counts(name: str, values) -> list[int]:
    """A count or a list of counts (texts, steps): positive whole numbers."""
    return check_numbers(name, values, 1, whole=True)


def check_choices(name: str, values, allowed) -> list:
    """A notebook parameter that lists choices: each must be one of ``allowed`` (any letter case); returns them
    spelled as ``allowed`` spells them. The error names the parameter and the choices."""
    canon = {str(a).lower(): a for a in allowed}
    values = [values] if isinstance(values, (str, bool, int, float)) else list(values or [])
    bad = [v for v in values if str(v).lower() not in canon]
    if bad or not values:
        raise ValueError(f"{name}={values!r}: use one or more of {list(allowed)}")
    return [canon[str(v).lower()] for v in values]


def study(model: str = "default", weights: str = "pretrained", dataset: str = "lee", device: str = "auto",
          run: str = "default", max_docs: int | None = None, max_queries: int | None = None,
          config: BenchConfig | None = None, output_dir: str = "") -> Study:
    """Load the reference and the data, and the FP32 embeddings of the data (saved once per run)."""
    import os

    from bgeq_utils.inputs import data as data_mod
    from bgeq_utils.inputs import models
    if output_dir:
        os.environ["BGEQ_OUTPUTS"] = output_dir
    paths.check_run_name(run)
    env.check_device(device)
    reference = models.load_reference(model, weights=weights, device="cpu")
    evalset = data_mod.load_evalset(dataset, max_docs=max_docs, max_queries=max_queries)
    return Study(reference, evalset, reference_embeddings(reference, evalset, run=run), config or BenchConfig(),
                 env.check_device(device), run, requested_device=str(device).strip().lower())


def side_by_side(study: Study, configurations: list, device: str | None = None,
                 batch_sizes=None, seq_lens=None, budget: speed.Budget | None = None):
    """Speed of several configurations timed in one window (A B C, B C A, ...), as speed-ups over the
    first: ``configurations`` is a list of method names or (method, options) pairs. Use it for a claim that
    compares two methods directly (e.g. LLM.int8() against FP16): each method's own Result holds its
    speed-ups over FP32, timed beside FP32; this times the two against each other.

    Returns a table: batch, length, configuration, tokens/s with its interval, speed-up over the first with
    its interval (median of per-round ratios). A configuration that cannot run here is left out, with why."""
    import pandas as pd

    from bgeq_utils.core import uncertainty
    from bgeq_utils.inputs import data as data_mod

    device = env.check_device(device or study.device)
    cfg = study.config
    budget = budget or cfg.budget()
    encoders, skipped = {}, []
    for item in configurations:
        method, options = (item, {}) if isinstance(item, str) else item
        label = variant_label(method, options)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                encoders[label] = registry.build(method, study.reference, device=device, **(options or {}))
        except registry.MethodUnavailable as e:
            skipped.append(f"{label}: {e}")
    rows = []
    try:
        if len(encoders) >= 2:
            first = next(iter(encoders))
            texts = speed_texts(study.evalset) or data_mod.benchmark_texts(64)
            for L in (seq_lens or cfg.seq_lens):
                for b in (batch_sizes or cfg.batch_sizes):
                    enc0 = encoders[first]
                    L_eff = min(L, enc0.max_seq_length)
                    feats = speed._inputs(enc0, b, L_eff, texts)
                    calls = {k: (lambda e: (lambda: e.embed_features(feats)))(e) for k, e in encoders.items()}
                    times = speed.interleaved(calls, budget)
                    for k in encoders:
                        t = uncertainty.median(times[k])
                        ratio = uncertainty.window_ratio(times[first], times[k])
                        rows.append({"batch": b, "seq": L_eff, "configuration": k,
                                     "tok/s": uncertainty.Estimate(b * L_eff / t.value,
                                                                   b * L_eff / t.high if t.has_interval else None,
                                                                   b * L_eff / t.low if t.has_interval else None
                                                                   ).fmt(0),
                                     f"x {first}": ratio.fmt(2) if k != first else "1.00",
                                     "repeats": len(times[k])})
    finally:
        for e in encoders.values():
            e.close()
    df = pd.DataFrame(rows)
    df.attrs["skipped"] = skipped
    df.attrs["device"] = device
    return df
