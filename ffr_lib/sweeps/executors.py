"""Executors, one registry: the same plan, run in this process, on every visible GPU, on a
SLURM cluster through submitit, packed on one GPU or several (packed.py), or only printed
(dry run).

An executor takes a `Plan` (phases of pending runs: a phase starts when the previous one has
finished, so dependencies are ready; the pools of worker processes follow the DAG itself,
schedule.ReadyQueue) and the store's folder, and returns one outcome dict per
run ({'hash', 'label', 'status', 'error'}), or None for the dry run.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from ..registry import Registry
from ..training.config import RunConfig
from .jobs import run_many, run_one
from .packed import packed
from .plan import Plan
from .schedule import ReadyQueue
from .workers import note, pin, progress_bar, visible_devices

Executor = Callable[..., list[dict] | None]
EXECUTORS: Registry[Executor] = Registry("executor")


@EXECUTORS.register("inprocess")
def inprocess(plan: Plan, folder: str, progress: bool = True, device: str = "cpu", threads: int | None = None,
              compile_backend: str | None = None) -> list[dict]:
    """One run after another in this process (keeps loaded data sets in memory between runs)."""
    outcomes = []
    with progress_bar(plan, progress) as bar:
        for phase in plan.phases:
            for config in phase:
                bar.set_postfix_str(config.label(), refresh=True)
                outcome = run_one(config.to_dict(), folder, sorted(plan.keep), device, threads, compile_backend)
                outcomes.append(outcome)
                note(bar, outcome)
    return outcomes


EXECUTORS.register("packed")(packed)


def _run_pinned(config: dict, folder: str, keep: Sequence[str], threads: int | None) -> dict:
    return run_one(config, folder, keep, os.environ["FFR_WORKER_DEVICE"], threads)


@EXECUTORS.register("gpus")
def gpus(
    plan: Plan,
    folder: str,
    progress: bool = True,
    devices: Sequence[str] | None = None,
    threads: int | None = None,
) -> list[dict]:
    """One worker process per device (default: every visible GPU), each pinned to its device;
    a run starts as soon as its dependencies have finished, longest chain of work first
    (schedule.ReadyQueue), not phase by phase; workers keep their loaded data sets between runs."""
    devices = list(devices) if devices is not None else visible_devices()
    if not devices:
        raise RuntimeError("executor 'gpus': no visible GPU (CUDA_VISIBLE_DEVICES?); use 'inprocess' on a CPU")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    for d in devices:
        queue.put(d)
    outcomes = []
    keep = sorted(plan.keep)
    order = ReadyQueue(plan)
    running: dict[Future, RunConfig] = {}
    with progress_bar(plan, progress) as bar, ProcessPoolExecutor(
        len(devices), mp_context=ctx, initializer=pin, initargs=(queue, threads)
    ) as pool:
        while order.left:
            while len(running) < len(devices) and (c := order.pop()) is not None:
                running[pool.submit(_run_pinned, c.to_dict(), folder, keep, threads)] = c
            if not running:
                raise RuntimeError(f"{order.left} run(s) wait on dependencies that never finish")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                config = running.pop(fut)
                bar.set_postfix_str(config.label(), refresh=True)
                outcome = fut.result()
                order.finished(config.hash)
                outcomes.append(outcome)
                note(bar, outcome)
    return outcomes


@EXECUTORS.register("processes")
def processes(plan: Plan, folder: str, progress: bool = True, device: str = "cpu", workers: int = 2,
              threads: int | None = 1) -> list[dict]:
    """`workers` processes on one device, `threads` each, taking runs in dependency order
    (schedule.ReadyQueue). On a CPU with 2 cores, 2 one-thread workers use both cores and never wait on each
    other, where one process with 2 OpenMP threads stalls when anything else runs."""
    if workers < 1:
        raise ValueError(f"executor 'processes': workers must be >= 1, got {workers}")
    return gpus(plan, folder, progress, devices=[device] * workers, threads=threads)


@EXECUTORS.register("slurm")
def slurm(
    plan: Plan,
    folder: str,
    progress: bool = True,
    cluster: str | None = None,
    runs_per_job: int = 8,
    threads: int | None = None,
    **slurm_parameters,
) -> list[dict]:
    """Submit each phase as a job array through submitit (`runs_per_job` runs per task, one GPU
    each); `cluster` None = auto (SLURM where available), 'local' = subprocesses here (tests).
    Extra keyword arguments go to `update_parameters` (e.g. slurm_partition, timeout_min)."""
    import submitit

    executor = submitit.AutoExecutor(folder=Path(folder) / "submitit", cluster=cluster)
    params = {"timeout_min": 240, "gpus_per_node": 1, "cpus_per_task": 8, **slurm_parameters}
    if executor.cluster in ("local", "debug"):
        params.pop("gpus_per_node")
        params.pop("cpus_per_task")
    executor.update_parameters(**params)
    keep = sorted(plan.keep)
    device = "cpu" if executor.cluster in ("local", "debug") else "cuda"
    outcomes = []
    with progress_bar(plan, progress) as bar:
        for phase in plan.phases:
            chunks = [phase[i : i + runs_per_job] for i in range(0, len(phase), runs_per_job)]
            jobs = executor.map_array(
                run_many,
                [[c.to_dict() for c in chunk] for chunk in chunks],
                [folder] * len(chunks),
                [keep] * len(chunks),
                [device] * len(chunks),
                [threads] * len(chunks),
            )
            for job, chunk in zip(jobs, chunks):
                bar.set_postfix_str(f"job {job.job_id}: {chunk[0].label()} ...", refresh=True)
                for outcome in job.result():
                    outcomes.append(outcome)
                    note(bar, outcome)
    return outcomes


@EXECUTORS.register("dry")
def dry(plan: Plan, folder: str, progress: bool = True, **_: object) -> None:
    """Print the plan (phases, runs, checkpoints kept, trainings) and run nothing."""
    c = plan.counts
    print(
        f"plan for {folder}: {c.get('runs', 0)} runs in the grid, {c.get('nodes', 0)} DAG nodes, "
        f"{plan.stored} stored, {plan.pending} to run; trainings {c.get('trainings_with_reuse', 0)} with reuse, "
        f"{c.get('trainings_without_reuse', 0)} without; {c.get('dfr_fits', 0)} DFR refits"
    )
    if plan.deferred or c.get("trainings_staged", 0) != c.get("trainings_with_reuse", 0):
        print(f"staged search: {c.get('trainings_staged', 0)} trainings with stage 2 only from the chosen stage-1 lr "
              f"(instead of {c.get('trainings_with_reuse', 0)}); {plan.deferred} runs wait for that choice, "
              "planned once their stage-1 runs have records")
    for k, phase in enumerate(plan.phases):
        print(f"phase {k}: {len(phase)} runs")
        for config in phase:
            flag = " [checkpoint kept]" if config.hash in plan.keep else ""
            print(f"  {config.hash}  {config.label()}{flag}")
    return None
