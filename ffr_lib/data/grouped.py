"""GroupedImages: one set of images with class y, bias b and source g per sample.

Everything downstream (biased splits, USB/ASB mixing, training, metrics) speaks this one
container. Images are a single uint8 tensor (N, 3, H, W) so that a whole 32 px set sits in
memory or on a GPU and a batch is an index, not a decode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

REAL, SYNTHETIC = 0, 1
SOURCE_NAMES = ("real", "synthetic")


@dataclass(frozen=True, eq=False)
class GroupedImages:
    """A set of images with per-sample labels.

    images: uint8 (N, 3, H, W); y, b, g: int64 (N,); masks: optional bool (N, H, W), the
    pixels of the core object where the source knows them (the embedded world does).
    """

    images: torch.Tensor  # uint8 (N, 3, H, W)
    y: torch.Tensor  # int64 (N,) class
    b: torch.Tensor  # int64 (N,) bias group
    g: torch.Tensor  # int64 (N,) source: 0 real, 1 synthetic
    class_names: tuple[str, ...]
    bias_names: tuple[str, ...]
    masks: torch.Tensor | None = None  # bool (N, H, W) or None
    info: dict = field(default_factory=dict)  # provenance: dataset, split, seed, ratio ...

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        for name in ("y", "b", "g"):
            t = getattr(self, name)
            if t.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {tuple(t.shape)}")
        if n and int(self.y.max()) >= len(self.class_names):
            raise ValueError(f"y holds class {int(self.y.max())} but only {len(self.class_names)} class names")
        if n and int(self.b.max()) >= len(self.bias_names):
            raise ValueError(f"b holds bias {int(self.b.max())} but only {len(self.bias_names)} bias names")
        if self.masks is not None and self.masks.shape != (n, *self.images.shape[2:]):
            raise ValueError(f"masks must have shape (N, H, W), got {tuple(self.masks.shape)}")

    @classmethod
    def from_arrays(
        cls,
        images: torch.Tensor | np.ndarray,
        y: Sequence[int] | np.ndarray | torch.Tensor,
        b: Sequence[int] | np.ndarray | torch.Tensor,
        class_names: Sequence[str],
        bias_names: Sequence[str],
        g: int | Sequence[int] | np.ndarray | torch.Tensor = REAL,
        masks: torch.Tensor | np.ndarray | None = None,
        info: dict | None = None,
    ) -> GroupedImages:
        images = torch.as_tensor(images)
        n = images.shape[0]
        g_t = torch.full((n,), int(g), dtype=torch.int64) if isinstance(g, int) else torch.as_tensor(g, dtype=torch.int64)
        return cls(
            images=images,
            y=torch.as_tensor(np.asarray(y), dtype=torch.int64).reshape(n),
            b=torch.as_tensor(np.asarray(b), dtype=torch.int64).reshape(n),
            g=g_t.reshape(n),
            class_names=tuple(class_names),
            bias_names=tuple(bias_names),
            masks=None if masks is None else torch.as_tensor(masks, dtype=torch.bool),
            info=dict(info or {}),
        )

    # -- shape ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_biases(self) -> int:
        return len(self.bias_names)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def group(self) -> torch.Tensor:
        """int64 (N,): the (y, b) subgroup index y * n_biases + b."""
        return self.y * self.n_biases + self.b

    @property
    def group_with_source(self) -> torch.Tensor:
        """int64 (N,): the (y, b, g) index (y * n_biases + b) * 2 + g, for USB/ASB methods."""
        return self.group * 2 + self.g

    # -- tables --------------------------------------------------------------------------
    def counts(self, by_source: bool = False) -> pd.DataFrame:
        """Subgroup counts, one row per (y, b) (and g) present or possible, as a DataFrame."""
        keys = ["y", "b", "g"] if by_source else ["y", "b"]
        df = pd.DataFrame({k: getattr(self, k).cpu().numpy() for k in keys})
        counts = df.value_counts().rename("count")
        sources = (REAL, SYNTHETIC) if by_source else (None,)
        rows = []
        for yi in range(self.n_classes):
            for bi in range(self.n_biases):
                for gi in sources:
                    key = (yi, bi) if gi is None else (yi, bi, gi)
                    n = int(counts.get(key, 0))
                    if gi is not None and n == 0:
                        continue
                    row = {"y": yi, "class": self.class_names[yi], "b": bi, "bias": self.bias_names[bi]}
                    if gi is not None:
                        row.update(g=gi, source=SOURCE_NAMES[gi])
                    rows.append({**row, "count": n})
        return pd.DataFrame(rows)

    def count_array(self) -> np.ndarray:
        """int64 (n_classes, n_biases) counts of the (y, b) subgroups."""
        out = np.zeros((self.n_classes, self.n_biases), dtype=np.int64)
        np.add.at(out, (self.y.cpu().numpy(), self.b.cpu().numpy()), 1)
        return out

    # -- selection and composition -------------------------------------------------------
    def subset(self, index: torch.Tensor | np.ndarray | Sequence[int]) -> GroupedImages:
        """The samples at `index` (int positions or a boolean mask), in that order."""
        idx = torch.as_tensor(np.asarray(index) if not isinstance(index, torch.Tensor) else index)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        idx = idx.to(torch.int64).to(self.images.device)
        return replace(
            self,
            images=self.images[idx],
            y=self.y[idx],
            b=self.b[idx],
            g=self.g[idx],
            masks=None if self.masks is None else self.masks[idx],
            info=dict(self.info),
        )

    def with_source(self, g: int) -> GroupedImages:
        return replace(self, g=torch.full_like(self.g, g))

    def to(self, device: torch.device | str) -> GroupedImages:
        return replace(
            self,
            images=self.images.to(device),
            y=self.y.to(device),
            b=self.b.to(device),
            g=self.g.to(device),
            masks=None if self.masks is None else self.masks.to(device),
        )

    @staticmethod
    def concat(parts: Sequence[GroupedImages]) -> GroupedImages:
        """Join sets (USB/ASB mixing); each sample keeps its own g.

        Refuses sets whose class names, bias names or image sizes differ, since their labels
        would silently mean different things.
        """
        parts = [p for p in parts if p is not None]
        if not parts:
            raise ValueError("concat needs at least one GroupedImages")
        first = parts[0]
        for i, p in enumerate(parts[1:], start=1):
            if p.class_names != first.class_names:
                raise ValueError(f"concat: part {i} has class names {p.class_names}, part 0 has {first.class_names}")
            if p.bias_names != first.bias_names:
                raise ValueError(f"concat: part {i} has bias names {p.bias_names}, part 0 has {first.bias_names}")
            if p.images.shape[1:] != first.images.shape[1:]:
                raise ValueError(
                    f"concat: part {i} has images {tuple(p.images.shape[1:])}, part 0 has {tuple(first.images.shape[1:])}"
                )
        masks = None
        if all(p.masks is not None for p in parts):
            masks = torch.cat([p.masks for p in parts])
        return GroupedImages(
            images=torch.cat([p.images for p in parts]),
            y=torch.cat([p.y for p in parts]),
            b=torch.cat([p.b for p in parts]),
            g=torch.cat([p.g for p in parts]),
            class_names=first.class_names,
            bias_names=first.bias_names,
            masks=masks,
            info={"parts": [p.info for p in parts]},
        )

    def __repr__(self) -> str:
        return (
            f"GroupedImages(n={len(self)}, size={tuple(self.images.shape[1:])}, classes={self.class_names}, "
            f"biases={self.bias_names}, synthetic={int(self.g.sum())})"
        )


@dataclass(frozen=True)
class DatasetSplits:
    """What `load_dataset` returns: the training pool (to be biased), validation and test."""

    train: GroupedImages
    val: GroupedImages
    test: GroupedImages
    name: str
    # majority bias per class (class k's spurious partner); None = the largest group per class
    majority: tuple[int, ...] | None = None
