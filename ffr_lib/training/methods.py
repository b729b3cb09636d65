"""Methods, one registry: how a stage draws its batches and what loss it minimises.

- ERM: shuffled batches, mean cross-entropy.
- GroupDRO (Sagawa et al. 2020): shuffled batches; group weights q updated by exponentiated
  gradient, q_g <- q_g * exp(step * loss_g), renormalised, loss = sum_g q_g * loss_g.
- Resampling: each epoch draws N indices with replacement, sample weight 1 / (its group's
  frequency), so every group is equally likely in a batch (in expectation).
- DFR: no network training; the last layer is refit on validation features (see dfr.py).
Groups are given as contiguous ids 0..G-1 per sample: (y, b) for None and FFR, the (y, b, g)
present for USB and ASB (`group_ids`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ..data.grouped import GroupedImages
from ..registry import Registry


def group_ids(data: GroupedImages, with_source: bool) -> tuple[torch.Tensor, list[tuple[int, ...]]]:
    """Contiguous group id per sample (int64 (N,)) and the (y, b) or (y, b, g) of each id."""
    if with_source:
        keys = torch.stack([data.y, data.b, data.g], dim=1)
    else:
        keys = torch.stack([data.y, data.b], dim=1)
    uniq, inverse = torch.unique(keys, dim=0, return_inverse=True)
    return inverse.to(torch.int64), [tuple(int(v) for v in row) for row in uniq.cpu()]


class Method:
    """ERM: the base of every method. `groups` is int64 (N,) contiguous ids on the data's device."""

    name = "erm"
    trains = True

    def __init__(self, groups: torch.Tensor, n_groups: int, dro_step: float = 0.01) -> None:
        self.groups = groups
        self.n_groups = n_groups
        self.dro_step = dro_step

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


METHODS: Registry[type[Method]] = Registry("method")
METHODS.register("erm")(Method)


@METHODS.register("groupdro")
class GroupDRO(Method):
    """Exponentiated-gradient weights over groups; the loss is the q-weighted group mean."""

    name = "groupdro"

    def __init__(self, groups: torch.Tensor, n_groups: int, dro_step: float = 0.01) -> None:
        super().__init__(groups, n_groups, dro_step)
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
            self.q.mul_(torch.exp(self.dro_step * per_group.detach()))
            self.q.div_(self.q.sum())
        return (self.q * per_group).sum()

    def state(self) -> dict:
        return {"q": [round(float(v), 6) for v in self.q.cpu()]}


@METHODS.register("resampling")
class Resampling(Method):
    """Weighted sampling with replacement, weight 1 / group frequency; epoch = N draws."""

    name = "resampling"

    def __init__(self, groups: torch.Tensor, n_groups: int, dro_step: float = 0.01) -> None:
        super().__init__(groups, n_groups, dro_step)
        counts = torch.bincount(groups, minlength=n_groups).to(torch.float64)
        self.weights = (1.0 / counts)[groups]  # float64 (N,)

    def epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        n = len(self.groups)
        return torch.multinomial(self.weights, n, replacement=True, generator=generator)


@METHODS.register("dfr")
class DFR(Method):
    """Marker: DFR refits the last layer of its ERM base on validation (ffr_lib.training.dfr)."""

    name = "dfr"
    trains = False


def make_method(name: str, groups: torch.Tensor, n_groups: int, dro_step: float = 0.01) -> Method:
    method = METHODS[name]
    if not method.trains:
        raise ValueError(f"method {name!r} does not train a network; it refits on a trained one")
    return method(groups, n_groups, dro_step)
