"""Prefetching a sweep's synthetic sets: render the sets of many runs into the disk cache
(ffr_lib.training.data_cache) in worker processes while the GPU trains, in the order the packs
need them; a future per data key says when a run's sets are there."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import torch

from ..training.config import RunConfig
from ..training.data_cache import CACHE_ENV
from ..training.modes import compose


def _warm(config: dict, cache: str) -> str:
    """Worker: compose one run's data (rendering into the cache what is missing)."""
    os.environ[CACHE_ENV] = cache
    torch.set_num_threads(1)
    c = RunConfig.from_dict(config)
    compose(c)
    return c.hash


def data_key(config: RunConfig) -> str:
    """Runs with one data key train and are evaluated on the same sets."""
    return replace(config, method="erm", lr=0.0, pre_lr=None, freeze_bn=False, epochs=1, pre_epochs=None).hash


def prefetch(configs: Sequence[RunConfig], cache: str | Path, workers: int) -> dict[str, Future]:
    """Start rendering the data of `configs` (in this order) in `workers` processes; returns a
    future per data key (wait on it before composing that run). The pool shuts down by itself
    once the queue is done; with workers < 1 nothing is started."""
    if workers < 1:
        return {}
    Path(cache).mkdir(parents=True, exist_ok=True)
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
    futures: dict[str, Future] = {}
    for c in configs:
        key = data_key(c)
        if key not in futures:
            futures[key] = pool.submit(_warm, c.to_dict(), str(cache))
    pool.shutdown(wait=False)
    return futures
