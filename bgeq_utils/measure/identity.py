"""Who a measurement is: its label, its key (every setting that changes a figure, the machine included)
and the empty Result it fills. Two configurations never share a key; one configuration on one machine
always gets the same one, which is what lets a run reuse a figure instead of taking it again."""
from __future__ import annotations

import hashlib

import numpy as np

from bgeq_utils import methods as registry
from bgeq_utils.core import env, paths, results, vocab
from bgeq_utils.core.results import Result
from bgeq_utils.inputs import data as data_mod
from bgeq_utils.measure.config import DEFAULT_CALIBRATION, BenchConfig


def calibration_id(calibration) -> int | str | None:
    """How a Result records its calibration texts: their number when they are the standard calibration
    texts (data.calibration_texts(n)), else a hash of the texts."""
    if calibration is None:
        return None
    if isinstance(calibration, int):
        return calibration
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


def token_lengths(reference, texts: list[str]) -> dict:
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


def compute_precision(encoder, spec) -> str:
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


def configurations_of(configurations):
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
    for name, options in configurations_of(configurations):
        registry.get(name).normalize_options(options)
