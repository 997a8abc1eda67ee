"""Methods, end to end: build -> evaluate -> time side by side -> Result (never crashes the run).

The names a notebook and the command line use, in one place. What each holds:

- :mod:`.config`: the bench configuration (what is measured, for how long) and the words a Result uses.
- :mod:`.evaluation`: embedding a data set, its quality and fidelity, the FP32 reference embeddings.
- :mod:`.identity`: a configuration's label and key, and the empty Result a measurement fills.
- :mod:`.baselines`: the FP32 baselines each method is timed beside.
- :mod:`.jobs`: ``run_method`` / ``run_methods`` (several timed together in one window), ``measure_or_reuse``.
- :mod:`.study`: ``study()`` and :class:`Study`, what a method notebook measures against; parameter checks.

A Result's key hashes every setting that changes a figure, so a notebook never reuses a figure taken under
other settings and never overwrites another configuration's Result.
"""
from bgeq_utils.measure.baselines import BASELINE_NAMES, baseline_encoder, baselines_for, release_baselines
from bgeq_utils.measure.config import (
    DEFAULT_CALIBRATION,
    QUALITY_NOT_APPLICABLE,
    WINDOW_COMPARISON,
    WINDOW_NOTEBOOK,
    BenchConfig,
)
from bgeq_utils.measure.evaluation import embed_evalset, embeddings_file, fidelity, quality, reference_embeddings
from bgeq_utils.measure.identity import (
    calibration_id,
    check_methods,
    compute_precision,
    configurations_of,
    dataset_id,
    is_default,
    machine_of,
    new_result,
    quality_not_applicable,
    settings_of,
    speed_texts,
    token_lengths,
    variant_label,
)
from bgeq_utils.measure.jobs import (
    Job,
    build_configurations,
    measure_corpus,
    measure_or_reuse,
    reusable,
    run_method,
    run_methods,
    skipped,
    window_key,
)
from bgeq_utils.measure.study import Study, check_choices, check_counts, check_numbers, side_by_side, study

__all__ = [
    "BASELINE_NAMES", "DEFAULT_CALIBRATION", "QUALITY_NOT_APPLICABLE", "WINDOW_COMPARISON", "WINDOW_NOTEBOOK",
    "BenchConfig", "Job", "Study", "baseline_encoder", "baselines_for", "build_configurations", "calibration_id",
    "check_choices", "check_counts", "check_methods", "check_numbers", "compute_precision", "configurations_of",
    "dataset_id", "embed_evalset", "embeddings_file", "fidelity", "is_default", "machine_of", "measure_corpus",
    "measure_or_reuse", "new_result", "quality", "quality_not_applicable", "reference_embeddings",
    "release_baselines", "reusable", "run_method", "run_methods", "settings_of", "side_by_side", "skipped",
    "speed_texts", "study", "token_lengths", "variant_label", "window_key",
]
