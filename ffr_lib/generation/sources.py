"""The sources a synthetic set is rendered by, one registry (SOURCES): the procedural world
(and the composite benchmark's stand-in), Stable Diffusion, the small diffusion model.

A source is any object with
  name: str; settings() -> dict;
  class_only_bias(y, seed) -> int64 (N,) b of class-only requests (-1 = unknown);
  render(rows, set_seed) -> (uint8 (N, H, W, 3) images, int64 (N,) seeds, int64 (N,) attempts
                             [, int64 (N,) b found after rendering, for rows planned with b = -1])
where `rows` is a slice of a set's plan (columns index, y, b, prompt; generation/generate.py).
Stable Diffusion (diffusers, transformers) is imported only when a source of it is built.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from ..data.composite import CompositeConfig
from ..data.world import WorldConfig
from ..registry import Registry
from .composite import CompositeGenerator
from .procedural import ProceduralGenerator
from .prompts import load_prompts
from .synthetic_set import UNKNOWN_BIAS

PROCEDURAL_DATASETS = ("shapes-", "composite-")  # datasets a procedural generator renders


class Source(Protocol):
    name: str

    def settings(self) -> dict: ...

    def class_only_bias(self, y: np.ndarray, seed: int) -> np.ndarray: ...

    def render(self, rows: pd.DataFrame, set_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class ProceduralSource:
    """The embedded world's procedural generator as a source: image i is a pure function of
    (world, knobs, set seed, i), so any chunking gives the same images."""

    generator: ProceduralGenerator
    name: str = "procedural"

    def settings(self) -> dict:
        g = self.generator
        return {
            "fingerprint": g.fingerprint,
            "fidelity": g.fidelity,
            "prior_majority": g.prior_majority,
            "world": asdict(g.world),
        }

    def class_only_bias(self, y: np.ndarray, seed: int) -> np.ndarray:
        return self.generator.draw_bias(np.asarray(y, dtype=np.int64), seed)

    def render(self, rows: pd.DataFrame, set_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index = rows["index"].to_numpy(dtype=np.int64)
        y, b = rows["y"].to_numpy(dtype=np.int64), rows["b"].to_numpy(dtype=np.int64)
        out = np.empty((len(index), self.generator.world.size, self.generator.world.size, 3), dtype=np.uint8)
        breaks = np.flatnonzero(np.diff(index) != 1) + 1  # contiguous runs of indices
        for run in np.split(np.arange(len(index)), breaks):
            if len(run):
                part = self.generator.generate(y[run], b[run], set_seed, start=int(index[run[0]]))
                out[run] = part.images.permute(0, 2, 3, 1).numpy()
        n = len(index)
        return out, np.full(n, set_seed, dtype=np.int64), np.zeros(n, dtype=np.int64)


@dataclass(frozen=True)
class DiffusionSource:
    """The small conditional diffusion model (ffr_lib.generation.diffusion.DiffusionGenerator)
    as a source. Class-only images get their scene from the model's background classifier
    after sampling (planned b = -1)."""

    generator: Any  # a DiffusionGenerator
    name: str = "diffusion"

    def settings(self) -> dict:
        g = self.generator
        weights = json.loads((Path(g.path) / "config.json").read_text()).get("weights", "")
        return {"model": str(g.path), "weights": weights, "steps": g.steps, "batch": g.batch,
                "guidance": g.guidance, "world": asdict(g.world)}  # fmt: skip

    def class_only_bias(self, y: np.ndarray, seed: int) -> np.ndarray:
        return np.full(len(y), UNKNOWN_BIAS, dtype=np.int64)

    def render(self, rows: pd.DataFrame, set_seed: int) -> tuple[np.ndarray, ...]:
        index = rows["index"].to_numpy(dtype=np.int64)
        y, b = rows["y"].to_numpy(dtype=np.int64), rows["b"].to_numpy(dtype=np.int64)
        s = self.generator.world.size
        out, b_out = np.empty((len(index), s, s, 3), dtype=np.uint8), b.copy()
        for run in np.split(np.arange(len(index)), np.flatnonzero(np.diff(index) != 1) + 1):
            if len(run):
                asked = None if (b[run] == UNKNOWN_BIAS).all() else b[run]
                part = self.generator.generate(y[run], asked, set_seed, start=int(index[run[0]]))
                out[run] = part.images.permute(0, 2, 3, 1).numpy()
                b_out[run] = part.b.numpy()
        n = len(index)
        return out, np.full(n, set_seed, dtype=np.int64), np.zeros(n, dtype=np.int64), b_out


# -- sources by name -------------------------------------------------------------------------
SOURCES: Registry[Callable[..., Source]] = Registry("generator")


@SOURCES.register("procedural")
def _procedural(dataset: str, fingerprint: float = 0.0, fidelity: float = 0.0, world: Any = None,
                **_: Any) -> Source:  # fmt: skip
    world = world or benchmark_config(dataset)
    make = CompositeGenerator if isinstance(world, CompositeConfig) else ProceduralGenerator
    return ProceduralSource(make(world, fingerprint=fingerprint, fidelity=fidelity))


def benchmark_config(dataset: str, size: int | None = None, seed: int = 0) -> WorldConfig | CompositeConfig:
    """The config of a procedural dataset: the world (shapes-*) or the composite benchmark."""
    if dataset.startswith("shapes-"):
        return WorldConfig(layout=dataset.removeprefix("shapes-"), size=size or 32, seed=seed)
    if dataset.startswith("composite-"):
        return CompositeConfig(layout=dataset.removeprefix("composite-"), size=size or CompositeConfig.size, seed=seed)
    raise ValueError(f"generator 'procedural' renders the embedded world (shapes-*) and the composite benchmark "
                     f"(composite-*) only, not {dataset!r}")


@SOURCES.register("sd")
def _stable_diffusion(dataset: str, model: str | None = None, steps: int | None = None, **options: Any) -> Source:
    from .stable_diffusion import (
        AUTHORS_THRESHOLD,
        AUTHORS_THRESHOLDS,
        DEFAULT_MODEL,
        SDConfig,
        StableDiffusionSource,
    )

    fields = {k: v for k, v in options.items() if k in SDConfig.__dataclass_fields__ and v is not None}
    fields.setdefault("authors_threshold", AUTHORS_THRESHOLDS.get(dataset, AUTHORS_THRESHOLD))  # their script's
    config = SDConfig(model=model or DEFAULT_MODEL, steps=steps or load_prompts(dataset).sd_steps, **fields)
    return StableDiffusionSource(config)


@SOURCES.register("diffusion")
def _diffusion(dataset: str, model: str | None = None, steps: int | None = None, batch_size: int | None = None,
               **_: Any) -> Source:  # fmt: skip
    try:
        from .diffusion import DiffusionGenerator
    except ImportError as err:
        raise NotImplementedError(
            "generator 'diffusion' needs ffr_lib.generation.diffusion.DiffusionGenerator (the small "
            f"class- and bias-conditional model), which cannot be imported: {err}"
        ) from None
    if model is None:
        raise ValueError("generator 'diffusion' needs --model: a checkpoint folder written by ffr_lib.generation.diffusion")
    options = {k: v for k, v in (("steps", steps), ("batch", batch_size)) if v is not None}
    generator = DiffusionGenerator(model, device="cuda" if torch.cuda.is_available() else "cpu", **options)
    from .diffusion import dataset_of

    if dataset_of(generator.world) != dataset:
        raise ValueError(f"diffusion checkpoint {model} models {dataset_of(generator.world)}, not {dataset!r}")
    return DiffusionSource(generator)


def make_source(name: str, dataset: str, **options: Any) -> Source:
    """The source `name` ('procedural', 'sd', 'diffusion') for `dataset` with its options."""
    return SOURCES[name](dataset, **options)


def as_source(generator: Any) -> Source:
    """A source from a generator object (ProceduralGenerator, DiffusionGenerator) or a source."""
    if isinstance(generator, ProceduralGenerator):
        return ProceduralSource(generator)
    from .diffusion import DiffusionGenerator

    return DiffusionSource(generator) if isinstance(generator, DiffusionGenerator) else generator
