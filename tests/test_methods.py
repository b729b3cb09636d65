"""Methods: GroupDRO's weights move to the worst group; Resampling balances batches in
expectation; ERM epochs are permutations; DFR fits on group-balanced data."""

import numpy as np
import pytest
import torch

from ffr_lib.data.grouped import GroupedImages
from ffr_lib.training.methods import METHODS, GroupDRO, Resampling, group_ids, make_method
from ffr_lib.training.methods.dfr import _predict, balanced_subsample, fit_dfr


def test_registry_lists_known_methods():
    assert set(METHODS.names()) == {"erm", "groupdro", "resampling", "dfr", "jtt", "afr"}
    with pytest.raises(KeyError, match="known: afr, dfr, erm, groupdro, jtt, resampling"):
        METHODS["lff"]
    with pytest.raises(ValueError, match="does not train"):
        make_method("dfr", torch.zeros(3, dtype=torch.int64), 1)


def test_group_ids_with_and_without_source():
    data = GroupedImages.from_arrays(
        torch.zeros(5, 3, 4, 4, dtype=torch.uint8), [0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["a", "b"], ["p", "q"],
        g=[0, 0, 0, 1, 1],
    )
    ids, keys = group_ids(data, with_source=False)
    assert keys == [(0, 0), (0, 1), (1, 0), (1, 1)] and ids.tolist() == [0, 1, 3, 3, 2]
    ids, keys = group_ids(data, with_source=True)
    assert keys == [(0, 0, 0), (0, 1, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)]
    assert ids.tolist() == [0, 1, 3, 4, 2]


def test_erm_epoch_is_a_permutation_in_batches():
    rule = make_method("erm", torch.zeros(10, dtype=torch.int64), 1)
    batches = list(rule.batches(4, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))


def test_groupdro_weights_move_to_the_worst_group():
    # 3 groups; the model is right with margin on groups 0 and 1 and wrong on group 2
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    y = torch.tensor([0, 0, 1, 1, 0, 0])
    logits = torch.tensor([[3.0, 0], [3, 0], [0, 3], [0, 3], [0, 2], [0, 2]])
    rule = GroupDRO(groups, 3, {"step": 0.01})
    assert torch.allclose(rule.q, torch.full((3,), 1 / 3))
    per_group = rule.group_losses(torch.nn.functional.cross_entropy(logits, y, reduction="none"), groups)
    for _ in range(200):
        loss = rule.loss(logits, y, groups)
    q = rule.q
    # 200 steps of 0.01 x a loss gap of ~2.08: q2 / q0 = exp(4.16) ~ 64
    assert q[2] > 0.96 and q[0] < 0.02 and q[1] < 0.02
    assert int(q.argmax()) == int(per_group.argmax()) == 2
    # the loss is the q-weighted group mean, so it approaches the worst group's loss
    assert float(loss) == pytest.approx(float(per_group[2]), rel=0.05)  # ERM would give ~0.74
    # exponentiated gradient by hand, one step from uniform
    fresh = GroupDRO(groups, 3, {"step": 0.01})
    fresh.loss(logits, y, groups)
    expected = torch.exp(0.01 * per_group) / torch.exp(0.01 * per_group).sum()
    assert torch.allclose(fresh.q, expected)


def test_resampling_is_balanced_in_expectation():
    groups = torch.cat([torch.zeros(900), torch.ones(90), torch.full((10,), 2)]).to(torch.int64)
    rule = Resampling(groups, 3)
    gen = torch.Generator().manual_seed(0)
    drawn = torch.cat([rule.epoch_indices(gen) for _ in range(30)])  # 30 epochs of N = 1000 draws
    assert len(drawn) == 30 * 1000
    share = torch.bincount(groups[drawn], minlength=3).double() / len(drawn)
    assert torch.allclose(share, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.01)
    # with replacement: the 10 samples of group 2 are drawn far more than once each
    assert (drawn >= 990).sum() > 10 * 30 * 20
    # per batch too: a batch of 128 holds about 128 / 3 of each group
    batch_share = torch.stack(
        [torch.bincount(groups[b], minlength=3) for b in rule.batches(128, gen) if len(b) == 128]
    ).double().mean(0) / 128
    assert torch.allclose(batch_share, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.05)


def test_balanced_subsample_keeps_the_smallest_group_size():
    groups = np.array([0] * 50 + [1] * 7 + [2] * 20)
    keep = balanced_subsample(groups, np.random.default_rng(0))
    assert np.bincount(groups[keep]).tolist() == [7, 7, 7]
    assert len(set(keep)) == 21


def _spurious_features(n_per_group: dict, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Features: dim 0 carries y weakly (core), dim 1 carries b strongly (spurious), 6 noise dims."""
    xs, ys, gs = [], [], []
    for (y, b), n in n_per_group.items():
        core = (2 * y - 1) * 1.0 + rng.normal(0, 0.5, n)
        spur = (2 * b - 1) * 3.0 + rng.normal(0, 0.3, n)
        xs.append(np.column_stack([core, spur, rng.normal(0, 1, (n, 6))]) + 5.0)
        ys.append(np.full(n, y))
        gs.append(np.full(n, 2 * y + b))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


def test_dfr_fits_on_group_balanced_data_and_ignores_the_shortcut():
    rng = np.random.default_rng(0)
    # an imbalanced validation set: majority groups (0,0), (1,1) 10x the minority ones
    x, y, g = _spurious_features({(0, 0): 200, (0, 1): 20, (1, 0): 20, (1, 1): 200}, rng)
    fit = fit_dfr(x, y, g, seed=0)
    assert fit.n_train == 4 * 20  # each of the 20 fits: min group size (20) per group
    assert set(fit.tuning) == {"3.0", "1.0", "0.3", "0.1", "0.03", "0.01", "0.003"}
    # on balanced held-out data the refit head relies on the core feature: high worst-group acc
    xt, yt, gt = _spurious_features({k: 100 for k in [(0, 0), (0, 1), (1, 0), (1, 1)]}, rng)
    xt_n = xt / np.linalg.norm(xt, axis=1, keepdims=True)
    pred = _predict((xt_n - fit.mean) / fit.scale, fit.coef, fit.intercept)
    wa = min((pred[gt == k] == yt[gt == k]).mean() for k in range(4))
    assert wa > 0.85
    # the torch head (L2-normalise, standardise folded into one linear layer) predicts the same
    head = fit.head(n_classes=2)
    torch_pred = head(torch.as_tensor(xt, dtype=torch.float32)).argmax(1).numpy()
    assert (torch_pred == pred).mean() > 0.995


def test_dfr_multiclass_is_one_vs_rest():
    rng = np.random.default_rng(1)
    centers = rng.normal(0, 3, (3, 5))
    x = np.concatenate([centers[k] + rng.normal(0, 0.5, (40, 5)) for k in range(3)])
    y = np.repeat(np.arange(3), 40)
    fit = fit_dfr(x, y, y, seed=0, n_fits=3)
    assert fit.coef.shape == (3, 5)
    head = fit.head(n_classes=3)
    assert (head(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy() == y).mean() > 0.95
