"""What a method notebook measures against: the FP32 reference, the data, its FP32 embeddings, the bench
configuration and the run, so that a notebook's cells are calls; and the checks of its parameters."""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

from bgeq_utils import methods as registry
from bgeq_utils.core import env, paths, uncertainty
from bgeq_utils.core.results import Result
from bgeq_utils.inputs import data as data_mod
from bgeq_utils.inputs import models
from bgeq_utils.measure import speed
from bgeq_utils.measure.config import WINDOW_NOTEBOOK, BenchConfig
from bgeq_utils.measure.evaluation import reference_embeddings
from bgeq_utils.measure.identity import check_methods, configurations_of, speed_texts, variant_label
from bgeq_utils.measure.jobs import Job, reusable, run_methods


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

    def jobs(self, configurations, calibration=None, config: BenchConfig | None = None) -> list[Job]:
        """The jobs (for :meth:`measure_many`) of several configurations: a name, (name, options) or
        {"method", "options"} each; a method this installation does not register is left out with a message."""
        out = []
        for name, options in configurations_of(configurations):
            if name not in registry.names():
                print(f"{name}: not registered here, left out")
                continue
            out.append(Job(name, options, calibration, bench_config=config or self.config))
        return out

    def sweep_jobs(self, method: str, grid: dict | None = None, fixed: dict | None = None, calibrations=(None,),
                   variant_config: BenchConfig | None = None) -> list[Job]:
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
                out.append(Job(method, options, cal, bench_config=self.config if default else variant_config))
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
        return self.measure_many([Job(method, options, calibration, label, config or self.config)], device, reuse)[0]

    def measure_many(self, jobs: list[Job], device: str | None = None, reuse: bool = True,
                     window_kind: str = WINDOW_NOTEBOOK) -> list[Result]:
        """Results of several configurations (:class:`Job` each, or a mapping of its fields):
        those this run holds for exactly the same key are reused, the rest measured by :func:`run_methods`,
        so that the new ones with the same grid and budgets share one timing window with their baselines."""
        device = env.check_device(device or self.device)
        jobs = [Job.of(j) for j in jobs]
        jobs = [j if j.bench_config is not None else dataclasses.replace(j, bench_config=self.config) for j in jobs]
        out: list = [None] * len(jobs)
        todo = []
        for i, j in enumerate(jobs):
            old = reusable(j.method, self.reference, self.evalset, run=self.run, device=device,
                           calibration=j.calibration, options=j.options, label=j.label, bench_config=j.bench_config,
                           with_fidelity=self.reference_emb is not None, verbose=True) if reuse else None
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
    """Load the reference and the data, and the FP32 embeddings of the data (saved once per run). ``output_dir``:
    this process's outputs go there (empty: the project's outputs/ folder, or $BGEQ_OUTPUTS)."""
    if output_dir:
        paths.use_outputs(output_dir)
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
