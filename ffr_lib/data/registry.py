"""The dataset registry: `load_dataset(name, root=None, **options) -> DatasetSplits`.

The embedded world needs no root; the paper's datasets are read from local folders in their
published layouts (see ffr_lib.data.loaders).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..registry import Registry
from .grouped import DatasetSplits
from .world import WorldConfig, load_shapes

DATASETS: Registry[Callable[..., DatasetSplits]] = Registry("dataset")


@DATASETS.register("shapes-binary")
def _shapes_binary(root: Path | None = None, **options) -> DatasetSplits:
    progress = options.pop("progress", True)
    return load_shapes(WorldConfig(layout="binary", **options), progress=progress)


@DATASETS.register("shapes-animals")
def _shapes_animals(root: Path | None = None, **options) -> DatasetSplits:
    progress = options.pop("progress", True)
    return load_shapes(WorldConfig(layout="animals", **options), progress=progress)


def load_dataset(name: str, root: str | Path | None = None, **options) -> DatasetSplits:
    """Train pool, validation and test of dataset `name` as GroupedImages.

    `options` go to the dataset's loader (for the world: WorldConfig fields such as size, seed).
    """
    return DATASETS[name](None if root is None else Path(root), **options)
