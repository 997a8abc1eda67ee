"""The method registry. Adding a method = one function with ``@register`` in a module listed here."""
import importlib
import importlib.util

from .registry import (
    MethodSpec,
    MethodUnavailable,
    UnknownMethodError,
    UnknownOptionError,
    build,
    get,
    names,
    register,
    specs,
    table,
)

# Importing a module registers its methods; this order is the order tables show them in.
MODULES = ("fp", "st", "torch_int8", "torchao_gpu", "onnx", "openvino", "bnb", "qat", "torch_int4", "ct2")
for _m in MODULES:
    if importlib.util.find_spec(f"{__name__}.{_m}") is not None:
        importlib.import_module(f"{__name__}.{_m}")

__all__ = ["MethodSpec", "MethodUnavailable", "UnknownMethodError", "UnknownOptionError", "build", "get", "names",
           "register",
           "specs", "table"]
