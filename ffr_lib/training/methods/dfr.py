"""DFR (Kirichenko et al. 2023) as the authors ran it: refit the last layer on validation.

Features: the L2-normalised penultimate features of the selected ERM model of the same mode.
Tuning: split validation in half (seeded); balance the first half by subsampling every (y, b)
group to the smallest; standardise; L1 logistic regression (liblinear) for each C in C_GRID;
pick C by worst-group accuracy on the other half. Final: N_FITS fits on group-balanced
subsamples of the whole validation set, standardised with its statistics, coefficients and
intercepts averaged. With more than two classes liblinear is one-vs-rest (sklearn's wrapper).
DFR reads validation's group labels to balance its fits: a method with group labels. The fits
run on a pool of processes where the machine has cores to spare (linear_fits.fit_many: the same
numbers on any count); the subsamples are drawn first, in the serial order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.preprocessing import StandardScaler
from torch import nn

from ..linear_fits import fit_many
from .base import METHODS, Method, RefitResult

C_GRID = (3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
N_FITS = 20


def balanced_subsample(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices keeping min-group-size samples of every group present in `groups` (N,)."""
    ids, counts = np.unique(groups, return_counts=True)
    m = int(counts.min())
    keep = [rng.choice(np.flatnonzero(groups == g), size=m, replace=False) for g in ids]
    return np.sort(np.concatenate(keep))


def _predict(x: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    scores = x @ coef.T + intercept
    return (scores[:, 0] > 0).astype(np.int64) if coef.shape[0] == 1 else scores.argmax(1)


def _worst_group(pred: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    return float(min((pred[groups == g] == y[groups == g]).mean() for g in np.unique(groups)))


@dataclass
class DFRFit:
    """The refit last layer, in the standardised feature space of the whole validation set."""

    coef: np.ndarray  # (K', D)
    intercept: np.ndarray  # (K',)
    mean: np.ndarray  # (D,) of the scaler
    scale: np.ndarray  # (D,)
    c: float  # the chosen inverse regularisation strength
    tuning: dict  # C -> worst-group accuracy on the held-out half
    n_train: int  # samples in each balanced fit

    def head(self, n_classes: int) -> nn.Module:
        """The fit as a torch head on raw features: L2-normalise, standardise, linear."""
        w = self.coef / self.scale  # fold the standardisation into the linear layer
        b = self.intercept - w @ self.mean
        if w.shape[0] == 1:  # binary: logits (-s/2, s/2) have the sign of the score s
            w = np.concatenate([-w / 2, w / 2])
            b = np.array([-b[0] / 2, b[0] / 2])
        if w.shape[0] != n_classes:
            raise ValueError(f"DFR fit has {w.shape[0]} class scores, the model {n_classes} classes")
        linear = nn.Linear(w.shape[1], n_classes)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
            linear.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
        return nn.Sequential(L2Normalize(), linear)


class L2Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x.float(), dim=1)


def fit_dfr(
    features: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, n_fits: int = N_FITS, c_grid=C_GRID,
    processes: int | None = None,
) -> DFRFit:
    """Fit DFR on validation features (N, D) (raw; normalised here), labels y (N,), groups (N,).
    `processes` (linear_fits.fit_many; default: serial outside a GPU sweep, linear_fits.processes_for)
    changes the time only, never the fit."""
    x = features / np.linalg.norm(features, axis=1, keepdims=True).clip(min=1e-12)
    rng = np.random.default_rng([seed, 0xDF])
    order = rng.permutation(len(y))
    half_a, half_b = np.sort(order[: len(y) // 2]), np.sort(order[len(y) // 2 :])
    for name, half in (("first", half_a), ("second", half_b)):
        missing = set(np.unique(groups)) - set(np.unique(groups[half]))
        if missing:
            raise ValueError(f"DFR: the {name} half of validation lacks group(s) {sorted(missing)}; too few samples")
    tune = half_a[balanced_subsample(groups[half_a], rng)]
    scaler = StandardScaler().fit(x[tune])
    x_tune, x_held = scaler.transform(x[tune]), scaler.transform(x[half_b])
    fits = fit_many([(x_tune, y[tune], c) for c in c_grid], seed, processes)
    tuning = {c: _worst_group(_predict(x_held, coef, intercept), y[half_b], groups[half_b])
              for c, (coef, intercept) in zip(c_grid, fits)}
    best_c = max(c_grid, key=lambda c: (tuning[c], -c_grid.index(c)))  # ties: the earlier (larger) C
    scaler = StandardScaler().fit(x)
    keeps = [balanced_subsample(groups, rng) for _ in range(n_fits)]  # drawn in the serial order
    fits = fit_many([(scaler.transform(x[k]), y[k], best_c) for k in keeps], seed, processes)
    coefs, intercepts = [f[0] for f in fits], [f[1] for f in fits]
    return DFRFit(
        coef=np.mean(coefs, axis=0),
        intercept=np.mean(intercepts, axis=0),
        mean=scaler.mean_,
        scale=scaler.scale_,
        c=best_c,
        tuning={str(c): v for c, v in tuning.items()},
        n_train=len(keeps[-1]),
    )


@METHODS.register("dfr")
class DFR(Method):
    """No network training: the last layer of the ERM base refit on validation (fit_dfr)."""

    name = "dfr"
    trains = False

    @classmethod
    def refit(cls, features: np.ndarray, y: np.ndarray, groups: np.ndarray | None, head: nn.Module,
              hparams: Mapping[str, Any], seed: int) -> RefitResult:
        fit = fit_dfr(features, y, groups, seed=seed)
        info = {"C": fit.c, "tuning": fit.tuning, "n_per_fit": fit.n_train}
        return RefitResult(fit.head(head.out_features), info)
