"""Per-group accuracy, worst-group (WA), balanced (BA) and average accuracy.

Groups are the (y, b) subgroups of the *real* data (or of a synthetic test set, ECCV table 3).
- WA: the minimum over groups of the group's accuracy;
- BA: the unweighted mean over groups (the authors' "balanced" accuracy);
- average: the mean weighted by the training set's group proportions (what the
  group-robustness literature, SpuCo's evaluator among it, calls average accuracy).
The groups a set should hold are passed explicitly (the animals layout has only 8 of its 16
(y, b) pairs): a group missing from the evaluated set is an error naming it, never a NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

Group = tuple[int, int]


class MissingGroupError(ValueError):
    """An expected (y, b) group has no sample in the evaluated set."""


def group_key(y: int, b: int) -> str:
    """The name of group (y, b) in records and tables: 'y0b1'."""
    return f"y{y}b{b}"


def _numpy(a: torch.Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def present_groups(y: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> list[Group]:
    """The (y, b) pairs that occur, sorted."""
    pairs = {(int(yi), int(bi)) for yi, bi in zip(_numpy(y), _numpy(b))}
    return sorted(pairs)


def group_accuracies(
    pred: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    b: torch.Tensor | np.ndarray,
    groups: Sequence[Group],
    *,
    set_name: str = "evaluated set",
) -> dict[Group, float]:
    """Accuracy of predictions `pred` (N,) against `y` (N,) within each group of `groups`.

    Raises MissingGroupError naming every group of `groups` absent from (y, b).
    """
    pred, y, b = _numpy(pred), _numpy(y), _numpy(b)
    if not (pred.shape == y.shape == b.shape):
        raise ValueError(f"pred, y, b must share one shape, got {pred.shape}, {y.shape}, {b.shape}")
    out: dict[Group, float] = {}
    missing = []
    for yi, bi in groups:
        member = (y == yi) & (b == bi)
        n = int(member.sum())
        if n == 0:
            missing.append(group_key(yi, bi))
            continue
        out[(yi, bi)] = float((pred[member] == yi).mean())
    if missing:
        raise MissingGroupError(f"{set_name}: no sample of group(s) {', '.join(missing)}; expected {len(groups)} groups")
    return out


def proportions(y: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, groups: Sequence[Group]) -> dict[Group, float]:
    """Share of each group of `groups` among the samples (y, b) (e.g. of the training set)."""
    y, b = _numpy(y), _numpy(b)
    n = len(y)
    if n == 0:
        raise ValueError("proportions of an empty set")
    return {(yi, bi): float(((y == yi) & (b == bi)).sum() / n) for yi, bi in groups}


def summarize(accs: Mapping[Group, float], weights: Mapping[Group, float] | None = None) -> dict[str, float]:
    """WA, BA and (with `weights`, e.g. training proportions) the weighted average accuracy.

    Groups with weight 0 count for BA and WA but not for the average; weights are renormalised
    over the evaluated groups.
    """
    if not accs:
        raise ValueError("summarize needs at least one group accuracy")
    values = np.array(list(accs.values()))
    out = {"wa": float(values.min()), "ba": float(values.mean())}
    if weights is not None:
        missing = [group_key(*g) for g in accs if g not in weights]
        if missing:
            raise MissingGroupError(f"weights lack group(s) {', '.join(missing)}")
        w = np.array([weights[g] for g in accs], dtype=float)
        if w.sum() <= 0:
            raise ValueError("average accuracy: the weights of the evaluated groups sum to 0")
        out["avg"] = float((w * values).sum() / w.sum())
    return out


def evaluate_predictions(
    pred: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    b: torch.Tensor | np.ndarray,
    groups: Sequence[Group],
    weights: Mapping[Group, float] | None = None,
    *,
    set_name: str = "evaluated set",
) -> dict:
    """The record of one evaluation: {'wa', 'ba', 'avg'?, 'wca', 'acc', 'n', 'groups', 'classes'}.

    `acc` is the plain accuracy over all samples of the set (its own mix of groups); `classes`
    holds each class's accuracy over its samples and `wca` their minimum (worst-class
    accuracy needs no bias labels, which is why `val_worst_class` selection uses it).
    """
    accs = group_accuracies(pred, y, b, groups, set_name=set_name)
    out = summarize(accs, weights)
    p, t = _numpy(pred), _numpy(y)
    classes = {f"y{c}": float((p[t == c] == c).mean()) for c in sorted({g[0] for g in groups})}
    out["wca"] = min(classes.values())
    out["acc"] = float((p == t).mean())
    out["n"] = int(len(t))
    out["groups"] = {group_key(*g): a for g, a in accs.items()}
    out["classes"] = classes
    return out
