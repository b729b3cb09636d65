"""Wall time of one DAG on a pool of worker processes: phase by phase against dependency order.

    python bench/schedule.py                        # notebook 05's quick cell, 2 one-thread CPU workers
    python bench/schedule.py --workers 2 --simulate-only

The runs are notebook 05's under its quick defaults (shapes-binary at 0.99, the default world,
width 16, 20 epochs, SD_LIKE generator): None, USB, ASB and FFR, whose stage 1 is a run of its
own. Both orders train into empty stores in temporary folders, one after the other:
- `phases`: the plan's phases one after another, each through the `processes` executor (what
  the executor did before sweeps.schedule.ReadyQueue: a phase starts when the previous one has finished);
- `dependency order`: one `processes` sweep, ReadyQueue starting each run once its dependencies
  are done, the longest chain of estimated work first.
Each row also gives the makespan that sweeps.schedule.simulate predicts from the estimated costs (epochs x
relative set size), and the script checks that both orders wrote the same records. Writes
bench/results/schedule_<device>.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import RESULTS, machine_info, table, write_json

from ffr_lib.analysis.saliency_study import study_configs
from ffr_lib.results import ResultStore
from ffr_lib.sweeps.plan import make_plan
from ffr_lib.sweeps.profiles import SD_LIKE
from ffr_lib.sweeps.schedule import simulate
from ffr_lib.sweeps.sweep import run_sweep
from ffr_lib.training.config import RunConfig

NOTEBOOK_05_QUICK = RunConfig(dataset="shapes-binary", ratio=0.99, epochs=20, width=16, lr=1e-3, pre_lr=1e-3,
                              **SD_LIKE)


def timed(configs: list[RunConfig], folder: Path, workers: int, threads: int, phased: bool) -> float:
    t0 = time.perf_counter()
    steps = make_plan(configs, ResultStore(folder)).phases if phased else [configs]
    for step in steps:
        summary = run_sweep(step, str(folder), executor="processes", progress=False, device="cpu",
                            workers=workers, threads=threads)
        if summary["errors"]:
            raise RuntimeError(summary["errors"][0]["error"])
    return time.perf_counter() - t0


def run_times(folder: Path, t0: float) -> list[dict]:
    """Each run's start and end in seconds after `t0` (a Unix time), from its record."""
    out = []
    for r in ResultStore(folder).records():
        end = datetime.fromisoformat(r["finished_at"]).timestamp() - t0
        out.append({"run": r["label"], "start": round(end - r["seconds"], 1), "end": round(end, 1)})
    return sorted(out, key=lambda row: row["start"])


def same_records(a: Path, b: Path) -> bool:
    sa, sb = ResultStore(a), ResultStore(b)
    return sa.hashes() == sb.hashes() and all(
        sa.get(h)["test"] == sb.get(h)["test"] and sa.get(h)["history"][-1]["loss"] == sb.get(h)["history"][-1]["loss"]
        for h in sa.hashes())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--simulate-only", action="store_true", help="print the predicted makespans, train nothing")
    args = p.parse_args()
    configs = list(study_configs(NOTEBOOK_05_QUICK, ("none", "usb", "asb", "ffr"), (0,)).values())
    rows = []
    with tempfile.TemporaryDirectory(prefix="ffr-schedule-") as tmp:
        plan = make_plan(configs, ResultStore(Path(tmp) / "plan"))  # an empty store: every run pending
        for name, phased in (("phases", True), ("dependency order", False)):
            row = {"order": name, "predicted_epoch_units": simulate(plan, args.workers, phased)[0]}
            if not args.simulate_only:
                t0 = time.time()
                row["wall_seconds"] = timed(configs, Path(tmp) / name, args.workers, args.threads, phased)
                row["runs"] = run_times(Path(tmp) / name, t0)
                for run in row["runs"]:
                    print(f"  {name}: {run['run']}  {run['start']:7.1f} -> {run['end']:7.1f} s")
            rows.append(row)
        same = None if args.simulate_only else same_records(Path(tmp) / "phases", Path(tmp) / "dependency order")
    if not args.simulate_only:
        for row in rows:
            row["x_phases"] = rows[0]["wall_seconds"] / row["wall_seconds"]
    table(rows, ["order", ("predicted_epoch_units", "predicted (epoch units)"), ("wall_seconds", "wall s"),
                 ("x_phases", "x phases")])
    if same is not None:
        print(f"same records in both orders: {same}")
    out = RESULTS / "schedule_cpu.json"
    if not args.simulate_only:
        write_json(out, {"benchmark": "schedule", "runs": [c.label() for c in configs], "workers": args.workers,
                         "threads": args.threads, "rows": rows, "same_records": same,
                         "machine": machine_info("cpu")})
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
