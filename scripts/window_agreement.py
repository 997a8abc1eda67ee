"""A run's comparison window set beside a repeat-window record: does each speed-up lie in the others' intervals?

    python scripts/window_agreement.py outputs/bge-large-random/results \
        outputs/reference/bge-large-random/windows/repeat-20261204-172305.json

One markdown row per default method and baseline (eager FP32, its runtime's FP32): each window's speed-up with its
interval, and whether the run's figure lies inside every repeat window's interval and theirs inside the run's.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from bgeq_utils.core import results
from bgeq_utils.core.uncertainty import Estimate
from bgeq_utils.measure import comparison_window


def rows(results_dir: str | Path, record_file: str | Path) -> tuple[list[str], int, int]:
    rec = json.loads(Path(record_file).read_text())
    speed = {r.method: r.speed[0] for r in results.load_run(Path(results_dir)) if r.ok and r.is_default and r.speed}
    out, agree, n = [], 0, 0
    for m in rec["methods"]:
        for role in ("eager", "runtime"):
            theirs = [Estimate.from_dict(w["ratios"].get(m, {}).get(role)) for w in rec["windows"]]
            mine = Estimate.from_dict(speed.get(m, {}).get(f"vs_{role}"))
            if mine is None or not mine.has_interval or mine.low == mine.high or any(e is None for e in theirs):
                continue
            ok = all(comparison_window.agree_all([mine, e]) for e in theirs)
            n, agree = n + 1, agree + ok
            over = "eager fp32" if role == "eager" else speed[m]["vs_runtime"].get("baseline")
            out.append(f"| {m} | {over} | {' | '.join(e.fmt(2) for e in theirs)} | {mine.fmt(2)} | "
                       f"{'yes' if ok else '**no**'} |")
    return out, agree, n


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, agree, n = rows(*argv)
    print("\n".join(out))
    print(f"{agree} of {n} speed-ups agree both ways")
    return 0


if __name__ == "__main__":
    sys.exit(main())
