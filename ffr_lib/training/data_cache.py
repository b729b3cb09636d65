"""A disk cache of synthetic sets (its parallel prefetch for a sweep: ffr_lib.sweeps.prefetch).

Rendering the embedded world's synthetic sets is CPU work (about 4,600 32 px images/s a core)
that a GPU sweep would otherwise do between trainings, one core at a time: the paper profile
needs about a million images. With `FFR_SYNTHETIC_CACHE` set to a folder, every synthetic set
is written there once (atomically, `<key>.pt`) and read back by any process (modes.py reads and
writes it). A set is a pure function of its key (generator settings, counts, seed, start,
class-only), so a cached set is the set the run would render.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
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
