"""Loaded for unit tests and nbval alike: outputs go to a temporary folder, never the user's outputs/."""
import os
import tempfile

os.environ.setdefault("BGEQ_OUTPUTS", tempfile.mkdtemp(prefix="bgeq-test-outputs-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
