"""SpuCo Animals in the folder layout the `spuco` package downloads: its fixed train/val/test.

Classes 0 landbird, 1 waterbird, 2 small dog, 3 big dog; biases 0 land, 1 water, 2 indoor,
3 outdoor; each class's majority is its own background (0, 1, 2, 3). Per (y, b) group the
release has train 10,000 majority / 500 minority, val 500 / 25, test 500 / 500, so its
training pool already sits at 95 % and cannot be cut to 90 % (make_biased says so).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .grouped import DatasetSplits
from .loaders import DataLayoutError, build_splits, decode_options, require_root

NAME = "spuco-animals"
SOURCE = (
    "the `spuco` package (pip install spuco; spuco.datasets.SpuCoAnimals(root=..., download=True) "
    "unpacks spuco_birds and spuco_dogs into root)"
)
LAYOUT = (
    "<root>/spuco_birds/{train,val,test}/{landbirds,waterbirds}/{land,water}/<int>.png and "
    "<root>/spuco_dogs/{train,val,test}/{small_dogs,big_dogs}/{indoor,outdoor}/<int>.png"
)
SPLITS = ("train", "val", "test")
CLASS_NAMES = ("landbird", "waterbird", "small dog", "big dog")
BIAS_NAMES = ("land", "water", "indoor", "outdoor")
MAJORITY = (0, 1, 2, 3)
# family folder, its (class folder, y) pairs, its (bias folder, b) pairs
FAMILIES = (
    ("spuco_birds", (("landbirds", 0), ("waterbirds", 1)), (("land", 0), ("water", 1))),
    ("spuco_dogs", (("small_dogs", 2), ("big_dogs", 3)), (("indoor", 2), ("outdoor", 3))),
)


def _natural(name: str) -> tuple:
    """Sort key: '10.png' after '9.png'."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def group_files(folder: Path) -> list[str]:
    """The .png files of one (split, class, bias) folder in natural order; errors name the folder."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{NAME}: folder {folder} is missing. Expected layout: {LAYOUT}")
    names = sorted(
        (p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".png" and not p.name.startswith(".")),
        key=_natural,
    )
    if not names:
        raise DataLayoutError(f"{NAME}: folder {folder} holds no .png images. Expected layout: {LAYOUT}")
    return names


def load_spuco_animals(root: str | Path | None, **decode) -> DatasetSplits:
    """Train pool, validation and test of SpuCo Animals (images uint8 (N, 3, size, size)).

    Every (split, class, bias) folder of both families must exist and hold images.
    `decode`: DecodeOptions fields (size=224, cache, cache_dir, ...).
    """
    options = decode_options(NAME, decode)
    root = require_root(root, NAME, SOURCE, LAYOUT)
    if not any((root / family).is_dir() for family, _, _ in FAMILIES):
        raise DataLayoutError(f"{NAME}: folder {root} holds neither spuco_birds nor spuco_dogs. Expected layout: {LAYOUT}")
    files: list[str] = []
    ys: list[int] = []
    bs: list[int] = []
    parts: dict[str, list[int]] = {}
    for split in SPLITS:
        start = len(files)
        for family, classes, biases in FAMILIES:
            for class_dir, y in classes:
                for bias_dir, b in biases:
                    rel = f"{family}/{split}/{class_dir}/{bias_dir}"
                    names = group_files(root / rel)
                    files += [f"{rel}/{n}" for n in names]
                    ys += [y] * len(names)
                    bs += [b] * len(names)
        parts[split] = list(range(start, len(files)))
    return build_splits(
        NAME,
        root,
        files,
        y=np.array(ys),
        b=np.array(bs),
        parts={k: np.array(v) for k, v in parts.items()},
        class_names=CLASS_NAMES,
        bias_names=BIAS_NAMES,
        majority=MAJORITY,
        options=options,
    )
