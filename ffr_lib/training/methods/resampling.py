"""Resampling: each epoch draws N indices with replacement, sample weight 1 / (its group's
frequency), so every group is equally likely in a batch (in expectation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .base import METHODS, Method


@METHODS.register("resampling")
class Resampling(Method):
    """Weighted sampling with replacement, weight 1 / group frequency; epoch = N draws."""

    name = "resampling"

    def __init__(self, groups: torch.Tensor, n_groups: int, hparams: Mapping[str, Any] | None = None, *,
                 y: torch.Tensor | None = None, reference: torch.Tensor | None = None) -> None:
        super().__init__(groups, n_groups, hparams, y=y, reference=reference)
        counts = torch.bincount(groups, minlength=n_groups).to(torch.float64)
        self.weights = (1.0 / counts)[groups]  # float64 (N,)

    def epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        n = len(self.groups)
        return torch.multinomial(self.weights, n, replacement=True, generator=generator)
