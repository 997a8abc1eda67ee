"""Lines of logic per notebook: what a notebook computes itself instead of calling the package.

    python scripts/notebook_logic.py [NOTEBOOK ...] [--rev GIT_REV]

Counted: the source lines of every statement of a code cell (the parameters cell excepted) that is not an
import, a call (``f(...)``, ``x = f(...)``, ``x.y = f(...)``), a name or attribute shown, or an assignment of a
literal, a name or an attribute. Loops, conditions, function definitions, comprehensions and arithmetic
count with every line they span. Notebooks stay thin: the target is at most 25 such lines each.
"""
from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _is_call_like(node) -> bool:
    if isinstance(node, ast.Call):
        return True
    if isinstance(node, (ast.Name, ast.Attribute, ast.Constant)):
        return True
    if isinstance(node, ast.Subscript):          # a table's columns picked for display
        return _is_call_like(node.value)
    return False


def logic_lines(source: str) -> int:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return len([x for x in source.splitlines() if x.strip() and not x.strip().startswith(("#", "%", "!"))])
    n = 0
    for st in tree.body:
        if isinstance(st, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(st, ast.Expr) and _is_call_like(st.value):
            continue
        if isinstance(st, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and st.value is not None \
                and _is_call_like(st.value):
            continue
        if isinstance(st, ast.With) and all(_is_call_like(s.value) for s in st.body if isinstance(s, ast.Expr)) \
                and all(isinstance(s, ast.Expr) for s in st.body):
            continue                                # with pd.option_context(...): display(...)
        n += st.end_lineno - st.lineno + 1
    return n


def count(nb: dict) -> int:
    total = 0
    for c in nb["cells"]:
        if c["cell_type"] != "code" or "parameters" in c.get("metadata", {}).get("tags", []):
            continue
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        total += logic_lines(src)
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*")
    ap.add_argument("--rev", help="count the notebooks as committed at this git revision")
    a = ap.parse_args(argv)
    names = a.notebooks or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for name in names:
        if a.rev:
            text = subprocess.run(["git", "-C", str(ROOT), "show", f"{a.rev}:{name}"], capture_output=True,
                                  text=True).stdout
            if not text:
                continue
        else:
            text = (ROOT / name).read_text()
        print(f"{Path(name).stem:28s} {count(json.loads(text)):4d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
