"""How far the GPU evidence grids are (issue #21), from the committed stores alone: per profile,
the runs recorded of the grid's total, the slices' measured time on the GPU (the sum of
`results/<profile>/slices.tsv`'s card shares, written by scripts/import_slice.sh, with the cards
named; a slice that ran alone has its wall as its share), the
estimate of the same runs by bench/grid_estimate.py's model, and the rest of the grid estimated
by that model scaled by measured / estimated so far.

    python bench/grid_progress.py --profiles paper paper-ablations paper-labelfree
    python bench/grid_progress.py --plan      # and the slices left, each with its command,
                                              # and grouped into GPU calls (--commit $(git rev-parse HEAD))

`--plan` lists what is left as slices of scripts/device_slice.sh: per profile, dataset and ratio,
`paper`'s one-stage modes apart from FFR (docs/performance.md, "How the evidence runs
proceed"), every other profile's modes together, a slice longer than one call cut into parts
(`FFR_PART=K/N`, `ffr sweep --part`: whole stage-1 families each); each with its runs left (FFR
stage 1 counts) and its scaled estimate.

Model of the rest: grid_estimate's seconds (reference records `--records`, H200 / `--to-h100`) of
the staged grid's runs not yet recorded, times the ratio of the measured slices' wall to the
estimate of what they recorded (slices differ: shapes-animals' DFR refits cost more than the
model's median refit). An estimate, stated as such. Writes bench/results/grid_progress.json.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from _common import RESULTS, machine_info, table, write_json
from grid_breakdown import load_records
from grid_estimate import rates, run_seconds

from ffr_lib.results import ResultStore
from ffr_lib.sweeps import staging
from ffr_lib.sweeps.grids import unique
from ffr_lib.sweeps.parts import split
from ffr_lib.sweeps.plan import closure
from ffr_lib.sweeps.profiles import get_profile
from ffr_lib.tables import shared_runs
from ffr_lib.training.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]


def slices(store: Path) -> list[dict]:
    """The slices' lines (slices.tsv), empty where none ran."""
    path = store / "slices.tsv"
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def progress(profile: str, results: Path, rate: dict, refit: float, to_h100: float, seen: set[str],
             records: dict[str, dict]) -> dict:
    """Recorded / total runs, measured wall, the estimate of the recorded runs and of the rest
    (the runs a sweep would still train, as `--plan` counts them: stage-1 lrs already chosen
    count their own stage 2s); `records` collects the stores' records over the profiles and
    `seen` the runs left under an earlier profile (whose records the sweep copies), both grown here."""
    store = results / profile
    configs = unique(get_profile(profile).configs())
    own = {r["hash"]: r for r in ResultStore(store).records()} if store.is_dir() else {}
    records.update(own)
    left = _left(configs, records, seen)
    seen.update(c.hash for c in left)
    done_est = sum(run_seconds(RunConfig.from_dict(r["config"]), rate, refit) for r in own.values()) / to_h100
    lines = slices(store)
    wall = sum(float(s.get("card_s") or s["wall_s"]) for s in lines)  # slices that shared a call: their share
    ratio = wall / done_est if done_est > 0 and wall > 0 else 1.0
    rest = sum(run_seconds(c, rate, refit) for c in left)
    return {"profile": profile, "runs": len({c.hash for c in configs}), "recorded": len(set(own) & {c.hash for c in configs}),
            "slices": len(lines), "cards": sorted({s["gpu"] for s in lines}), "measured_s": wall,
            "estimated_done_s": done_est, "measured_over_estimate": ratio,
            "estimated_rest_s": rest / to_h100 * ratio}


# a slice's estimated work at most: parts come out uneven (parts.split balances its own cost
# model), and start and compiling take 20-65 s more, in a 540 s call
SLICE_MINUTES = 7.0


def slice_modes(profile: str, mode: str) -> str:
    """The device_slice.sh modes of a run's slice: `paper` splits FFR from the one-stage modes."""
    if profile != "paper":
        return ""
    return "ffr" if mode == "ffr" else "none usb asb"


def _left(configs: list[RunConfig], records: dict[str, dict], seen: set[str]) -> list[RunConfig]:
    """What a sweep of `configs` would still train (staging.resolve against `records`; a group
    still choosing its stage-1 lr counts one candidate's stage 2s), less runs in `seen`."""
    runnable, deferred, _ = staging.resolve(configs, records)
    return [c for c in closure([*runnable, *staging.staged_count(deferred)]).values()
            if c.hash not in records and c.hash not in seen]


def plan(profile: str, results: Path, rate: dict, refit: float, to_h100: float, ratio: float,
         seen: set[str], records: dict[str, dict]) -> list[dict]:
    """The slices left of `profile`, by dataset, ratio and slice modes; a slice whose whole
    estimate exceeds SLICE_MINUTES is cut into N parts (`FFR_PART=K/N`, parts.split: N from the
    whole slice, so it stays the same from call to call). Per slice or part: the runs left
    (against `records`, the stores' records that `progress` collected; less those counted under
    an earlier profile, `seen`) and their
    estimate (grid_estimate's model times `ratio`, measured / estimated so far). Runs of a store
    the profile shares (tables.SHARES) count toward no N, as in `ffr sweep --part`."""
    shared = shared_runs(profile)
    groups: dict[tuple, list[RunConfig]] = {}
    for c in unique(get_profile(profile).configs()):
        groups.setdefault((c.dataset, c.ratio, slice_modes(profile, c.canonical().mode)), []).append(c)

    def minutes(cs) -> float:
        return sum(run_seconds(c, rate, refit) for c in cs) / to_h100 * ratio / 60

    rows = []
    for (dataset, r, modes), group in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1], kv[0][2])):
        whole = [c for c in closure(staging.staged_count(group)).values() if c.hash not in shared]
        n = max(1, math.ceil(minutes(whole) / SLICE_MINUTES))
        for k, part in enumerate(split(group, n, shared) if n > 1 else [group], 1):
            left = _left(part, records, seen)
            seen.update(c.hash for c in left)
            if not left:
                continue
            command = f"bash scripts/device_slice.sh {profile} {dataset} {r:g}" + (f" {modes}" if modes else "")
            rows.append({"profile": profile, "dataset": dataset, "ratio": r, "modes": modes or "all",
                         "part": f"{k}/{n}" if n > 1 else "", "runs_left": len(left), "minutes": minutes(left),
                         "command": (f"FFR_PART={k}/{n} " if n > 1 else "") + command})
    return rows


# One GPU call: at most 10 minutes, of which the slices' sweeps get CALL_SECONDS (the rest: their
# tars and checkpoint exports), and at most 8 files back (the device's limits): a slice brings 3
# (gpu.txt, sweep.log, runs.tgz), a saliency slice up to 2 more, so 2 slices a call. A slice is not
# begun in the last LEAST_SECONDS of a call (its process start and compiling would fill them).
CALL_SECONDS = 540
SLICES_PER_CALL = 2
LEAST_SECONDS = 120
# a slice's process before its first record, rounded up (session 14 on an H200, kernels cached:
# first packs 38-59 s after the start, 72-91 s on a cold machine); each part of a cut slice pays it
START_SECONDS = 60
# what is left of a cut slice below this is within the estimate's noise and gets no call of its own
NEGLIGIBLE_SECONDS = 30


def calls(left: list[dict], seconds: float = CALL_SECONDS, per_call: int = SLICES_PER_CALL,
          least: float = LEAST_SECONDS) -> list[list[tuple[dict, float]]]:
    """The slices left, in `--plan`'s order, as GPU calls of (slice, sweep seconds): each call
    takes `seconds` of the queue's estimated work (each slice's START_SECONDS added), at most
    `per_call` slices; a slice that does not fit is cut and goes on in the next call (a warm
    machine keeps its records and checkpoints, scripts/device_slice.sh) unless a negligible rest
    is left; no slice is begun in a call's last `least` seconds, which go to its last slice."""
    queue = [[row, row["minutes"] * 60] for row in left]
    out: list[list[tuple[dict, float]]] = []
    while queue:
        group: list[list] = []
        budget = seconds
        while queue and len(group) < per_call and (not group or budget >= least):
            row, need = queue[0]
            share = min(START_SECONDS + need, budget)
            group.append([row, share])
            budget -= share
            if need - (share - START_SECONDS) >= NEGLIGIBLE_SECONDS:
                queue[0][1] = need - (share - START_SECONDS)
                break
            queue.pop(0)  # done, or within the estimate's noise
        group[-1][1] += budget
        out.append([(row, share) for row, share in group])
    return out


def call_command(group: list[tuple[dict, float]], commit: str) -> str:
    """One call's command line: each slice into its own folder of $OUT (a, b; import them all with
    scripts/import_call.sh), its sweep stopped after its seconds."""
    folders = [f"$OUT/{chr(ord('a') + i)}" for i in range(len(group))]
    steps = [f"OUT={folder} FFR_SLICE_SECONDS={int(share)} {row['command']}"
             for folder, (row, share) in zip(folders, group, strict=True)]
    return f"export FFR_COMMIT={commit}; mkdir -p {' '.join(folders)}; " + "; ".join(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="+", default=["paper", "paper-ablations", "paper-labelfree"])
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--records", type=Path, default=RESULTS / "records_r0.999_compose_ahead_h200.tgz",
                        help="grid_estimate's reference records")
    parser.add_argument("--to-h100", type=float, default=0.92)
    parser.add_argument("--out", type=Path, default=RESULTS / "grid_progress.json")
    parser.add_argument("--plan", action="store_true", help="also list the slices left, with their commands")
    parser.add_argument("--commit", default="<commit>", help="FFR_COMMIT in the calls' commands (the full hash)")
    args = parser.parse_args()
    rate, refit, _ = rates(load_records(args.records))
    seen: set[str] = set()  # as in grid_estimate: a run of an earlier profile counts there only
    records: dict[str, dict] = {}
    rows = [progress(p, args.results, rate, refit, args.to_h100, seen, records) for p in args.profiles]
    table([{**r, "cards": ", ".join(r["cards"]) or "-", "measured_min": round(r["measured_s"] / 60, 1),
            "estimated_done_min": round(r["estimated_done_s"] / 60, 1),
            "ratio": round(r["measured_over_estimate"], 2), "rest_min": round(r["estimated_rest_s"] / 60)}
           for r in rows],
          ["profile", ("recorded", "runs recorded"), ("runs", "grid runs (before staging)"), "slices", "cards",
           ("measured_min", "measured min"), ("estimated_done_min", "estimate of those, min"),
           ("ratio", "measured / estimate"), ("rest_min", "rest, min (scaled estimate)")])
    if args.plan:
        seen = set()  # the runs left are counted afresh, slice by slice; `records` is progress's
        ratios = {r["profile"]: r["measured_over_estimate"] for r in rows}
        left = [row for p in args.profiles
                for row in plan(p, args.results, rate, refit, args.to_h100, ratios[p], seen, records)]
        print(f"\nslices left (each: FFR_COMMIT=<commit> <command>; {sum(r['minutes'] for r in left):.0f} min in all)")
        table([{**r, "ratio": f"{r['ratio']:g}", "minutes": round(r["minutes"], 1)} for r in left],
              ["profile", "dataset", "ratio", "modes", "part", ("runs_left", "runs left"), ("minutes", "est. min"),
               "command"])
        # the stores nearest completion first: a complete store is judged
        rest = {p: sum(r["minutes"] for r in left if r["profile"] == p) for p in args.profiles}
        grouped = calls(sorted(left, key=lambda r: rest[r["profile"]]))
        print(f"\nas {len(grouped)} GPU calls (from the slim tree: `bash scripts/device_tree.sh slim` first, since "
              "the full one is over a call's 64 MiB, and `full` after; send each while the machine is warm; "
              "then `bash scripts/import_call.sh <files_at>`):")
        for i, group in enumerate(grouped, 1):
            print(f"{i:>3}. {call_command(group, args.commit)}")
        return
    write_json(args.out, {"benchmark": "grid_progress", "reference": str(args.records), "to_h100": args.to_h100,
                          "profiles": rows, "machine": machine_info("cpu")})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
