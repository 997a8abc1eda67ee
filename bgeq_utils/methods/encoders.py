"""The one interface every backend implements: texts in, normalized float32 embeddings out.

Tokenization and pooling live here, once, so that a PyTorch, ONNX Runtime or bitsandbytes backend
only has to turn token ids into hidden states; metrics and benchmarks see nothing else.
"""
from __future__ import annotations

import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from bgeq_utils.core import vocab

FEATURES = ("input_ids", "attention_mask", "token_type_ids")


def dir_bytes(path: str | Path) -> int:
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def pool_numpy(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    hidden = hidden.astype(np.float32, copy=False)
    if mode == "cls":
        emb = hidden[:, 0]
    else:
        m = mask[..., None].astype(np.float32)
        emb = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return emb / np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)


def pool_torch(hidden, mask, mode: str):
    import torch
    hidden = hidden.float()
    if mode == "cls":
        emb = hidden[:, 0]
    else:
        m = mask.unsqueeze(-1).to(hidden.dtype)
        emb = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(emb, p=2, dim=1)


def graph_feeds(input_names, features: dict, what: str = "the model") -> dict:
    """Inputs of an exported graph from tokenizer features (graphs exported without token types get zeros)."""
    feeds = {}
    for name in input_names:
        if name in features:
            feeds[name] = features[name]
        elif name == "token_type_ids":
            feeds[name] = np.zeros_like(features["input_ids"])
        else:
            raise KeyError(f"{what} needs input {name!r}, which the tokenizer did not produce")
    return feeds


class Encoder(ABC):
    """Turns texts into an (n, dim) float32 array of L2-normalized embeddings."""

    #: registry name of the method that built it, set by methods.build
    method: str = "?"

    def __init__(self, reference, device: str = "cpu"):
        self.tokenizer = reference.tokenizer
        self.pooling = reference.pooling
        self.max_seq_length = reference.max_seq_length
        self.dim = reference.dim
        self.device = device
        self.reference_folder = reference.folder

    # --- what a backend implements -------------------------------------------------------------
    @abstractmethod
    def embed_features(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Token ids (int64 numpy arrays) -> normalized float32 embeddings."""

    @abstractmethod
    def save(self, folder: str | Path) -> Path:
        """Serialize what a deployment would ship (weights + graph), to measure size on disk."""

    def param_bytes(self) -> int:
        """Bytes held by weights in memory (packed/quantized storage as actually allocated)."""
        raise NotImplementedError

    # --- shared behaviour ----------------------------------------------------------------------
    def tokenize(self, texts: list[str], max_length: int | None = None, pad_to_max: bool = False) -> dict:
        max_length = min(max_length or self.max_seq_length, self.max_seq_length)
        enc = self.tokenizer(list(texts), padding="max_length" if pad_to_max else True, truncation=True,
                             max_length=max_length, return_tensors="np", return_token_type_ids=True)
        return {k: enc[k].astype(np.int64) for k in FEATURES if k in enc}

    def encode(self, texts: list[str], batch_size: int = 32, prompt: str | None = None,
               max_length: int | None = None, progress: bool = False) -> np.ndarray:
        texts = [(prompt or "") + t for t in texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # Longest first, as sentence-transformers does: less padding, same embeddings.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), np.float32)
        starts = range(0, len(texts), batch_size)
        if progress:
            from tqdm.auto import tqdm
            starts = tqdm(starts, desc=f"encode {self.method}", leave=False)
        for s in starts:
            idx = order[s:s + batch_size]
            out[idx] = self.embed_features(self.tokenize([texts[i] for i in idx], max_length))
        return out

    def size_on_disk(self) -> int:
        tmp = Path(tempfile.mkdtemp(prefix="bgeq-size-"))
        try:
            return dir_bytes(self.save(tmp / "model"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def close(self) -> None:
        """Free what the backend holds (GPU memory, sessions)."""


class TorchEncoder(Encoder):
    """A PyTorch module returning ``last_hidden_state`` (plain, quantized or half precision)."""

    def __init__(self, reference, model, device: str = "cpu", autocast_dtype=None):
        super().__init__(reference, device)
        self.model = model
        self.autocast_dtype = autocast_dtype

    def _forward(self, features):
        import torch
        feats = {k: torch.from_numpy(v).to(self.device) for k, v in features.items()}
        with torch.inference_mode():
            if self.autocast_dtype is not None:
                dev = vocab.device_kind(self.device)
                with torch.autocast(dev, dtype=self.autocast_dtype):
                    out = self.model(**feats)
            else:
                out = self.model(**feats)
            hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            return pool_torch(hidden, feats["attention_mask"], self.pooling)

    def embed_features(self, features):
        return self._forward(features).cpu().numpy().astype(np.float32, copy=False)

    def param_bytes(self) -> int:
        return storage_bytes(self.model.state_dict(keep_vars=True).values())

    def save(self, folder):
        import torch
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if hasattr(self.model, "save_pretrained"):
            try:
                self.model.save_pretrained(folder)
                return folder
            except Exception:
                pass
        torch.save(self.model.state_dict(), folder / "state_dict.pt")
        return folder

    def close(self):
        import torch
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def storage_tensors(t):
    """The plain tensors that really hold a tensor's data: tensor subclasses (torchao, quanto) are
    flattened recursively; a torch quantized tensor yields its integers and per-channel parameters;
    packed-parameter tuples are walked."""
    import torch
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass
    if isinstance(t, (tuple, list)):
        for x in t:
            yield from storage_tensors(x)
    elif not isinstance(t, torch.Tensor):
        return
    elif is_traceable_wrapper_subclass(t):
        names, _ = t.__tensor_flatten__()
        for n in names:
            inner = getattr(t, n)
            if inner is not None:
                yield from storage_tensors(inner)
    elif t.is_quantized:
        yield t.int_repr() if t.device.type == "cpu" else t
        if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric,
                           torch.per_channel_affine_float_qparams):
            yield t.q_per_channel_scales()
            yield t.q_per_channel_zero_points()
    else:
        yield t


def storage_bytes(values, seen: set | None = None) -> int:
    """Bytes of the given tensors as stored (packed values, 8-bit containers, scales), each storage once."""
    seen = set() if seen is None else seen
    total = 0
    for v in values:
        for x in storage_tensors(v):
            key = (x.data_ptr(), x.nbytes, x.dtype) if x.device.type != "meta" else id(x)
            if key not in seen:
                seen.add(key)
                total += x.nbytes
    return total
