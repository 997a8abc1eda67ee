"""The FP16 overflow check on the default model (per-layer activation maxima against FP16's range) and its record."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch

from bgeq_utils.analysis import overflow
from tests.factories import fp32, result


def test_overflow_record_is_attached_to_fp16_results_only(tmp_path, monkeypatch):
    monkeypatch.setenv("BGEQ_OUTPUTS", str(tmp_path))
    half, full = result("fp16"), fp32()
    saved = overflow.attach({"verdict": "SAFE"}, [half, full])
    assert len(saved) == 1 and half.extra["fp16_overflow"]["verdict"] == "SAFE" and "fp16_overflow" not in full.extra
    table = pd.DataFrame({"layer": [-1, 0, 0, 1], "site": ["embeddings", "layer", "attention", "layer"],
                          "max_abs": [1.0, 2.0, 3.0, 4.0]})
    by = overflow.by_layer(table)
    assert list(by.index) == [0, 1] and list(by.columns) == ["attention", "layer"]


@pytest.fixture(scope="module")
def few_texts(lee_small):
    return list(lee_small.corpus.values())[:6]


def test_overflow_check_passes_on_the_real_model(reference, few_texts):
    half = copy.deepcopy(reference.model).half()
    table, verdict = overflow.check_fp16_overflow(reference.model, reference.tokenizer, few_texts, half_model=half)
    n_layers = reference.model.config.num_hidden_layers
    assert len(table) == 2 + 9 * n_layers
    assert set(table["site"]) == set(overflow.SITE_ORDER)
    assert (table["max_abs"] > 0).all() and np.isfinite(table["max_abs"]).all()
    assert not table["overflows_fp16"].any() and (table["nan"] == 0).all()
    assert verdict.startswith("SAFE") and "0 of 6 texts non-finite" in verdict
    # the hooks saw the true maximum: the layer output is the last hidden state
    with torch.inference_mode():
        enc = reference.tokenizer(few_texts, padding=True, truncation=True, return_tensors="pt")
        h = reference.model(**enc).last_hidden_state[enc["attention_mask"].bool()]
    last = table[(table.layer == n_layers - 1) & (table.site == "layer")]["max_abs"].item()
    assert last == pytest.approx(float(h.abs().max()), rel=1e-6)


def test_overflow_check_detects_an_injected_overflow(reference, few_texts):
    bad = copy.deepcopy(reference.model)
    with torch.no_grad():
        bad.encoder.layer[2].intermediate.dense.weight *= 3000.0  # FFN of layer 2 now exceeds 65504
    table, verdict = overflow.check_fp16_overflow(bad, reference.tokenizer, few_texts,
                                                  half_model=copy.deepcopy(bad).half())
    flagged = table[table["overflows_fp16"]]
    assert not flagged.empty and (flagged["layer"] == 2).all()
    assert (table[table.layer < 2]["overflows_fp16"] == False).all()  # noqa: E712
    assert verdict.startswith("OVERFLOW") and "layer 2" in verdict
    assert "6 of 6 texts non-finite" in verdict  # the FP16 copy really produces NaN/inf


def test_overflow_at_risk_and_errors(reference, few_texts):
    table = overflow.activation_maxima(reference.model, reference.tokenizer, few_texts[:2])
    assert overflow.verdict(table, risk_factor=1e4).startswith("AT RISK")
    assert overflow.nonfinite(np.array([[1.0, np.nan], [0.0, 1.0], [np.inf, 2.0]])) == \
        {"rows": 3, "nonfinite_rows": 2, "nan": 1, "inf": 1}
    with pytest.raises(ValueError, match="FP32 model's activations"):
        overflow.check_fp16_overflow(copy.deepcopy(reference.model).half(), reference.tokenizer, few_texts)
    with pytest.raises(ValueError, match="no encoder.layer"):
        overflow.activation_maxima(torch.nn.Linear(2, 2), reference.tokenizer, few_texts)
