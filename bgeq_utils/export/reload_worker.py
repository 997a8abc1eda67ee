"""Reload an exported folder with its target library alone and embed texts (run as a script; imports no bgeq).

    python reload_worker.py JOB.json

JOB.json: {"folder": ..., "texts": [...], "out": folder for the results, "loaders": [{"name", "code",
"optional"}]}. Each loader's ``code`` is the exact snippet the model card shows, with its folder path; it
defines ``model`` (anything with sentence-transformers' ``encode``) or ``encode(texts) -> array``. Every text
is embedded alone (batch of one), so no text's embedding depends on its neighbours' padding. Writes
``<name>.npy`` per loader and ``worker.json``: per loader its status (``ok``; ``unavailable`` when an
``optional`` loader's library cannot be imported here; ``error``), the reason, and the versions of the
libraries this interpreter loaded. Exits non-zero if bgeq was imported along the way.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path

PACKAGES = ("sentence-transformers", "transformers", "torch", "onnxruntime", "openvino", "optimum",
            "optimum-onnx", "optimum-intel", "bitsandbytes", "torchao", "optimum-quanto", "ctranslate2", "tokenizers",
            "numpy")
#: what sentence-transformers says when its onnx/openvino backend's packages are missing
UNAVAILABLE_MARKERS = ("requires installing Optimum", "No module named 'optimum")


def _versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _unavailable(exc: BaseException) -> bool:
    chain, e = [], exc
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = e.__cause__ or e.__context__
    return any(isinstance(x, ImportError) or any(m in str(x) for m in UNAVAILABLE_MARKERS) for x in chain)


def _embed(ns: dict, texts: list[str]):
    import numpy as np
    if "model" in ns:
        model = ns["model"]
        rows = [np.asarray(model.encode([t], batch_size=1, convert_to_numpy=True, show_progress_bar=False),
                           dtype=np.float32)[0] for t in texts]
    elif "encode" in ns:
        rows = [np.asarray(ns["encode"]([t]), dtype=np.float32)[0] for t in texts]
    else:
        raise RuntimeError("the loader code defines neither `model` nor `encode`")
    return np.stack(rows)


def main(job_path: str) -> int:
    import numpy as np
    job = json.loads(Path(job_path).read_text())
    out = Path(job["out"])
    texts = job["texts"]
    report = {"python": sys.executable, "loaders": []}
    for loader in job["loaders"]:
        entry = {"name": loader["name"]}
        t0 = time.perf_counter()
        ns: dict = {"__name__": "bgeq_export_check"}
        try:
            exec(compile(loader["code"], f"<{loader['name']} load code>", "exec"), ns)
        except Exception as e:  # noqa: BLE001 - every failure is reported, classified
            status = "unavailable" if loader.get("optional") and _unavailable(e) else "error"
            entry |= {"status": status, "reason": f"{type(e).__name__}: {str(e).strip()[:800]}",
                      "traceback": traceback.format_exc()[-3000:]}
            report["loaders"].append(entry)
            continue
        try:
            emb = _embed(ns, texts)
            np.save(out / f"{loader['name']}.npy", emb)
            entry |= {"status": "ok", "shape": list(emb.shape)}  # this worker imports no bgeq: the word is vocab.OK
        except Exception as e:  # noqa: BLE001
            entry |= {"status": "error", "reason": f"embedding failed: {type(e).__name__}: {str(e).strip()[:800]}",
                      "traceback": traceback.format_exc()[-3000:]}
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        report["loaders"].append(entry)
        ns.clear()
    report["versions"] = _versions()
    report["bgeq_imported"] = any(m == "bgeq_utils" or m.startswith("bgeq_utils.") for m in sys.modules)
    (out / "worker.json").write_text(json.dumps(report, indent=1))
    return 3 if report["bgeq_imported"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
