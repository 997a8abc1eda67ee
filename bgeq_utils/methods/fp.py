"""Floating-point methods: the FP32 reference itself (FP16/BF16 join it here)."""
from __future__ import annotations

import copy

from ..encoders import TorchEncoder
from .registry import register


@register("fp32", precision="fp32", library="torch", summary="FP32 reference, PyTorch eager")
def fp32(reference, device="cpu", calibration=None, **_):
    """The reference model as loaded: every other method is compared against it."""
    model = reference.model if str(next(reference.model.parameters()).device) == str(device) \
        else copy.deepcopy(reference.model).to(device)
    return TorchEncoder(reference, model, device=device)
