"""Decode a list of image files into one uint8 array, cached on disk.

Decoding 30,000 CelebA-HQ JPEGs takes minutes; reading back one uint8 array takes seconds.
An entry is keyed by sha256 over (format version, Pillow version, dataset name, size, and per
file its path relative to the root plus a fingerprint). The default fingerprint, "stat", is
the file's byte size and mtime in nanoseconds: one stat() per file (well under a second for
30k files), and any ordinary rewrite or replacement of a file changes it. Its blind spot is a
different file of identical size whose mtime was set back on purpose (`cp -p`, `rsync -t`);
`content_hash="bytes"` hashes every file's bytes instead (reads the whole dataset, still far
cheaper than decoding). A stale entry is never read: a changed key is a different file.

Entry: `<cache_dir>/images/<dataset>-<size>px-<key>.u8` (raw uint8, C order, (N, 3, S, S))
written atomically, then its `.json` (shape and file count) written last, so an entry
without its json, or whose byte length disagrees with it, is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
from PIL import Image
from tqdm.auto import tqdm

from ..io import atomic_write_bytes, atomic_write_text

FORMAT_VERSION = 1
CACHE_ENV = "FFR_CACHE"  # overrides the default cache folder ~/.cache/ffr
CONTENT_HASHES = ("stat", "bytes")


class ImageReadError(OSError):
    """An image file exists but cannot be decoded; the message names its path."""


@dataclass(frozen=True)
class DecodeOptions:
    """How a loader turns image files into a uint8 (N, 3, size, size) array."""

    size: int = 224  # output side in pixels: bilinear resize of the whole image, no crop
    cache: bool = True  # read/write decoded arrays under cache_dir
    cache_dir: str | Path | None = None  # None: $FFR_CACHE or ~/.cache/ffr
    content_hash: str = "stat"  # "stat" (size + mtime_ns per file) or "bytes" (sha256 of contents)
    workers: int = 4  # decoding threads (Pillow releases the GIL while decoding)
    progress: bool = True  # tqdm bar while decoding

    def __post_init__(self) -> None:
        if int(self.size) < 1:
            raise ValueError(f"size must be a positive number of pixels, got {self.size}")
        if self.content_hash not in CONTENT_HASHES:
            raise ValueError(f"content_hash must be one of {CONTENT_HASHES}, got {self.content_hash!r}")
        if int(self.workers) < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")


def default_cache_dir() -> Path:
    """$FFR_CACHE if set, else ~/.cache/ffr."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ffr"


def decode_image(path: Path, size: int) -> np.ndarray:
    """uint8 (3, size, size): the file decoded, converted to RGB, resized bilinearly (no crop)."""
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} is listed but missing") from None
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"cannot decode image {path}: {err}") from err
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def decode_all(paths: Sequence[Path], size: int, workers: int = 4, progress: bool = True, desc: str = "") -> np.ndarray:
    """uint8 (N, 3, size, size) of `paths` in order."""
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def one(p: Path) -> np.ndarray:
        return decode_image(p, size)

    bar = dict(total=len(paths), desc=desc or "decoding", unit="img", disable=not progress)
    if workers == 1 or len(paths) < 2:
        for i, arr in enumerate(tqdm(map(one, paths), **bar)):
            out[i] = arr
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, arr in enumerate(tqdm(pool.map(one, paths), **bar)):
                out[i] = arr
    return out


def _fingerprint(path: Path, mode: str) -> list:
    try:
        if mode == "bytes":
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            return [h.hexdigest()]
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} is listed but missing") from None


def cache_key(dataset: str, root: Path, files: Sequence[str], size: int, content_hash: str = "stat") -> str:
    """Hex sha256 naming the decoded array of `files` (paths relative to `root`) at `size`."""
    h = hashlib.sha256()
    head = {"v": FORMAT_VERSION, "pil": PIL.__version__, "dataset": dataset, "size": size, "hash": content_hash}
    h.update(json.dumps(head, sort_keys=True).encode())
    for rel in files:
        h.update(json.dumps([rel, *_fingerprint(root / rel, content_hash)]).encode())
        h.update(b"\n")
    return h.hexdigest()


def _read_entry(data: Path, meta: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        info = json.loads(meta.read_text())
        if tuple(info["shape"]) != shape or data.stat().st_size != int(np.prod(shape)):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not shape[0]:
        return np.empty(shape, dtype=np.uint8)
    return np.memmap(data, dtype=np.uint8, mode="r", shape=shape)


def load_images(dataset: str, root: Path, files: Sequence[str], options: DecodeOptions) -> np.ndarray:
    """uint8 (N, 3, S, S) of `files` (relative to `root`), from the cache when it holds them.

    A cached array comes back as a read-only memmap: index it (a copy) before handing it out.
    """
    size = int(options.size)
    paths = [root / f for f in files]
    shape = (len(files), 3, size, size)
    if not options.cache:
        return decode_all(paths, size, options.workers, options.progress, desc=dataset)
    folder = Path(options.cache_dir).expanduser() if options.cache_dir is not None else default_cache_dir()
    key = cache_key(dataset, root, files, size, options.content_hash)
    stem = folder / "images" / f"{dataset}-{size}px-{key[:32]}"
    data, meta = stem.with_suffix(".u8"), stem.with_suffix(".json")
    cached = _read_entry(data, meta, shape)
    if cached is not None:
        return cached
    arr = decode_all(paths, size, options.workers, options.progress, desc=dataset)
    atomic_write_bytes(data, arr.data)
    info = {"key": key, "shape": list(shape), "dataset": dataset, "root": str(root), "files": len(files)}
    atomic_write_text(meta, json.dumps(info, indent=2) + "\n")
    # hand back the file, not the decoded copy, so that cutting splits from it does not hold
    # two copies of a whole dataset in memory at once
    written = _read_entry(data, meta, shape)
    return arr if written is None else written
