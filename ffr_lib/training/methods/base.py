"""What a method is: one registry entry (a class) holding its training hooks and its
hyperparameters, as DomainBed's algorithms and `hparams_registry` together.

Hooks of a method that trains the network (`trains = True`):
- `epoch_indices` / `batches`: the sampler, int64 (N,) sample indices of one epoch;
- `loss` / `reduce`: per-sample cross-entropy (B,) and groups (B,) -> the scalar loss;
- `reference_epochs`: a stage before its own (JTT's identification model): ERM for that many
  epochs from the same start, whose logits on the training set the method receives;
- `state`: what the run record keeps of the method (GroupDRO's weights, JTT's error count).
A method that refits a trained model instead (`trains = False`: DFR, AFR) has `refit`: the last
layer of its ERM base (`RunConfig.base()`) fitted on validation features.

`uses_groups` says whether training reads the group labels (b, and g for USB/ASB). A method
that does not (ERM, JTT, AFR) gets every sample in group 0 and no validation groups for its
refit, so it cannot read them; group labels still choose its epoch and its hyperparameters on
validation (model selection), as in JTT's and AFR's papers.

`hparams`: name -> HParam (default, search space, meaning). RunConfig carries a run's values as
a method-scoped mapping (`RunConfig.hparams`); its canonical form holds every hyperparameter of
the run's method, defaults filled in, so a changed default is a new hash. A grid crosses each
method's search space unless the profile sets the hyperparameter (sweeps/grids.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...data.grouped import GroupedImages
from ...registry import Registry


@dataclass(frozen=True)
class HParam:
    """One hyperparameter of a method: its default, the values a sweep tries unless the profile
    sets it (the search space), what it means and, for one that was a flat RunConfig field before
    issue #24, that field's name (kept in RunConfig.to_dict, so the stored runs' hashes stay)."""

    default: float | int
    search: tuple[float | int, ...]
    doc: str
    legacy: str | None = None
    minimum: float = 0.0  # smallest allowed value

    def coerce(self, value: Any, where: str) -> float | int:
        """`value` as the default's type, checked against `minimum`; ValueError naming `where`."""
        kind = type(self.default)
        try:
            if kind is int and float(value) != int(float(value)):
                raise ValueError
            out = kind(float(value)) if kind is int else kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be {'an integer' if kind is int else 'a number'}, got {value!r}") from None
        if out < self.minimum:
            raise ValueError(f"{where} must be >= {self.minimum:g}, got {out}")
        return out


def group_ids(data: GroupedImages, with_source: bool) -> tuple[torch.Tensor, list[tuple[int, ...]]]:
    """Contiguous group id per sample (int64 (N,)) and the (y, b) or (y, b, g) of each id."""
    if with_source:
        keys = torch.stack([data.y, data.b, data.g], dim=1)
    else:
        keys = torch.stack([data.y, data.b], dim=1)
    uniq, inverse = torch.unique(keys, dim=0, return_inverse=True)
    return inverse.to(torch.int64), [tuple(int(v) for v in row) for row in uniq.cpu()]


@dataclass
class RefitResult:
    """A refit last layer: `head` replaces the base model's head (features (N, D) -> logits
    (N, C)); `info` goes into the record under the method's name; `held_out`: validation indices
    the fit did not see, on which the record's `val` is measured (None: the base's `val`)."""

    head: nn.Module
    info: dict
    held_out: np.ndarray | None = None


class Method:
    """The hooks every method starts from, ERM's: shuffled batches, mean cross-entropy.

    groups: int64 (N,) contiguous group ids on the data's device (all 0 for a method that does
    not use groups); y: int64 (N,) labels; reference: float (N, C) logits of the reference model
    on the training set (only for methods with reference_epochs > 0)."""

    name: ClassVar[str] = "erm"
    trains: ClassVar[bool] = True
    uses_groups: ClassVar[bool] = True
    hparams: ClassVar[Mapping[str, HParam]] = {}

    def __init__(self, groups: torch.Tensor, n_groups: int, hparams: Mapping[str, Any] | None = None, *,
                 y: torch.Tensor | None = None, reference: torch.Tensor | None = None) -> None:
        self.groups = groups
        self.n_groups = n_groups
        self.hp = resolve(self.name, hparams or {})

    @classmethod
    def reference_epochs(cls, hparams: Mapping[str, Any]) -> int:
        """Epochs of ERM before this method's own training whose logits it needs (0: none)."""
        return 0

    def epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        """int64 (N,) sample indices of one epoch, in batch order."""
        n = len(self.groups)
        return torch.randperm(n, generator=generator, device=generator.device)

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """The index batches of one epoch (the last may be smaller; none is dropped)."""
        yield from self.epoch_indices(generator).split(batch_size)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """logits float (B, C), y and groups int64 (B,) -> scalar loss."""
        return self.reduce(F.cross_entropy(logits.float(), y, reduction="none"), groups)

    def reduce(self, losses: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Per-sample losses float (B,) and groups int64 (B,) -> the scalar loss (ERM: the mean)."""
        return losses.mean()

    def state(self) -> dict:
        """What the run record keeps of the method's own state."""
        return {}

    @classmethod
    def refit(cls, features: np.ndarray, y: np.ndarray, groups: np.ndarray | None, head: nn.Module,
              hparams: Mapping[str, Any], seed: int) -> RefitResult:
        """A method with trains = False: the new last layer from validation features float (N, D),
        labels int (N,), groups int (N,) (None for a method that does not use groups), the base's
        head and the run's hyperparameters (all of them: resolve)."""
        raise NotImplementedError(f"method {cls.name!r} trains a network; it does not refit")


METHODS: Registry[type[Method]] = Registry("method")


def resolve(method: str, given: Mapping[str, Any]) -> dict[str, float | int]:
    """Every hyperparameter of `method`: `given` values (coerced to the default's type), else the
    default. Names of other methods' hyperparameters are ignored (a config of another method)."""
    specs = METHODS[method].hparams
    return {name: spec.coerce(given[name], f"RunConfig.hparams[{name!r}] of method {method!r}")
            if name in given else spec.default for name, spec in sorted(specs.items())}


def known_hparams() -> dict[str, list[str]]:
    """Hyperparameter name -> the methods that have it."""
    out: dict[str, list[str]] = {}
    for name in METHODS.names():
        for hp in METHODS[name].hparams:
            out.setdefault(hp, []).append(name)
    return out


def legacy_fields() -> dict[str, tuple[str, str, float | int]]:
    """Flat RunConfig field of before issue #24 -> (method, hyperparameter, default)."""
    return {spec.legacy: (name, hp, spec.default) for name in METHODS.names()
            for hp, spec in METHODS[name].hparams.items() if spec.legacy}


def search_space(method: str, fixed: Mapping[str, Any] = ()) -> list[dict[str, float | int]]:
    """The hyperparameter settings a sweep tries for `method`: the product of each
    hyperparameter's search values, those in `fixed` held at the given value."""
    specs = sorted(METHODS[method].hparams.items())
    fixed = dict(fixed)
    axes = [[fixed[name]] if name in fixed else list(spec.search) for name, spec in specs]
    return [dict(zip([n for n, _ in specs], combo)) for combo in itertools.product(*axes)]


def make_method(name: str, groups: torch.Tensor, n_groups: int, hparams: Mapping[str, Any] | None = None, *,
                y: torch.Tensor | None = None, reference: torch.Tensor | None = None) -> Method:
    method = METHODS[name]
    if not method.trains:
        raise ValueError(f"method {name!r} does not train a network; it refits on a trained one")
    return method(groups, n_groups, hparams, y=y, reference=reference)
