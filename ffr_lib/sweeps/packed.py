"""The packed executor: runs that can share a pack (schedule.pack_key) trained together on one
GPU, each on its own CUDA stream, with synthetic sets rendered ahead (prefetch.py) and each
pack's data composed on a thread while the pack before it trains; on several devices, one
worker process a device, each taking independent groups of the plan (schedule.work_groups).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from pathlib import Path

from ..training import data_cache
from ..training.config import RunConfig
from ..training.linear_fits import processes_for, spare_cores
from ..training.modes import RunData, compose
from . import prefetch
from .jobs import run_one, run_pack
from .plan import Plan
from .schedule import packs, work_groups
from .workers import note, pin, progress_bar


@contextlib.contextmanager
def _synthetic_cache(folder: str):
    """FFR_SYNTHETIC_CACHE for the sweep: the user's, else <store>/cache (restored after)."""
    old = os.environ.get(data_cache.CACHE_ENV)
    os.environ[data_cache.CACHE_ENV] = old or str(Path(folder) / "cache")
    try:
        yield os.environ[data_cache.CACHE_ENV]
    finally:
        if old is None:
            os.environ.pop(data_cache.CACHE_ENV, None)


def _compose_pack(pack: Sequence[RunConfig], ready: dict[str, Future]) -> dict[str, RunData]:
    """The pack's data sets (modes.compose), by canonical hash, once the prefetch workers have
    rendered its synthetic sets; a run whose data fails is left out (the run composes it again
    and records the error itself). Runs on the executor's compose thread: compose is a pure
    function of the config (explicit seeds, no global random state), and its caches are
    lru_caches and atomic file writes."""
    out = {}
    for c in pack:
        future = ready.get(prefetch.data_key(c))
        if future is not None and future.exception() is not None:
            continue
        try:
            canonical = c.canonical()
            out[canonical.hash] = compose(canonical)
        except Exception:  # noqa: BLE001 - reported by the run itself
            continue
    return out


def _prefetch_order(plans: Sequence[Plan], max_pack: int) -> list[RunConfig]:
    """The runs whose synthetic sets to render ahead, in the order the plans will need them:
    packed runs first, in pack order, then the others; only runs with synthetic sets (a worker
    composing a None run would render the real world for nothing, and the first pack would wait
    for it)."""
    order = [c for plan in plans for phase in plan.phases for pack in packs(phase, max_pack) if len(pack) > 1
             for c in pack]
    order += [c for plan in plans for phase in plan.phases for c in phase]
    return [c for c in order if c.uses_synthetic]


# runs a pack at most: on an H100, 8 small-ResNet runs side by side train 304,000 images/s and
# 32 train 266,000 (bench/studies/pack_sizes.py; more runs contend for the GPU), so a cell's 18 or 27
# runs go as packs of 9
MAX_PACK = 9


def packed(plan: Plan, folder: str, progress: bool = True, device: str = "cuda", threads: int | None = None,
           max_pack: int = MAX_PACK, prefetch_workers: int | None = None,
           compile_backend: str | None = None, devices: Sequence[str] | None = None,
           report: Callable[[dict], None] | None = None) -> list[dict]:
    """In this process, trainings that can share a pack (schedule.pack_key: same cell but seed, lr,
    method and generator knobs) trained together by packing.train_packed, up to `max_pack` at
    once (each run on its own CUDA stream); DFR refits one at a time. For small models on a GPU. Synthetic
    sets are rendered ahead by `prefetch_workers` processes (default: all cores but two) into
    the disk cache (training/data_cache.py, prefetch.py), in the order the packs need them, and each pack's data sets
    are composed on a thread while the pack before it trains. compile_backend: torch.compile
    the packed runs' training forward ('inductor'; see loop.train_stage). `devices`: two or more
    (e.g. every GPU of a node) run the plan's independent groups in one worker process each
    (packed_on_devices); `report` is called with each run's outcome as it finishes."""
    if devices is not None and len(devices) > 1:
        return packed_on_devices(plan, folder, progress, devices, threads, max_pack, prefetch_workers,
                                 compile_backend)
    if devices:
        device = devices[0]
    workers = max(0, (os.cpu_count() or 1) - 2) if prefetch_workers is None else prefetch_workers
    if str(device).startswith("cuda"):
        import torch

        torch.backends.cudnn.benchmark = True  # fixed shapes per pack: pick the fastest convolutions
    outcomes = []

    def finished(outcome: dict) -> None:
        outcomes.append(outcome)
        note(bar, outcome)
        if report is not None:
            report(outcome)

    keep = sorted(plan.keep)
    order = [[p for p in packs(phase, max_pack) if len(p) > 1] for phase in plan.phases]
    flat = [pack for phase_packs in order for pack in phase_packs]
    # on a GPU, DFR's liblinear fits go to the CPU's spare cores (a pool that ends with the sweep)
    refit_processes = spare_cores() if str(device).startswith("cuda") else 0
    with _synthetic_cache(folder) as cache, progress_bar(plan, progress) as bar, \
            ThreadPoolExecutor(1, thread_name_prefix="ffr-compose") as composer, processes_for(refit_processes):
        ready = prefetch.prefetch(_prefetch_order([plan], max_pack), cache, workers)
        # the next pack's data sets are composed on a thread while a pack trains
        ahead = {0: composer.submit(_compose_pack, flat[0], ready)} if flat else {}
        j = 0
        for phase, grouped in zip(plan.phases, order):
            in_pack = {c.hash for p in grouped for c in p}
            for pack in grouped:
                bar.set_postfix_str(f"pack of {len(pack)}: {pack[0].label()}", refresh=True)
                if j + 1 < len(flat):
                    ahead[j + 1] = composer.submit(_compose_pack, flat[j + 1], ready)
                composed = ahead.pop(j).result()
                j += 1
                for outcome in run_pack([c.to_dict() for c in pack], folder, keep, device, threads, compile_backend,
                                        composed):
                    finished(outcome)
            for config in phase:
                if config.hash not in in_pack:
                    bar.set_postfix_str(config.label(), refresh=True)
                    finished(run_one(config.to_dict(), folder, keep, device, threads, compile_backend))
    return outcomes


_GROUP_WORKER: dict = {}  # in each packed_on_devices worker process: its device and report queue


def _pin_group_worker(devices: mp.Queue, reports, threads: int | None) -> None:
    """Worker initializer: take one device for the worker's life, and the queue to report on."""
    pin(devices, threads)
    _GROUP_WORKER.update(device=os.environ["FFR_WORKER_DEVICE"], reports=reports)


def _packed_group(phases: list[list[dict]], keep: list[str], folder: str, threads: int | None, max_pack: int,
                  compile_backend: str | None) -> list[dict]:
    """Worker: one group of the plan (schedule.work_groups) through `packed` on this worker's
    device, reporting each outcome; the parent renders the synthetic sets ahead."""
    group = Plan([[RunConfig.from_dict(c) for c in phase] for phase in phases], frozenset(keep), 0)
    return packed(group, folder, progress=False, device=_GROUP_WORKER["device"], threads=threads, max_pack=max_pack,
                  prefetch_workers=0, compile_backend=compile_backend, report=_GROUP_WORKER["reports"].put)


def unreported(group: Plan, outcomes: Sequence[dict], error: BaseException) -> list[dict]:
    """Error outcomes for the runs of a group whose worker failed before reporting them (the
    records it did write stay in the store, and a resume retries the rest)."""
    seen = {o["hash"] for o in outcomes}
    text = f"worker failed: {type(error).__name__}: {error}"
    return [{"hash": c.hash, "label": c.label(), "status": "error", "error": text}
            for phase in group.phases for c in phase if c.hash not in seen]


def packed_on_devices(plan: Plan, folder: str, progress: bool, devices: Sequence[str], threads: int | None = None,
                      max_pack: int = MAX_PACK, prefetch_workers: int | None = None,
                      compile_backend: str | None = None) -> list[dict]:
    """The packed executor on several devices: one spawned worker process per device (the same
    device may be named twice, to overlap one worker's start-up, compilation and refits with the
    other's training), each running independent groups of the plan (schedule.work_groups: the same
    packs as one process would train), the largest first, the next group to the first free
    worker. The synthetic sets of all groups are rendered here ahead, in that order, by
    `prefetch_workers` processes (default: all cores but two and one a device)."""
    groups = work_groups(plan)
    default = max(0, (os.cpu_count() or 1) - 2 - len(devices))
    workers = default if prefetch_workers is None else prefetch_workers
    ctx = mp.get_context("spawn")
    outcomes: list[dict] = []
    with _synthetic_cache(folder) as cache, progress_bar(plan, progress) as bar, ctx.Manager() as manager:
        prefetch.prefetch(_prefetch_order(groups, max_pack), cache, workers)
        device_queue, reports = ctx.Queue(), manager.Queue()
        for d in devices:
            device_queue.put(d)
        seen: list[dict] = []

        def drain() -> None:
            while not reports.empty():
                outcome = reports.get()
                seen.append(outcome)
                note(bar, outcome)

        pool = ProcessPoolExecutor(len(devices), mp_context=ctx, initializer=_pin_group_worker,
                                   initargs=(device_queue, reports, threads))
        try:
            running = {pool.submit(_packed_group, [[c.to_dict() for c in p] for p in g.phases], sorted(g.keep),
                                   folder, threads, max_pack, compile_backend): g for g in groups}
            bar.set_postfix_str(f"{len(groups)} groups on {len(devices)} workers", refresh=True)
            pending = set(running)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                drain()
                for fut in done:
                    error = fut.exception()
                    if error is None:
                        outcomes += fut.result()
                    else:
                        group = running[fut]
                        hashes = {c.hash for p in group.phases for c in p}
                        written = [o for o in seen if o["hash"] in hashes]
                        outcomes += written
                        for o in unreported(group, written, error):
                            outcomes.append(o)
                            note(bar, o)
        except BaseException:
            # interrupted (a notebook's stop button reaches only this process): stop the workers
            # now rather than after their groups; every record written so far is whole, and a
            # rerun resumes the rest
            _stop_workers(pool)
            raise
        pool.shutdown()
        drain()
    return outcomes


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued work of `pool` and terminate its worker processes."""
    processes = list(getattr(pool, "_processes", {}).values())  # the executor has no public handle
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(timeout=10)
