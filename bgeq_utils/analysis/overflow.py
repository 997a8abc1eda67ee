"""FP16 overflow check: does any activation of the FP32 model leave FP16's range (|x| <= 65504)?

Forward hooks record the largest absolute value at each site of every encoder layer over a set of
texts: the attention block (self-attention context, its output projection, the residual sum that
enters its LayerNorm, its output), the feed-forward block (intermediate projection before and after
the activation, output projection, residual sum before LayerNorm) and the layer output, plus the
embeddings. A site whose maximum reaches 65504 overflows to inf in FP16; one within a factor
``risk_factor`` of it is at risk on other inputs. Separately, ``nonfinite`` counts NaN/inf in a
model's outputs (run the FP16 model itself to see what actually happens).

Attention scores (QK^T) are computed inside the fused scaled-dot-product kernel and cannot be hooked;
FP16 attention kernels accumulate them in FP32.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from bgeq_utils.core import results as results_mod
from bgeq_utils.core import vocab

FP16_MAX = vocab.FP16_MAX

# (path inside one encoder layer, "in" = the module's first input / "out" = its output, site label)
LAYER_SITES = (
    ("attention.self", "out", "attention.self"),
    ("attention.output.dense", "out", "attention.output.dense"),
    ("attention.output.LayerNorm", "in", "attention.pre_norm"),
    ("attention", "out", "attention"),
    ("intermediate.dense", "out", "intermediate.dense"),
    ("intermediate", "out", "intermediate"),
    ("output.dense", "out", "output.dense"),
    ("output.LayerNorm", "in", "output.pre_norm"),
    ("", "out", "layer"),
)
EMBEDDING_SITES = (("LayerNorm", "in", "embeddings.pre_norm"), ("", "out", "embeddings"))
SITE_ORDER = [s for _, _, s in EMBEDDING_SITES] + [s for _, _, s in LAYER_SITES]


def _first_tensor(x):
    import torch
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for y in x:
            t = _first_tensor(y)
            if t is not None:
                return t
    if hasattr(x, "last_hidden_state"):
        return x.last_hidden_state
    return None


def _encoder_layers(model):
    for path in ("encoder.layer", "model.encoder.layer", "bert.encoder.layer", "roberta.encoder.layer"):
        obj = model
        try:
            for p in path.split("."):
                obj = getattr(obj, p)
        except AttributeError:
            continue
        return obj, path
    raise ValueError(f"{type(model).__name__} has no encoder.layer list: the overflow check knows BERT-like "
                     "encoders (BERT, RoBERTa, XLM-R, MiniLM, BGE); pass such a model")


def _sub(module, path):
    obj = module
    for p in filter(None, path.split(".")):
        obj = getattr(obj, p, None)
        if obj is None:
            return None
    return obj


def _features(tokenizer, texts, max_length, device):
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def activation_maxima(model, tokenizer, texts, batch_size: int = 16, max_length: int | None = None) -> pd.DataFrame:
    """Largest |activation| per layer and site over ``texts`` (padding positions excluded).

    Works for a model in any dtype: an FP16 model that overflows shows ``inf`` (or NaN) there.
    """
    import torch

    texts = list(texts)
    if not texts:
        raise ValueError("activation_maxima needs at least one text")
    layers, layers_path = _encoder_layers(model)
    device = next(model.parameters()).device
    max_length = max_length or min(getattr(tokenizer, "model_max_length", 512) or 512, 512)
    stats: dict[tuple, dict] = {}
    mask_holder: dict = {}
    hooks = []

    def record(key, t):
        if t is None or not torch.is_tensor(t) or not t.is_floating_point():
            return
        x = t.detach()
        m = mask_holder.get("mask")
        if m is not None and x.dim() == 3 and x.shape[:2] == m.shape:
            x = x[m.bool()]  # real tokens only: padding rows carry no meaning
        if x.numel() == 0:
            return
        xf = x.float()
        s = stats.setdefault(key, {"max_abs": 0.0, "nan": 0, "inf": 0})
        finite = torch.isfinite(xf)
        s["nan"] += int(torch.isnan(xf).sum())
        s["inf"] += int(torch.isinf(xf).sum())
        s["max_abs"] = max(s["max_abs"], float("inf") if s["inf"] else
                           float(xf[finite].abs().max()) if finite.any() else float("nan"))

    def make_hook(key, where):
        if where == "in":
            return lambda mod, args: record(key, _first_tensor(args))
        return lambda mod, args, out: record(key, _first_tensor(out))

    def attach(root, prefix, layer_idx, sites):
        for path, where, site in sites:
            mod = _sub(root, path)
            if mod is None:
                continue
            key = (layer_idx, site, f"{prefix}.{path}".rstrip("."))
            if where == "in":
                hooks.append(mod.register_forward_pre_hook(make_hook(key, "in")))
            else:
                hooks.append(mod.register_forward_hook(make_hook(key, "out")))

    emb = getattr(model, "embeddings", None)
    if emb is not None:
        attach(emb, "embeddings", -1, EMBEDDING_SITES)
    for i, layer in enumerate(layers):
        attach(layer, f"{layers_path}.{i}", i, LAYER_SITES)
    try:
        with torch.inference_mode():
            for s in range(0, len(texts), batch_size):
                feats = _features(tokenizer, texts[s:s + batch_size], max_length, device)
                mask_holder["mask"] = feats["attention_mask"]
                model(**feats)
    finally:
        for h in hooks:
            h.remove()
    rows = [{"layer": k[0], "site": k[1], "module": k[2], **v} for k, v in stats.items()]
    df = pd.DataFrame(rows)
    df["site"] = pd.Categorical(df["site"], categories=SITE_ORDER, ordered=True)
    df = df.sort_values(["layer", "site"]).reset_index(drop=True)
    df["site"] = df["site"].astype(str)
    df["share_of_fp16_max"] = df["max_abs"] / FP16_MAX
    df["headroom_x"] = FP16_MAX / df["max_abs"].where(df["max_abs"] > 0)
    return df


def nonfinite(outputs) -> dict:
    """NaN/inf in a model's outputs: an (n, ...) array or tensor; rows are texts."""
    import torch
    if torch.is_tensor(outputs):
        outputs = outputs.detach().float().cpu().numpy()
    a = np.asarray(outputs, dtype=np.float64)
    if a.ndim == 0:
        raise ValueError("nonfinite expects an array of model outputs with one row per text, got a scalar")
    rows = a.reshape(len(a), -1)
    bad = ~np.isfinite(rows)
    return {"rows": int(len(rows)), "nonfinite_rows": int(bad.any(axis=1).sum()),
            "nan": int(np.isnan(rows).sum()), "inf": int(np.isinf(rows).sum())}


def model_outputs_nonfinite(model, tokenizer, texts, batch_size: int = 16, max_length: int | None = None) -> dict:
    """Run ``model`` (e.g. the FP16 copy) on texts; count texts whose last hidden states (real tokens) hold NaN/inf."""
    import torch
    device = next(model.parameters()).device
    max_length = max_length or min(getattr(tokenizer, "model_max_length", 512) or 512, 512)
    total = {"rows": 0, "nonfinite_rows": 0, "nan": 0, "inf": 0}
    texts = list(texts)
    with torch.inference_mode():
        for s in range(0, len(texts), batch_size):
            feats = _features(tokenizer, texts[s:s + batch_size], max_length, device)
            out = model(**feats)
            h = _first_tensor(out).float() * feats["attention_mask"].unsqueeze(-1)  # padding rows -> 0
            for k, v in nonfinite(h).items():
                total[k] += v
    return total


def verdict(table: pd.DataFrame, outputs: dict | None = None, risk_factor: float = 10.0,
            limit: float = FP16_MAX, name: str = "FP16") -> str:
    """One sentence: safe / at risk / overflows, with the worst site and, if given, the FP16 run's outputs."""
    if table.empty:
        raise ValueError("verdict needs a non-empty table from activation_maxima")
    finite = table[np.isfinite(table["max_abs"])]
    nonfin = table[~np.isfinite(table["max_abs"]) | (table["nan"] > 0) | (table["inf"] > 0)]
    worst = (finite if not finite.empty else table).sort_values("max_abs", ascending=False).iloc[0]
    where = f"layer {int(worst['layer'])} {worst['site']}" if worst["layer"] >= 0 else str(worst["site"])
    over = table[(table["max_abs"] >= limit) | ~np.isfinite(table["max_abs"])]
    out_txt = ""
    if outputs is not None:
        out_txt = (f"; {name} outputs: {outputs['nonfinite_rows']} of {outputs['rows']} texts non-finite "
                   f"({outputs['nan']} NaN, {outputs['inf']} inf)")
    bad_outputs = outputs is not None and outputs["nonfinite_rows"] > 0
    if not over.empty or not nonfin.empty or bad_outputs:
        n = len(set(over.index) | set(nonfin.index))
        if n == 0:
            return (f"OVERFLOW: every activation of the FP32 model is within {name}'s limit {limit:g} (largest "
                    f"{worst['max_abs']:.4g} at {where}) but the {name} run is not finite{out_txt}.")
        first = table.loc[sorted(set(over.index) | set(nonfin.index))[0]]
        fw = f"layer {int(first['layer'])} {first['site']}" if first["layer"] >= 0 else str(first["site"])
        return (f"OVERFLOW: {n} site(s) reach {name}'s limit {limit:g} or are non-finite, first at "
                f"{fw} (max |x| {first['max_abs']:.4g}){out_txt}. Run this model in BF16 or FP32, or keep the "
                f"overflowing blocks in FP32.")
    m = float(worst["max_abs"])
    if m * risk_factor >= limit:
        return (f"AT RISK: largest activation {m:.4g} at {where} is within {risk_factor:g}x of {name}'s limit "
                f"{limit:g} (headroom {limit / m:.1f}x){out_txt}. Other inputs may overflow: check with the "
                f"texts you serve.")
    return (f"SAFE: largest activation {m:.4g} at {where}, {100 * m / limit:.2g}% of {name}'s limit {limit:g} "
            f"(headroom {limit / m:.0f}x){out_txt}.")


def check_fp16_overflow(model, tokenizer, texts, half_model=None, batch_size: int = 16,
                        max_length: int | None = None, risk_factor: float = 10.0) -> tuple[pd.DataFrame, str]:
    """Per-site maxima of the FP32 ``model`` against FP16's 65504, and (if ``half_model`` is given, e.g.
    the FP16 copy) NaN/inf in that model's outputs. Returns (table, verdict)."""
    import torch
    p = next(model.parameters())
    if p.dtype != torch.float32:
        raise ValueError(f"check_fp16_overflow measures the FP32 model's activations; got a {p.dtype} model. "
                         "Pass the reference (reference.model) as model and the FP16 copy as half_model.")
    table = activation_maxima(model, tokenizer, texts, batch_size=batch_size, max_length=max_length)
    table["overflows_fp16"] = table["max_abs"] >= FP16_MAX
    outputs = None
    if half_model is not None:
        outputs = model_outputs_nonfinite(half_model, tokenizer, texts, batch_size=batch_size, max_length=max_length)
    return table, verdict(table, outputs, risk_factor=risk_factor)


def study_check(reference, evalset, n_texts: int | None = 16, risk_factor: float = 10.0, device: str = "cpu"):
    """The check as notebook 02 runs it: the longest ``n_texts`` documents of the data, FP32 activations on the
    CPU, the FP16 model's outputs on ``device``. Returns (site table, verdict, a record for the FP16 Result)."""
    import copy
    texts = sorted(evalset.corpus.values(), key=len, reverse=True)
    texts = texts[:n_texts] if n_texts else texts
    half = copy.deepcopy(reference.model).half().to(device)
    table, text = check_fp16_overflow(reference.model, reference.tokenizer, texts, half_model=half,
                                      risk_factor=risk_factor, max_length=reference.max_seq_length)
    del half
    worst = table.sort_values("max_abs", ascending=False).iloc[0]
    record = {"verdict": text, "texts": len(texts), "max_abs": float(worst["max_abs"]),
              "max_site": f"layer {int(worst['layer'])} {worst['site']}", "fp16_max": FP16_MAX,
              "overflowing_sites": int(table["overflows_fp16"].sum()), "outputs_checked_on": device}
    return table, text, record


def attach(record: dict, results) -> list:
    """Store the check with every FP16 Result (``extra.fp16_overflow``) so the comparison can cite it."""
    out = []
    for r in results:
        if r.method == "fp16" and r.ok:
            r.extra["fp16_overflow"] = record
            out.append(results_mod.save(r))
    return out


def by_layer(table: pd.DataFrame) -> pd.DataFrame:
    """Largest |activation| per encoder layer (rows) and site (columns, in forward order)."""
    layers = table[table["layer"] >= 0]
    pivot = layers.pivot(index="layer", columns="site", values="max_abs")
    return pivot[[s for s in SITE_ORDER if s in pivot.columns]]
