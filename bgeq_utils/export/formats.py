"""Each method's model as a folder its own ecosystem loads as is: one writer per format.

Every folder is a sentence-transformers folder in the classic layout every sentence-transformers release
reads (``modules.json`` with ``sentence_transformers.models.Transformer`` / ``Pooling`` / ``Normalize``,
``sentence_bert_config.json``, ``1_Pooling/config.json``, ``2_Normalize/``), with the reference's tokenizer
files copied as they are and the pooling bgeq measured written out (never the source folder's, which bgeq may
read differently). What differs is where the model is:

- **onnx** (ONNX Runtime methods): ``onnx/<file>.onnx``, the graph bgeq ran, loaded by
  ``SentenceTransformer(folder, backend="onnx", model_kwargs={"file_name": "onnx/<file>.onnx"})``; also by
  onnxruntime alone with the tokenizer.
- **openvino**: ``openvino/openvino_model*.xml`` + ``.bin``, loaded by ``backend="openvino"`` with the
  inference precision bgeq used (the CPU plugin would otherwise pick BF16 on a CPU that has it).
- **bitsandbytes**: transformers' own ``save_pretrained`` of the quantized model, its
  ``quantization_config`` inside ``config.json``; ``SentenceTransformer(folder)`` loads it.
- **torch**: the weights as measured (FP32, or cast to FP16/BF16), ``model.safetensors``.
- **ct2** (CTranslate2 methods): CTranslate2's own model folder (``model.bin``, its ``config.json``,
  ``vocabulary.json``) at the top, as the ``ct2fast-*`` folders ship it, beside the tokenizer and the pooling
  config; loaded by ``ctranslate2.Encoder`` with the compute type bgeq measured (``ct2_config.json``), the
  tokenizer and the pooling written in the load code. ``config.json`` is CTranslate2's, so
  ``SentenceTransformer(folder)`` alone does not load it.
- **torch-recipe**: FP32 weights plus ``load_quantized.py`` and ``quantization_recipe.json``: the quantized
  model exists only once the recipe is applied at load time, with the library calls bgeq made.

Methods whose model cannot be shipped faithfully raise :class:`ExportError` saying why and what to use instead.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bgeq_utils import methods
from bgeq_utils.core import env
from bgeq_utils.methods import onnx_export as ox

MANIFEST = "bgeq_export.json"
CARD = "README.md"
LOADER_SCRIPT = "load_quantized.py"
RECIPE_FILE = "quantization_recipe.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt", "added_tokens.json", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]

ONNX_METHODS = ("fp32-onnx", "int8-dynamic-onnx", "int8-static-onnx", "int4-onnx")
OPENVINO_METHODS = ("fp32-openvino", "int8-static-openvino")
BNB_METHODS = ("int8-bnb", "nf4-bnb", "fp4-bnb")
CAST_METHODS = {"fp32": None, "fp32-st": None, "fp16": "float16", "bf16": "bfloat16"}
RECIPE_METHODS = ("int8-dynamic-torch", "int4-torchao")
CT2_METHODS = ("fp32-ct2", "int8-ct2", "fp16-ct2", "bf16-ct2")
CT2_CONFIG = "ct2_config.json"
OPENVINO_FILES = {"fp32-openvino": "openvino_model.xml", "int8-static-openvino": "openvino_model_qint8_quantized.xml"}
OV_PRECISION = {"f32": "f32", "fp32": "f32", "bf16": "bf16", "f16": "f16", "fp16": "f16"}


class ExportError(RuntimeError):
    """The method's model cannot be exported (faithfully, or here): the message says why and what to use."""


# Methods whose model exists only inside the process that built it, with what to export instead.
NOT_EXPORTABLE = {
    "fp32-inductor": "its model is FP32's weights run through a graph compiled by torch.compile (Inductor): the "
                     "generated kernels live in the process that compiled them and are not a format any library "
                     "loads. Export 'fp32' (then torch.compile the loaded model yourself) or 'fp32-onnx'",
    "int8-static-torch": "its model is a PT2E-converted graph (calibrated INT8 weights and activation scales) that "
                         "bgeq runs compiled by torch.compile with Inductor freezing; the compiled kernels are not "
                         "a format any library loads, and no sentence-transformers backend loads the converted "
                         "program. For static INT8 that a runtime loads natively, export 'int8-static-onnx' "
                         "(ONNX Runtime) or 'int8-static-openvino' (OpenVINO)",
    "int8-qat": "its INT8 weights come out of training in the building process and are held as torchao tensor "
                "subclasses, which neither transformers' save_pretrained nor sentence-transformers reloads; a "
                "recipe cannot recreate them from the FP32 weights (training changed them). Export "
                "'int8-dynamic-torch' (INT8 by recipe, no training) or 'int8-dynamic-onnx'",
    "int4-quanto": "optimum-quanto's frozen qint4 weights fail under torch.inference_mode (\"Cannot set "
                   "version_counter for inference tensor\"), which sentence-transformers' encode always runs in, so "
                   "a folder that loads it through sentence-transformers would not run (bgeq measures it under "
                   "torch.no_grad). Export 'int4-torchao' (4-bit weights by a load-time recipe) or 'int4-onnx'",
}
#: the same, in a line (for tables)
NOT_EXPORTABLE_SHORT = {
    "fp32-inductor": "a compiled Inductor graph: export fp32 or fp32-onnx instead",
    "int8-static-torch": "a compiled PT2E graph: export int8-static-onnx or int8-static-openvino instead",
    "int8-qat": "trained torchao INT8 weights no library reloads: export int8-dynamic-torch or int8-dynamic-onnx",
    "int4-quanto": "fails under sentence-transformers' inference_mode: export int4-torchao or int4-onnx instead",
}


@dataclass
class Loader:
    """One way to load the folder: the exact code the model card shows (with ``{folder}`` for its path)."""
    name: str                     # "sentence-transformers", "onnxruntime", "openvino", "load_quantized.py"
    code: str
    library: str                  # what it needs, for people
    optional: bool = False        # verified where its library imports; not required to pass where it does not
    packages: tuple = ()          # distributions whose versions the verification records

    def render(self, folder) -> str:
        return self.code.replace("{folder}", str(folder))


@dataclass
class Written:
    """What a writer put in the folder and how to load it."""
    format: str
    loaders: list[Loader]
    model_files: list[str]
    notes: list[str] = field(default_factory=list)
    recipe: dict | None = None


def check_exportable(method: str, options: dict) -> None:
    """Raise ExportError, before any work, for a method (or option) whose model cannot be shipped."""
    if method in NOT_EXPORTABLE:
        raise ExportError(f"{method} cannot be exported faithfully: {NOT_EXPORTABLE[method]}.")
    if method == "int8-dynamic-torch" and options.get("compile"):
        raise ExportError("int8-dynamic-torch with compile=True cannot be exported faithfully: the model measured ran "
                          "as a graph compiled by torch.compile (Inductor), whose kernels are not a format any "
                          "library loads. Export it with compile=False (the same torchao INT8 weights, run eagerly) "
                          "and torch.compile the loaded model yourself, or export 'int8-dynamic-onnx'.")
    known = (set(ONNX_METHODS) | set(OPENVINO_METHODS) | set(BNB_METHODS) | set(CAST_METHODS) | set(RECIPE_METHODS)
             | set(CT2_METHODS))
    if method not in known:
        raise ExportError(f"{method}: no export format is defined for this method yet. Exportable methods: "
                          f"{', '.join(sorted(known))}.")


# --- the sentence-transformers skeleton -----------------------------------------------------------
def write_skeleton(reference, folder: Path) -> None:
    """Tokenizer, modules, pooling and normalization: everything but the model."""
    folder.mkdir(parents=True, exist_ok=True)
    src = Path(reference.folder)
    copied = [n for n in TOKENIZER_FILES if (src / n).is_file()]
    if "tokenizer.json" in copied or "vocab.txt" in copied or "tokenizer.model" in copied or "spiece.model" in copied:
        for n in copied:
            shutil.copy2(src / n, folder / n)
    else:  # a tokenizer without files of its own in the folder: transformers writes it
        reference.tokenizer.save_pretrained(folder)
    (folder / "modules.json").write_text(json.dumps(MODULES, indent=2))
    # bgeq tokenizes without sentence-transformers' do_lower_case: the shipped model must do the same.
    (folder / "sentence_bert_config.json").write_text(json.dumps(
        {"max_seq_length": int(reference.max_seq_length), "do_lower_case": False}, indent=2))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": int(reference.dim),
        "pooling_mode_cls_token": reference.pooling == "cls",
        "pooling_mode_mean_tokens": reference.pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }, indent=2))
    (folder / "2_Normalize").mkdir(exist_ok=True)
    versions = env.package_versions(("sentence-transformers", "transformers", "torch"))
    st_config = {"__version__": {"sentence_transformers": versions.get("sentence-transformers"),
                                 "transformers": versions.get("transformers"), "pytorch": versions.get("torch")},
                 "prompts": {"query": reference.query_prompt} if reference.query_prompt else {},
                 "default_prompt_name": None, "similarity_fn_name": "cosine"}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2))


# --- load code ------------------------------------------------------------------------------------
def _kwargs_literal(d: dict) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()) + "}"


def st_loader(device: str, backend: str = "torch", model_kwargs: dict | None = None, optional: bool = False,
              library: str = "sentence-transformers", packages: tuple = ()) -> Loader:
    args = ['"{folder}"', f'device="{device}"']
    if backend != "torch":
        args.append(f'backend="{backend}"')
    if model_kwargs:
        args.append(f"model_kwargs={_kwargs_literal(model_kwargs)}")
    code = ("from sentence_transformers import SentenceTransformer\n\n"
            f"model = SentenceTransformer({', '.join(args)})\n")
    base = ("sentence-transformers", "transformers", "torch")
    return Loader("sentence-transformers", code, library, optional, base + tuple(packages))


def _pooling_lines(pooling: str) -> str:
    if pooling == "cls":
        return "    emb = hidden[:, 0]                                   # CLS pooling (1_Pooling/config.json)\n"
    return ("    mask = batch[\"attention_mask\"][..., None].astype(np.float32)\n"
            "    emb = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)  # mean pooling (1_Pooling)\n")


_TOKENIZE = ("tokenizer = AutoTokenizer.from_pretrained(folder)\n"
             "max_length = json.loads((folder / \"sentence_bert_config.json\").read_text())[\"max_seq_length\"]\n")
_FEEDS = ("    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,\n"
          "                      return_tensors=\"np\")\n"
          "    feeds = {n: batch[n].astype(np.int64) if n in batch else np.zeros_like(batch[\"input_ids\"], np.int64)\n"
          "             for n in input_names}\n")


def onnxruntime_loader(file_name: str, pooling: str, device: str) -> Loader:
    providers = '["CUDAExecutionProvider", "CPUExecutionProvider"]' if device.startswith("cuda") \
        else '["CPUExecutionProvider"]'
    code = ("import json\nfrom pathlib import Path\n\nimport numpy as np\nimport onnxruntime as ort\n"
            "from transformers import AutoTokenizer\n\n"
            "folder = Path(\"{folder}\")\n" + _TOKENIZE +
            f"session = ort.InferenceSession(str(folder / \"{file_name}\"), providers={providers})\n"
            "input_names = [i.name for i in session.get_inputs()]\n\n\n"
            "def encode(texts):\n" + _FEEDS +
            "    hidden = session.run([\"last_hidden_state\"], feeds)[0]\n" + _pooling_lines(pooling) +
            "    return emb / np.linalg.norm(emb, axis=1, keepdims=True)\n\n\n")
    return Loader("onnxruntime", code, "onnxruntime + transformers (tokenizer)",
                  packages=("onnxruntime", "transformers"))


def openvino_loader(file_name: str, pooling: str, ov_config: dict) -> Loader:
    code = ("import json\nfrom pathlib import Path\n\nimport numpy as np\nimport openvino as ov\n"
            "from transformers import AutoTokenizer\n\n"
            "folder = Path(\"{folder}\")\n" + _TOKENIZE +
            f"compiled = ov.Core().compile_model(str(folder / \"{file_name}\"), \"CPU\",\n"
            f"                                   {_kwargs_literal(ov_config)})\n"
            "input_names = [i.get_any_name() for i in compiled.inputs]\n\n\n"
            "def encode(texts):\n" + _FEEDS +
            "    hidden = compiled(feeds)[compiled.output(0)]\n" + _pooling_lines(pooling) +
            "    return emb / np.linalg.norm(emb, axis=1, keepdims=True)\n\n\n")
    return Loader("openvino", code, "openvino + transformers (tokenizer)", packages=("openvino", "transformers"))


def ct2_loader(compute_type: str, pooling: str, device: str) -> Loader:
    kind = "cuda" if device.startswith("cuda") else "cpu"
    # Hidden states come back in the compute type's float (float16/bfloat16 on a GPU) and where they were made.
    fetch = ("out.last_hidden_state.to(ctranslate2.DataType.float32).to_device(ctranslate2.Device.cpu)"
             if kind == "cuda" or compute_type in ("float16", "bfloat16") else "out.last_hidden_state")
    code = ("import json\nfrom pathlib import Path\n\nimport ctranslate2\nimport numpy as np\n"
            "from transformers import AutoTokenizer\n\n"
            "folder = Path(\"{folder}\")\n" + _TOKENIZE +
            f"encoder = ctranslate2.Encoder(str(folder), device=\"{kind}\", compute_type=\"{compute_type}\")\n\n\n"
            "def encode(texts):\n"
            "    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,\n"
            "                      return_tensors=\"np\")\n"
            "    ids = ctranslate2.StorageView.from_array(batch[\"input_ids\"].astype(np.int32))\n"
            "    lengths = ctranslate2.StorageView.from_array(batch[\"attention_mask\"].sum(1).astype(np.int32))\n"
            "    types = batch[\"token_type_ids\"].tolist() if \"token_type_ids\" in batch else None\n"
            "    out = encoder.forward_batch(ids, lengths, token_type_ids=types)\n"
            f"    hidden = np.asarray({fetch})\n" + _pooling_lines(pooling) +
            "    return emb / np.linalg.norm(emb, axis=1, keepdims=True)\n\n\n")
    return Loader("ctranslate2", code, "ctranslate2 + transformers (tokenizer)",
                  packages=("ctranslate2", "transformers"))


def script_loader(device: str, packages: tuple = ()) -> Loader:
    code = ("import runpy\n\n"
            f"load = runpy.run_path(\"{{folder}}/{LOADER_SCRIPT}\")[\"load\"]\n"
            f"model = load(\"{{folder}}\", device=\"{device}\")   # a SentenceTransformer, recipe applied\n")
    return Loader(LOADER_SCRIPT, code, "sentence-transformers + the recipe's library (see quantization_recipe.json)",
                  packages=("sentence-transformers", "transformers", "torch") + tuple(packages))


# --- writers --------------------------------------------------------------------------------------
def _onnx_file_name(method: str, options: dict) -> str:
    if method == "fp32-onnx":
        return "model_optimized.onnx" if options.get("optimize") else "model.onnx"
    if method == "int8-dynamic-onnx":
        return f"model_{str(options.get('weight_type', 'QInt8')).lower()}_quantized.onnx"
    if method == "int8-static-onnx":
        return "model_qint8_static_quantized.onnx"
    return "model_int4_quantized.onnx"


def _copy_onnx(src_model: Path, dst_dir: Path, file_name: str) -> None:
    """The graph under ``file_name``; external weights (large models) under ``<file_name>_data``, the name
    Optimum fetches, with the location recorded in the graph rewritten to match."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors

    files = ox.model_files(src_model)
    dst_dir.mkdir(parents=True, exist_ok=True)
    if len(files) == 1:
        shutil.copy2(src_model, dst_dir / file_name)
        return
    if len(files) > 2:
        raise ExportError(f"{src_model} keeps its weights in {len(files) - 1} external files; only one is supported")
    m = onnx.load(str(src_model), load_external_data=False)
    data_name = f"{file_name}_data"
    for t in _get_all_tensors(m):
        for e in t.external_data:
            if e.key == "location":
                e.value = data_name
    onnx.save(m, str(dst_dir / file_name))
    shutil.copy2(files[1], dst_dir / data_name)


def _write_config(reference, folder: Path) -> None:
    reference.model.config.save_pretrained(folder)


def write_onnx(method, encoder, reference, folder: Path, options: dict, device: str) -> Written:
    name = _onnx_file_name(method, options)
    _write_config(reference, folder)
    _copy_onnx(Path(encoder.model_path), folder / "onnx", name)
    rel = f"onnx/{name}"
    provider = "CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider"
    loaders = [st_loader(device, "onnx", {"file_name": rel, "provider": provider}, optional=True,
                         library="sentence-transformers with its onnx backend (optimum-onnx, onnxruntime)",
                         packages=("optimum-onnx", "onnxruntime")),
               onnxruntime_loader(rel, reference.pooling, device)]
    return Written("onnx", loaders, [rel] + ([f"{rel}_data"] if (folder / f"{rel}_data").exists() else []))


def write_openvino(method, encoder, reference, folder: Path, options: dict, device: str) -> Written:
    name = OPENVINO_FILES[method]
    _write_config(reference, folder)
    dst = folder / "openvino"
    dst.mkdir(parents=True, exist_ok=True)
    xml = Path(encoder.xml_path)
    shutil.copy2(xml, dst / name)
    shutil.copy2(xml.with_suffix(".bin"), (dst / name).with_suffix(".bin"))
    hint = OV_PRECISION.get(str(options.get("inference_precision", "f32")).lower(), "f32")
    ov_config = {"INFERENCE_PRECISION_HINT": hint}
    (dst / "ov_config.json").write_text(json.dumps(ov_config, indent=2))
    rel = f"openvino/{name}"
    loaders = [st_loader("cpu", "openvino", {"file_name": rel, "ov_config": ov_config}, optional=True,
                         library="sentence-transformers with its openvino backend (optimum-intel, openvino)",
                         packages=("optimum-intel", "openvino")),
               openvino_loader(rel, reference.pooling, ov_config)]
    notes = [f"OpenVINO's CPU plugin runs in the precision its hint names; the hint bgeq measured with "
             f"({hint}) is in the load code and in openvino/ov_config.json (without it, a CPU with BF16 "
             "instructions runs BF16)."]
    return Written("openvino", loaders, [rel, str(Path(rel).with_suffix(".bin"))], notes)


def write_bnb(method, encoder, reference, folder: Path, options: dict, device: str) -> Written:
    encoder.save(folder)            # transformers' save_pretrained: packed weights + quantization_config
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin"))
    notes = ["Saved with transformers' save_pretrained: config.json carries the BitsAndBytesConfig, so "
             "transformers quantizes nothing again on load; it reads the packed weights."]
    loader = st_loader(device, library="sentence-transformers + bitsandbytes", packages=("bitsandbytes",))
    return Written("bitsandbytes", [loader],
                   ["config.json"] + files, notes)


def write_cast(method, encoder, reference, folder: Path, options: dict, device: str) -> Written:
    dtype = CAST_METHODS[method]
    model = getattr(encoder, "model", None)
    if model is None or not hasattr(model, "save_pretrained"):
        model = reference.model     # fp32-st: the reference's weights, which it runs as they are
    model.save_pretrained(folder)
    kwargs = {"dtype": dtype} if dtype else None
    return Written("torch", [st_loader(device, model_kwargs=kwargs)], ["config.json", "model.safetensors"])


def write_ct2(method, encoder, reference, folder: Path, options: dict, device: str) -> Written:
    files = [p.name for p in Path(encoder.save(folder)).iterdir() if p.name in ("model.bin", "config.json",
                                                                                 "vocabulary.json")]
    compute_type = str(encoder.compute_type)
    (folder / CT2_CONFIG).write_text(json.dumps({"compute_type": compute_type, "device": device,
                                                 "pooling": reference.pooling, "normalize": True}, indent=2))
    notes = [f"CTranslate2 computes in the type it is asked for: the type bgeq measured ({compute_type}) is in "
             f"the load code and in {CT2_CONFIG}. config.json is CTranslate2's, so SentenceTransformer(folder) "
             "alone does not load this folder; the load code applies the pooling of 1_Pooling/config.json and "
             "the L2 normalization of 2_Normalize."]
    return Written("ct2", [ct2_loader(compute_type, reference.pooling, device)], sorted(files) + [CT2_CONFIG],
                   notes)


def recipe_of(method: str, encoder, options: dict) -> dict:
    """The load-time recipe that rebuilds the measured model from the FP32 weights (read from the encoder)."""
    info = getattr(encoder, "info", {}) or {}
    if method == "int8-dynamic-torch":
        if str(info.get("api", "")).startswith("torch.ao"):
            return {"recipe": "torch.ao.quantization.quantize_dynamic", "per_channel": bool(options.get(
                "per_channel", True)), "note": "CPU only (FBGEMM/oneDNN kernels)"}
        return {"recipe": "torchao.Int8DynamicActivationInt8WeightConfig"}
    if method == "int4-torchao":
        return {"recipe": "torchao.IntxWeightOnlyConfig", "group_size": int(info.get("group_size", 32)),
                "mapping": info.get("mapping", "asymmetric"), "embeddings": bool(info.get("embeddings_quantized"))}
    raise ExportError(f"{method}: no load-time recipe")


def write_recipe(method, encoder, reference, folder: Path, options: dict, device: str) -> Written:
    recipe = recipe_of(method, encoder, options) | {"method": method, "api": (getattr(encoder, "info", {}) or {})
                                                    .get("api")}
    reference.model.save_pretrained(folder)
    (folder / RECIPE_FILE).write_text(json.dumps(recipe, indent=2))
    shutil.copy2(Path(__file__).with_name(LOADER_SCRIPT), folder / LOADER_SCRIPT)
    notes = [f"The weights in this folder are FP32; the {method} model is built at load time by "
             f"{LOADER_SCRIPT}, which applies {recipe['recipe']} to them (settings in {RECIPE_FILE}). "
             "SentenceTransformer(folder) alone loads the FP32 model."]
    lib = ("torchao",) if recipe["recipe"].startswith("torchao") else ()
    return Written("torch-recipe", [script_loader(device, lib)], ["config.json", "model.safetensors", LOADER_SCRIPT,
                                                            RECIPE_FILE], notes, recipe)


def writer(method: str):
    if method in ONNX_METHODS:
        return write_onnx
    if method in OPENVINO_METHODS:
        return write_openvino
    if method in BNB_METHODS:
        return write_bnb
    if method in CAST_METHODS:
        return write_cast
    if method in RECIPE_METHODS:
        return write_recipe
    if method in CT2_METHODS:
        return write_ct2
    raise ExportError(f"{method}: no export format is defined for this method")


def write(method: str, encoder, reference, folder: Path, options: dict, device: str = "cpu") -> Written:
    """Write the method's folder (skeleton + model) into ``folder``."""
    write_skeleton(reference, folder)
    return writer(method)(method, encoder, reference, folder, options, device)


FORMAT_OF = {**{m: ("onnx", "SentenceTransformer(folder, backend='onnx'), or onnxruntime") for m in ONNX_METHODS},
             **{m: ("openvino", "SentenceTransformer(folder, backend='openvino'), or openvino")
                for m in OPENVINO_METHODS},
             **{m: ("bitsandbytes", "SentenceTransformer(folder) (transformers + bitsandbytes)") for m in BNB_METHODS},
             **{m: ("torch", "SentenceTransformer(folder)") for m in CAST_METHODS},
             **{m: ("torch-recipe", f"{LOADER_SCRIPT} in the folder: SentenceTransformer + the recipe")
                for m in RECIPE_METHODS},
             **{m: ("ct2", "ctranslate2.Encoder + the tokenizer + the pooling (load code in the card)")
                for m in CT2_METHODS}}


def table():
    """Every registered method: the format its export takes and what loads it, or why it cannot be exported."""
    import pandas as pd

    rows = []
    for spec in methods.specs():
        fmt, how = FORMAT_OF.get(spec.name, (None, None))
        rows.append({"method": spec.name, "precision": spec.precision, "format": fmt or "not exportable",
                     "loaded by": how or NOT_EXPORTABLE_SHORT.get(spec.name, "no export format defined")})
    return pd.DataFrame(rows)
