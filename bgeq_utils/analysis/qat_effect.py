"""What quantization-aware training changed: the trained INT8 model against post-training INT8 of the same
scheme (``steps=0``), both read from the measured table with their intervals."""
from __future__ import annotations

import pandas as pd

from bgeq_utils.core import vocab
from bgeq_utils.core.uncertainty import Estimate, ratio_of
from bgeq_utils.core.uncertainty import from_row as estimate

TRAINING_FIGURES = {
    "loss_first_third": "loss, mean of the first third of the steps",
    "loss_last_third": "loss, mean of the last third of the steps",
    "train_cos_fake_before": "training texts: cos to FP32, fake-quantized, before training",
    "train_cos_fake_after": "training texts: cos to FP32, fake-quantized, after training",
    "train_cos_int8": "training texts: cos to FP32, converted INT8 (trained)",
}


def training_figures(qat, ptq) -> pd.Series | None:
    """The figures the training run recorded (``extra``), beside the untrained model's agreement."""
    if not qat.ok or not qat.extra.get("curve"):
        return None
    out = {label: qat.extra.get(k) for k, label in TRAINING_FIGURES.items()}
    out["training texts: cos to FP32, converted INT8 (steps=0)"] = ptq.extra.get("train_cos_int8")
    return pd.Series(out, name="value").round(5)


def training_effect(m, qat, ptq, metrics=vocab.HEADLINE_KEYS) -> str:
    """Markdown: the share of the post-training fidelity error training kept, with its interval and whether
    the intervals separate the two, and each quality metric's loss for both with its p-value."""
    if not qat.ok or not ptq.ok:
        return f"no comparison: int8-qat {qat.status} ({qat.reason}); steps=0 {ptq.status} ({ptq.reason})"
    rows = {r["label"]: r for _, r in m.table.iterrows()}
    q, p = rows[qat.label], rows[ptq.label]
    eq, ep = estimate(q, "cos_mean"), estimate(p, "cos_mean")
    err_q = Estimate(1 - eq.value, 1 - eq.high if eq.has_interval else None, 1 - eq.low if eq.has_interval else None)
    err_p = Estimate(1 - ep.value, 1 - ep.high if ep.has_interval else None, 1 - ep.low if ep.has_interval else None)
    kept = ratio_of(err_q, err_p)
    separated = "separated" if kept.has_interval and kept.high < 1 else "not separated"
    lines = [f"- fidelity error (1 - mean cos) on the evaluation texts: QAT {err_q.fmt(5)} vs post-training "
             f"{err_p.fmt(5)}; QAT keeps {kept.fmt(2)} of the post-training error ({separated} at 95%)"]
    for k in metrics:
        a, b = estimate(q, f"loss:{k}"), estimate(p, f"loss:{k}")
        if a is not None and b is not None:
            pa = f" (p = {a.p_value:.3g})" if a.p_value is not None else ""
            pb = f" (p = {b.p_value:.3g})" if b.p_value is not None else ""
            lines.append(f"- {k} loss in % of FP32: QAT {a.fmt(2)}{pa} vs post-training {b.fmt(2)}{pb}")
    return "\n".join(lines)
