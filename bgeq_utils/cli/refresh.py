"""Refresh the outputs of the committed notebooks (what nbval compares).

``python -m bgeq_utils.cli.refresh [prefix ...]`` re-executes them in place with their default parameters
(set BGEQ_OUTPUTS to keep the run's files away from outputs/); ``python -m bgeq_utils.cli.refresh
--from-run default`` adopts the executed notebooks of a ``make run`` instead of executing again."""
from __future__ import annotations

import sys
import time

from bgeq_utils.core import paths


def _portable(text: str) -> str:
    """Shared outputs name files relative to the repository, never this machine's absolute paths."""
    import site
    import sys as _sys
    for sp in sorted(set(site.getsitepackages() + [f"{_sys.prefix}/lib"]), key=len, reverse=True):
        text = text.replace(sp.rstrip("/") + "/", "<site-packages>/")
    return text.replace(str(paths.ROOT) + "/", "").replace(str(paths.ROOT), ".")


WIDGET = "application/vnd.jupyter.widget-view+json"


def make_portable(nb) -> None:
    """Shareable outputs: absolute paths rewritten in every output (text, plain and HTML reprs), and what only
    a live kernel can show dropped: progress-bar widgets (frozen once saved) and stderr chatter."""
    for c in nb.cells:
        c["outputs"] = [o for o in c.get("outputs", [])
                        if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                        and not (WIDGET in o.get("data", {}) and set(o["data"]) <= {WIDGET, "text/plain"})]
        for o in c.get("outputs", []):
            if "text" in o:
                o["text"] = _portable("".join(o["text"]))
            for key in ("text/plain", "text/html", "text/markdown"):
                if key in o.get("data", {}):
                    o["data"][key] = _portable("".join(o["data"][key]))


def refresh(prefixes: list[str] | None = None, timeout: int = 1800) -> int:
    import nbformat
    from nbclient import NotebookClient

    failed = []
    for nb_path in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        if prefixes and not any(nb_path.name.startswith(p) for p in prefixes):
            continue
        t0 = time.perf_counter()
        nb = nbformat.read(str(nb_path), as_version=4)
        client = NotebookClient(nb, kernel_name="python3", timeout=timeout,
                                resources={"metadata": {"path": str(paths.NOTEBOOKS)}})
        try:
            client.execute()
        except Exception as e:
            failed.append(nb_path.name)
            print(f"{nb_path.name}: FAILED: {str(e).strip().splitlines()[-1][:300]}", file=sys.stderr)
            continue
        make_portable(nb)
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, str(nb_path))
        print(f"{nb_path.name}: executed in {time.perf_counter() - t0:.0f}s", flush=True)
    return 1 if failed else 0


def adopt(run: str = "default") -> int:
    """Take the executed notebooks of a default-profile run (outputs/<run>/notebooks) as the committed
    notebooks: papermill's injected-parameters cell and its metadata are removed, so each notebook reads
    as if executed in place with its own defaults."""
    import nbformat

    src_dir = paths.run_dir(run) / "notebooks"
    n = 0
    for nb_path in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        executed = src_dir / nb_path.name
        if not executed.is_file():
            print(f"{nb_path.name}: no executed copy in {src_dir}", file=sys.stderr)
            continue
        nb = nbformat.read(str(executed), as_version=4)
        nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
        nb.metadata.pop("papermill", None)
        nb.metadata.pop("widgets", None)
        for c in nb.cells:
            c.metadata.pop("papermill", None)
            c.metadata.pop("execution", None)
        make_portable(nb)
        nbformat.write(nb, str(nb_path))
        n += 1
        print(f"{nb_path.name}: outputs taken from {executed}")
    return 0 if n else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--from-run"]:
        sys.exit(adopt(sys.argv[2] if len(sys.argv) > 2 else "default"))
    sys.exit(refresh(sys.argv[1:] or None))
