"""The units every executor ships to a worker: one run, a pack of runs, or several runs in one
process, each against a store folder, each returning outcomes ({'hash', 'label', 'status',
'error'}) instead of raising, so that one run's bug never ends a sweep."""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from ..results import ResultStore
from ..training.config import RunConfig
from ..training.runner import Runner


def run_one(config: dict, folder: str, keep: Sequence[str], device: str = "cpu", threads: int | None = None,
            compile_backend: str | None = None) -> dict:
    """Execute one run (a config dict) against the store in `folder`: the unit every executor
    ships. Returns {'hash', 'label', 'status', 'error'}; a diverged run is a stored failure,
    any other exception is returned as status 'error' and not stored (a resume retries it)."""
    c = RunConfig.from_dict(config)
    try:
        record = Runner(ResultStore(folder), device=device, threads=threads, keep=frozenset(keep),
                        compile_backend=compile_backend).run(c)
        return {"hash": c.hash, "label": c.label(), "status": record["status"], "error": record.get("error")}
    except Exception:  # noqa: BLE001 - one run's bug must not end the sweep; it is reported
        return {"hash": c.hash, "label": c.label(), "status": "error", "error": traceback.format_exc()}


def run_pack(configs: Sequence[dict], folder: str, keep: Sequence[str], device: str = "cpu",
             threads: int | None = None, compile_backend: str | None = None,
             composed: Mapping[str, Any] | None = None) -> list[dict]:
    """Execute runs (config dicts) as one pack; outcomes as run_one's. If the pack cannot be
    built or fails, each run is retried alone (so a packing problem never loses a run).
    `composed`: their data sets composed ahead (modes.RunData by canonical hash)."""
    cs = [RunConfig.from_dict(c) for c in configs]
    try:
        runner = Runner(ResultStore(folder), device=device, threads=threads, keep=frozenset(keep),
                        compile_backend=compile_backend)
        records = runner.run_pack(cs, composed)
        return [{"hash": c.hash, "label": c.label(), "status": r["status"], "error": r.get("error")}
                for c, r in zip(cs, records)]
    except Exception:  # noqa: BLE001 - fall back to one run at a time
        note = traceback.format_exc(limit=3)
        outcomes = [run_one(c, folder, keep, device, threads, compile_backend) for c in configs]
        for o in outcomes:
            o["pack_error"] = note
        return outcomes


def run_many(configs: Sequence[dict], folder: str, keep: Sequence[str], device: str = "cpu",
             threads: int | None = None) -> list[dict]:
    """Several runs in one process (one SLURM task or one worker job)."""
    return [run_one(c, folder, keep, device, threads) for c in configs]
