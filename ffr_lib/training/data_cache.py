"""A disk cache of synthetic sets, and its parallel prefetch for a sweep.

Rendering the embedded world's synthetic sets is CPU work (about 4,600 32 px images/s a core)
that a GPU sweep would otherwise do between trainings, one core at a time: the paper profile
needs about a million images. With `FFR_SYNTHETIC_CACHE` set to a folder, every synthetic set
is written there once (atomically, `<key>.pt`) and read back by any process; `prefetch` renders
the sets of many runs in worker processes while the GPU trains, in the order they are needed.
A set is a pure function of its key (generator settings, counts, seed, start, class-only), so a
cached set is the set the run would render.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import torch

from ..data.grouped import GroupedImages
from ..io import atomic_write_bytes
from .config import RunConfig

CACHE_ENV = "FFR_SYNTHETIC_CACHE"


def cache_path(key: RunConfig, counts: tuple, seed: int, start: int, agnostic: bool) -> Path | None:
    """Where the set of this key lives in the cache, or None when no cache is set."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        return None
    name = hashlib.sha1(json.dumps([key.hash, counts, seed, start, agnostic]).encode()).hexdigest()[:20]
    return Path(root) / f"{name}.pt"


def load(path: Path | None) -> GroupedImages | None:
    if path is None or not path.is_file():
        return None
    return torch.load(path, weights_only=False)


def save(path: Path | None, data: GroupedImages) -> None:
    if path is None:
        return
    buffer = io.BytesIO()
    torch.save(data, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _warm(config: dict, cache: str) -> str:
    """Worker: compose one run's data (rendering into the cache what is missing)."""
    os.environ[CACHE_ENV] = cache
    torch.set_num_threads(1)
    from .modes import compose

    c = RunConfig.from_dict(config)
    compose(c)
    return c.hash


def data_key(config: RunConfig) -> str:
    """Runs with one data key train and are evaluated on the same sets."""
    from dataclasses import replace

    return replace(config, method="erm", lr=0.0, pre_lr=None, freeze_bn=False, epochs=1, pre_epochs=None).hash


def prefetch(configs: Sequence[RunConfig], cache: str | Path, workers: int) -> dict[str, Future]:
    """Start rendering the data of `configs` (in this order) in `workers` processes; returns a
    future per data key (wait on it before composing that run). The pool shuts down by itself
    once the queue is done; with workers < 1 nothing is started."""
    if workers < 1:
        return {}
    import multiprocessing as mp

    Path(cache).mkdir(parents=True, exist_ok=True)
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
    futures: dict[str, Future] = {}
    for c in configs:
        key = data_key(c)
        if key not in futures:
            futures[key] = pool.submit(_warm, c.to_dict(), str(cache))
    pool.shutdown(wait=False)
    return futures
