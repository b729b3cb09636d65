"""`ffr sweep`: a profile's grid, run (or resumed) into `<results>/<profile>`, then its table.

Every argument is checked before torch and pandas are imported (names from ffr_lib.names), and
the real datasets' folders and synthetic sets once before any training (ffr_lib.preflight): a
mistake is one UsageError line, not an error per run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import names
from ..errors import UsageError, errors_by_cause
from ..preflight import check_data_roots, check_synthetic_sets

if TYPE_CHECKING:
    import pandas as pd

    from ..training.config import RunConfig

TABLE_COLUMNS = ("dataset", "ratio", "mode", "order", "recipe", "method")
ONE_DEVICE = ("inprocess", "processes", "slurm", "dry")
COMPILING = ("inprocess", "packed")


def summary_table(folder: str | Path, rule: str = "val_worst_group") -> pd.DataFrame:
    """Test WA and BA (mean, std and bootstrap interval over seeds) per cell, after selection."""
    from ..results import ResultStore, aggregate
    from .selection import cell_columns, select

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


def format_table(table: pd.DataFrame) -> str:
    """The summary table as text: metrics to 3 decimals, learning rates as written (1e-04, not 0.000)."""
    import pandas as pd

    shown = table.copy()
    for column in ("lr", "pre_lr"):
        if column in shown:
            shown[column] = [("" if pd.isna(v) else f"{v:g}") for v in shown[column]]
    with pd.option_context("display.width", 160, "display.max_columns", 30):
        return shown.round(3).to_string(index=False)


def sweep_datasets(profile: str, datasets: Sequence[str] | None) -> tuple[str, ...]:
    """The datasets a sweep of `profile` trains on. A dataset the profile lacks replaces its dataset
    in every run only when it is of the same kind: a world profile's options (pool sizes, 32 px,
    small CNNs) mean nothing to a real dataset, and paper-real's (224 px ResNet-50 from ImageNet
    weights, sets from disk) nothing to the world, so such a pair is refused with the reason."""
    own = names.PROFILE_DATASETS[profile]
    if not datasets:
        return own
    own_kind = names.kind(own[0])
    for d in datasets:
        names.check_name("dataset", d, names.DATASETS, "--dataset")
        if d not in own and names.kind(d) != own_kind:
            fits = [p for p, ds in names.PROFILE_DATASETS.items() if d in ds]
            raise UsageError(f"--dataset {d}: profile {profile!r} is a grid on {names.KIND_OPTIONS[own_kind]}; its "
                             f"options do not apply to {d}; use a profile made for it: {', '.join(fits)}")
    return tuple(dict.fromkeys(datasets))


def check_arguments(profile: str, datasets: Sequence[str] | None, executor: str, threads: int | None,
                    workers: int, compile_backend: str | None, devices: Sequence[str] | None) -> tuple[str, ...]:
    """Every name and number of an `ffr sweep` call, without heavy imports; returns the datasets."""
    names.check_name("profile", profile, names.PROFILES, "--profile")
    names.check_name("executor", executor, names.EXECUTORS, "--executor")
    chosen = sweep_datasets(profile, datasets)
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    if devices and executor in ONE_DEVICE:
        raise UsageError(f"--devices: executor {executor!r} runs on one device; use packed or gpus")
    if compile_backend is not None and executor not in COMPILING:
        raise UsageError(f"--compile: executor {executor!r} does not compile; use packed or inprocess")
    return chosen


def synthetic_sets_on_disk(configs: Sequence[RunConfig]) -> tuple[set[tuple[str, str]], int]:
    """The (dataset, 'balanced' | 'agnostic') sets that runs of generator 'disk' read, and how many runs
    read them (the synthetic test set is always from the balanced set; see training.modes)."""
    sets, runs = set(), 0
    for config in configs:
        c = config.canonical()
        if c.uses_synthetic and c.generator == "disk":
            runs += 1
            sets.add((c.dataset, "balanced"))
            if c.recipe == "agnostic":
                sets.add((c.dataset, "agnostic"))
    return sets, runs


def report_errors(outcomes: Sequence[dict], debug: bool = False, stream=None) -> None:
    """Failed runs grouped by their cause, each cause whole (and with `debug`, its first traceback)."""
    stream = sys.stderr if stream is None else stream
    for cause, group in errors_by_cause(outcomes):
        first = group[0]
        stream.write(f"{len(group)} run(s) raised {cause} (first: {first['label']}, {first['hash']})\n")
        if debug:
            stream.write(str(first["error"]).rstrip() + "\n")


def parse_part(text: str) -> tuple[int, int]:
    """`--part K/N` -> (K, N), 1 <= K <= N."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--part {text}: expected K/N, e.g. 2/5") from None
    if not 1 <= k <= n:
        raise UsageError(f"--part {text}: K must be between 1 and N")
    return k, n


def part_of(profile: str, configs: list, k: int, n: int) -> list:
    """The K-th of N parts of `configs` (parts.split), runs of a store this profile shares weighing
    nothing (bench/grid_progress.py --plan lists the same parts)."""
    from ..tables import shared_runs
    from .parts import split

    return split(configs, n, shared_runs(profile))[k - 1]


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
    debug: bool = False,
    modes: list[str] | None = None,
    part: str | None = None,
) -> int:
    chosen = check_arguments(profile, datasets, executor, threads, workers, compile_backend, devices)
    for mode in modes or ():
        names.check_name("mode", mode, names.MODES, "--mode")
    k_of_n = parse_part(part) if part else None
    if executor != "dry":  # a dry run prints the plan, which needs no data
        check_data_roots(chosen)

    from .profiles import get_profile
    from .sweep import run_sweep

    prof = get_profile(profile)
    configs = prof.configs(chosen if datasets else None)
    if ratios:  # a slice of the grid, e.g. one bias ratio per GPU session
        have = sorted({c.ratio for c in configs})
        missing = [r for r in ratios if r not in have]
        if missing:
            raise UsageError(f"--ratio {missing}: profile {profile!r} has ratios {have}")
        configs = [c for c in configs if c.ratio in ratios]
    if modes:  # a slice by mode (its dependencies come along in the plan's closure)
        configs = [c for c in configs if c.canonical().mode in modes]
    if k_of_n:  # a K-th of the work, whole stage-1 families (parts.py)
        configs = part_of(profile, configs, *k_of_n)
    if executor != "dry":
        check_synthetic_sets(*synthetic_sets_on_disk(configs))
    folder = Path(results) / profile
    if devices == ["all"]:
        from .workers import visible_devices

        devices = visible_devices()
        if not devices:
            raise UsageError("--devices all: no visible GPU (CUDA_VISIBLE_DEVICES?)")
    options: dict = {}
    if executor in ("inprocess", "packed"):
        import torch

        options = {"device": device or ("cuda" if torch.cuda.is_available() else "cpu"), "threads": threads,
                   "compile_backend": compile_backend}
        if devices:
            options["devices"] = devices
    elif executor == "processes":
        options = {"device": device or "cpu", "threads": threads or 1, "workers": workers}
    elif executor == "gpus":
        options = {"threads": threads, "devices": devices}
    elif executor == "slurm":
        options = {"cluster": cluster, "threads": threads}
    t0 = time.perf_counter()
    if executor != "dry":  # runs a store another profile shares are copied, never trained again
        from ..results import ResultStore
        from ..tables import SHARES, import_records
        from .plan import closure

        for other in SHARES.get(profile, ()):
            copied = import_records(ResultStore(Path(results) / other), ResultStore(folder), list(closure(configs)))
            if copied:
                print(f"{profile}: {copied} records copied from {Path(results) / other} (the same runs)")
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
        print(format_table(table))
    report_errors(summary["errors"], debug)
    return 1 if summary["errors"] else 0
