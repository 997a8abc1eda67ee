"""bgeq: measured evidence for choosing the precision of a sentence-embedding model."""
import logging as _logging
import os as _os

__version__ = "0.1.0"

# Third-party import-time chatter (optional CUDA kernels of torchao missing on CPU, deprecation notes)
# would otherwise fill every notebook's first cell; real errors still surface.
for _name in ("torchao", "torch.utils._pytree", "transformers.modeling_utils"):
    _logging.getLogger(_name).setLevel(_logging.ERROR)
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
try:  # our own progress bars are enough; keep transformers' per-file bars out of rendered notebooks
    from transformers.utils import logging as _tlog
    _tlog.disable_progress_bar()
    _tlog.set_verbosity_error()
    from huggingface_hub.utils import disable_progress_bars as _hf_quiet
    _hf_quiet()
except Exception:  # pragma: no cover - transformers missing is reported where it is needed
    pass
