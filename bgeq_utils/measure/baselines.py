"""The FP32 baselines every method is timed beside: eager PyTorch and FP32 in the method's own runtime,
built once per process and shared by every window that needs them."""
from __future__ import annotations

import gc
import warnings

from bgeq_utils import methods as registry
from bgeq_utils.core import vocab

_BASELINES: dict[tuple, object] = {}
BASELINE_NAMES = {vocab.EAGER_BASELINE, *vocab.RUNTIME_BASELINE.values()}


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
