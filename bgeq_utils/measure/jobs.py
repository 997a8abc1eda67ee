"""Methods, end to end: build -> evaluate -> time side by side -> Result (never crashes the run).

``run_method`` measures a method, ``run_methods`` several timed together in one window; ``measure_or_reuse``
returns the Result this run already holds for the same key or measures it."""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import time
import traceback
import warnings
from dataclasses import dataclass

from bgeq_utils import methods as registry
from bgeq_utils.core import env, paths, results, vocab
from bgeq_utils.core import progress as progress_events
from bgeq_utils.core.results import Result
from bgeq_utils.inputs import data as data_mod
from bgeq_utils.measure import corpus, speed
from bgeq_utils.measure.baselines import BASELINE_NAMES, baselines_for
from bgeq_utils.measure.config import DEFAULT_CALIBRATION, QUALITY_NOT_APPLICABLE, WINDOW_NOTEBOOK, BenchConfig
from bgeq_utils.measure.evaluation import embed_evalset, fidelity, quality
from bgeq_utils.measure.identity import (
    check_methods,
    compute_precision,
    new_result,
    quality_not_applicable,
    speed_texts,
    token_lengths,
    variant_label,
)
from bgeq_utils.measure.memory import EarlyMemory, measure_memory_many


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
    job = Job(method, options, calibration, label, bench_config)
    out = run_methods([job], reference, evalset, run=run, device=device, reference_emb=reference_emb, save=save,
                      progress=progress, keep_encoders=keep_encoder)
    return out[0]


@dataclass
class Job:
    """One configuration to measure: a method, its options, its calibration (a number of the standard texts, or
    texts), a label (default: from the options) and the bench configuration (default: the study's)."""
    method: str
    options: dict | None = None
    calibration: object = None
    label: str | None = None
    bench_config: BenchConfig | None = None

    @classmethod
    def of(cls, item) -> Job:
        """A Job as given, or one from a mapping with the same field names (an unknown name is an error)."""
        if isinstance(item, cls):
            return item
        if not isinstance(item, dict):
            raise TypeError(f"a job is a Job or a mapping with keys {[f.name for f in dataclasses.fields(cls)]}, "
                            f"not {item!r}")
        unknown = set(item) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"job {item!r}: unknown field(s) {sorted(unknown)}; fields are "
                            f"{[f.name for f in dataclasses.fields(cls)]}")
        return cls(**item)


@dataclass
class _Prepared:
    res: Result
    cfg: BenchConfig
    calibration: object = None
    encoder: object = None


def _record_error(res: Result, e: Exception) -> None:
    """A method that cannot run here is skipped with the reason; one that breaks is failed with the error."""
    if isinstance(e, registry.MethodUnavailable):
        res.status, res.reason = vocab.SKIPPED, str(e)
        return
    res.status, res.reason = vocab.FAILED, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500]
    res.notes.append("".join(traceback.format_exception(e, limit=6))[-3000:])
    warnings.warn(f"{res.method} failed: {res.reason}")


def _prepare(method, reference, evalset, *, run, device, calibration, options, label, cfg, reference_emb,
             progress) -> _Prepared:
    """Build the method and measure what needs no other method: quality, fidelity, batch invariance, size."""

    spec = registry.get(method)
    if "calibration" not in spec.needs:
        calibration = None
    res = new_result(method, reference, evalset, run=run, device=device, calibration=calibration,
                     options=options, label=label, bench_config=cfg, with_fidelity=reference_emb is not None)
    if calibration is not None:
        res.settings["calibration_texts"] = calibration if isinstance(calibration, int) else len(calibration)
    job = _Prepared(res, cfg, calibration)
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
        if cfg.invariance and not reference.has_quality:
            res.fidelity["batch_invariance"] = {"skipped": INVARIANCE_ON_RANDOM}
        elif cfg.invariance:
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
                                        **token_lengths(reference, texts),
                                        "how": "each batch padded or cut to exactly each sequence length"}
    except Exception as e:  # recorded, not raised: one broken method must not end a run
        _record_error(res, e)
        _close(job)
    return job


#: why random weights get no batch-invariance check: what it flags is the method's arithmetic (activation ranges
#: taken from the whole batch, kernels chosen by shape), which the pretrained model of the same method shows on
#: real activations; on random weights its size says nothing about a user's rankings, and on bge-large's shape
#: its forward passes one text at a time cost minutes of `make run`
INVARIANCE_ON_RANDOM = "random weights: checked on a pretrained model (the same method's arithmetic)"


def _close(job: _Prepared) -> None:
    if job.encoder is not None:
        job.encoder.close()
        job.encoder = None
        gc.collect()


def window_key(cfg: BenchConfig) -> tuple:
    """Configurations with the same grid and budgets are timed in one window."""
    return (cfg.batch_sizes, cfg.seq_lens, cfg.seconds, cfg.min_repeats, cfg.max_repeats, cfg.target, cfg.warmup,
            cfg.baselines)


def _time_together(jobs: list[_Prepared], reference, evalset, device: str, progress: bool,
                   window_kind: str = WINDOW_NOTEBOOK) -> None:
    """One interleaved window per grid cell for all ``jobs`` (same grid and budgets) and the union of their
    baselines; a baseline that is also a measured method's default configuration is that same encoder.

    Each Result records the window it was timed in (``extra["window"]``: an id shared by its members, what
    it served, its members, and the machine's load while it ran), so a table can tell figures of one window
    from figures of several."""
    cfg = jobs[0].cfg
    shared = {j.res.method: j.encoder for j in jobs if not j.res.options and j.res.method in BASELINE_NAMES}
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
        j.res.ceiling = speed.gemm_ceiling(compute_precision(j.encoder, spec), device)
        j.res.speed = speed.add_ceiling_share(rows, j.res.ceiling)
        j.res.timings["bench_s"] = elapsed
        j.res.extra["window"] = window
        if together:
            j.res.extra["timed_together"] = together


def run_methods(jobs: list[Job], reference, evalset=None, *, run: str = "default", device: str = "cpu",
                reference_emb: dict | None = None, save: bool = True, progress: bool = True,
                keep_encoders: bool = False, window_kind: str = WINDOW_NOTEBOOK) -> list:
    """Several configurations measured as :func:`run_method` measures one, except that configurations with the
    same grid and budgets are timed together: one window per cell holds all of them and their baselines once
    (each shared baseline is timed once per round, not once per method), so their speed-ups over the
    baselines and over each other are paired by round. Each job: a :class:`Job` (or a mapping of its fields).
    Returns the Results in order (with their encoders when ``keep_encoders``).

    Every method's encoder is kept while the window runs (a model copy each); memory is then measured for
    each in fresh processes, as for one."""
    device = env.check_device(device)
    paths.check_run_name(run)
    jobs = [Job.of(j) for j in jobs]
    check_methods([(j.method, j.options) for j in jobs])  # unknown names and options: before any work
    prepared, early = [], {}
    # on the CPU each method's fresh memory processes start as soon as it is built (a process's peak RSS is its own
    # whatever runs beside it), and the timing window waits until they are done
    pool = EarlyMemory(device, any((j.bench_config or BenchConfig()).memory for j in jobs))
    try:
        for j in jobs:
            p = _prepare(j.method, reference, evalset, run=run, device=device, calibration=j.calibration,
                         options=j.options, label=j.label, cfg=j.bench_config or BenchConfig(),
                         reference_emb=reference_emb, progress=progress)
            prepared.append(p)
            if p.res.ok and p.cfg.memory and pool.start(id(p), _memory_job(p, reference, device)):
                early[id(p)] = p
        if early:
            with progress_events.phase("memory", f"{len(early)} configurations, while building"):
                for key, mem in pool.wait(progress).items():
                    _set_memory(early[key], mem)
    finally:
        pool.close()
    groups: dict[tuple, list[_Prepared]] = {}
    for j in prepared:
        if j.res.ok and j.encoder is not None:
            groups.setdefault(window_key(j.cfg), []).append(j)
    for group in groups.values():
        _time_together(group, reference, evalset, device, progress, window_kind)
    todo = [j for j in prepared if j.res.ok and j.cfg.memory and id(j) not in early]
    if not keep_encoders:
        for j in todo:
            _close(j)
    with progress_events.phase("memory", f"{len(todo)} configurations") if todo else contextlib.nullcontext():
        measured = measure_memory_many([_memory_job(j, reference, device) for j in todo], progress=progress,
                                       workers=1 if vocab.device_kind(device) == "cuda" else None)
    for j, mem in zip(todo, measured):
        _set_memory(j, mem)
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


def _memory_job(j: _Prepared, reference, device: str) -> dict:
    """The keyword arguments of :func:`memory.measure_memory` for a prepared configuration."""
    return dict(method=j.res.method, reference_spec=reference.spec(), device=device, options=j.res.options,
                calibration=j.calibration, batch_size=j.cfg.memory_batch, seq_len=j.cfg.memory_seq,
                repeats=j.cfg.memory_repeats)


def _set_memory(j: _Prepared, mem) -> None:
    if isinstance(mem, Exception):
        _record_error(j.res, mem)
    else:
        j.res.memory = mem


def reusable(method: str, reference, evalset, *, run: str, device: str, calibration, options, label,
              bench_config, with_fidelity: bool, verbose: bool) -> Result | None:
    """The Result this run already holds for exactly this configuration on this machine, if it is ok (the key
    hashes the machine; a record whose settings name another machine is not reused even so)."""
    probe = new_result(method, reference, evalset, run=run, device=device, calibration=calibration,
                       options=options, label=label, bench_config=bench_config, with_fidelity=with_fidelity)
    old = results.find(run, probe.key, probe.device_kind)
    if old is not None and old.ok and (old.settings or {}).get("machine") == probe.settings["machine"]:
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
    old = reusable(method, reference, evalset, run=run, device=device, calibration=calibration, options=options,
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
    res.status, res.reason = vocab.SKIPPED, reason
    if save:
        results.save(res)
    return res


def build_configurations(reference, configurations, device: str = "cpu", calibration: int = DEFAULT_CALIBRATION
                         ) -> tuple[dict, dict, dict]:
    """Encoders of several (method, options) configurations, for timing them together: ({label: encoder},
    {label: compute precision}, {label: why skipped}). Calibration texts go only to methods that need them."""
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
        encoders[label], precisions[label] = enc, compute_precision(enc, spec)
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
