"""A corpus too large for one process's time budget, encoded in shards on the workers and merged in order.

The merge gives exactly one process's embeddings (``np.array_equal``), not merely close ones: an encoder embeds
longest texts first in batches (``Encoder.encode``), and a text's embedding depends, in the last bits, on the
padded length of its batch (1e-7 apart on the default model). So the shards are cut from that same longest-first
order at multiples of the batch size: every batch of every shard holds the texts one process would have batched
together, and each shard's own longest-first sort leaves its (already sorted) texts in place.

:func:`reference_embeddings` writes a run's FP32 reference embeddings this way, in the file
``01_baseline_fp32`` and every later notebook of the run read (they reuse it when its texts and model match).
"""
from __future__ import annotations

import math
import uuid

import numpy as np

from bgeq_utils import methods
from bgeq_utils.core import paths
from bgeq_utils.inputs import data, models
from bgeq_utils.measure import pipeline
from bgeq_utils.sweep import tasks

_LOADED: dict[tuple, tuple] = {}


def order(texts: list[str], prompt: str | None = None) -> np.ndarray:
    """The order an encoder embeds ``texts`` in: longest first, ties in input order (as ``Encoder.encode``)."""
    return np.argsort([-len((prompt or "") + t) for t in texts], kind="stable")


def plan(n: int, shard_size: int, batch_size: int) -> list[tuple[int, int]]:
    """[start, stop) of each shard in the longest-first order: ``shard_size`` rounded up to whole batches."""
    if n < 0 or shard_size < 1 or batch_size < 1:
        raise ValueError(f"shard_size={shard_size!r} and batch_size={batch_size!r} must be >= 1")
    step = math.ceil(shard_size / batch_size) * batch_size
    return [(s, min(s + step, n)) for s in range(0, n, step)]


def loaded(model: str, weights: str, method: str = "fp32", device: str = "cpu") -> tuple:
    """(reference, encoder), once per worker process and configuration, built on first use."""
    key = (model, weights, method, device)
    if key not in _LOADED:
        reference = models.load_reference(model, weights=weights, device="cpu")
        _LOADED[key] = (reference, methods.build(method, reference, device=device))
    return _LOADED[key]


def encode_shard(texts: list[str], model: str = "default", weights: str = "pretrained", method: str = "fp32",
                 device: str = "cpu", batch_size: int = 32, prompt: str | None = None,
                 threads: int | None = 1) -> np.ndarray:
    """Embeddings of one shard (its texts already longest first), on a worker, with a fixed thread count."""
    import torch
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        return loaded(model, weights, method, device)[1].encode(list(texts), batch_size, prompt=prompt)
    finally:                  # a worker that is a thread of the caller's process leaves its setting alone
        torch.set_num_threads(before)


def encode_sharded(client, texts: list[str], model: str = "default", weights: str = "pretrained",
                   method: str = "fp32", device: str = "cpu", shard_size: int = 10_000, batch_size: int = 32,
                   prompt: str | None = None, threads: int | None = 1) -> np.ndarray:
    """``texts`` embedded in shards on the workers of ``client``, merged back into input order: equal to
    ``methods.build(method, reference).encode(texts, batch_size, prompt=prompt)`` in one process."""
    texts = list(texts)
    idx = order(texts, prompt)
    futures = [client.submit(encode_shard, [texts[i] for i in idx[a:b]], model, weights, method, device, batch_size,
                             prompt, threads, pure=False, key=f"bgeq-shard-{a}-{b}-{uuid.uuid4().hex[:8]}")
               for a, b in plan(len(texts), shard_size, batch_size)]
    parts = client.gather(futures)
    if not parts:
        return np.zeros((0, 0), np.float32)
    out = np.empty((len(texts), parts[0].shape[1]), parts[0].dtype)
    for (a, b), emb in zip(plan(len(texts), shard_size, batch_size), parts):
        out[idx[a:b]] = emb
    return out


def reference_embeddings(client, model: str = "default", weights: str = "pretrained", dataset: str = "lee",
                         run: str = "default", max_docs: int | None = None, max_queries: int | None = None,
                         shard_size: int = 10_000, batch_size: int = 32, outputs=None) -> str:
    """A run's FP32 reference embeddings encoded in shards, written where the notebooks look for them (the file
    and layout of ``measure.pipeline.reference_embeddings``, which reuses it). Returns the file's path."""
    from pathlib import Path


    reference = loaded(model, weights)[0]
    evalset = data.load_evalset(dataset, max_docs=max_docs, max_queries=max_queries)
    kw = {"model": model, "weights": weights, "shard_size": shard_size, "batch_size": batch_size}
    corpus = encode_sharded(client, list(evalset.corpus.values()), **kw)
    if not evalset.queries:
        queries = np.zeros((0, corpus.shape[1]), corpus.dtype)
    elif evalset.symmetric:         # as pipeline.embed_evalset: the queries are the documents, no instruction
        queries = corpus if list(evalset.queries) == list(evalset.corpus) else \
            encode_sharded(client, list(evalset.queries.values()), **kw)
    else:
        queries = encode_sharded(client, list(evalset.queries.values()), prompt=reference.query_prompt, **kw)
    f = paths.embeddings_dir(run, outputs) / pipeline.embeddings_file(run, evalset).name
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp.npz")
    ids = np.array(list(evalset.corpus) + ["|"] + list(evalset.queries))
    np.savez(tmp, corpus=corpus, queries=queries, ids=ids, model=reference.model_id)
    Path(tmp).replace(f)
    return str(f)


def run_shards(task: dict, outputs: str, context: dict, *deps: dict) -> dict:
    """The sweep task of kind ``shards``: on a worker, fan the encoding out to the workers (``worker_client``
    frees this task's thread while it waits) and write the run's reference embeddings. Never raises."""
    import time
    import traceback

    from distributed import worker_client

    blocked = tasks.blocked_by(task, list(deps))
    if blocked:
        return blocked
    p = task["parameters"]
    started = time.time()
    try:
        with worker_client() as client:
            f = reference_embeddings(client, p["model"], p["weights"], p["dataset"], p["run"], p.get("max_docs"),
                                     p.get("max_queries"), shard_size=p["shard_size"], outputs=outputs)
        status, error, output = "ok", "", f
    except Exception as e:
        status, output = "failed", None
        error = f"{type(e).__name__}: {str(e).strip()[:300]} | {traceback.format_exc(limit=3)[-500:]}"
    finished = time.time()
    return tasks.outcome(task, status, error=error, output=output, started=started, finished=finished,
                          seconds=round(finished - started, 2), threads=1, bench=False)
