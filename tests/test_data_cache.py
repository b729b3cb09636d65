"""The synthetic-set disk cache: a cached set is the set the run renders, and a prefetch in
worker processes fills the cache a later compose() reads."""

from dataclasses import replace

import torch

from ffr_lib.sweeps.prefetch import data_key, prefetch
from ffr_lib.sweeps.profiles import TINY_WORLD
from ffr_lib.training import modes
from ffr_lib.training.config import RunConfig
from ffr_lib.training.data_cache import CACHE_ENV

TINY = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=1, width=8, batch_size=64, mode="usb", fingerprint=0.3)


def _same(a, b):
    return torch.equal(a.images, b.images) and torch.equal(a.y, b.y) and torch.equal(a.b, b.b) and torch.equal(a.g, b.g)


def test_cached_sets_equal_rendered_sets(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    modes._synthetic_cached.cache_clear()
    rendered = modes.compose(TINY)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    modes._synthetic_cached.cache_clear()
    first = modes.compose(TINY)  # renders and writes: the training top-up and the synthetic test set
    assert len(list(tmp_path.glob("*.pt"))) == 2
    modes._synthetic_cached.cache_clear()
    again = modes.compose(TINY)  # reads
    for data in (first, again):
        assert _same(data.stages[0], rendered.stages[0]) and _same(data.test_synthetic, rendered.test_synthetic)
    modes._synthetic_cached.cache_clear()


def test_prefetch_renders_in_workers(tmp_path, monkeypatch):
    configs = [TINY, replace(TINY, method="groupdro", lr=1e-4), replace(TINY, seed=1)]
    assert data_key(configs[0]) == data_key(configs[1]) != data_key(configs[2])
    futures = prefetch(configs, tmp_path, workers=1)
    assert len(futures) == 2
    assert sorted(f.result(timeout=300) for f in futures.values()) == sorted([configs[0].hash, configs[2].hash])
    assert len(list(tmp_path.glob("*.pt"))) == 4  # 2 runs' data x (top-up, synthetic test)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    modes._synthetic_cached.cache_clear()
    before = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.pt")}
    modes.compose(configs[2])
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.pt")} == before  # read, not rewritten
    assert prefetch(configs, tmp_path, workers=0) == {}
    modes._synthetic_cached.cache_clear()
