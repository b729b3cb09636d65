"""AFR, Automatic Feature Reweighting (Qiu et al., ICML 2023): no group labels in training.

The last layer of the ERM base is retrained on a reweighting set, each sample weighted by
exp(-gamma * p), p the base's probability of its true class (what the base gets wrong or barely
right weighs most), the weights rebalanced so that every class has the same total and then
normalised to sum 1; the loss is the weighted cross-entropy plus reg * ||theta - theta_ERM||^2,
starting from the ERM head theta_ERM. Like DFR here, the reweighting set is validation, but
with labels only: a seeded half of it (the authors hold out part of the training split, which
our ERM base has seen); the other half is held out, and the run's `val` is measured there, so
selection (which reads groups) chooses gamma, reg and the base's lr on data the fit never saw.
The authors optimise with full-batch SGD for 100-500 epochs; here full-batch Adam (STEPS at LR,
float64 on the CPU, deterministic), so one setting fits every model's feature scale.

Why AFR as the second method without group labels (issue #24 offered LfF or AFR): it refits the
ERM base the sweep already trains (a DAG dependency, as DFR's), so it costs no training; LfF
trains a biased and a debiased network jointly with per-sample loss averages, which the
one-model step that CUDA graphs and packs replay (loop.py, packing.py) does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import METHODS, HParam, Method, RefitResult

STEPS = 500
LR = 1e-2


def afr_weights(p_true: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """float64 (N,) weights from the base's probability of each sample's class p_true (N,) and
    labels y (N,): exp(-gamma p), every class's total made equal, normalised to sum 1."""
    w = torch.exp(-gamma * p_true.double())
    classes = torch.unique(y)
    per_class = torch.stack([w[y == c].sum() for c in classes])
    scale = torch.zeros(int(y.max()) + 1, dtype=torch.float64)
    scale[classes] = 1.0 / (len(classes) * per_class)
    return w * scale[y]


def halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of the seeded halves of n validation samples: (fit, held out)."""
    order = np.random.default_rng([seed, 0xAF]).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def fit_afr(features: np.ndarray, y: np.ndarray, head: nn.Linear, gamma: float, reg: float,
            steps: int = STEPS, lr: float = LR) -> tuple[nn.Linear, dict]:
    """The reweighted head: features float (N, D) and labels (N,) of the reweighting set (no
    groups), the ERM head to start from and regularise towards. Returns the head and its info."""
    z = torch.as_tensor(features, dtype=torch.float64)
    labels = torch.as_tensor(y, dtype=torch.int64)
    w0 = head.weight.detach().to("cpu", torch.float64)
    b0 = head.bias.detach().to("cpu", torch.float64)
    with torch.no_grad():
        p_true = F.softmax(z @ w0.T + b0, dim=1).gather(1, labels[:, None])[:, 0]
    weights = afr_weights(p_true, labels, gamma)
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w, b], lr=lr)

    def objective() -> torch.Tensor:
        ce = F.cross_entropy(z @ w.T + b, labels, reduction="none")
        return (weights * ce).sum() + reg * ((w - w0).square().sum() + (b - b0).square().sum())

    with torch.no_grad():
        start = float(objective())
    for _ in range(steps):
        optimizer.zero_grad()
        loss = objective()
        loss.backward()
        optimizer.step()
    out = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        out.weight.copy_(w.detach().float())
        out.bias.copy_(b.detach().float())
    with torch.no_grad():
        end = float(objective())
    info = {"objective_start": start, "objective_end": end, "steps": steps,
            "effective_n": float(1.0 / weights.square().sum()), "n_fit": len(labels)}
    return out, info


@METHODS.register("afr")
class AFR(Method):
    """The ERM base's last layer retrained on half of validation, weighted by exp(-gamma p)."""

    name = "afr"
    trains = False
    uses_groups = False
    hparams = {
        "gamma": HParam(4.0, (1.0, 4.0, 16.0), "sharpness of the weights exp(-gamma p) (the authors: 1.8 on "
                                             "CelebA, 14 on Waterbirds)"),
        "reg": HParam(0.0, (0.0, 0.1), "weight of ||theta - theta_ERM||^2 (the authors: 0 on CelebA, 0.2 on "
                                      "Waterbirds)"),
    }

    @classmethod
    def refit(cls, features: np.ndarray, y: np.ndarray, groups: np.ndarray | None, head: nn.Module,
              hparams: Mapping[str, Any], seed: int) -> RefitResult:
        fit, held = halves(len(y), seed)
        new, info = fit_afr(features[fit], y[fit], head, hparams["gamma"], hparams["reg"])
        return RefitResult(new.to(head.weight.device), {**info, "n_held_out": len(held)}, held_out=held)
