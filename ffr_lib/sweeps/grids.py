"""Grids: the product of (field -> values) axes over a base RunConfig, canonicalised and
deduplicated by hash. A profile (profiles.py) is a union of grids. Each run is crossed with its
method's search space (methods.base.HParam.search), except the hyperparameters the base or an
axis sets (`hparams`): a profile overrides a method's search space by setting them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..training.config import RunConfig
from ..training.methods import search_space


@dataclass(frozen=True)
class Grid:
    """The product of `axes` ((field, values) pairs) applied to `base`."""

    base: RunConfig
    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def configs(self) -> list[RunConfig]:
        names = [name for name, _ in self.axes]
        unknown = [n for n in names if n not in RunConfig.__dataclass_fields__]
        if unknown:
            raise ValueError(f"Grid axes name unknown RunConfig field(s): {', '.join(unknown)}")
        values = [tuple(v) for _, v in self.axes]
        out = []
        for combo in itertools.product(*values):
            c = replace(self.base, **dict(zip(names, combo)))
            # the method's search space, but for the hyperparameters the base or an axis sets
            out += [replace(c, hparams=tuple(setting.items())) for setting in search_space(c.method, dict(c.hparams))]
        return out


def grid(base: RunConfig, **axes: Sequence[Any]) -> Grid:
    """Grid(base, axes) from keyword axes: grid(base, ratio=(0.95, 0.99), seed=(0, 1))."""
    return Grid(base, tuple((k, tuple(v)) for k, v in axes.items()))


def unique(configs: Iterable[RunConfig]) -> list[RunConfig]:
    """Canonical configs, first occurrence of each hash kept, order preserved."""
    seen: dict[str, RunConfig] = {}
    for c in configs:
        c = c.canonical()
        seen.setdefault(c.hash, c)
    return list(seen.values())
