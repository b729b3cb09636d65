"""UTK-Face (aligned and cropped): target gender, bias age young/old, seeded 80/10/10.

Labels come from file names `<age>_<gender>_<race>_<datetime>.jpg.chip.jpg`. A name that
does not split on "_" into exactly four fields with integer age and race and gender 0/1 is
skipped (the release has a few), with one warning that counts them. Ages in neither bias
range are dropped. Bias indices follow the authors' tables: 0 old, 1 young (their 99.9 % split
keeps a single male-old image, listed first in (y, b) order).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .grouped import DatasetSplits
from .loaders import (
    DataLayoutError,
    build_splits,
    decode_options,
    image_files,
    require_root,
    resolve_majority,
    seeded_split,
)

NAME = "utk-face"
SOURCE = (
    "UTKFace, aligned and cropped faces (https://susanqq.github.io/UTKFace/, UTKFace.tar.gz; root is its "
    "unpacked UTKFace folder)"
)
LAYOUT = "<root>/<age>_<gender>_<race>_<datetime>.jpg.chip.jpg, gender 0 male / 1 female"
CLASS_NAMES = ("male", "female")
BIAS_NAMES = ("old", "young")
OLD, YOUNG = 0, 1
PAPER_MAJORITY = (YOUNG, OLD)  # the authors' direction: male with young, female with old


def parse_name(name: str) -> tuple[int, int, int] | None:
    """(age, gender, race) from a UTK-Face file name, or None when it is not in that form."""
    fields = name.split("_")
    if len(fields) != 4:
        return None
    try:
        age, gender, race = (int(f) for f in fields[:3])
    except ValueError:
        return None
    if age < 0 or gender not in (0, 1):
        return None
    return age, gender, race


def age_bias(age: int, young_max: int = 5, old_min: int = 20, old_max: int = 50) -> int | None:
    """YOUNG for age <= young_max, OLD for old_min <= age <= old_max, None (dropped) otherwise."""
    if age <= young_max:
        return YOUNG
    if old_min <= age <= old_max:
        return OLD
    return None


def load_utk_face(
    root: str | Path | None,
    *,
    seed: int = 0,
    young_max: int = 5,
    old_min: int = 20,
    old_max: int = 50,
    majority: Sequence[int] | str | None = "paper",
    **decode,
) -> DatasetSplits:
    """Train pool, validation and test of UTK-Face (images uint8 (N, 3, size, size)).

    y = gender (0 male, 1 female); b = 0 old (old_min <= age <= old_max), 1 young
    (age <= young_max); other ages are dropped. majority="paper" is (1, 0): male with young,
    female with old (the largest male group is old, so "largest group" would pick the wrong
    partner). `decode`: DecodeOptions fields (size=224, cache, cache_dir, ...).
    """
    options = decode_options(NAME, decode, own=("seed", "young_max", "old_min", "old_max", "majority"))
    if not young_max < old_min <= old_max:
        raise ValueError(f"need young_max < old_min <= old_max, got {young_max}, {old_min}, {old_max}")
    root = require_root(root, NAME, SOURCE, LAYOUT)
    if not image_files(root) and (root / "UTKFace").is_dir():
        root = root / "UTKFace"  # the archive's own folder
    names = image_files(root)
    if not names:
        raise DataLayoutError(f"{NAME}: folder {root} holds no .jpg/.png images. Expected layout: {LAYOUT}")
    files, ys, bs, bad = [], [], [], []
    for name in names:
        parsed = parse_name(name)
        if parsed is None:
            bad.append(name)
            continue
        age, gender, _ = parsed
        b = age_bias(age, young_max, old_min, old_max)
        if b is not None:
            files.append(name)
            ys.append(gender)
            bs.append(b)
    if bad:
        examples = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
        warnings.warn(
            f"{NAME}: skipped {len(bad)} of {len(names)} files in {root} whose names are not "
            f"<age>_<gender>_<race>_<datetime>.jpg.chip.jpg ({examples})",
            stacklevel=2,
        )
    if not files:
        raise DataLayoutError(
            f"{NAME}: no image in {root} has an age <= {young_max} or in [{old_min}, {old_max}]"
        )
    return build_splits(
        NAME,
        root,
        files,
        y=np.array(ys),
        b=np.array(bs),
        parts=seeded_split(len(files), seed),
        class_names=CLASS_NAMES,
        bias_names=BIAS_NAMES,
        majority=resolve_majority(majority, PAPER_MAJORITY),
        options=options,
        info={
            "seed": seed,
            "young_max": young_max,
            "old_min": old_min,
            "old_max": old_max,
            "skipped_names": len(bad),
            "dropped_ages": len(names) - len(bad) - len(files),
        },
    )
