"""Phases of long work (build, window, memory, fidelity) reported to whoever runs the notebooks.

A notebook runs in a kernel whose output the runner does not stream; the pipeline appends one JSON line per
phase start and end to the file named by ``BGEQ_PROGRESS`` (the runner sets it), and the runner prints them
with what the same phase cost last time. Without the variable nothing is written.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager

ENV = "BGEQ_PROGRESS"


def event(phase: str, what: str, seconds: float | None = None) -> None:
    """One line: a phase started (``seconds`` None) or ended after ``seconds``."""
    target = os.environ.get(ENV)
    if not target:
        return
    line = {"t": round(time.time(), 1), "phase": phase, "what": what}
    if seconds is not None:
        line["seconds"] = round(seconds, 1)
    try:
        with open(target, "a", encoding="utf8") as f:
            f.write(json.dumps(line) + "\n")
    except OSError:
        pass  # progress is a courtesy: it never ends the work it reports


@contextmanager
def phase(name: str, what: str):
    event(name, what)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        event(name, what, time.perf_counter() - t0)


def read_new(path, offset: int = 0) -> tuple[list[dict], int]:
    """Events appended to ``path`` since byte ``offset`` (complete lines only), and the new offset."""
    try:
        with open(path, encoding="utf8") as f:
            f.seek(offset)
            chunk = f.read()
    except OSError:
        return [], offset
    complete = chunk[:chunk.rfind("\n") + 1]
    out = []
    for line in complete.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out, offset + len(complete.encode("utf8"))
