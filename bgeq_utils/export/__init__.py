"""Export: the chosen method's model as a folder its own library loads, verified against what was measured.

``export(method, ...)`` builds the method as bgeq measured it, writes it in the form its ecosystem loads
natively (an ONNX or OpenVINO sentence-transformers folder, transformers' bitsandbytes checkpoint, PyTorch
weights, or FP32 weights with a load-time recipe script), reloads it in a fresh process with that library
alone, and keeps it only if it reproduces bgeq's encoder (cosine >= 0.9999, mean and worst text). The folder's
README.md is its model card.
"""
from bgeq_utils.export.exporter import (
    ExportExistsError,
    ExportReport,
    ExportVerificationError,
    default_out_dir,
    export,
    read_manifest,
)
from bgeq_utils.export.formats import NOT_EXPORTABLE, ExportError, check_exportable
from bgeq_utils.export.verify import MIN_COSINE

__all__ = ["ExportError", "ExportExistsError", "ExportReport", "ExportVerificationError", "MIN_COSINE",
           "NOT_EXPORTABLE", "check_exportable", "default_out_dir", "export", "read_manifest"]
