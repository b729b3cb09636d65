"""GroupDRO (Sagawa et al. 2020): shuffled batches; group weights q updated by exponentiated
gradient, q_g <- q_g * exp(step * loss_g), renormalised; loss = sum_g q_g * loss_g. Groups are
(y, b) for None and FFR, the (y, b, g) present for USB and ASB."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from .base import METHODS, HParam, Method


@METHODS.register("groupdro")
class GroupDRO(Method):
    """Exponentiated-gradient weights over groups; the loss is the q-weighted group mean."""

    name = "groupdro"
    hparams = {"step": HParam(0.01, (0.01,), "step size of the exponentiated-gradient group weights (the "
                                           "authors' 0.01; DomainBed's groupdro_eta)", legacy="dro_step")}

    def __init__(self, groups: torch.Tensor, n_groups: int, hparams: Mapping[str, Any] | None = None, *,
                 y: torch.Tensor | None = None, reference: torch.Tensor | None = None) -> None:
        super().__init__(groups, n_groups, hparams, y=y, reference=reference)
        self.step = self.hp["step"]
        self.q = torch.full((n_groups,), 1.0 / n_groups, device=groups.device)

    def group_losses(self, losses: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """float (G,): mean per-sample loss of each group in the batch (0 for absent groups).
        Summed through a one-hot matrix, not index_add_: on CUDA index_add_ adds with atomics in
        no fixed order, so two runs of one seed would differ in the last bits."""
        member = F.one_hot(groups, self.n_groups).to(losses.dtype)  # (B, G)
        total = (member * losses[:, None]).sum(0)
        count = member.sum(0)
        return total / count.clamp(min=1)

    def reduce(self, losses: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        per_group = self.group_losses(losses, groups)
        with torch.no_grad():  # in place: a CUDA graph of the step (graphs.py) keeps q's address
            self.q.mul_(torch.exp(self.step * per_group.detach()))
            self.q.div_(self.q.sum())
        return (self.q * per_group).sum()

    def state(self) -> dict:
        return {"q": [round(float(v), 6) for v in self.q.cpu()]}
