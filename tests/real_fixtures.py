"""Tiny folders in the exact published layouts of CelebA-HQ, UTK-Face and SpuCo Animals.

Every image is a solid 8x8 colour that encodes its labels, so a test can check that images and
labels stay aligned through sorting, shuffling and caching: red = 30 + 50 * y, green =
30 + 50 * b, blue = 6 * (a per-file serial number) mod 256.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

SIDE = 8
# the 40 CelebA attribute names, in the release's order
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)


def colour(y: int, b: int, serial: int) -> tuple[int, int, int]:
    """Red and green encode (y, b); blue encodes the serial number."""
    return (30 + 50 * y, 30 + 50 * b, (6 * serial) % 256)


def write_image(path: Path, rgb: tuple[int, int, int]) -> Path:
    """A solid SIDE x SIDE image; format from the suffix (JPEG at quality 95, PNG lossless)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (SIDE, SIDE), rgb)
    if path.suffix == ".jpg":
        image.save(path, quality=95)
    else:
        image.save(path)
    return path


# -- CelebA-HQ ---------------------------------------------------------------------------------
def make_celeba(
    root: Path,
    labels: Sequence[tuple[int, int]],
    columns: Sequence[str] = CELEBA_ATTRIBUTES,
    images: bool = True,
) -> Path:
    """root/CelebA-HQ-img/<i>.jpg and root/CelebAMask-HQ-attribute-anno.txt for (smiling, male)
    pairs; every other attribute is -1, except Young = 1 for even i. Returns root."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [str(len(labels)), " ".join(columns)]
    for i, (smiling, male) in enumerate(labels):
        values = {c: -1 for c in columns}
        values.update(Smiling=1 if smiling else -1, Male=1 if male else -1, Young=1 if i % 2 == 0 else -1)
        lines.append(f"{i}.jpg  " + " ".join(str(values[c]) for c in columns))
        if images:
            write_image(root / "CelebA-HQ-img" / f"{i}.jpg", colour(smiling, male, i))
    (root / "CelebAMask-HQ-attribute-anno.txt").write_text("\n".join(lines) + "\n")
    return root


def celeba_labels(counts: dict[tuple[int, int], int]) -> list[tuple[int, int]]:
    """(y, b) pairs, interleaved over groups so that file order does not sort by group."""
    pools = {k: n for k, n in counts.items()}
    out = []
    while any(pools.values()):
        for k in sorted(pools):
            if pools[k]:
                out.append(k)
                pools[k] -= 1
    return out


# -- UTK-Face ----------------------------------------------------------------------------------
def utk_name(age: int, gender: int, race: int, serial: int) -> str:
    return f"{age}_{gender}_{race}_2017011{serial:09d}.jpg.chip.jpg"


def make_utk(root: Path, people: Sequence[tuple[int, int]], bad_names: Sequence[str] = ()) -> Path:
    """One image per (age, gender) in root, named in the release's form; plus `bad_names`."""
    root.mkdir(parents=True, exist_ok=True)
    for i, (age, gender) in enumerate(people):
        b = 1 if age <= 5 else 0  # young = 1, old (or dropped) = 0
        write_image(root / utk_name(age, gender, i % 5, i), colour(gender, b, i))
    for j, name in enumerate(bad_names):
        write_image(root / name, (0, 0, j))
    return root


# -- SpuCo Animals -----------------------------------------------------------------------------
SPUCO_FAMILIES = (
    ("spuco_birds", (("landbirds", 0), ("waterbirds", 1)), (("land", 0), ("water", 1))),
    ("spuco_dogs", (("small_dogs", 2), ("big_dogs", 3)), (("indoor", 2), ("outdoor", 3))),
)


def make_spuco(root: Path, sizes: dict[str, dict[int, tuple[int, int]]]) -> Path:
    """root/spuco_{birds,dogs}/<split>/<class>/<bias>/<int>.png; sizes[split][y] = (majority,
    minority) counts, the majority being class y's own background (b = y). Returns root."""
    serial = 0
    for split, per_class in sizes.items():
        for family, classes, biases in SPUCO_FAMILIES:
            for class_dir, y in classes:
                for bias_dir, b in biases:
                    n = per_class[y][0] if b == y else per_class[y][1]
                    for k in range(n):
                        write_image(root / family / split / class_dir / bias_dir / f"{k}.png", colour(y, b, serial))
                        serial += 1
    return root
