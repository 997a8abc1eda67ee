"""INT4 weight-only quantization in PyTorch on the CPU: torchao intx and optimum-quanto qint4.

Both keep activations, LayerNorm and (by default) the embedding tables in FP32 and store the
Linear weights as 4-bit integers with per-group scales; the GEMM dequantizes the weight and runs in
FP32. What differs is the storage, and that is measured here, not assumed:

- torchao 0.18 ``IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(g))`` on the CPU
  has one packing format, ``unpacked_to_int8``: every 4-bit value sits in an int8 byte, next to an
  FP32 scale and an int8 zero point per group. Its other CPU formats need torchao's C++ kernels
  (not in the wheel) or Arm KleidiAI; ``Int4WeightOnlyConfig`` packs two values per byte but needs
  CUDA (tinygemm), the mslk kernels or an XPU.
- optimum-quanto ``quantize(model, weights=qint4); freeze(model)`` packs two 4-bit values per uint8
  byte, with an FP32 scale and shift per group (quanto's own default group is 128; 32 here, as for
  torchao, for comparable rounding error).

``bits_per_weight_effective`` in ``encoder.info`` is 8 x (bytes of the quantized weights with their
scales and zero points) / (number of those weights).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from bgeq_utils.methods.encoders import TorchEncoder, pool_torch, storage_tensors
from bgeq_utils.methods.encoders import storage_bytes as _storage_bytes
from bgeq_utils.methods.registry import MethodUnavailable, register

GROUP_SIZES = (32, 64, 128, 256)


# --- measuring what is really stored -----------------------------------------------------------
def storage_bytes(model) -> int:
    """Bytes of every parameter and persistent buffer, as stored (packed, containers, scales)."""
    return _storage_bytes(v for v in model.state_dict(keep_vars=True).values()
                          if hasattr(v, "data_ptr") or hasattr(v, "__tensor_flatten__"))


def storage_by_dtype(model) -> dict[str, int]:
    seen: set = set()
    out: dict[str, int] = {}
    for v in model.state_dict(keep_vars=True).values():
        for x in storage_tensors(v):
            key = (x.data_ptr(), x.nbytes, x.dtype)
            if key in seen:
                continue
            seen.add(key)
            name = str(x.dtype).replace("torch.", "")
            out[name] = out.get(name, 0) + x.nbytes
    return out


def _is_quantized_weight(w) -> bool:
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass
    return is_traceable_wrapper_subclass(w) or getattr(w, "is_quantized", False)


def footprint(model) -> dict:
    """Where the bytes are: quantized Linear weights (with scales/zero points), quantized embedding
    tables, and what stays in floating point (embeddings, LayerNorm, biases)."""
    import torch
    seen: set = set()
    q_lin_bytes = q_lin_n = q_emb_bytes = q_emb_n = 0
    fp = {"embeddings": 0, "layernorm": 0, "linear_bias": 0, "linear_weight_unquantized": 0, "other": 0}
    containers = set()
    for mod in model.modules():
        for pname, p in list(mod.named_parameters(recurse=False)):
            quant = _is_quantized_weight(p)
            nbytes = _storage_bytes([p], seen)
            if isinstance(mod, torch.nn.Linear) and pname == "weight":
                if quant:
                    q_lin_bytes += nbytes
                    q_lin_n += p.shape[0] * p.shape[1]
                    containers.update(str(x.dtype).replace("torch.", "") for x in storage_tensors(p)
                                      if x.dtype in (torch.int8, torch.uint8, torch.int32))
                else:
                    fp["linear_weight_unquantized"] += nbytes
            elif isinstance(mod, torch.nn.Linear):
                fp["linear_bias"] += nbytes
            elif isinstance(mod, torch.nn.Embedding):
                if quant:
                    q_emb_bytes += nbytes
                    q_emb_n += p.shape[0] * p.shape[1]
                else:
                    fp["embeddings"] += nbytes
            elif isinstance(mod, torch.nn.LayerNorm):
                fp["layernorm"] += nbytes
            else:
                fp["other"] += nbytes
    total = storage_bytes(model)
    out = {
        "quantized_linear_weights": q_lin_n,
        "quantized_linear_weight_bytes": q_lin_bytes,
        "bits_per_weight_effective": round(8 * q_lin_bytes / q_lin_n, 4) if q_lin_n else None,
        "weight_containers": sorted(containers),
        "float_bytes": {k: v for k, v in fp.items() if v},
        "float_share_of_param_bytes": round(sum(fp.values()) / total, 4) if total else None,
        "param_bytes_by_dtype": storage_by_dtype(model),
        "param_bytes": total,
    }
    if q_emb_n:
        out["quantized_embedding_weights"] = q_emb_n
        out["quantized_embedding_bytes"] = q_emb_bytes
        out["embedding_bits_per_weight_effective"] = round(8 * q_emb_bytes / q_emb_n, 4)
    return out


class QuantizedTorchEncoder(TorchEncoder):
    """A PyTorch model whose weights are tensor subclasses (torchao, optimum-quanto).

    param_bytes() counts the tensors that really hold the data (a subclass reports its logical
    FP32 size otherwise); save() writes what a deployment ships: config.json plus the quantized
    state dict in the library's own serialization.
    """

    def __init__(self, reference, model, device: str = "cpu", serializer: str = "torch", info: dict | None = None,
                 compute_precision: str = "fp32", inference_mode: bool = True):
        super().__init__(reference, model, device=device)
        self.serializer = serializer
        self.info = dict(info or {})
        self.compute_precision = compute_precision
        self.inference_mode = inference_mode

    def _forward(self, features):
        if self.inference_mode:
            return super()._forward(features)
        # optimum-quanto's tensors fail under torch.inference_mode ("Cannot set version_counter for
        # inference tensor"); no_grad computes the same thing.
        import torch

        feats = {k: torch.from_numpy(v).to(self.device) for k, v in features.items()}
        with torch.no_grad():
            out = self.model(**feats)
            hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            return pool_torch(hidden, feats["attention_mask"], self.pooling)

    def param_bytes(self) -> int:
        return storage_bytes(self.model)

    def save(self, folder):
        import torch
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if hasattr(self.model, "config"):
            self.model.config.to_json_file(folder / "config.json")
        if self.serializer == "quanto":
            from optimum.quanto import quantization_map
            from safetensors.torch import save_file
            sd = {k: v.contiguous() for k, v in self.model.state_dict().items()}
            save_file(sd, folder / "model.safetensors")
            (folder / "quantization_map.json").write_text(json.dumps(quantization_map(self.model), indent=1))
        else:
            # torchao's documented serialization: the state dict of tensor subclasses, loaded back
            # with model.load_state_dict(torch.load(..., weights_only=False), assign=True).
            torch.save(self.model.state_dict(), folder / "model.pt")
        return folder


# --- option checks -----------------------------------------------------------------------------
def _check_group_size(model, group_size, quantize_embeddings=False):
    import torch
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"group_size={group_size!r}: use a whole number such as {', '.join(map(str, GROUP_SIZES))}")
    bad = [(n, m.in_features) for n, m in model.named_modules()
           if isinstance(m, torch.nn.Linear) and m.in_features % group_size]
    if quantize_embeddings:
        bad += [(n, m.embedding_dim) for n, m in model.named_modules()
                if isinstance(m, torch.nn.Embedding) and m.embedding_dim % group_size]
    if bad:
        n, k = bad[0]
        raise ValueError(f"group_size={group_size} does not divide the input width {k} of layer {n!r} "
                         f"({len(bad)} layer(s) affected); use a divisor of the layer widths, e.g. 32, 64 or 128")


def _check_unknown(options: dict, method: str, known: tuple):
    if options:
        raise TypeError(f"{method}: unknown option(s) {sorted(options)}; options are {', '.join(known)}")


# --- torchao -----------------------------------------------------------------------------------
@register("int4-torchao", precision="int4", library="torchao", devices=("cpu",), packages=("torchao",),
          summary="torchao intx int4 weight-only, per-group (4-bit values unpacked in int8 on CPU)")
def int4_torchao(reference, device="cpu", calibration=None, group_size: int = 32, mapping: str = "asymmetric",
                 embeddings: bool = False, **options):
    """torchao ``IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(group_size))``
    on every Linear (and the embedding tables with ``embeddings=True``); FP32 scales, symmetric
    or asymmetric (``mapping``) int4 grid."""
    _check_unknown(options, "int4-torchao", ("group_size", "mapping", "embeddings"))
    if not isinstance(embeddings, bool):
        raise ValueError(f"embeddings={embeddings!r}: use True (also quantize the embedding tables) or False")
    if mapping not in ("symmetric", "asymmetric"):
        raise ValueError(f"mapping={mapping!r}: use 'symmetric' or 'asymmetric'")
    import torch
    try:
        from torchao.quantization import IntxWeightOnlyConfig, MappingType, quantize_
        from torchao.quantization.granularity import PerGroup
    except Exception as e:  # a torchao build that does not import here
        raise MethodUnavailable(f"torchao does not import here: {type(e).__name__}: {e}") from e
    model = copy.deepcopy(reference.model).to(device).eval()
    _check_group_size(model, group_size, embeddings)

    def config():
        return IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(group_size),
                                    mapping_type=MappingType[mapping.upper()])
    quantize_(model, config())
    if embeddings:
        quantize_(model, config(), filter_fn=lambda m, fqn: isinstance(m, torch.nn.Embedding))
    fp = footprint(model)
    packing = config().intx_packing_format
    info = {"api": "torchao.quantization.quantize_(model, IntxWeightOnlyConfig(weight_dtype=torch.int4, "
                   f"granularity=PerGroup({group_size}), mapping_type=MappingType.{mapping.upper()}))",
            "packing": str(getattr(packing, "value", packing)), "group_size": group_size, "mapping": mapping,
            "embeddings_quantized": embeddings, "bits_per_weight_nominal": 4,
            "storage_note": "4-bit values stored one per int8 byte (unpacked_to_int8), plus an FP32 scale and an "
                            "int8 zero point per group; GEMM dequantizes to FP32",
            **fp}
    return QuantizedTorchEncoder(reference, model, device=device, serializer="torch", info=info)


# --- optimum-quanto ----------------------------------------------------------------------------
@register("int4-quanto", precision="int4", library="optimum-quanto", devices=("cpu",),
          packages=("optimum.quanto",),
          summary="optimum-quanto qint4 weight-only, per-group (two 4-bit values per uint8 byte)")
def int4_quanto(reference, device="cpu", calibration=None, group_size: int = 32, **options):
    """optimum-quanto ``quantize(model, weights=qint4); freeze(model)`` on every Linear.

    quanto picks groups of 128 along the input dimension; ``group_size`` (default 32) is set on each
    quantized module before ``freeze`` (the attribute quanto's own freeze reads)."""
    _check_unknown(options, "int4-quanto", ("group_size",))
    try:
        from optimum.quanto import QModuleMixin, freeze, qint4, quantize
    except Exception as e:
        raise MethodUnavailable(f"optimum-quanto does not import here: {type(e).__name__}: {e}") from e
    model = copy.deepcopy(reference.model).to(device).eval()
    _check_group_size(model, group_size)
    quantize(model, weights=qint4)
    for m in model.modules():
        if isinstance(m, QModuleMixin) and getattr(m, "weight_group_size", None) is not None:
            m.weight_group_size = group_size
    freeze(model)
    fp = footprint(model)
    info = {"api": "optimum.quanto.quantize(model, weights=qint4); freeze(model)", "group_size": group_size,
            "bits_per_weight_nominal": 4,
            "storage_note": "two 4-bit values packed per uint8 byte, plus an FP32 scale and an FP32 shift per "
                            "group; GEMM dequantizes to FP32 on the CPU",
            **fp}
    return QuantizedTorchEncoder(reference, model, device=device, serializer="quanto", info=info,
                                 inference_mode=False)
