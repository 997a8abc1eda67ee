"""One registry of methods: a function each, registered under a stable name with its metadata."""
from __future__ import annotations

import difflib
import importlib.util
import inspect
from dataclasses import dataclass, field
from typing import Callable

from bgeq_utils.core import env, paths, vocab


class UnknownMethodError(KeyError):
    def __str__(self):  # KeyError would print the message quoted
        return self.args[0]


class UnknownOptionError(TypeError):
    """An option the method does not take: a typo, never silently ignored."""


class MethodUnavailable(RuntimeError):
    """The method cannot run here (no CUDA, missing kernel or package): recorded as skipped."""


#: builder parameters that are not options
_NOT_OPTIONS = ("reference", "device", "calibration")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    precision: str                 # one of vocab.PRECISIONS
    library: str                   # torch | onnxruntime | bitsandbytes | torchao | openvino | ...
    builder: Callable = field(repr=False, compare=False)
    devices: tuple[str, ...] = ("cpu", "cuda")
    needs: tuple[str, ...] = ()    # capabilities: "calibration", "training"
    packages: tuple[str, ...] = ()  # Python modules that must be importable
    runtime: str = "torch"         # what executes it by default (an encoder may say otherwise)
    imports: tuple[str, ...] = ()  # modules a fresh process imports before its memory baseline
    weight_bits: float = 32.0      # nominal bits per weight of the quantized layers
    summary: str = ""

    def unavailable_reason(self, device: str) -> str | None:
        kind = vocab.device_kind(device)
        if kind not in self.devices:
            return f"{self.name} runs on {'/'.join(self.devices)} only; this run is on {kind}"
        if kind == "cuda":
            if not env.has_cuda():
                return "no CUDA GPU visible on this machine"
        for mod in self.packages:
            if importlib.util.find_spec(mod) is None:
                return f"Python package '{mod}' is not installed ({vocab.install_hint(mod)})"
        return None

    def option_defaults(self) -> dict:
        """The options the builder takes, with their defaults (None where it has none)."""
        sig = inspect.signature(self.builder)
        return {n: (None if p.default is inspect.Parameter.empty else p.default)
                for n, p in sig.parameters.items()
                if n not in _NOT_OPTIONS and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}

    def normalize_options(self, options: dict | None) -> dict:
        """Options as given, checked against the builder, minus those equal to their default.

        Two spellings of the same configuration ({} and the defaults written out) get the same Result key;
        an unknown option is an error that names the known ones."""
        options = dict(options or {})
        known = self.option_defaults()
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise UnknownOptionError(
                f"{self.name}: unknown option(s) {unknown}; its options are "
                + (", ".join(f"{k} (default {v!r})" for k, v in known.items()) or "none"))
        return {k: v for k, v in sorted(options.items()) if not _same(v, known[k])}

    @property
    def baseline_in_runtime(self) -> str:
        return vocab.RUNTIME_BASELINE.get(self.runtime, vocab.EAGER_BASELINE)


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return type(a) is type(b) and a == b or (isinstance(a, float) and isinstance(b, (int, float)) and a == b)


_REGISTRY: dict[str, MethodSpec] = {}


def register(name: str, *, precision: str, library: str, devices=("cpu", "cuda"), needs=(), packages=(),
             runtime: str | None = None, imports=(), weight_bits: float | None = None, summary: str = ""):
    """Decorator: ``@register("int8-dynamic-torch", precision="int8", library="torch")``."""
    if precision not in vocab.PRECISIONS:
        raise ValueError(f"method {name!r}: precision {precision!r} is not one of {vocab.PRECISIONS}")
    bad = sorted(set(needs) - set(vocab.CAPABILITIES))
    if bad:
        raise ValueError(f"method {name!r}: needs {bad} are not capabilities {vocab.CAPABILITIES}")
    bits = weight_bits if weight_bits is not None else vocab.NOMINAL_BITS.get(precision, 32)
    runtime = runtime or vocab.LIBRARY_RUNTIME.get(library, "torch")
    if runtime not in vocab.RUNTIMES:
        raise ValueError(f"method {name!r}: runtime {runtime!r} is not one of {vocab.RUNTIMES}")
    mods = tuple(dict.fromkeys(vocab.LIBRARY_IMPORTS.get(library, ()) + tuple(packages) + tuple(imports)))

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is registered twice")
        _REGISTRY[name] = MethodSpec(name, precision, library, fn, tuple(devices), tuple(needs), tuple(packages),
                                     runtime, mods, float(bits),
                                     summary or (fn.__doc__ or "").strip().split("\n")[0])
        return fn
    return deco


def get(name: str) -> MethodSpec:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownMethodError(
            f"unknown method {name!r}.{hint} Known methods: {', '.join(sorted(_REGISTRY))} "
            "(bgeq_utils.methods.table() describes each).")
    return _REGISTRY[name]


def names() -> list[str]:
    return list(_REGISTRY)


def specs() -> list[MethodSpec]:
    return list(_REGISTRY.values())


def build(name: str, reference, device: str = "cpu", calibration: list[str] | None = None, **options):
    """Build the Encoder of a method from the FP32 reference."""
    spec = get(name)
    spec.normalize_options(options)          # unknown options fail before any work
    reason = spec.unavailable_reason(device)
    if reason:
        raise MethodUnavailable(reason)
    if "calibration" in spec.needs and not calibration:
        raise ValueError(f"method {name!r} needs calibration texts (pass calibration=data.calibration_texts(n))")
    use_compile_cache()
    enc = spec.builder(reference, device=device, calibration=calibration, **options)
    enc.method = name
    enc.runtime = getattr(enc, "runtime", None) or spec.runtime
    return enc


def use_compile_cache() -> None:
    """Inductor's compiled kernels go to the project's cache (unless the user chose a folder), so that a
    compiled method's build in a notebook, a memory process, a bench and an export compiles once."""
    import os

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(paths.cache_dir() / "inductor"))


def table():
    import pandas as pd
    return pd.DataFrame([{"method": s.name, "precision": s.precision, "library": s.library, "runtime": s.runtime,
                          "devices": "/".join(s.devices), "needs": ", ".join(s.needs),
                          "packages": ", ".join(s.packages), "bits/weight": s.weight_bits,
                          "summary": s.summary} for s in specs()])
