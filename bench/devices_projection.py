"""How long a grid would take on N devices with `ffr sweep --executor packed --devices`, projected
from one device's run records (no GPU needed). A projection, not a measurement.

    python bench/devices_projection.py bench/results/records_r0.999_compose_ahead_h200.tgz \\
        --profile paper --like-ratio 0.999 --devices 1 2 3 4 8 --overhead 100

The multi-device executor cuts the plan into independent groups (`ffr_lib.sweeps.schedule.
work_groups`: a run with what it depends on and with every run it may share a pack with) and
gives the largest group still waiting to the first free worker. A record says how long its run
took on the device that trained it (`seconds`: its share of its pack's data, start and training
plus its own evaluation and write; a DFR refit's own time), so a group's time is the sum over its
runs. A run of the profile without a record of its own takes the record of the same run at
`--like-ratio` (one measured slice stands for every ratio); a run with neither takes the median
of the records of its kind (training or refit) and is counted as imputed. Each worker first pays
`--overhead` seconds (process start, rendering the world, compiling and cuDNN autotuning: the
records hold these only once, for the process that made them). Prints one table and writes
bench/results/devices_projection_<name>.json (or --out).
"""

from __future__ import annotations

import argparse
import heapq
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from _common import RESULTS, machine_info, table, write_json
from grid_breakdown import load_records

from ffr_lib.results import ResultStore
from ffr_lib.sweeps.plan import Plan, make_plan
from ffr_lib.sweeps.profiles import get_profile
from ffr_lib.sweeps.schedule import work_groups
from ffr_lib.training.config import RunConfig


def group_seconds(groups: list[Plan], records: list[dict], like_ratio: float | None) -> tuple[list[float], dict]:
    """Seconds of each group from the records; and how many runs were found, stood in for by
    their run at `like_ratio`, or imputed from the median of their kind."""
    by_hash = {r["hash"]: r for r in records}
    median = {trains: statistics.median([r["seconds"] for r in records if bool(r.get("history")) == trains] or [0.0])
              for trains in (True, False)}
    counts = {"found": 0, "like_ratio": 0, "imputed": 0}

    def seconds(c: RunConfig) -> float:
        if c.hash in by_hash:
            counts["found"] += 1
            return by_hash[c.hash]["seconds"]
        if like_ratio is not None:
            like = replace(c, ratio=like_ratio).canonical().hash
            if like in by_hash:
                counts["like_ratio"] += 1
                return by_hash[like]["seconds"]
        counts["imputed"] += 1
        return median[c.trains]

    return [sum(seconds(c) for phase in g.phases for c in phase) for g in groups], counts


def makespan(times: list[float], devices: int, overhead: float = 0.0) -> float:
    """Wall seconds when `devices` workers, each ready after `overhead`, take the jobs in order,
    each to the first free worker (the executor's order: work_groups, largest first)."""
    free = [overhead] * devices
    heapq.heapify(free)
    for t in times:
        heapq.heappush(free, heapq.heappop(free) + t)
    return max(free)


def projection_rows(times: list[float], devices: list[int], overhead: float) -> list[dict]:
    total = sum(times)
    rows = []
    for n in devices:
        wall = makespan(times, n, overhead)
        rows.append({"devices": n, "wall_s": round(wall, 1), "wall_min": round(wall / 60, 1),
                     "busy": round(total / (n * wall), 3) if wall else 0.0, "largest_group_s": round(max(times), 1)})
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("source", type=Path, help="a results folder or a .tgz of run records")
    p.add_argument("--profile", default="paper")
    p.add_argument("--like-ratio", type=float, help="runs without a record take the record of this ratio's run")
    p.add_argument("--devices", type=int, nargs="+", default=[1, 2, 3, 4, 8])
    p.add_argument("--overhead", type=float, default=0.0, help="seconds each worker spends before its first run")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    records = [r for r in load_records(args.source) if r.get("status", "ok") == "ok" and "seconds" in r]
    if not records:
        raise SystemExit(f"{args.source}: no run records with 'seconds'")
    with tempfile.TemporaryDirectory() as empty:
        groups = work_groups(make_plan(get_profile(args.profile).configs(), ResultStore(empty)))
    times, counts = group_seconds(groups, records, args.like_ratio)
    rows = projection_rows(times, args.devices, args.overhead)
    print(f"{args.profile}: {len(groups)} groups, {sum(times):,.0f} s of runs; runs {counts}; "
          f"overhead {args.overhead:g} s a worker")
    text = table(rows, [("devices", "devices"), ("wall_s", "wall s"), ("wall_min", "min"),
                        ("busy", "busy share"), ("largest_group_s", "largest group s")])
    name = args.source.name.removesuffix(".tgz").removesuffix(".tar.gz")
    payload = {"machine": machine_info("cpu"), "source": str(args.source), "profile": args.profile,
               "like_ratio": args.like_ratio, "overhead_s": args.overhead, "groups": len(groups),
               "run_seconds": sum(times), "runs": counts, "rows": rows, "table": text}
    write_json(args.out or RESULTS / f"devices_projection_{name}.json", payload)
    return payload


if __name__ == "__main__":
    main()
