"""What the loaders of the paper's datasets share: root checks, the seeded 80/10/10 split,
and turning (files, labels, split indices) into DatasetSplits.

The loaders themselves: `celeba.load_celeba_hq`, `utk.load_utk_face`,
`spuco.load_spuco_animals`; reach them through `load_dataset(name, root=...)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .grouped import REAL, DatasetSplits, GroupedImages
from .image_cache import DecodeOptions, load_images

SPLIT_FRACTIONS = (Fraction(8, 10), Fraction(1, 10), Fraction(1, 10))  # train / val / test
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class DataLayoutError(ValueError):
    """A dataset folder or annotation file does not have the published layout."""


def require_root(root: str | Path | None, dataset: str, source: str, layout: str) -> Path:
    """`root` as a Path, or an error saying where the data comes from and how it must lie."""
    hint = f"{dataset} comes from {source}. Expected layout: {layout}"
    if root is None:
        raise FileNotFoundError(f"{dataset}: no root folder given (pass root=...). {hint}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{dataset}: root folder {path} does not exist. {hint}")
    return path


def descend(root: Path, name: str, marker: str) -> Path:
    """`root`, or `root/name` when the marker is not in root but is there (an unpacked archive)."""
    if not (root / marker).exists() and (root / name / marker).exists():
        return root / name
    return root


def image_files(folder: Path) -> list[str]:
    """Names of the image files directly in `folder` (hidden files skipped), sorted."""
    return sorted(
        p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def seeded_split(n: int, seed: int, fractions: Sequence[Fraction] = SPLIT_FRACTIONS) -> dict[str, np.ndarray]:
    """Indices of train/val/test for n items already sorted by file name.

    A permutation seeded by `seed` (numpy default_rng) is cut into val = floor(n * 1/10),
    test = floor(n * 1/10) and train = the rest (n = 30,000 gives 24,000 / 3,000 / 3,000); the
    first cut is train, then val, then test. Each split's indices are sorted (file-name order).
    """
    n_val, n_test = (int(Fraction(n) * f) for f in fractions[1:])
    n_train = n - n_val - n_test
    perm = np.random.default_rng(seed).permutation(n)
    cuts = {"train": perm[:n_train], "val": perm[n_train : n_train + n_val], "test": perm[n_train + n_val :]}
    return {k: np.sort(v) for k, v in cuts.items()}


def decode_options(dataset: str, options: Mapping, own: Sequence[str] = ()) -> DecodeOptions:
    """DecodeOptions from a loader's remaining keyword arguments; an unknown one is named."""
    known = set(DecodeOptions.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"{dataset}: unknown option(s) {unknown}; known: {sorted(known | set(own))}")
    return DecodeOptions(**options)


def resolve_majority(majority: Sequence[int] | str | None, paper: Sequence[int] | None) -> Sequence[int] | None:
    """The majority bias per class: "paper" -> the authors' direction (`paper`), else as given."""
    if isinstance(majority, str):
        if majority != "paper":
            raise ValueError(f"majority must be 'paper', None or one bias index per class, got {majority!r}")
        return paper
    return majority


def build_splits(
    name: str,
    root: Path,
    files: Sequence[str],
    y: np.ndarray,
    b: np.ndarray,
    parts: Mapping[str, np.ndarray],
    class_names: Sequence[str],
    bias_names: Sequence[str],
    majority: Sequence[int] | None,
    options: DecodeOptions,
    info: Mapping | None = None,
) -> DatasetSplits:
    """Decode `files` (relative to root) once and cut them into train/val/test GroupedImages."""
    images = load_images(name, root, files, options)
    y = np.asarray(y, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    sets = {}
    for split, idx in parts.items():
        idx = np.asarray(idx, dtype=np.int64)
        sets[split] = GroupedImages.from_arrays(
            images=torch.from_numpy(np.asarray(images[idx])),  # fancy indexing copies out of a memmap
            y=y[idx],
            b=b[idx],
            class_names=class_names,
            bias_names=bias_names,
            g=REAL,
            info={"dataset": name, "split": split, "root": str(root), "size": int(options.size), **(info or {})},
        )
    return DatasetSplits(
        train=sets["train"],
        val=sets["val"],
        test=sets["test"],
        name=name,
        majority=None if majority is None else tuple(int(m) for m in majority),
    )
