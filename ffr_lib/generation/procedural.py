"""The embedded world's procedural generator: the world's own renderer, with two knobs.

- fingerprint in [0, 1]: content-preserving artifacts a detector can find (a fixed-phase 2-px
  up-sampling pattern, low-pass sensor noise of the same power, a warm colour cast);
- fidelity in [0, 1]: how much the content departs from reality (rounded and wobbly outlines,
  larger and more upright shapes, the two-tone sub-mode missed, smoothed backgrounds).
Both 0 reproduce the real distribution exactly (the same formulas; other random draws).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.grouped import SYNTHETIC, GroupedImages
from ..data.render import Artifacts, Style
from ..data.world import WorldConfig, render_labelled

# the knobs' full strength (knob = 1)
FULL_ARTIFACTS = Artifacts(grid=0.04, noise_colour=1.0, cast=0.08)
FULL_STYLE = Style(
    corner_rounding=0.8, wobble=0.6, scale_shift=0.35, rotation_bias=0.7, drop_submode=1.0, texture_smoothing=0.7
)


def artifacts_at(fingerprint: float) -> Artifacts:
    f = _unit("fingerprint", fingerprint)
    return Artifacts(grid=f * FULL_ARTIFACTS.grid, noise_colour=f * FULL_ARTIFACTS.noise_colour, cast=f * FULL_ARTIFACTS.cast)


def style_at(fidelity: float) -> Style:
    q = _unit("fidelity", fidelity)
    full = FULL_STYLE
    return Style(
        corner_rounding=q * full.corner_rounding,
        wobble=q * full.wobble,
        scale_shift=q * full.scale_shift,
        rotation_bias=q * full.rotation_bias,
        drop_submode=q * full.drop_submode,
        texture_smoothing=q * full.texture_smoothing,
    )


def _unit(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


@dataclass(frozen=True)
class ProceduralGenerator:
    """Renders synthetic images of the world for requested (y, b) labels."""

    world: WorldConfig
    fingerprint: float = 0.0  # 0 = real camera; 1 = full artifacts
    fidelity: float = 0.0  # 0 = faithful content; 1 = full departures
    prior_majority: float = 0.7  # class-only prompts: share drawn on the class's majority scene

    def __post_init__(self) -> None:
        _unit("fingerprint", self.fingerprint)
        _unit("fidelity", self.fidelity)

    @property
    def stream(self) -> str:
        return f"synthetic/procedural/fp={self.fingerprint:g}/fid={self.fidelity:g}"

    def draw_bias(self, y: np.ndarray, seed: int) -> np.ndarray:
        """Scenes for class-only ('agnostic') requests: the majority scene with prior_majority,
        else one of the class's other scenes, uniformly."""
        spec = self.world.spec
        rng = np.random.default_rng([seed, 0xA6])
        out = np.empty(len(y), dtype=np.int64)
        for i, yi in enumerate(y):
            others = [b for b in spec.support[yi] if b != yi]
            out[i] = yi if rng.random() < self.prior_majority or not others else others[rng.integers(len(others))]
        return out

    def generate(
        self, y: np.ndarray, b: np.ndarray | None, seed: int, start: int = 0, progress: bool = False
    ) -> GroupedImages:
        """Synthetic images for labels y (and scenes b; None = class-only prompts).

        Image i is a pure function of (world seed, generator settings, seed, start + i), so a
        set can be generated in pieces and resumed.
        """
        y = np.asarray(y, dtype=np.int64)
        b = self.draw_bias(y, seed) if b is None else np.asarray(b, dtype=np.int64)
        index = np.arange(start, start + len(y))
        images, masks = render_labelled(
            self.world,
            f"{self.stream}/seed={seed}",
            index,
            y,
            b,
            style=style_at(self.fidelity),
            artifacts=artifacts_at(self.fingerprint),
            progress=progress,
        )
        spec = self.world.spec
        return GroupedImages.from_arrays(
            torch.from_numpy(images),
            y,
            b,
            spec.class_names,
            spec.bias_names,
            g=SYNTHETIC,
            masks=torch.from_numpy(masks),
            info={"generator": "procedural", "fingerprint": self.fingerprint, "fidelity": self.fidelity, "seed": seed},
        )


def labels_for(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand a (n_classes, n_biases) count table into y and b arrays, group by group."""
    ys, bs = np.nonzero(counts)
    y = np.repeat(ys, counts[ys, bs]).astype(np.int64)
    b = np.repeat(bs, counts[ys, bs]).astype(np.int64)
    return y, b
