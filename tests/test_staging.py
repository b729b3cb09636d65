"""Staged search: stage 1's lr is chosen on stage-1 records before any stage 2 is trained from
it, and no stage 2 is ever trained from a discarded stage 1."""

from dataclasses import replace

import pytest

from ffr_lib.results import ResultStore
from ffr_lib.sweeps import staging
from ffr_lib.sweeps.grids import grid
from ffr_lib.sweeps.plan import count_trainings, make_plan
from ffr_lib.sweeps.profiles import TINY_WORLD
from ffr_lib.sweeps.selection import restrict_stage1, select
from ffr_lib.sweeps.sweep import run_sweep
from ffr_lib.training.config import RunConfig

TINY = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=1, width=8, batch_size=64, mode="ffr")
GRID = grid(TINY, pre_lr=(1e-3, 1e-2), lr=(1e-3, 1e-4), method=("erm", "dfr"), seed=(0, 1)).configs()

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _stage1(pre_lr: float, seed: int) -> RunConfig:
    return replace(TINY, pre_lr=pre_lr, seed=seed).prefix()


def _record(config: RunConfig, val_wa: float, val_ba: float = 0.5, status: str = "ok") -> dict:
    return {"hash": config.hash, "config": config.to_dict(), "status": status, "best_epoch": 1,
            "val": {"wa": val_wa, "ba": val_ba}, "test": {"wa": 0.0, "ba": 0.5},
            "history": [{"epoch": 1, "val_wa": val_wa, "val_ba": val_ba, "val_loss": 1.0}]}


def _pre_lrs(configs) -> set:
    return {c.pre_lr if c.method != "dfr" else c.base().pre_lr for c in configs if c.order == "1-2"}


def test_the_first_plan_trains_only_the_stage1_candidates(tmp_path):
    plan = make_plan(GRID, ResultStore(tmp_path))
    planned = [c for p in plan.phases for c in p]
    assert sorted((c.lr, c.seed) for c in planned) == [(1e-3, 0), (1e-3, 1), (1e-2, 0), (1e-2, 1)]
    assert all(c.order == "1" for c in planned)
    assert plan.deferred == len(GRID) == 16


def test_stage2_is_planned_only_from_the_chosen_stage1(tmp_path):
    store = ResultStore(tmp_path)
    for seed, (a, b) in enumerate([(0.6, 0.7), (0.6, 0.9)]):  # mean val WA: 1e-3 -> 0.6, 1e-2 -> 0.8
        store.write(_record(_stage1(1e-3, seed), a))
        store.write(_record(_stage1(1e-2, seed), b))
    plan = make_plan(GRID, store)
    planned = [c for p in plan.phases for c in p]
    assert plan.deferred == 0 and _pre_lrs(planned) == {1e-2}
    assert len([c for c in planned if c.order == "1-2"]) == 8  # 2 lrs x (erm, dfr) x 2 seeds from stage 1 at 1e-2


def test_a_stage1_tie_goes_to_validation_ba_then_to_the_smaller_lr(tmp_path):
    store = ResultStore(tmp_path)
    for seed in (0, 1):
        store.write(_record(_stage1(1e-3, seed), 0.5, val_ba=0.7))
        store.write(_record(_stage1(1e-2, seed), 0.5, val_ba=0.8))
    assert _pre_lrs(c for p in make_plan(GRID, store).phases for c in p) == {1e-2}  # BA decides
    for seed in (0, 1):
        store.write(_record(_stage1(1e-2, seed), 0.5, val_ba=0.7))
    assert _pre_lrs(c for p in make_plan(GRID, store).phases for c in p) == {1e-3}  # all equal: the smaller lr


def test_a_group_whose_stage1_runs_all_failed_trains_no_stage2(tmp_path):
    store = ResultStore(tmp_path)
    for lr in (1e-3, 1e-2):
        for seed in (0, 1):
            store.write(_record(_stage1(lr, seed), 0.0, status="failed"))
    plan = make_plan(GRID, store)
    assert plan.pending == 0 and plan.deferred == 0


def test_counts_with_and_without_staging():
    counts = count_trainings(GRID)
    # 4 stage-1 runs; ERM stage 2 at 2 lrs x 2 seeds from each of 2 stage-1 lrs (8) or from one (4)
    assert counts["trainings_with_reuse"] == 4 + 8 and counts["trainings_staged"] == 4 + 4
    assert len(staging.staged_count(GRID)) == 4 + 8  # the staged grid's runs: stage 1s, 4 ERM, 4 DFR


def test_a_staged_sweep_trains_stage1_then_only_the_chosen_stage2(tmp_path):
    """End to end on CPU: the store ends with every stage-1 candidate and the stage 2s of the
    stage-1 lr that selection (restrict_stage1) also chooses from the records."""
    summary = run_sweep(GRID, str(tmp_path), progress=False, threads=1)
    assert not summary["errors"] and summary["deferred"] == 0
    store = ResultStore(tmp_path)
    frame = store.frame()
    two = frame[frame["order"] == "1-2"]
    assert two["pre_lr"].nunique() == 1
    kept = restrict_stage1(frame, "val_wa")
    assert set(kept[kept["order"] == "1-2"]["pre_lr"]) == set(two["pre_lr"])
    stage1 = frame[frame["order"] == "1"]
    assert sorted(stage1["lr"].unique()) == [1e-3, 1e-2]
    assert summary["done"] == count_trainings(GRID)["trainings_staged"] + 4  # + the 4 DFR refits
    assert len(select(frame)) > 0


def test_a_complete_staged_store_does_not_need_the_discarded_stage2s(tmp_path):
    from ffr_lib.tables import unrecorded

    store = ResultStore(tmp_path)
    assert len(staging.required(GRID, {})) == 16 + 4  # choosing: every run, and the 4 stage-1 candidates
    for seed, (a, b) in enumerate([(0.6, 0.7), (0.6, 0.9)]):  # stage 1 at 1e-2 is chosen
        store.write(_record(_stage1(1e-3, seed), a))
        store.write(_record(_stage1(1e-2, seed), b))
    have = {r["hash"]: r for r in store.records()}
    needed = staging.required(GRID, have)
    assert len(needed) == 8 and _pre_lrs(needed) == {1e-2}  # 2 lrs x (erm, dfr) x 2 seeds
    assert {c.hash for c in unrecorded(GRID, store)} == {c.hash for c in needed}
    for c in needed:
        store.write(_record(c, 0.8))
    assert unrecorded(GRID, store) == []  # complete, though 8 runs of the grid have no record


def test_canonical_and_hash_are_kept_and_stay_right():
    c = replace(TINY, mode="none", order="2-1", fingerprint=0.3)  # fields a one-stage run ignores
    first = c.canonical()
    assert c.canonical() is first and first.canonical() is first
    assert first.order == "1-2" and first.fingerprint == 0.0 and c.hash == first.hash
    assert replace(c, seed=1).hash != c.hash and replace(c, seed=1).canonical().seed == 1
