"""CelebA-HQ from the CelebAMask-HQ release: target Smiling, bias Male, seeded 80/10/10.

Labels come from `CelebAMask-HQ-attribute-anno.txt` (line 1: image count; line 2: the 40
attribute names; then `<file> <40 values of 1/-1>`), images from `CelebA-HQ-img/<n>.jpg`.
Rows are sorted by file name, then split 80/10/10 by a permutation seeded with `seed`
(the authors used os.listdir order, which is unspecified).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .grouped import DatasetSplits
from .loaders import (
    DataLayoutError,
    build_splits,
    decode_options,
    descend,
    image_files,
    require_root,
    resolve_majority,
    seeded_split,
)

NAME = "celeba-hq"
IMAGE_DIR = "CelebA-HQ-img"
ATTRIBUTE_FILE = "CelebAMask-HQ-attribute-anno.txt"
SOURCE = (
    "the CelebAMask-HQ release (https://github.com/switchablenorms/CelebAMask-HQ, CelebAMask-HQ.zip; "
    "root is its unpacked CelebAMask-HQ folder)"
)
LAYOUT = (
    f"<root>/{IMAGE_DIR}/<n>.jpg and <root>/{ATTRIBUTE_FILE} (line 1: the image count; line 2: the 40 "
    "attribute names; then one line per image: '<file> <40 values 1 or -1>')"
)
# (names of value -1, names of value 1) for the attributes the paper uses
VALUE_NAMES = {"Smiling": ("not smiling", "smiling"), "Male": ("female", "male")}
# the paper's direction: not smiling goes with male (b=1), smiling with female (b=0)
PAPER_MAJORITY = {("Smiling", "Male"): (1, 0)}


def value_names(attribute: str) -> tuple[str, str]:
    """Names of the label values 0 (attribute -1) and 1 (attribute 1)."""
    if attribute in VALUE_NAMES:
        return VALUE_NAMES[attribute]
    word = attribute.replace("_", " ").lower()
    return (f"not {word}", word)


def read_attributes(path: Path, columns: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """File names and int64 (N, len(columns)) labels (1 -> 1, -1 -> 0) from the attribute file.

    Errors name the file and the line (a row with a wrong number of values, a value other
    than 1/-1 in a used column, a count on line 1 that disagrees with the rows) or the missing
    column.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{NAME}: attribute file {path} is missing. Expected layout: {LAYOUT}")
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DataLayoutError(f"{path}: expected the image count on line 1 and the attribute names on line 2")
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise DataLayoutError(f"{path} line 1: expected the image count, got {lines[0].strip()!r}") from None
    names = lines[1].split()
    for col in columns:
        if col not in names:
            raise DataLayoutError(f"{path}: no attribute column {col!r} on line 2 (it has: {' '.join(names)})")
    where = [names.index(c) + 1 for c in columns]
    files: list[str] = []
    labels: list[list[int]] = []
    for lineno, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1:
            raise DataLayoutError(
                f"{path} line {lineno}: expected a file name and {len(names)} values, got {len(fields) - 1} values"
            )
        row = []
        for col, i in zip(columns, where):
            if fields[i] not in ("1", "-1"):
                raise DataLayoutError(f"{path} line {lineno}: column {col!r} holds {fields[i]!r}, not 1 or -1")
            row.append(1 if fields[i] == "1" else 0)
        files.append(fields[0])
        labels.append(row)
    if not files:
        raise DataLayoutError(f"{path}: lists no images")
    if declared != len(files):
        raise DataLayoutError(f"{path} line 1: says {declared} images but the file lists {len(files)}")
    return files, np.array(labels, dtype=np.int64).reshape(len(files), len(columns))


def load_celeba_hq(
    root: str | Path | None,
    *,
    seed: int = 0,
    target: str = "Smiling",
    bias: str = "Male",
    majority: Sequence[int] | str | None = "paper",
    **decode,
) -> DatasetSplits:
    """Train pool, validation and test of CelebA-HQ (images uint8 (N, 3, size, size)).

    y = target attribute (0: -1, 1: 1), b = bias attribute likewise. majority="paper" gives the
    authors' direction for Smiling/Male, (1, 0): not smiling with male, smiling with female
    (the largest group of "not smiling" is female in CelebA-HQ, so "largest group" would pick
    the wrong partner); for other attributes it means None (largest group per class).
    `decode`: DecodeOptions fields (size=224, cache, cache_dir, content_hash, workers, progress).
    """
    options = decode_options(NAME, decode, own=("seed", "target", "bias", "majority"))
    root = descend(require_root(root, NAME, SOURCE, LAYOUT), "CelebAMask-HQ", ATTRIBUTE_FILE)
    folder = root / IMAGE_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"{NAME}: image folder {folder} is missing. Expected layout: {LAYOUT}")
    if not image_files(folder):
        raise DataLayoutError(f"{NAME}: image folder {folder} is empty. Expected layout: {LAYOUT}")
    names, labels = read_attributes(root / ATTRIBUTE_FILE, (target, bias))
    order = sorted(range(len(names)), key=names.__getitem__)
    names = [names[i] for i in order]
    labels = labels[order]
    return build_splits(
        NAME,
        root,
        [f"{IMAGE_DIR}/{n}" for n in names],
        y=labels[:, 0],
        b=labels[:, 1],
        parts=seeded_split(len(names), seed),
        class_names=value_names(target),
        bias_names=value_names(bias),
        majority=resolve_majority(majority, PAPER_MAJORITY.get((target, bias))),
        options=options,
        info={"seed": seed, "target": target, "bias": bias},
    )
