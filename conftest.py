"""Loaded for unit tests and nbval alike: outputs go to a temporary folder, never the user's outputs/; values
the replayed notebooks record go to a file the notebook-values check reads (tests/check_notebook_values.py)."""
import os
import tempfile

os.environ.setdefault("BGEQ_OUTPUTS", tempfile.mkdtemp(prefix="bgeq-test-outputs-"))
os.environ.setdefault("BGEQ_RECORDED", os.path.join(os.environ["BGEQ_OUTPUTS"], "recorded-values.jsonl"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
