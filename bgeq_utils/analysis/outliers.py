"""LLM.int8()'s outlier columns: how many input feature columns of each Linear layer exceed a threshold.

LLM.int8() sends an input column through a 16-bit matmul when any of its values in the batch exceeds
``llm_int8_threshold``; forward pre-hooks on the FP32 model measure that share per layer and batch
(padding rows included, as bitsandbytes sees the batch).
"""
from __future__ import annotations

import pandas as pd

QKV = {"attention.self.query": "q/k/v (shared input)", "attention.self.key": "q/k/v (shared input)",
       "attention.self.value": "q/k/v (shared input)"}


def column_shares(model, tokenizer, texts, thresholds, batch_size: int = 32) -> pd.DataFrame:
    """Per Linear layer (pooler aside), batch and threshold: the share of input columns with max |x| above it."""
    import torch
    rows, hooks, state = [], [], {}

    def hook(name):
        def f(mod, args):
            colmax = args[0].detach().float().reshape(-1, args[0].shape[-1]).abs().amax(0)
            for t in thresholds:
                rows.append({"module": name, "threshold": t, "batch": state["batch"],
                             "share": float((colmax > t).float().mean())})
        return f

    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and "pooler" not in name:
            hooks.append(mod.register_forward_pre_hook(hook(name)))
    try:
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                state["batch"] = i // batch_size
                model(**tokenizer(texts[i:i + batch_size], padding=True, truncation=True, return_tensors="pt"))
    finally:
        for h in hooks:
            h.remove()
    df = pd.DataFrame(rows)
    df["layer kind"] = df["module"].str.replace(r"^.*layer\.\d+\.", "", regex=True).replace(QKV)
    return df


def share_table(shares: pd.DataFrame) -> pd.DataFrame:
    """% of input columns above each threshold, by kind of layer (mean over layers and batches)."""
    t = (100 * shares.groupby(["layer kind", "threshold"])["share"].mean()).unstack("threshold")
    t.columns = [f"> {x:g}" for x in t.columns]
    return t
