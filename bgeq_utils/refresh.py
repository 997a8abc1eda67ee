"""Re-execute the committed notebooks in place with their default parameters (their outputs are
what nbval compares). ``python -m bgeq_utils.refresh [prefix ...]``; set BGEQ_OUTPUTS to keep the
run's files away from outputs/."""
from __future__ import annotations

import sys
import time

from . import paths


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
        nbformat.write(nb, str(nb_path))
        print(f"{nb_path.name}: executed in {time.perf_counter() - t0:.0f}s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(refresh(sys.argv[1:] or None))
