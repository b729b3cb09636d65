"""`ffr sweep`: a profile's grid, run (or resumed) into `<results>/<profile>`, then its table."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ..results import ResultStore, aggregate
from .profiles import get_profile
from .selection import cell_columns, select
from .sweep import run_sweep

TABLE_COLUMNS = ("dataset", "ratio", "mode", "order", "recipe", "method")


def summary_table(folder: str | Path, rule: str = "val_worst_group") -> pd.DataFrame:
    """Test WA and BA (mean, std and bootstrap interval over seeds) per cell, after selection."""
    df = ResultStore(folder).frame()
    if df.empty:
        return df
    chosen = select(df, rule)
    by = [c for c in cell_columns(chosen) if chosen[c].astype(str).nunique() > 1 or c in TABLE_COLUMNS]
    table = aggregate(chosen, by=by, metrics=("test_wa", "test_ba"))
    lrs = chosen.groupby(by, dropna=False, sort=True)["lr"].first().reset_index(drop=True)
    table = table.assign(lr=lrs.to_numpy())
    # settings that do not apply to a mode are shown blank, not as their defaults
    if "order" in table:
        table["order"] = table["order"].where(table["mode"] == "ffr", "")
    if "recipe" in table:
        table["recipe"] = table["recipe"].where(table["mode"].isin(["asb", "ffr"]), "")
    return table


def sweep_command(
    profile: str,
    datasets: list[str] | None,
    executor: str,
    results: Path,
    device: str | None = None,
    threads: int | None = None,
    cluster: str | None = None,
    ratios: list[float] | None = None,
    workers: int = 2,
    compile_backend: str | None = None,
    devices: list[str] | None = None,
    allow_mixed_numerics: bool = False,
) -> int:
    prof = get_profile(profile)
    configs = prof.configs(tuple(datasets) if datasets else None)
    if ratios:  # a slice of the grid, e.g. one bias ratio per GPU session
        have = sorted({c.ratio for c in configs})
        missing = [r for r in ratios if r not in have]
        if missing:
            raise SystemExit(f"--ratio {missing}: profile {profile!r} has ratios {have}")
        configs = [c for c in configs if c.ratio in ratios]
    folder = Path(results) / profile
    if devices and executor not in ("packed", "gpus"):
        raise SystemExit(f"--devices: executor {executor!r} runs on one device; use packed or gpus")
    if devices == ["all"]:
        from .executors import visible_devices

        devices = visible_devices()
        if not devices:
            raise SystemExit("--devices all: no visible GPU (CUDA_VISIBLE_DEVICES?)")
    options: dict = {}
    if executor in ("inprocess", "packed"):
        import torch

        options = {"device": device or ("cuda" if torch.cuda.is_available() else "cpu"), "threads": threads,
                   "compile_backend": compile_backend}
        if devices:
            options["devices"] = devices
    elif compile_backend is not None:
        raise SystemExit(f"--compile: executor {executor!r} does not compile; use packed or inprocess")
    elif executor == "processes":
        options = {"device": device or "cpu", "threads": threads or 1, "workers": workers}
    elif executor == "gpus":
        options = {"threads": threads, "devices": devices}
    elif executor == "slurm":
        options = {"cluster": cluster, "threads": threads}
    t0 = time.perf_counter()
    summary = run_sweep(configs, str(folder), executor=executor, allow_mixed_numerics=allow_mixed_numerics, **options)
    if executor == "dry":
        return 0
    wall = time.perf_counter() - t0
    print(
        f"{profile}: {summary['done']} runs done, {summary['failed']} failed, {len(summary['errors'])} errors, "
        f"{summary['stored_before']} already stored; trainings {summary['trainings_with_reuse']} with reuse "
        f"({summary['trainings_without_reuse']} without); {wall:.0f} s; results in {folder}"
    )
    table = summary_table(folder)
    if not table.empty:
        with pd.option_context("display.width", 160, "display.max_columns", 30):
            print(table.round(3).to_string(index=False))
    return 1 if summary["errors"] else 0
