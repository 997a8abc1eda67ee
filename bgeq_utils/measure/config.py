"""What a measurement measures and for how long: the bench configuration, the default calibration, and the
words a Result uses for its window and for quality that does not apply."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bgeq_utils.core import vocab
from bgeq_utils.measure import corpus, speed

#: calibration texts of a method's registry default configuration
DEFAULT_CALIBRATION = 64
#: what a timing window served: the run's comparison (every default method of a group, one window) or a
#: notebook's own study (variants, levers), shown as such wherever its figures appear
WINDOW_COMPARISON, WINDOW_NOTEBOOK = "comparison", "notebook"
#: the one way a Result says it has no quality: a note "<why>: quality is not applicable" (the comparison reads it)
QUALITY_NOT_APPLICABLE = vocab.QUALITY_NOT_APPLICABLE


@dataclass
class BenchConfig:
    """What is measured and how long: the speed grid and its time budget per cell, memory and size."""
    batch_sizes: tuple = (1, 32)
    seq_lens: tuple = (128,)
    seconds: float = 20.0          # budget per (batch, seq) cell and method; methods timed together add theirs
    min_repeats: int = 6           # rounds at least (6: the fewest for a 95% interval of a median)
    max_repeats: int = 60
    target: float = 0.03           # stop a cell early once every ratio's 95% interval is within +-3%
    warmup: int = 1
    baselines: bool = True         # time beside eager PyTorch FP32 and FP32 in the method's own runtime
    memory: bool = True            # memory in fresh processes
    memory_repeats: int = 2
    memory_batch: int | None = None   # None: the largest cell of the speed grid (the run's speed cell)
    memory_seq: int | None = None
    size: bool = True
    invariance: bool = True        # the same texts alone, in a length-sorted batch and in a padded batch
    invariance_texts: int = corpus.INVARIANCE_BATCH

    def __post_init__(self):
        """Every field checked before any work, the message naming the notebook parameter to fix."""
        for name, param in (("batch_sizes", "batch_sizes"), ("seq_lens", "seq_lens")):
            v = getattr(self, name)
            if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__") or not list(v) or \
                    not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v):
                raise ValueError(f"{param}={v!r}: use a list of positive whole numbers, e.g. [1, 32]")
            setattr(self, name, tuple(v))
        if self.memory_batch is None:
            self.memory_batch = max(self.batch_sizes)
        if self.memory_seq is None:
            self.memory_seq = max(self.seq_lens)
        checks = (("seconds", "seconds_per_cell", (int, float), 0.0), ("min_repeats", "min_repeats", int, 1),
                  ("max_repeats", "max_repeats", int, 1), ("target", "target", (int, float), 0.0),
                  ("warmup", "warmup", int, 0), ("memory_repeats", "memory_repeats", int, 1),
                  ("memory_batch", "memory_batch", int, 1), ("memory_seq", "memory_seq", int, 1),
                  ("invariance_texts", "invariance_texts", int, 2))
        for name, param, types, low in checks:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, types) or v < low:
                kind = "a whole number" if types is int else "a number"
                raise ValueError(f"{param}={v!r}: use {kind} >= {low:g}")
        for name in ("baselines", "memory", "size", "invariance"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{'measure_memory' if name == 'memory' else name}={getattr(self, name)!r}: "
                                 "use True or False")
        if self.max_repeats < self.min_repeats:
            raise ValueError(f"max_repeats={self.max_repeats} is below min_repeats={self.min_repeats}")

    def budget(self) -> speed.Budget:
        return speed.Budget(warmup=self.warmup, min_repeats=self.min_repeats, max_repeats=self.max_repeats,
                            seconds=self.seconds, target=self.target)

    def settings(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
