"""The embedded world ("shapes"): the paper's causal structure, procedurally, offline.

Class Y is a shape, bias B a background scene. Two layouts:
- binary: 2 shapes x 2 scenes (like CelebA-HQ and UTK-Face);
- animals: 4 shapes x 4 scenes, each pair of classes ("family") with its own pair of scenes,
  8 groups (like SpuCo Animals: landbird/waterbird on land/water, small/big dog indoor/outdoor).
Class k's majority scene is scene k. The training pool holds `train_majority` majority and
`train_minority` per minority group per class, enough for every paper ratio; a biased split is
cut from it by `make_biased`. Test sets are balanced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .grouped import REAL, DatasetSplits, GroupedImages
from .render import Artifacts, Camera, Style, render


@dataclass(frozen=True)
class Layout:
    """Which classes and scenes exist and which (class, scene) pairs occur."""

    name: str
    class_names: tuple[str, ...]  # shapes
    bias_names: tuple[str, ...]  # scenes
    support: tuple[tuple[int, ...], ...]  # scenes each class occurs with; class k's majority is k

    def groups(self) -> list[tuple[int, int]]:
        return [(y, b) for y, bs in enumerate(self.support) for b in bs]


LAYOUTS = {
    "binary": Layout("binary", ("circle", "square"), ("lake", "forest"), ((0, 1), (0, 1))),
    "animals": Layout(
        "animals",
        ("triangle", "circle", "square", "cross"),
        ("sand", "lake", "indoor", "forest"),
        ((0, 1), (0, 1), (2, 3), (2, 3)),
    ),
}


@dataclass(frozen=True)
class WorldConfig:
    """Everything that fixes the world's real images."""

    layout: str = "binary"  # 'binary' or 'animals'
    size: int = 32  # image side in px (32 default, 64 optional)
    shape_area: float = 0.12  # mean shape area as a share of the image
    seed: int = 0  # world seed: every image is a function of (seed, split, index)
    train_majority: int = 5000  # pool: majority samples per class
    train_minority: int = 2500  # pool: per minority (class, scene) group (a 2,500-per-group balanced set)
    val_majority: int = 500  # validation pool: majority per class
    val_minority: int = 100  # validation pool: per minority group (biased later, >= 10 kept)
    test_per_group: int = 300  # balanced test set: per (class, scene) group
    web_majority: float = 0.7  # the "web" corpus (diffusion training): majority share per class
    web_per_class: int = 2000  # the "web" corpus: images per class

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; known: {', '.join(LAYOUTS)}")
        if self.size not in (32, 64):
            raise ValueError(f"size must be 32 or 64, got {self.size}")

    @property
    def spec(self) -> Layout:
        return LAYOUTS[self.layout]


def split_counts(config: WorldConfig, split: str) -> list[tuple[int, int, int]]:
    """(y, b, count) of each group of a split, in index order."""
    spec = config.spec
    rows = []
    for y, b in spec.groups():
        major = b == y
        if split == "train":
            n = config.train_majority if major else config.train_minority
        elif split == "val":
            n = config.val_majority if major else config.val_minority
        elif split == "test":
            n = config.test_per_group
        elif split == "web":
            share = config.web_majority if major else (1 - config.web_majority) / (len(spec.support[y]) - 1)
            n = int(round(config.web_per_class * share))
        else:
            raise ValueError(f"unknown split {split!r}; known: train, val, test, web")
        rows.append((y, b, n))
    return rows


def split_labels(config: WorldConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """int64 y and b of every index of a split."""
    rows = split_counts(config, split)
    y = np.concatenate([np.full(n, yi) for yi, _, n in rows]).astype(np.int64)
    b = np.concatenate([np.full(n, bi) for _, bi, n in rows]).astype(np.int64)
    return y, b


def render_labelled(
    config: WorldConfig,
    stream: str,
    index: np.ndarray,
    y: np.ndarray,
    b: np.ndarray,
    style: Style = Style(),
    artifacts: Artifacts = Artifacts(),
    camera: Camera = Camera(),
    batch: int = 1024,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Render samples `index` of `stream` with labels (y, b): uint8 (N, 3, H, W), bool (N, H, W)."""
    spec = config.spec
    n, s = len(index), config.size
    images = np.empty((n, 3, s, s), dtype=np.uint8)
    masks = np.empty((n, s, s), dtype=bool)
    starts = range(0, n, batch)
    for start in tqdm(starts, desc=f"render {stream}", disable=not progress, leave=False):
        sl = slice(start, start + batch)
        images[sl], masks[sl] = render(
            config.seed,
            stream,
            index[sl],
            [spec.class_names[i] for i in y[sl]],
            [spec.bias_names[i] for i in b[sl]],
            s,
            style=style,
            artifacts=artifacts,
            camera=camera,
            area_fraction=config.shape_area,
        )
    return images, masks


def world_split(config: WorldConfig, split: str, progress: bool = False) -> GroupedImages:
    """All real images of one split of the world as GroupedImages (with shape masks)."""
    y, b = split_labels(config, split)
    index = np.arange(len(y))
    images, masks = render_labelled(config, split, index, y, b, progress=progress)
    spec = config.spec
    return GroupedImages.from_arrays(
        torch.from_numpy(images),
        y,
        b,
        spec.class_names,
        spec.bias_names,
        g=REAL,
        masks=torch.from_numpy(masks),
        info={"dataset": f"shapes-{config.layout}", "split": split, "world": config},
    )


def load_shapes(config: WorldConfig, progress: bool = True) -> DatasetSplits:
    """Train pool, validation pool and balanced test set of the world."""
    parts = {s: world_split(config, s, progress=progress) for s in ("train", "val", "test")}
    return DatasetSplits(
        name=f"shapes-{config.layout}",
        majority=tuple(range(len(config.spec.class_names))),
        **parts,
    )
