"""Embedding distillation: fine-tune a student so that its pooled, normalized sentence embeddings
reproduce those of the FP32 teacher on unlabelled texts.

Used by quantization-aware training (methods/qat.py): the student carries fake quantization, the
teacher is the untouched FP32 reference. Nothing here looks at evaluation documents or labels.
"""
from __future__ import annotations

import math
import time

import numpy as np

from bgeq_utils.methods.encoders import FEATURES, pool_torch

LOSSES = ("cosine", "mse")


def check_options(steps, lr, batch_size, max_length, loss, seed) -> None:
    """Reject bad training options with a message that names the problem and the fix."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps={steps!r}: use a whole number >= 0 (0 = no training, plain post-training "
                         "quantization of the same scheme)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: use a whole number >= 1")
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 8:
        raise ValueError(f"max_length={max_length!r}: use a whole number of tokens >= 8")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr={lr!r}: use a positive learning rate such as 1e-5")
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r}: use one of {', '.join(repr(x) for x in LOSSES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}: use a whole number")


def tokenize(tokenizer, texts: list[str], max_length: int) -> dict:
    """Token ids of texts padded to the longest in the list (int64 torch tensors)."""
    import torch
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np",
                    return_token_type_ids=True)
    return {k: torch.from_numpy(enc[k].astype(np.int64)) for k in FEATURES if k in enc}


def pooled(model, feats: dict, pooling: str):
    """Normalized sentence embeddings of a batch (keeps the autograd graph when grads are on)."""
    out = model(**feats)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    return pool_torch(hidden, feats["attention_mask"], pooling)


def embed(model, tokenizer, texts: list[str], pooling: str, max_length: int, device: str = "cpu",
          batch_size: int = 32):
    """Normalized embeddings of texts (no gradients), float32 on the CPU, in the order of texts."""
    import torch
    parts = []
    with torch.inference_mode():
        for s in range(0, len(texts), batch_size):
            feats = {k: v.to(device) for k, v in tokenize(tokenizer, texts[s:s + batch_size], max_length).items()}
            parts.append(pooled(model, feats, pooling).float().cpu())
    return torch.cat(parts) if parts else torch.zeros((0, 0))


def distillation_loss(student_emb, teacher_emb, kind: str):
    """cosine: mean (1 - cos); mse: mean squared difference of the normalized vectors, summed over dims."""
    import torch
    if kind == "cosine":
        return (1.0 - torch.nn.functional.cosine_similarity(student_emb, teacher_emb, dim=1)).mean()
    if kind == "mse":
        # Summed over the dimensions, so its size does not depend on the embedding width
        # (for unit vectors it equals 2 * (1 - cos)).
        return ((student_emb - teacher_emb) ** 2).sum(1).mean()
    raise ValueError(f"loss={kind!r}: use one of {LOSSES}")


def batches(n_texts: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    """Index batches for `steps` steps: epochs of a seeded permutation, batches never cross epochs."""
    rng = np.random.default_rng(seed)
    bs = min(batch_size, n_texts)
    out, order = [], np.array([], dtype=np.int64)
    while len(out) < steps:
        if len(order) < bs:
            order = rng.permutation(n_texts)
        out.append(order[:bs])
        order = order[bs:]
    return out


def distill(student, teacher_emb, tokenizer, texts: list[str], pooling: str, *, steps: int, lr: float,
            batch_size: int, max_length: int, loss: str = "cosine", seed: int = 0, device: str = "cpu",
            trainable=None, progress: bool = False) -> list[dict]:
    """Fine-tune `student` in place for `steps` AdamW steps; returns the curve [{step, loss}, ...].

    teacher_emb: (len(texts), dim) normalized teacher embeddings of `texts` (torch tensor).
    trainable: parameters to update (default: every parameter of the student that requires grad).
    Dropout stays off (the student runs in eval mode): the target is the teacher's deterministic
    inference output, and a fixed seed gives the same curve and weights on the same machine.
    """
    import torch
    check_options(steps, lr, batch_size, max_length, loss, seed)
    if len(texts) == 0:
        raise ValueError("no training texts: pass calibration texts (data.calibration_texts(n))")
    if steps == 0:
        return []
    torch.manual_seed(int(seed))
    params = [p for p in (trainable if trainable is not None else student.parameters()) if p.requires_grad]
    if not params:
        raise ValueError("the student has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=float(lr), weight_decay=0.0)
    # Linear warm-up over the first 10% of the steps, then constant: short runs stay stable.
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warm))
    teacher_emb = teacher_emb.to(device)
    student.eval()
    curve = []
    it = batches(len(texts), batch_size, steps, seed)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="distill", leave=False)
    t0 = time.perf_counter()
    for step, idx in enumerate(it, 1):
        feats = {k: v.to(device) for k, v in tokenize(tokenizer, [texts[i] for i in idx], max_length).items()}
        with torch.enable_grad():
            emb = pooled(student, feats, pooling)
            value = distillation_loss(emb, teacher_emb[torch.as_tensor(idx)], loss)
            opt.zero_grad(set_to_none=True)
            value.backward()
        opt.step()
        sched.step()
        curve.append({"step": step, "loss": float(value.detach()), "seconds": time.perf_counter() - t0})
    opt.zero_grad(set_to_none=True)
    for p in student.parameters():
        p.requires_grad_(False)
    return curve


def curve_trend(curve: list[dict], part: float = 1 / 3) -> tuple[float, float]:
    """(mean loss over the first `part` of the steps, mean over the last `part`)."""
    losses = [c["loss"] for c in curve]
    if not losses:
        return float("nan"), float("nan")
    k = max(1, int(len(losses) * part))
    return float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
