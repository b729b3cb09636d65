"""A sweep: plan a grid against a results store and run the plan with an executor, round after
round while staged search decides stage-1 lrs; refuses a store of other numerics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..numerics import Numerics, check_store, expected
from ..results import ResultStore
from ..training.config import RunConfig
from .executors import EXECUTORS
from .plan import make_plan

# executor -> (default device, default threads) of the runs it trains
_EXECUTOR_DEVICE = {"inprocess": ("cpu", None), "packed": ("cuda", None), "processes": ("cpu", 1),
                    "gpus": ("cuda", None), "slurm": ("cuda", None)}


def sweep_numerics(executor: str, options: Mapping[str, Any]) -> Numerics | None:
    """The numerics the runs of a sweep with `executor` and its `options` get (None: dry run)."""
    if executor not in _EXECUTOR_DEVICE:
        return None
    device, threads = _EXECUTOR_DEVICE[executor]
    device = options.get("device") or (options.get("devices") or [device])[0]
    return expected(device, options.get("threads") or threads, options.get("compile_backend"))


def run_sweep(
    configs: Sequence[RunConfig],
    folder: str,
    executor: str = "inprocess",
    progress: bool = True,
    keep: Sequence[str] = (),
    allow_mixed_numerics: bool = False,
    **options: Any,
) -> dict:
    """Plan the sweep over `configs` against the store in `folder` and run it with `executor`
    (a name in executors.EXECUTORS; `options` go to it); `keep`: hashes whose checkpoints to keep
    besides those the DAG needs. Raises numerics.MixedNumerics before training anything if the
    store holds runs computed in other numerics (unless `allow_mixed_numerics`). Returns a
    summary: counts of runs done, stored, failed and errored, the trainings with and without
    reuse, and the errors."""
    store = ResultStore(folder)
    plan = make_plan(configs, store, keep)
    first, outcomes = plan, []
    numerics = sweep_numerics(executor, options) if plan.pending else None
    if numerics is not None:
        check_store(store.records(), numerics, str(store.folder), allow_mixed_numerics)
    while True:  # staged search: each round trains what is decided; the stage-1 choices come next
        done = EXECUTORS[executor](plan, str(store.folder), progress=progress, **options)
        if done is None:  # a dry run
            break
        outcomes += done
        if not plan.deferred or not any(o["status"] in ("ok", "failed") for o in done):
            break  # nothing waits, or nothing new was stored (a stage 1 that errors stays deferred)
        plan = make_plan(configs, store, keep)
        if not plan.pending:
            break
    if executor != "dry" and store.runs.is_dir():
        store.write_index()
    return {
        **first.counts,
        "pending": first.pending,
        "deferred": plan.deferred,
        "stored_before": first.stored,
        "done": sum(o["status"] == "ok" for o in outcomes),
        "failed": sum(o["status"] == "failed" for o in outcomes),
        "errors": [o for o in outcomes if o["status"] == "error"],
    }
