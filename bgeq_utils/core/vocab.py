"""The project's vocabulary, defined once: precisions, devices, runtimes, capabilities."""
from __future__ import annotations

#: display order of precisions
PRECISIONS = ("fp32", "bf16", "fp16", "fp8", "int8", "int4", "nf4", "fp4")
FOUR_BIT = ("int4", "nf4", "fp4")
#: the largest finite FP16 value: activations beyond it overflow to inf
FP16_MAX = 65504.0
NOMINAL_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "int8": 8, "int4": 4, "nf4": 4, "fp4": 4}


def compute_precision(precision: str) -> str:
    """The arithmetic a precision's matrix products run in: 4-bit weights are dequantized to floating point."""
    return "fp32" if precision in FOUR_BIT else precision
#: what became of a measurement: measured, not attempted here (with why), or broken (with the error)
OK, SKIPPED, FAILED = "ok", "skipped", "failed"
STATUSES = (OK, SKIPPED, FAILED)
#: the quality metrics, defined once: retrieval (means over judged queries), similarity (correlations with
#: human scores over pairs), the headline set whose worst loss is a method's quality loss, and the guide's
#: "retrieval performance (R@10, MRR)"
RETRIEVAL_KEYS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
SIMILARITY_KEYS = ("pearson", "spearman")
QUALITY_KEYS = RETRIEVAL_KEYS + SIMILARITY_KEYS
HEADLINE_KEYS = ("ndcg@10", "recall@10", "mrr@10", "spearman")
RETRIEVAL_DEGRADATION_KEYS = ("recall@10", "mrr@10")
#: the one way a Result says it has no quality: a note "<why>: quality is not applicable" (the comparison reads it)
QUALITY_NOT_APPLICABLE = "quality is not applicable"
#: below this lowest cosine between a text embedded alone and in a batch, a method is flagged as batch-dependent
INVARIANCE_FLAG = 0.999
#: the speed cell (batch, tokens) the comparison reads unless told otherwise: `make run`'s, where every default
#: method is timed in one window (a group timed on another grid is read at its nearest cell, which its rows name)
COMPARISON_CELL = (8, 128)
#: the extra of bgeq that installs a backend's top-level module (make setup installs every extra)
EXTRAS = {"openvino": "openvino", "nncf": "openvino", "ctranslate2": "ct2", "bitsandbytes": "bnb", "accelerate": "bnb",
          "torchao": "torchao", "optimum": "quanto", "faiss": "faiss", "dask": "dask", "distributed": "dask"}


def install_hint(module: str) -> str:
    """How to install the library that provides ``module``: its bgeq extra where it has one."""
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    return f"pip install -e '.[{extra}]' (make setup installs every extra)" if extra else f"pip install {top}"


#: what a method may need besides packages
CAPABILITIES = ("calibration", "training")
DEVICE_KINDS = ("cpu", "cuda")

#: what executes a method's graph; each runtime's own FP32 is the fair baseline for what quantization adds
RUNTIMES = ("torch", "inductor", "onnxruntime", "openvino", "ct2")
EAGER_BASELINE = "fp32"
RUNTIME_BASELINE = {"torch": "fp32", "inductor": "fp32-inductor", "onnxruntime": "fp32-onnx",
                    "openvino": "fp32-openvino", "ct2": "fp32-ct2"}
LIBRARY_RUNTIME = {"onnxruntime": "onnxruntime", "openvino": "openvino", "ctranslate2": "ct2"}
#: modules each library's methods import (a fresh process imports them before its memory baseline)
LIBRARY_IMPORTS = {
    "torch": ("torch", "transformers"),
    "sentence-transformers": ("torch", "transformers", "sentence_transformers"),
    "onnxruntime": ("torch", "transformers", "onnx", "onnxruntime", "onnxruntime.quantization"),
    "openvino": ("torch", "transformers", "onnx", "onnxruntime", "openvino", "nncf"),
    "bitsandbytes": ("torch", "transformers", "bitsandbytes", "accelerate"),
    "torchao": ("torch", "transformers", "torchao", "torchao.quantization"),
    "optimum-quanto": ("torch", "transformers", "optimum.quanto"),
    "ctranslate2": ("torch", "transformers", "ctranslate2"),
}


def device_kind(device: str | None) -> str:
    """'cuda' for any CUDA device string ('cuda', 'cuda:1'), else 'cpu'."""
    return "cuda" if str(device or "cpu").startswith("cuda") else "cpu"


def precision_rank(p: str) -> tuple:
    return (PRECISIONS.index(p), p) if p in PRECISIONS else (len(PRECISIONS), p)
