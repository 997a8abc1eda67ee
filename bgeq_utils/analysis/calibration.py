"""How many calibration texts are enough: a static method's fidelity and quality loss by calibration size."""
from __future__ import annotations

import pandas as pd

from bgeq_utils import methods

COLUMNS = ["cos_mean", "cos_mean_lo", "cos_mean_hi", "quality_loss_pct", "quality_loss_pct_lo", "quality_loss_pct_hi"]


def sweep_table(m, results) -> pd.DataFrame:
    """One row per Result of a calibration sweep: its calibration method (its ``calibrate_method`` option, the
    method's default where unchanged) and number of texts, with fidelity and headline quality loss and their
    intervals from the measured table ``m``."""
    rows = []
    for r in results:
        defaults = methods.get(r.method).option_defaults()
        rows.append({"calibration method": (r.options or {}).get("calibrate_method", defaults.get("calibrate_method")),
                     "calibration texts": r.settings.get("calibration"), "label": r.label})
    base = pd.DataFrame(rows)
    if base.empty:
        return base
    cols = [c for c in COLUMNS if c in m.table]
    return base.merge(m.table[["label", *cols]].drop_duplicates("label"), on="label", how="left")
