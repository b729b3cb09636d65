"""Sweeps: the DAG trains FFR stage 1 once for every stage-2 run and DFR refits without
retraining; a sweep killed mid-way (a real subprocess, SIGKILL) resumes without losing or
repeating a finished run; executors (in-process, worker per device, submitit local, dry run)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import replace

import pytest

from ffr_lib.results import ResultStore
from ffr_lib.sweeps.grids import grid
from ffr_lib.sweeps.plan import count_trainings, make_plan, phases
from ffr_lib.sweeps.profiles import PROFILES, TINY_WORLD, get_profile
from ffr_lib.sweeps.schedule import ReadyQueue, estimated_cost, pack_key, packs, simulate, work_groups
from ffr_lib.sweeps.sweep import run_sweep
from ffr_lib.training.config import RunConfig

TINY = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=1, width=8, batch_size=64)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def trained_counts(store: ResultStore) -> Counter:
    """How many times each hash was trained, over every record's `trained` list."""
    return Counter(h for r in store.records() for h in r.get("trained", []))


def test_stage1_is_trained_once_for_every_stage2_run(tmp_path):
    configs = grid(replace(TINY, mode="ffr", pre_lr=1e-3), method=("erm", "groupdro", "resampling"),
                   lr=(1e-3, 1e-4)).configs()
    counts = count_trainings(configs)
    assert counts == {"runs": 6, "nodes": 7, "trainings_with_reuse": 7, "trainings_without_reuse": 12, "dfr_fits": 0,
                      "trainings_staged": 7}
    summary = run_sweep(configs, str(tmp_path), progress=False, threads=1)
    assert summary["done"] == 7 and not summary["errors"]
    store = ResultStore(tmp_path)
    stage1 = configs[0].prefix().hash
    trained = trained_counts(store)
    assert trained[stage1] == 1 and len(trained) == 7 and set(trained.values()) == {1}
    reused = Counter(h for r in store.records() for h in r.get("reused", []))
    assert reused[stage1] == 6  # every stage-2 run loaded the cached stage-1 checkpoint
    assert store.checkpoint_path(stage1).is_file()


def test_dfr_refits_on_the_erm_model_without_retraining(tmp_path):
    configs = grid(TINY, mode=("none", "ffr"), method=("erm", "dfr")).configs()
    counts = count_trainings(configs)
    # none: ERM; ffr: stage 1 + ERM; DFR reuses both ERM models: 3 trainings, 2 refits
    assert counts["trainings_with_reuse"] == 3 and counts["dfr_fits"] == 2
    assert counts["trainings_without_reuse"] == 1 + 2 + 1 + 2
    assert [len(p) for p in phases(configs)] == [2, 2, 1]  # stage 1 + None ERM; FFR ERM + None DFR; FFR DFR
    summary = run_sweep(configs, str(tmp_path), progress=False, threads=1)
    assert summary["done"] == 5
    store = ResultStore(tmp_path)
    assert set(trained_counts(store).values()) == {1}
    for c in configs:
        if c.method == "dfr":
            rec = store.get(c.hash)
            assert rec["trained"] == [] and rec["reused"] == [c.base().hash]
            assert rec["val"] == store.get(c.base().hash)["val"]  # selection sees the base's validation
            assert rec["dfr"]["C"] in (3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003)


def test_resume_skips_stored_runs(tmp_path):
    configs = grid(TINY, mode=("none", "usb")).configs()
    first = run_sweep(configs, str(tmp_path), progress=False, threads=1)
    second = run_sweep(configs, str(tmp_path), progress=False, threads=1)
    assert first["done"] == 2 and second["done"] == 0 and second["stored_before"] == 2
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 2


def test_a_failed_run_does_not_end_the_sweep(tmp_path):
    configs = [replace(TINY, lr=float("inf")), TINY]
    summary = run_sweep(configs, str(tmp_path), progress=False, threads=1)
    assert summary["failed"] == 1 and summary["done"] == 1
    # a recorded failure is not retried
    assert run_sweep(configs, str(tmp_path), progress=False, threads=1)["pending"] == 0


SWEEP_SCRIPT = textwrap.dedent("""
    import sys, torch
    from dataclasses import replace
    from ffr_lib.training.config import RunConfig
    from ffr_lib.sweeps.profiles import TINY_WORLD
    from ffr_lib.sweeps.grids import grid
    from ffr_lib.sweeps.sweep import run_sweep
    torch.set_num_threads(1)
    base = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=2, width=8, batch_size=64)
    configs = grid(base, mode=("none", "usb", "asb"), seed=(0, 1, 2)).configs()
    run_sweep(configs, sys.argv[1], progress=False, threads=1)
""")


@pytest.mark.slow
def test_killed_sweep_resumes_without_losing_or_repeating(tmp_path):
    folder = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-c", SWEEP_SCRIPT, str(folder)], env={**os.environ, "PYTHONHASHSEED": "0"})
    runs = folder / "runs"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list(runs.glob("*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: p.read_bytes() for p in runs.glob("*.json")}
    assert 2 <= len(before) < 9, "the kill came too late to test a resume"
    exec(compile(SWEEP_SCRIPT.replace("sys.argv[1]", repr(str(folder))), "sweep", "exec"), {})
    after = {p.name: p.read_bytes() for p in runs.glob("*.json")}
    assert len(after) == 9  # nothing lost
    for name, data in before.items():
        assert after[name] == data  # finished runs neither repeated nor rewritten
    assert all(json.loads(d)["status"] == "ok" for d in after.values())
    assert ResultStore(folder).hashes() == {p[:-5] for p in after}


def test_dry_run_prints_the_plan(tmp_path, capsys):
    configs = get_profile("smoke").configs()
    assert run_sweep(configs, str(tmp_path), executor="dry")["done"] == 0
    out = capsys.readouterr().out
    assert "4 runs in the grid, 5 DAG nodes, 0 stored, 5 to run" in out
    assert "phase 1: 1 runs" in out and "[checkpoint kept]" in out
    assert not (tmp_path / "runs").exists()


def test_paper_grid_needs_fewer_trainings_with_reuse():
    counts = count_trainings(get_profile("paper").configs())
    assert counts["trainings_with_reuse"] < counts["trainings_without_reuse"]
    assert counts["dfr_fits"] > 0
    assert {"smoke", "quick", "paper", "paper-real"} <= set(PROFILES.names())


def test_profile_dataset_override():
    quick = get_profile("quick")
    animals = quick.configs(("shapes-animals",))
    assert {c.dataset for c in animals} == {"shapes-animals"} and len(animals) == len(quick.configs())
    paper = get_profile("paper").configs(("shapes-binary",))
    assert {c.dataset for c in paper} == {"shapes-binary"}


@pytest.mark.slow
def test_worker_per_device_executor(tmp_path):
    configs = grid(TINY, mode=("none", "ffr")).configs()
    summary = run_sweep(configs, str(tmp_path), executor="gpus", progress=False, devices=["cpu"], threads=1)
    assert summary["done"] == 3 and not summary["errors"]
    assert {r["device"] for r in ResultStore(tmp_path).records()} == {"cpu"}


def test_two_cpu_processes_write_the_records_of_one_process(tmp_path):
    """The `processes` executor (2 one-thread workers on this CPU) trains the same DAG and writes
    the same numbers as one process running the runs in order, checkpoints kept on request."""
    configs = grid(TINY, mode=("none", "usb", "ffr")).configs()
    keep = [c.hash for c in configs]
    one = run_sweep(configs, str(tmp_path / "one"), progress=False, threads=1, keep=keep)
    two = run_sweep(configs, str(tmp_path / "two"), executor="processes", progress=False, workers=2, threads=1,
                    keep=keep)
    assert one["done"] == two["done"] == 4 and not one["errors"] and not two["errors"]
    a, b = ResultStore(tmp_path / "one"), ResultStore(tmp_path / "two")
    for c in configs:
        ra, rb = a.get(c.hash), b.get(c.hash)
        assert [h["loss"] for h in ra["history"]] == [h["loss"] for h in rb["history"]]
        assert ra["test"] == rb["test"] and rb["threads"] == 1
        assert b.checkpoint_path(c.hash).is_file()
    assert set(trained_counts(b).values()) == {1}


@pytest.mark.slow
def test_submitit_local_executor(tmp_path):
    configs = grid(TINY, mode=("none", "ffr")).configs()
    summary = run_sweep(configs, str(tmp_path), executor="slurm", progress=False, cluster="local", runs_per_job=2,
                        threads=1, timeout_min=5)
    assert summary["done"] == 3 and not summary["errors"], summary["errors"]
    assert make_plan(configs, ResultStore(tmp_path)).pending == 0


def test_packed_executor_trains_packs_and_keeps_the_dag(tmp_path):
    """FFR stage 2 over methods x lrs x seeds plus DFR: the packed executor trains each stage 1 once,
    packs the stage-2 runs of a cell (one pack: 2 seeds x 2 methods x 2 lrs), and the records carry
    the pack size, the prefix reuse and a test set evaluation."""
    from ffr_lib.sweeps.schedule import pack_key, packs

    configs = grid(replace(TINY, mode="ffr", pre_lr=1e-3), method=("erm", "groupdro", "dfr"), lr=(1e-3, 1e-4),
                   seed=(0, 1)).configs()
    stage2 = [c for c in phases(configs)[1] if c.trains]
    assert len({pack_key(c) for c in stage2}) == 1 and [len(p) for p in packs(stage2, 32)] == [8]
    assert [len(p) for p in packs(stage2, 3)] == [3, 2, 3]
    summary = run_sweep(configs, str(tmp_path), executor="packed", progress=False, device="cpu", threads=1)
    assert summary["done"] == 2 + 8 + 4 and not summary["errors"] and summary["failed"] == 0
    store = ResultStore(tmp_path)
    assert set(trained_counts(store).values()) == {1}
    for c in stage2:
        rec = store.get(c.hash)
        assert rec["pack"] == 8 and rec["reused"] == [c.prefix().hash] and 0 <= rec["test"]["wa"] <= 1
    assert all(store.get(c.hash)["dfr"] for c in configs if c.method == "dfr")


def test_packed_executor_composes_the_next_pack_on_a_thread_with_the_same_records(tmp_path, monkeypatch):
    """Each pack's data sets are composed on the executor's compose thread (while the pack
    before trains), the runner uses them instead of composing again, and the records are
    those of runs alone (CPU: bit for bit)."""
    import threading

    from ffr_lib.sweeps import packed
    from ffr_lib.training import runner

    threads, recomposed = [], []
    ahead, again = packed.compose, runner.compose
    monkeypatch.setattr(packed, "compose", lambda c: threads.append(threading.current_thread().name) or ahead(c))
    monkeypatch.setattr(runner, "compose", lambda c: recomposed.append(c.hash) or again(c))
    configs = grid(replace(TINY, mode="none"), ratio=(0.95, 0.9), lr=(1e-3, 1e-4)).configs()  # 2 packs of 2
    summary = run_sweep(configs, str(tmp_path / "packed"), executor="packed", progress=False, device="cpu",
                        threads=1, prefetch_workers=0)
    assert summary["done"] == 4 and not summary["errors"]
    assert len(threads) == 4 and all(t.startswith("ffr-compose") for t in threads) and recomposed == []
    run_sweep(configs, str(tmp_path / "alone"), executor="inprocess", progress=False, device="cpu", threads=1)
    packed, alone = ResultStore(tmp_path / "packed"), ResultStore(tmp_path / "alone")
    for c in configs:
        a, b = packed.get(c.hash), alone.get(c.hash)
        assert a["pack"] == 2 and a["test"] == b["test"] and a["val"] == b["val"]
        assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_work_groups_are_independent_and_keep_the_packs_of_the_whole_plan(tmp_path):
    """Groups for several devices: every pending run in exactly one group, each run with its
    pending dependencies and with every run it may share a pack with, so the groups' packs are
    the whole plan's packs; largest estimated work first. Stored dependencies link nothing."""
    configs = grid(replace(TINY, pre_lr=1e-3), mode=("none", "usb", "ffr"), method=("erm", "dfr"),
                   ratio=(0.95, 0.9), seed=(0, 1)).configs()
    plan = make_plan(configs, ResultStore(tmp_path))
    groups = work_groups(plan)
    where = {c.hash: i for i, g in enumerate(groups) for p in g.phases for c in p}
    assert sorted(where) == sorted(c.hash for p in plan.phases for c in p)  # each run once
    assert sum(g.pending for g in groups) == plan.pending
    for g in groups:
        for p in g.phases:
            for c in p:
                assert all(where[d.hash] == where[c.hash] for d in c.dependencies() if d.hash in where)
    keys = {}
    for h, i in where.items():
        c = next(c for p in plan.phases for c in p if c.hash == h)
        if c.trains:
            assert keys.setdefault(pack_key(c), i) == i
    whole = sorted(tuple(c.hash for c in pack) for p in plan.phases for pack in packs(p, 3))
    split = sorted(tuple(c.hash for c in pack) for g in groups for p in g.phases for pack in packs(p, 3))
    assert whole == split
    # none, usb, ffr stage 1 + stage 2 (their DFR refits with them) for each ratio: 6 groups
    assert len(groups) == 6
    costs = [sum(estimated_cost(c) for p in g.phases for c in p) for g in groups]
    assert costs == sorted(costs, reverse=True)
    # with FFR's stage 1 stored, its stage-2 runs no longer wait on anything in the plan
    stage1 = [c for c in plan.phases[0] if c.mode == "ffr"]
    run_sweep(stage1, str(tmp_path), progress=False, threads=1)
    rest = make_plan(configs, ResultStore(tmp_path))
    assert len(stage1) == 4 and rest.pending == plan.pending - 4 and len(work_groups(rest)) == 6


def test_unreported_runs_of_a_failed_worker_are_errors():
    from ffr_lib.sweeps.packed import unreported
    from ffr_lib.sweeps.plan import Plan

    a, b = replace(TINY, seed=0), replace(TINY, seed=1)
    group = Plan([[a, b]], frozenset(), 0)
    got = unreported(group, [{"hash": a.hash, "status": "ok"}], RuntimeError("CUDA error: out of memory"))
    assert [o["hash"] for o in got] == [b.hash]
    assert got[0]["status"] == "error" and "RuntimeError: CUDA error: out of memory" in got[0]["error"]


def test_packed_on_two_workers_writes_the_records_of_one_process(tmp_path):
    """`packed` with two devices (here two one-thread CPU workers) runs the plan's groups in two
    processes and writes exactly the records of the packed executor in one process."""
    configs = grid(replace(TINY, pre_lr=1e-3), mode=("none", "ffr"), method=("erm", "dfr"),
                   lr=(1e-3, 1e-4)).configs()
    assert len(work_groups(make_plan(configs, ResultStore(tmp_path / "two")))) == 2  # none; ffr stages 1-2
    one = run_sweep(configs, str(tmp_path / "one"), executor="packed", progress=False, device="cpu", threads=1,
                    prefetch_workers=0)
    two = run_sweep(configs, str(tmp_path / "two"), executor="packed", progress=False, devices=["cpu", "cpu"],
                    threads=1, prefetch_workers=1)
    assert one["done"] == two["done"] == 1 + 4 + 4 and not one["errors"] and not two["errors"]
    a, b = ResultStore(tmp_path / "one"), ResultStore(tmp_path / "two")
    for c in configs:
        ra, rb = a.get(c.hash), b.get(c.hash)
        untimed = [[{k: v for k, v in h.items() if k != "seconds"} for h in r.get("history", [])] for r in (ra, rb)]
        assert untimed[0] == untimed[1] and ra["test"] == rb["test"], c.label()
        assert ra["val"] == rb["val"] and ra.get("pack") == rb.get("pack") and ra.get("dfr") == rb.get("dfr")
    assert set(trained_counts(b).values()) == {1}


def test_interrupted_packed_on_devices_stops_its_workers_and_resumes(tmp_path, monkeypatch):
    """An interrupt in the parent (a notebook's stop button) terminates the device workers at
    once; the records already written are whole, and a rerun trains only the rest."""
    import multiprocessing as mp

    from ffr_lib.sweeps import packed

    configs = grid(replace(TINY, pre_lr=1e-3), mode=("none", "ffr"), method=("erm", "dfr"),
                   lr=(1e-3, 1e-4)).configs()

    def interrupt(bar, outcome):
        raise KeyboardInterrupt

    monkeypatch.setattr(packed, "note", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(configs, str(tmp_path), executor="packed", progress=False, devices=["cpu", "cpu"], threads=1,
                  prefetch_workers=0)
    assert not [p for p in mp.active_children() if p.is_alive()]
    monkeypatch.undo()
    store = ResultStore(tmp_path)
    first = store.hashes()
    assert 1 <= len(first) < 9 and all(store.get(h)["status"] == "ok" for h in first)
    again = run_sweep(configs, str(tmp_path), executor="packed", progress=False, devices=["cpu", "cpu"], threads=1,
                      prefetch_workers=0)
    assert again["stored_before"] == len(first) and again["done"] == 9 - len(first) and not again["errors"]
    assert make_plan(configs, ResultStore(tmp_path)).pending == 0


def test_packs_cut_a_cell_into_nearly_equal_packs():
    cell = [replace(TINY, seed=s, lr=lr) for s in range(5) for lr in (1e-3, 3e-4, 1e-4, 3e-5)]  # 20 runs
    other = [replace(TINY, ratio=0.9, seed=s) for s in range(3)]
    got = packs(cell + other, max_pack=9)
    assert [len(p) for p in got] == [7, 6, 7, 3]
    assert [c for p in got[:3] for c in p] == cell  # order kept, nothing lost
    assert all(len({pack_key(c) for c in p}) == 1 for p in got)
    assert [len(p) for p in packs(cell, max_pack=32)] == [20]


def test_ready_queue_starts_a_run_once_its_dependencies_finish_longest_chain_first(tmp_path):
    """Notebook 05's five runs on 2 workers: FFR stage 1 (20 epochs of the synthetic set) before
    stage 2, None (real set), USB and ASB (about twice the real set): 80 epoch-units in
    dependency order, the bound for these sizes, against 100 phase by phase."""
    base = replace(TINY, epochs=20)
    configs = grid(base, mode=("none", "usb", "asb", "ffr")).configs()
    plan = make_plan(configs, ResultStore(tmp_path))
    assert [estimated_cost(c) for c in sorted(plan.phases[0], key=lambda c: c.mode)] == [40, 20, 20, 40]
    ordered, starts = simulate(plan, workers=2)
    phased, _ = simulate(plan, workers=2, phased=True)
    assert (ordered, phased) == (80, 100)
    stage1 = next(t for t, c in starts if "ffr[1]" in c.label())
    stage2 = next(t for t, c in starts if " ffr/" in c.label())
    assert stage1 == 0 and stage2 >= stage1 + 20  # stage 2 waits for stage 1 and no longer
    # FFR stage 2 is not ready before stage 1 has finished, nor a DFR refit before its ERM base
    queue = ReadyQueue(make_plan([replace(base, mode="ffr")], ResultStore(tmp_path)))
    first = queue.pop()
    assert "ffr[1]" in first.label() and queue.pop() is None
    queue.finished(first.hash)
    assert " ffr/" in queue.pop().label() and queue.pop() is None
    queue = ReadyQueue(make_plan([replace(base, method="dfr")], ResultStore(tmp_path)))
    erm = queue.pop()
    assert erm.method == "erm" and queue.pop() is None
    queue.finished(erm.hash)
    assert queue.pop().method == "dfr" and queue.left == 1
