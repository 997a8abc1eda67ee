"""Load this folder's model with its quantization recipe applied (written by bgeq's export; needs no bgeq).

The folder holds FP32 weights in sentence-transformers' layout. The quantized model exists only once a
recipe is applied to those weights at load time, with the same library calls that built the model that was
measured; the recipe and its settings are in ``quantization_recipe.json`` beside this file. Use it as

    import runpy
    load = runpy.run_path("<this folder>/load_quantized.py")["load"]
    model = load()                                   # a SentenceTransformer with the recipe applied
    embeddings = model.encode(["A sentence to embed"])

or from a shell: ``python load_quantized.py "A sentence" "Another one"`` prints the embeddings' shape.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

RECIPE_FILE = "quantization_recipe.json"


def _torch_ao_dynamic(module, recipe: dict) -> None:
    """torch.ao.quantization.quantize_dynamic on every nn.Linear: INT8 weights, activations quantized per call."""
    import torch
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig

    qconfig = per_channel_dynamic_qconfig if recipe.get("per_channel", True) else default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated upstream in favour of torchao
        torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear: qconfig}, dtype=torch.qint8, inplace=True)


def _torchao_int8_dynamic(module, recipe: dict) -> None:
    """torchao: INT8 weights per output channel, INT8 activations per token computed per call."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(module, Int8DynamicActivationInt8WeightConfig())


def _torchao_int4_weight_only(module, recipe: dict) -> None:
    """torchao: 4-bit integer weights in groups, FP32 activations (IntxWeightOnlyConfig)."""
    import torch
    from torchao.quantization import IntxWeightOnlyConfig, MappingType, quantize_
    from torchao.quantization.granularity import PerGroup

    def config():
        return IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(int(recipe["group_size"])),
                                    mapping_type=MappingType[str(recipe["mapping"]).upper()])
    quantize_(module, config())
    if recipe.get("embeddings"):
        quantize_(module, config(), filter_fn=lambda m, fqn: isinstance(m, torch.nn.Embedding))


RECIPES = {
    "torch.ao.quantization.quantize_dynamic": _torch_ao_dynamic,
    "torchao.Int8DynamicActivationInt8WeightConfig": _torchao_int8_dynamic,
    "torchao.IntxWeightOnlyConfig": _torchao_int4_weight_only,
}


def read_recipe(folder: str | Path | None = None) -> dict:
    folder = Path(folder) if folder else Path(__file__).resolve().parent
    return json.loads((folder / RECIPE_FILE).read_text())


def load(folder: str | Path | None = None, device: str = "cpu"):
    """The folder's SentenceTransformer with its recipe applied to the transformer's weights."""
    from sentence_transformers import SentenceTransformer

    folder = Path(folder) if folder else Path(__file__).resolve().parent
    recipe = read_recipe(folder)
    name = recipe["recipe"]
    if name not in RECIPES:
        raise ValueError(f"{folder / RECIPE_FILE} names recipe {name!r}; this loader knows {sorted(RECIPES)}")
    model = SentenceTransformer(str(folder), device=device)
    model.eval()
    RECIPES[name](model[0].auto_model, recipe)
    return model


if __name__ == "__main__":
    m = load()
    emb = m.encode(sys.argv[1:] or ["A sentence to embed"])
    print(f"{len(emb)} embeddings of dimension {emb.shape[1]}")
