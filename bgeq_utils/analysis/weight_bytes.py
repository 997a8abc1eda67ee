"""Where the bytes of a quantized model are: measured bits per parameter against the nominal bits.

Every 4-bit format adds scales (and zero points) and keeps some layers in floating point; some store 4-bit
values in 8-bit containers. These functions read what each method's encoder reported (``Result.extra``).
"""
from __future__ import annotations

import pandas as pd

from bgeq_utils import methods


def linear_bits(r, n_linear: int) -> float | None:
    """Bits per weight of the quantized Linear layers, scales included, where the method reports it."""
    x = r.extra or {}
    if x.get("bits_per_weight_effective") is not None:
        return x["bits_per_weight_effective"]
    b = x.get("bytes") or {}
    if "quantized_weights" in b and not x.get("linear_layers_kept"):   # bitsandbytes
        return 8 * (b["quantized_weights"] + b.get("quantization_constants", 0)) / n_linear
    return None


def where(r) -> str:
    """A short account of where a method's bytes are."""
    x = r.extra or {}
    if "storage_note" in x:
        emb = "embedding tables in 4 bits" if x.get("embeddings_quantized") else "embedding tables and LayerNorm FP32"
        return f"{x['storage_note']}; {emb}"
    if "weight_bytes_by_type" in x:
        return "ONNX initializers: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in x["weight_bytes_by_type"].items())
    if isinstance(x.get("bytes"), dict):
        parts = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in x["bytes"].items() if isinstance(v, (int, float)))
        return parts + ("; " + x["note"] if x.get("note") else "")
    return ""


def float_share(r) -> float | None:
    """The share of the weight bytes still in floating point."""
    x = r.extra or {}
    if x.get("float_share_of_param_bytes") is not None:
        return x["float_share_of_param_bytes"]
    b = x.get("bytes") or {}
    if "higher_precision" in b and r.size.get("param_bytes"):
        return b["higher_precision"] / r.size["param_bytes"]
    return None


def linear_weight_count(model) -> int:
    import torch
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def bytes_table(results, reference) -> pd.DataFrame:
    """Per ok Result: nominal bits and MB, measured MB in memory and on disk, bits per parameter and per
    Linear weight, the floating-point share, and where the bytes are."""
    n_params, n_linear = reference.num_parameters, linear_weight_count(reference.model)
    rows = []
    for r in results:
        if not r.ok:
            continue
        bits = methods.get(r.method).weight_bits
        pb, disk = r.size.get("param_bytes"), r.size.get("disk_bytes")
        rows.append({"method": r.label, "nominal bits": bits, "nominal MB": n_params * bits / 8 / 1e6,
                     "param MB": pb / 1e6 if pb else None, "disk MB": disk / 1e6 if disk else None,
                     "param / nominal": pb / (n_params * bits / 8) if pb else None,
                     "bits/param": 8 * pb / n_params if pb else None, "Linear bits/weight": linear_bits(r, n_linear),
                     "FP share": float_share(r), "where the bytes are": where(r)})
    return pd.DataFrame(rows).set_index("method") if rows else pd.DataFrame()


def points(results, reference) -> pd.DataFrame:
    """Per ok Result: measured bits per parameter, block (group) size, fidelity and nDCG@10, for plotting."""
    rows = []
    for r in results:
        if not r.ok or not r.size.get("param_bytes"):
            continue
        o = {**methods.get(r.method).option_defaults(), **(r.options or {})}
        rows.append({"label": r.label, "method": r.method + (" + 4-bit embeddings" if o.get("embeddings") else ""),
                     "bits/param": 8 * r.size["param_bytes"] / reference.num_parameters,
                     "block size": o.get("group_size", o.get("block_size", 64 if r.method.endswith("-bnb") else None)),
                     "cos mean": r.fidelity.get("cos_mean"), "ndcg@10": (r.quality or {}).get("ndcg@10")})
    return pd.DataFrame(rows)
