"""Wall time of whole jobs (the notebooks, a sweep) run as a subprocess, and the trainings a grid needs.

    python bench/end_to_end.py --counts-only                         # paper, paper-ablations: seconds
    python bench/end_to_end.py --notebooks-quick fresh               # every notebook, empty results folder
    python bench/end_to_end.py --notebooks-quick committed           # every notebook on the committed records
    python bench/end_to_end.py --sweep paper --executor inprocess --device cuda --results outputs/bench

--notebooks-quick runs `ffr notebooks --profile quick` with figures and executed copies in a
temporary folder (the committed figures are never touched); `fresh` also points notebooks 03, 04
and 05 at an empty results folder, so they train every run of their stores (quick-ablations,
quick, saliency), `committed` leaves them on results/ (nothing to train). --sweep runs
`ffr sweep` into <results>/<profile> (default outputs/bench/sweep-<profile>-<time>, kept).
Counts: `ffr_lib.sweeps.plan.count_trainings` of each profile's grid, with reuse (each DAG
node once: FFR stage 1 and DFR's ERM base shared) and without. Writes
bench/results/end_to_end_<what>.json.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import yaml
from _common import RESULTS, default_device, machine_info, table, write_json

from ffr_lib.sweeps.grids import unique
from ffr_lib.sweeps.plan import closure, count_trainings
from ffr_lib.sweeps.profiles import get_profile

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_STORES = ("quick", "quick-ablations")  # the sweep profiles notebooks 04 and 03 read under quick
NOTEBOOK_LINE = re.compile(r"\[\d+/\d+\] (\S+).*? ok \(([\d.]+) s\)")


def counts(profile: str) -> dict:
    """count_trainings of the profile, plus the epochs those trainings run."""
    configs = get_profile(profile).configs()
    row = {"profile": profile, **count_trainings(configs)}
    runs = unique(configs)
    nodes = closure(runs).values()
    row["epochs_with_reuse"] = sum(c.epochs for c in nodes if c.trains)

    def epochs(c) -> int:
        return c.epochs * int(c.trains) + sum(epochs(d) for d in c.dependencies())

    row["epochs_without_reuse"] = sum(epochs(c) for c in runs)
    row["datasets"] = sorted({c.dataset for c in runs})
    return row


def run_timed(command: list[str], tail: int = 40, timeout: float | None = None) -> dict:
    """Run `command` from the repo root, echoing its output; wall time, exit code, last lines.
    `timeout` (s): stop it then (a sweep keeps the records it wrote and resumes from them)."""
    print("$", " ".join(command), flush=True)
    last: deque[str] = deque(maxlen=tail)
    notebooks = {}
    t0 = time.perf_counter()
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1, start_new_session=True) as proc:
        # the whole process group: a sweep's data workers hold the output pipe open too
        timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGTERM)) if timeout else None
        if timer is not None:
            timer.start()
        for line in proc.stdout:
            sys.stdout.write(line)
            last.append(line.rstrip("\n"))
            for match in NOTEBOOK_LINE.finditer(line):
                notebooks[match.group(1)] = float(match.group(2))
        code = proc.wait()
        stopped = timer is not None and not timer.is_alive() and code != 0
        if timer is not None:
            timer.cancel()
    return {"command": " ".join(command), "returncode": code, "wall_seconds": time.perf_counter() - t0,
            "stopped_at_timeout": stopped, "notebook_seconds": notebooks or None, "output_tail": list(last)}


def ffr() -> list[str]:
    return [sys.executable, "-m", "ffr_lib.cli"]


def notebooks_quick(mode: str, folder: Path) -> dict:
    """`ffr notebooks --profile quick` with figures and copies in `folder` (and results, if fresh)."""
    params: dict = {"*": {"figures_dir": str(folder / "figures")}}
    if mode == "fresh":
        results = folder / "results"
        params["03_ffr_ablations"] = {"results_dir": str(results)}
        params["04_mitigation_combinations"] = {"results_dir": str(results)}
        params["05_saliency"] = {"results_dir": str(results / "saliency")}
    params_file = folder / "bench-parameters.yaml"
    params_file.write_text(yaml.safe_dump(params))
    out = run_timed([*ffr(), "notebooks", "--profile", "quick", "-f", str(params_file),
                     "--out", str(folder / "executed")])
    out["results"] = "empty folder (every run trained)" if mode == "fresh" else "committed results/ (no training)"
    out["parameters"] = params
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--counts-only", action="store_true", help="only the trainings of --profiles' grids")
    what.add_argument("--notebooks-quick", choices=("fresh", "committed"),
                      help="time `ffr notebooks --profile quick` on an empty or the committed results folder")
    what.add_argument("--sweep", metavar="PROFILE", help="time `ffr sweep --profile PROFILE`")
    p.add_argument("--profiles", nargs="+", default=["paper", "paper-ablations"], help="--counts-only: profiles")
    p.add_argument("--executor", default="inprocess", help="--sweep: inprocess, gpus, slurm or dry")
    p.add_argument("--device", help="--sweep with inprocess: torch device (default: cuda if available)")
    p.add_argument("--threads", type=int, help="--sweep: torch CPU threads per run")
    p.add_argument("--ratio", type=float, nargs="+", help="--sweep: only these bias ratios (a slice of the grid)")
    p.add_argument("--dataset", nargs="+", help="--sweep: only these datasets")
    p.add_argument("--compile", action="store_true", help="--sweep: ffr sweep --compile (torch.compile in packs)")
    p.add_argument("--devices", nargs="+", help="--sweep with packed or gpus: ffr sweep --devices (one worker each; "
                   "a device named twice gets two workers)")
    p.add_argument("--timeout", type=float, help="--sweep: stop the sweep after this many seconds (records kept)")
    p.add_argument("--results", type=Path, help="--sweep: results root (default outputs/bench/sweep-<profile>-<time>)")
    p.add_argument("--keep", type=Path, help="--notebooks-quick: keep figures, copies and results here "
                   "(default: a temporary folder, removed)")
    p.add_argument("--out", help="JSON path (default bench/results/end_to_end_<what>.json)")
    args = p.parse_args(argv)
    device = args.device or default_device()
    payload: dict = {"benchmark": "end_to_end"}
    if args.counts_only:
        name, profiles = "counts", args.profiles
    elif args.notebooks_quick:
        name, profiles = f"notebooks_quick_{args.notebooks_quick}_{device.split(':')[0]}", list(NOTEBOOK_STORES)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            payload["job"] = notebooks_quick(args.notebooks_quick, args.keep.resolve())
        else:
            with tempfile.TemporaryDirectory(prefix="ffr-bench-notebooks-") as tmp:
                payload["job"] = notebooks_quick(args.notebooks_quick, Path(tmp))
    else:
        sliced = "".join([f"_r{r:g}" for r in args.ratio or []] + [f"_{d}" for d in args.dataset or []])
        sliced += "_compile" if args.compile else ""
        sliced += f"_{len(args.devices)}_workers" if args.devices else ""
        name, profiles = f"sweep_{args.sweep}{sliced}_{args.executor}_{device.split(':')[0]}", [args.sweep]
        results = args.results or ROOT / "outputs" / "bench" / f"sweep-{args.sweep}-{time.strftime('%Y%m%d-%H%M%S')}"
        command = [*ffr(), "sweep", "--profile", args.sweep, "--executor", args.executor, "--results", str(results)]
        if args.executor == "inprocess":
            command += ["--device", device]
        if args.threads:
            command += ["--threads", str(args.threads)]
        if args.ratio:
            command += ["--ratio", *map(str, args.ratio)]
        if args.dataset:
            command += ["--dataset", *args.dataset]
        if args.compile:
            command += ["--compile"]
        if args.devices:
            command += ["--devices", *args.devices]
        payload["job"] = run_timed(command, timeout=args.timeout)
        payload["job"]["results"] = str(results / args.sweep)
    rows = [counts(profile) for profile in profiles]
    payload["counts"] = rows
    table(rows, [("profile", "profile"), ("runs", "runs"), ("nodes", "DAG nodes"),
                 ("trainings_with_reuse", "trainings (reuse)"), ("trainings_without_reuse", "trainings (no reuse)"),
                 ("epochs_with_reuse", "epochs (reuse)"), ("epochs_without_reuse", "epochs (no reuse)"),
                 ("dfr_fits", "DFR fits")])
    if "job" in payload:
        job = payload["job"]
        print(f"wall time {job['wall_seconds']:.0f} s, exit code {job['returncode']}: {job['command']}")
        if job.get("notebook_seconds"):
            table([{"notebook": k, "seconds": v} for k, v in job["notebook_seconds"].items()], ["notebook", "seconds"])
    payload["machine"] = machine_info(device)
    out = args.out or RESULTS / f"end_to_end_{name}.json"
    print("wrote", write_json(out, payload))
    return payload


if __name__ == "__main__":
    sys.exit(main().get("job", {}).get("returncode", 0))
