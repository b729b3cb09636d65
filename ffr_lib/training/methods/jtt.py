"""JTT, Just Train Twice (Liu et al. 2021): no group labels in training.

1. Identification: ERM for `id_epochs` epochs from the run's start model (a reference model,
   trained by the runner: Method.reference_epochs); its errors on the training set, the samples
   whose predicted class is not their label, stand in for the unknown minority groups.
2. Retraining from the same start model, the errors upweighted by `upweight` (lambda): each
   epoch draws N samples with replacement, an error `upweight` times as likely as any other
   sample (SubpopBench's weighted sampler; the paper duplicates errors, the same in expectation
   at a fixed epoch length).
Group labels choose the identification model's epoch and the run's hyperparameters on
validation, as in the paper (model selection); training reads only images and labels.

With the modes: None trains both steps on the real split; USB and ASB on real plus synthetic
images (the errors may be either); FFR's stage 1 is the balanced synthetic pretraining, and JTT
is its stage 2 on the real split, both steps starting from the stage-1 model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .base import METHODS, HParam, Method


@METHODS.register("jtt")
class JTT(Method):
    """Upweight the errors of an ERM model trained `id_epochs` epochs; reads no group labels."""

    name = "jtt"
    uses_groups = False
    hparams = {
        "id_epochs": HParam(1, (1, 2), "epochs of the ERM identification model (the paper's T)", minimum=1),
        "upweight": HParam(20.0, (5.0, 20.0, 50.0), "sampling weight of an identified error against 1 for any other "
                                                 "sample (the paper's lambda)", minimum=1.0),
    }

    def __init__(self, groups: torch.Tensor, n_groups: int, hparams: Mapping[str, Any] | None = None, *,
                 y: torch.Tensor | None = None, reference: torch.Tensor | None = None) -> None:
        super().__init__(groups, n_groups, hparams, y=y, reference=reference)
        if y is None or reference is None:
            raise ValueError("JTT needs the labels and its identification model's logits on the training set")
        self.errors = error_set(reference, y)
        self.weights = upweights(self.errors, self.hp["upweight"])

    @classmethod
    def reference_epochs(cls, hparams: Mapping[str, Any]) -> int:
        return int(hparams.get("id_epochs", cls.hparams["id_epochs"].default))

    def epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        return torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator)

    def state(self) -> dict:
        return {"errors": int(self.errors.sum()), "n": len(self.errors), "upweight": self.hp["upweight"]}


def error_set(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """bool (N,): the samples the identification model gets wrong (logits float (N, C), y (N,))."""
    return logits.argmax(1) != y


def upweights(errors: torch.Tensor, upweight: float) -> torch.Tensor:
    """float64 (N,) sampling weights: `upweight` for an error, 1 for any other sample."""
    return torch.where(errors, torch.tensor(float(upweight), dtype=torch.float64, device=errors.device),
                       torch.tensor(1.0, dtype=torch.float64, device=errors.device))
