"""The method registry. Adding a method = one function with ``@register`` in a module listed here."""
from .registry import (MethodSpec, MethodUnavailable, UnknownMethodError, build, get, names, register,
                       specs, table)

# Importing a module registers its methods; order here is the order tables show them in.
from . import fp  # noqa: E402,F401

__all__ = ["MethodSpec", "MethodUnavailable", "UnknownMethodError", "build", "get", "names", "register",
           "specs", "table"]
