"""The composite benchmark's procedural stand-in generator, and its scene classifier.

`CompositeGenerator` pastes objects of the object set's *web* split (never in the real pools)
onto crops of the scene photographs, with the world generator's two knobs (both 0 = the real
pasting process, other objects and draws):
- fingerprint in [0, 1]: a fixed-phase 2-px pattern (amplitude 0.04 at 1), low-pass noise
  (std 0.025) and a warm colour cast (8 %), the world's artifacts (procedural.FULL_ARTIFACTS);
- fidelity in [0, 1]: the crop blended with a blurred copy (up to 70 %), the object's alpha
  blurred (up to 1.5 px) and objects 42 % larger in area (log side shift up to 0.175).
It lets a sweep run USB / ASB / FFR on the benchmark at once; the learned generator (the small
diffusion model trained on the web corpus) is the one whose departures are not designed.

`SceneClassifier` tells the scene of an image from texture statistics (a logistic regression on
the real web corpus), for class-only samples of a generator that does not say which scene it drew.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import torch

from ..data.composite import CLASS_LABELS, CompositeConfig, Departures, composite_split, paste
from ..data.grouped import SYNTHETIC, GroupedImages
from ..data.idx import load_objects
from ..data.render import stream_id
from .procedural import FULL_ARTIFACTS, ProceduralGenerator, _unit

FULL_DEPARTURES = Departures(background_smoothing=0.7, object_blur=1.5, scale_shift=0.175)
NOISE_STD = 0.025  # low-pass noise of the fingerprint at 1, in [0, 1] units


def departures_at(fidelity: float) -> Departures:
    q = _unit("fidelity", fidelity)
    f = FULL_DEPARTURES
    return Departures(background_smoothing=q * f.background_smoothing, object_blur=q * f.object_blur,
                      scale_shift=q * f.scale_shift)


def fingerprinted(images: np.ndarray, fingerprint: float, seed: int, stream: str, index: np.ndarray) -> np.ndarray:
    """uint8 (n, 3, S, S) with the fingerprint at strength `fingerprint` (0: unchanged); the noise
    of image k is seeded by (seed, stream, index[k])."""
    f = _unit("fingerprint", fingerprint)
    if f == 0:
        return images
    n, _, s, _ = images.shape
    x = images.astype(np.float32) / 255.0
    sid = stream_id(stream)
    noise = np.stack([np.random.default_rng([seed, sid, int(i), 0xF1]).standard_normal((3, s, s), dtype=np.float32)
                      for i in index]) if n else np.zeros_like(x)
    low = sum(np.roll(np.roll(noise, dy, -2), dx, -1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 3.0  # unit std
    x = x + f * NOISE_STD * low
    x = x * (1.0 + f * FULL_ARTIFACTS.cast * np.array([1.0, 0.0, -1.0], dtype=np.float32))[None, :, None, None]
    ii, jj = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
    x = x + f * FULL_ARTIFACTS.grid * np.where((ii + jj) % 2 == 0, 1.0, -1.0).astype(np.float32)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class CompositeGenerator(ProceduralGenerator):
    """Synthetic composite images for requested (y, b); `world` is a CompositeConfig."""

    world: CompositeConfig = CompositeConfig()

    @property
    def stream(self) -> str:
        return f"synthetic/composite/fp={self.fingerprint:g}/fid={self.fidelity:g}"

    def generate(
        self, y: np.ndarray, b: np.ndarray | None, seed: int, start: int = 0, progress: bool = False
    ) -> GroupedImages:
        """Images for labels y (and scenes b; None = class-only, scenes drawn with `draw_bias`).

        Image i is a pure function of (config, knobs, seed, start + i, y_i, b_i): its web object
        and its draws come from generators seeded by those alone.
        """
        config, spec = self.world, self.world.spec
        y = np.asarray(y, dtype=np.int64)
        b = self.draw_bias(y, seed) if b is None else np.asarray(b, dtype=np.int64)
        index = np.arange(start, start + len(y))
        stream = f"{self.stream}/seed={seed}"
        web = load_objects(config.root).web
        members = [np.flatnonzero(np.isin(web.labels, labels)) for labels in CLASS_LABELS[config.layout]]
        sid = stream_id(stream)
        pick = np.array([members[yi][np.random.default_rng([config.seed, sid, int(i), 0x0B]).integers(len(members[yi]))]
                         for yi, i in zip(y, index)], dtype=np.int64)
        images, masks = paste(config, stream, index, web.images[pick] if len(pick) else web.images[:0],
                              [spec.bias_names[i] for i in b], departures_at(self.fidelity))
        images = fingerprinted(images, self.fingerprint, config.seed, stream, index)
        return GroupedImages.from_arrays(
            torch.from_numpy(images), y, b, spec.class_names, spec.bias_names, g=SYNTHETIC,
            masks=torch.from_numpy(masks),
            info={"generator": "composite-procedural", "fingerprint": self.fingerprint, "fidelity": self.fidelity,
                  "seed": seed},
        )


# -- scenes of generated images ------------------------------------------------------------------
def texture_features(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """float (n, 36): per channel and at three scales (the image average-pooled by 2, 4 and 8)
    the mean, std and mean absolute x / y differences, the fine texture left out so that a
    smoothed or noisy generated image is read like a real one. images uint8 (n, 3, S, S)."""
    x = torch.as_tensor(np.asarray(images)).float() / 255.0
    feats = []
    for k in (2, 4, 8):
        p = torch.nn.functional.avg_pool2d(x, k)
        dx, dy = (p[..., :, 1:] - p[..., :, :-1]).abs(), (p[..., 1:, :] - p[..., :-1, :]).abs()
        feats += [p.std((-2, -1)), dx.mean((-2, -1)), dy.mean((-2, -1))]
    feats.append(x.mean((-2, -1)))
    return torch.cat(feats, dim=1).numpy()


@dataclass(frozen=True)
class SceneClassifier:
    """A multinomial logistic regression on `texture_features`, fit on real web images."""

    config: CompositeConfig
    model: object  # sklearn pipeline

    def predict(self, images: torch.Tensor | np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """int64 (n,) scene of each image; with y, only among the scenes class y occurs with."""
        spec = self.config.spec
        if len(images) == 0:
            return np.zeros(0, dtype=np.int64)
        proba = np.full((len(images), len(spec.bias_names)), 0.0)
        proba[:, self.model.classes_] = self.model.predict_proba(texture_features(images))
        if y is not None:
            allowed = np.zeros((len(spec.class_names), len(spec.bias_names)), dtype=bool)
            for yi, bs in enumerate(spec.support):
                allowed[yi, list(bs)] = True
            proba = np.where(allowed[np.asarray(y, dtype=np.int64)], proba, -1.0)
        return proba.argmax(1).astype(np.int64)


@lru_cache(maxsize=4)
def scene_classifier(config: CompositeConfig, per_class: int = 1000) -> SceneClassifier:
    """The classifier fit on `per_class` real web images per class (the web corpus's own draws),
    each also blurred with sigma 1 and 2 px."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from torchvision.transforms.functional import gaussian_blur

    web = composite_split(replace(config, web_per_class=per_class), "web")
    # each image also blurred (sigma 1 and 2 px), so that a smoother generator is read the same
    blurred = [gaussian_blur(web.images, [k, k], [sigma, sigma]) for k, sigma in ((5, 1.0), (9, 2.0))]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(texture_features(torch.cat([web.images, *blurred])), np.tile(web.b.numpy(), 3))
    return SceneClassifier(config, model)
