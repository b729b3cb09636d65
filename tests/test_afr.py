"""AFR (training/methods/afr.py): hand-worked weights, the reweighted head lifts the worst group
of a shortcut base, and the refit reads no group labels (identical head with validation's b
scrambled; its `val` is the held-out half)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from ffr_lib.results import ResultStore
from ffr_lib.sweeps.profiles import TINY_WORLD
from ffr_lib.training import modes, runner
from ffr_lib.training.config import RunConfig
from ffr_lib.training.methods import AFR
from ffr_lib.training.methods.afr import afr_weights, fit_afr, halves
from ffr_lib.training.runner import Runner

TINY = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=2, width=8, batch_size=64, method="afr")

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_weights_by_hand():
    """Class 0: p = 0.9, 0.5, 0.1; class 1: p = 0.8; gamma 1. exp(-p) within a class, each
    class's total 1/2."""
    w = afr_weights(torch.tensor([0.9, 0.5, 0.1, 0.8]), torch.tensor([0, 0, 0, 1]), gamma=1.0)
    e = [math.exp(-0.9), math.exp(-0.5), math.exp(-0.1)]
    assert w.tolist() == pytest.approx([v / (2 * sum(e)) for v in e] + [0.5])
    assert float(w.sum()) == pytest.approx(1.0)
    flat = afr_weights(torch.tensor([0.9, 0.1, 0.3]), torch.tensor([0, 0, 1]), gamma=0.0)
    assert flat.tolist() == pytest.approx([0.25, 0.25, 0.5])  # gamma 0: class-balanced only


def _shortcut(n: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features: dim 0 carries y (core, noisy), dim 1 carries b (spurious, clean)."""
    xs, ys, gs = [], [], []
    for (y, b), k in n.items():
        xs.append(np.column_stack([(2 * y - 1) + rng.normal(0, 0.7, k), (2 * b - 1) * 2 + rng.normal(0, 0.2, k)]))
        ys.append(np.full(k, y))
        gs.append(np.full(k, 2 * y + b))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


def _worst(head: nn.Linear, x: np.ndarray, y: np.ndarray, g: np.ndarray) -> float:
    pred = head(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()
    return min(float((pred[g == k] == y[g == k]).mean()) for k in np.unique(g))


def test_reweighted_head_lifts_the_worst_group_of_a_shortcut_base():
    """A base head that leans on the spurious dimension (fit on 97 % aligned data); AFR on an
    aligned reweighting set, without its groups: gamma 4 lifts the worst group on balanced data
    far above the base and above gamma 0 (class balance alone); a strong pull to theta_ERM (reg)
    keeps the base's head."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    biased = {(0, 0): 485, (0, 1): 15, (1, 0): 15, (1, 1): 485}
    x, y, _ = _shortcut(biased, rng)
    base = nn.Linear(2, 2)
    opt = torch.optim.Adam(base.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(base(torch.as_tensor(x, dtype=torch.float32)), torch.as_tensor(y)).backward()
        opt.step()
    xr, yr, _ = _shortcut(biased, rng)
    xt, yt, gt = _shortcut({k: 300 for k in biased}, rng)
    before = _worst(base, xt, yt, gt)
    flat, _ = fit_afr(xr, yr, base, gamma=0.0, reg=0.0)
    mild, info = fit_afr(xr, yr, base, gamma=4.0, reg=0.0)
    assert before < 0.6
    assert _worst(mild, xt, yt, gt) > max(before + 0.2, _worst(flat, xt, yt, gt) + 0.1)
    assert info["objective_end"] < info["objective_start"] and info["n_fit"] == 1000
    assert 100 < info["effective_n"] < 1000  # the weights concentrate on what the base gets wrong
    held = fit_afr(xr, yr, base, gamma=4.0, reg=100.0)[0]  # a strong pull to theta_ERM keeps the base
    assert torch.allclose(held.weight, base.weight, atol=0.05)


def test_halves_are_seeded_and_disjoint():
    a, b = halves(11, seed=3)
    assert len(a) == 5 and len(b) == 6 and sorted([*a, *b]) == list(range(11))
    assert np.array_equal(halves(11, seed=3)[0], a) and not np.array_equal(halves(11, seed=4)[0], a)


def _val_scrambled(compose):
    def run(config, *a, **k):
        data = compose(config, *a, **k)
        perm = torch.randperm(len(data.val), generator=torch.Generator().manual_seed(7))
        return replace(data, val=replace(data.val, b=data.val.b[perm]))

    return run


def test_afr_refits_without_group_labels(tmp_path, monkeypatch):
    """The run refits the ERM base of its mode and lr; the refit gets no groups; with
    validation's b scrambled the head is bit for bit the same (b only enters the held-out `val`
    that selection reads); `val` is measured on the held-out half."""
    config = replace(TINY, hparams={"gamma": 8.0}).canonical()
    calls = []
    refit = AFR.refit.__func__

    def spy(cls, features, y, groups, head, hparams, seed):
        calls.append(groups)
        return refit(cls, features, y, groups, head, hparams, seed)

    monkeypatch.setattr(AFR, "refit", classmethod(spy))
    keep = frozenset({config.hash, config.base().hash})
    plain = Runner(ResultStore(tmp_path / "plain"), keep=keep).run(config)
    assert calls == [None]
    assert plain["base"] == config.base().hash and plain["trained"] == [config.base().hash]
    n_val = len(modes.compose(config).val)
    assert plain["afr"]["n_fit"] == n_val // 2 and plain["afr"]["n_held_out"] == n_val - n_val // 2
    assert plain["val"]["n"] == n_val - n_val // 2 and plain["val_afr"]["n"] == n_val
    monkeypatch.setattr(runner, "compose", _val_scrambled(modes.compose))
    scrambled = Runner(ResultStore(tmp_path / "scrambled"), keep=keep).run(config)
    a = ResultStore(tmp_path / "plain").load_checkpoint(config.hash)
    b = ResultStore(tmp_path / "scrambled").load_checkpoint(config.hash)
    assert all(torch.equal(a[k], b[k]) for k in a) and plain["afr"] == scrambled["afr"]
    assert plain["test"] == scrambled["test"]
