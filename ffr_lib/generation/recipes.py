"""Recipes: how many synthetic images per (y, b) group, decided before anything is generated.

The authors' rule (OFFICIAL_CODE.md): USB tops every (y, b) group up to the size of the largest
group of the whole real set; ASB and FFR use the same total split evenly over the groups,
per group = USB's total // number of groups. CelebA-HQ at 99.9 %: real (6, 5335, 7797, 8),
USB adds 18,042, so ASB/FFR use 4,510 per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

RECIPES = ("balanced", "biased", "agnostic", "scaled", "usb")


@dataclass(frozen=True)
class Recipe:
    """What synthetic set to make for a real biased split."""

    name: str = "balanced"  # balanced | biased | agnostic | scaled | usb
    total: int | None = None  # images in all; None = what USB needs for the real split
    scale: float = 1.0  # with 'scaled': the total is this multiple of the real set's size

    def __post_init__(self) -> None:
        if self.name not in RECIPES:
            raise ValueError(f"unknown recipe {self.name!r}; known: {', '.join(RECIPES)}")
        if self.name == "scaled" and not 0 < self.scale <= 100:
            raise ValueError(f"recipe 'scaled' needs 0 < scale <= 100, got {self.scale}")
        if self.total is not None and self.total < 0:
            raise ValueError(f"recipe {self.name!r}: total must be >= 0, got {self.total}")


def support_of(real: np.ndarray) -> np.ndarray:
    """bool (n_classes, n_biases): the (y, b) groups that exist in the real set."""
    return np.asarray(real) > 0


def usb_counts(real: np.ndarray, support: np.ndarray | None = None) -> np.ndarray:
    """Synthetic (y, b) counts that top every present group up to the largest real group."""
    real = np.asarray(real, dtype=np.int64)
    support = support_of(real) if support is None else np.asarray(support, dtype=bool)
    return np.where(support, real.max() - real, 0)


def even_counts(total: int, support: np.ndarray) -> np.ndarray:
    """total // n_groups in every supported group (the authors' ASB/FFR sizes)."""
    support = np.asarray(support, dtype=bool)
    return np.where(support, total // int(support.sum()), 0).astype(np.int64)


def synthetic_counts(real: np.ndarray, recipe: Recipe, support: np.ndarray | None = None) -> np.ndarray:
    """int64 (n_classes, n_biases): synthetic images per group that `recipe` makes for `real`.

    Exact for every recipe but 'agnostic', whose prompts name only the class: there the row
    sums (images per class) are exact and the split over b is the generator's (`class_budget`).
    """
    real = np.asarray(real, dtype=np.int64)
    support = support_of(real) if support is None else np.asarray(support, dtype=bool)
    default_total = int(usb_counts(real, support).sum())
    if recipe.name == "usb":
        return usb_counts(real, support)
    if recipe.name == "scaled":
        total = int(round(recipe.scale * real.sum()))
    else:
        total = recipe.total if recipe.total is not None else default_total
    if recipe.name in ("balanced", "scaled"):
        return even_counts(total, support)
    if recipe.name == "biased":  # the real set's own proportions, same total
        if real.sum() == 0:
            raise ValueError("recipe 'biased' follows the real set's proportions, but the real counts are all 0")
        share = real / real.sum()
        counts = np.floor(share * total).astype(np.int64)
        return np.where(support, np.maximum(counts, 1), 0)
    # agnostic: class-only prompts; the bias is whatever the generator draws
    return class_budget(total, support)


def class_budget(total: int, support: np.ndarray) -> np.ndarray:
    """For class-only ('agnostic') prompts: the per-class total, put in each class's row as an
    even split over its supported groups only as a budget; the generator decides b."""
    support = np.asarray(support, dtype=bool)
    per_class = total // support.shape[0]
    out = np.zeros(support.shape, dtype=np.int64)
    for y in range(support.shape[0]):
        out[y] = even_counts(per_class, support[y : y + 1])[0]
    return out


def recipe_counts_table(
    real: np.ndarray,
    recipe: Recipe,
    class_names: Sequence[str] | None = None,
    bias_names: Sequence[str] | None = None,
    support: np.ndarray | None = None,
) -> pd.DataFrame:
    """What `recipe` will make for `real`, before anything is generated.

    One row per supported (y, b) group: real count, synthetic count, their sum. For 'agnostic'
    (class-only prompts, the generator decides b) one row per class instead, bias '(any)'.
    """
    real = np.asarray(real, dtype=np.int64)
    support = support_of(real) if support is None else np.asarray(support, dtype=bool)
    cn = list(class_names) if class_names is not None else [str(i) for i in range(real.shape[0])]
    bn = list(bias_names) if bias_names is not None else [str(i) for i in range(real.shape[1])]
    synth = synthetic_counts(real, recipe, support)
    rows = []
    if recipe.name == "agnostic":
        for y in range(real.shape[0]):
            r, s = int(real[y].sum()), int(synth[y].sum())
            rows.append({"y": y, "class": cn[y], "b": -1, "bias": "(any)", "real": r, "synthetic": s, "total": r + s})
    else:
        for y, b in zip(*np.nonzero(support)):
            r, s = int(real[y, b]), int(synth[y, b])
            rows.append(
                {"y": int(y), "class": cn[y], "b": int(b), "bias": bn[b], "real": r, "synthetic": s, "total": r + s}
            )
    return pd.DataFrame(rows, columns=["y", "class", "b", "bias", "real", "synthetic", "total"])
