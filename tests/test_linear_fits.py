"""DFR's liblinear fits on a pool of processes (training/linear_fits.py): the same numbers as
serial fits, in the jobs' order; serial unless asked."""

import multiprocessing as mp

import numpy as np
import pytest

from ffr_lib.training import linear_fits as L
from ffr_lib.training.methods.dfr import fit_dfr


@pytest.fixture(autouse=True)
def no_pool_left():
    """A pool started here (processes=2) is stopped, so that no later test sees its processes."""
    yield
    L.shutdown()


def _shortcut_features(n: int = 12, d: int = 24, seed: int = 0):
    """4 classes x 4 backgrounds, n images a group; features carry the background strongly."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), 4 * n)
    b = np.tile(np.repeat(np.arange(4), n), 4)
    x = rng.normal(size=(4, d))[b] * 3 + rng.normal(size=(4, d))[y] * 0.5 + rng.normal(size=(len(y), d))
    return np.maximum(x, 0), y, y * 4 + b


def test_processes_give_the_serial_fit_exactly():
    x, y, g = _shortcut_features()
    serial = fit_dfr(x, y, g, seed=3, processes=0)
    pooled = fit_dfr(x, y, g, seed=3, processes=2)
    for field in ("coef", "intercept", "mean", "scale"):
        assert np.array_equal(getattr(serial, field), getattr(pooled, field)), field
    assert serial.c == pooled.c and serial.tuning == pooled.tuning and serial.n_train == pooled.n_train


def test_fit_many_keeps_the_jobs_order_and_is_serial_by_default():
    x, y, _ = _shortcut_features(n=6)
    jobs = [(x, y, c) for c in (3.0, 0.01, 1.0)]
    serial = L.fit_many(jobs, seed=0, processes=0)
    pooled = L.fit_many(jobs, seed=0, processes=2)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(serial, pooled))
    assert not np.array_equal(serial[0][0], serial[1][0])  # different C, different fits: the order matters
    assert L._default == 0  # nothing but a GPU sweep turns the pool on (processes_for)
    with L.processes_for(2):
        assert all(np.array_equal(a[0], b[0]) for a, b in zip(serial, L.fit_many(jobs, seed=0)))
        assert L._pool is not None
    assert L._default == 0 and L._pool is None  # the pool ends with the block: no process outlives it
    L.shutdown()  # the explicit processes=2 call above started one, kept for later fits
    assert not [p for p in mp.active_children() if p.is_alive()]
