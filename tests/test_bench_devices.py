"""bench/devices_projection.py: a grid's wall time on N devices from one device's run records."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ffr_lib.results import ResultStore
from ffr_lib.sweeps.grids import grid
from ffr_lib.sweeps.plan import make_plan
from ffr_lib.sweeps.profiles import TINY_WORLD
from ffr_lib.sweeps.schedule import work_groups
from ffr_lib.training.config import RunConfig


@pytest.fixture
def projection(bench_script):
    return bench_script("devices_projection")


def test_makespan_gives_each_job_to_the_first_free_worker(projection):
    # 2 workers ready at 1 s: 5 -> w1 (6), 4 -> w2 (5), 3 -> w2 (8), 2 -> w1 (8), 2 -> w1 or w2 (10)
    assert projection.makespan([5, 4, 3, 2, 2], 2, overhead=1) == 10
    assert projection.makespan([5, 4, 3, 2, 2], 1) == 16
    rows = projection.projection_rows([5, 4, 3, 2, 2], [1, 2], overhead=1)
    assert [r["wall_s"] for r in rows] == [17, 10] and rows[1]["busy"] == pytest.approx(16 / 20)


def test_group_seconds_take_own_records_then_the_like_ratio_then_the_median(projection, tmp_path):
    base = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=1, width=8, batch_size=64)
    configs = grid(base, ratio=(0.95, 0.9), seed=(0, 1), method=("erm", "dfr")).configs()
    groups = work_groups(make_plan(configs, ResultStore(tmp_path)))
    assert len(groups) == 2  # one a ratio: 2 seeds' ERM runs (one pack) and their DFR refits
    erm95 = [replace(base, seed=s).canonical() for s in (0, 1)]
    records = [{"hash": erm95[0].hash, "seconds": 10.0, "history": [{}]},
               {"hash": erm95[1].hash, "seconds": 12.0, "history": [{}]},
               {"hash": replace(base, method="dfr").canonical().hash, "seconds": 1.0}]
    times, counts = projection.group_seconds(groups, records, like_ratio=0.95)
    # r=0.95: 10 + 12 + 1 (own) + 1 (the other refit: the median refit); r=0.9: the same runs at 0.95
    assert sorted(times) == [24.0, 24.0]
    assert counts == {"found": 3, "like_ratio": 3, "imputed": 2}
    times, counts = projection.group_seconds(groups, records, like_ratio=None)
    # without a like ratio, r=0.9's runs take the medians: 11 a training (10 and 12), 1 a refit
    assert sorted(times) == [24.0, 24.0] and counts == {"found": 3, "like_ratio": 0, "imputed": 5}
    records[0]["seconds"] = 20.0  # medians now 16 and 1: r=0.9 = 2 x 16 + 2 x 1
    times, _ = projection.group_seconds(groups, records, like_ratio=None)
    assert sorted(times) == [34.0, 34.0]
