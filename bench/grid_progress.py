"""How far the GPU evidence grids are (issue #21), from the committed stores alone: per profile,
the runs recorded of the grid's total, the slices' measured time on the GPU (the sum of
`results/<profile>/slices.tsv`'s card shares, written by scripts/import_slice.sh, with the cards
named; a slice that ran alone has its wall as its share), the
estimate of the same runs by bench/grid_estimate.py's model, and the rest of the grid estimated
by that model scaled by measured / estimated so far.

    python bench/grid_progress.py --profiles paper paper-ablations paper-labelfree

Model of the rest: grid_estimate's seconds (reference records `--records`, H200 / `--to-h100`) of
the staged grid's runs not yet recorded, times the ratio of the measured slices' wall to the
estimate of what they recorded (slices differ: shapes-animals' DFR refits cost more than the
model's median refit). An estimate, stated as such. Writes bench/results/grid_progress.json.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from _common import RESULTS, machine_info, table, write_json
from grid_breakdown import load_records
from grid_estimate import estimate, rates, run_seconds

from ffr_lib.results import ResultStore
from ffr_lib.sweeps.profiles import get_profile
from ffr_lib.training.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]


def slices(store: Path) -> list[dict]:
    """The slices' lines (slices.tsv), empty where none ran."""
    path = store / "slices.tsv"
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def progress(profile: str, results: Path, rate: dict, refit: float, to_h100: float, seen: set[str]) -> dict:
    """Recorded / total runs, measured wall, the estimate of the recorded runs and of the rest;
    `seen`: runs counted under an earlier profile (whose records the sweep copies), grown here."""
    store = results / profile
    configs = get_profile(profile).configs()
    recorded = ResultStore(store).hashes() if store.is_dir() else set()
    seen.update(recorded)
    rest = estimate(configs, rate, refit, seen=seen)
    done_est = sum(run_seconds(RunConfig.from_dict(r["config"]), rate, refit) for r in ResultStore(store).records()) / to_h100 if recorded else 0.0
    lines = slices(store)
    wall = sum(float(s.get("card_s") or s["wall_s"]) for s in lines)  # slices that shared a call: their share
    ratio = wall / done_est if done_est > 0 and wall > 0 else 1.0
    return {"profile": profile, "runs": len({c.hash for c in configs}), "recorded": len(recorded & {c.hash for c in configs}),
            "slices": len(lines), "cards": sorted({s["gpu"] for s in lines}), "measured_s": wall,
            "estimated_done_s": done_est, "measured_over_estimate": ratio,
            "estimated_rest_s": rest["seconds"] / to_h100 * ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="+", default=["paper", "paper-ablations", "paper-labelfree"])
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--records", type=Path, default=RESULTS / "records_r0.999_compose_ahead_h200.tgz",
                        help="grid_estimate's reference records")
    parser.add_argument("--to-h100", type=float, default=0.92)
    parser.add_argument("--out", type=Path, default=RESULTS / "grid_progress.json")
    args = parser.parse_args()
    rate, refit, _ = rates(load_records(args.records))
    seen: set[str] = set()  # as in grid_estimate: a run of an earlier profile counts there only
    rows = [progress(p, args.results, rate, refit, args.to_h100, seen) for p in args.profiles]
    table([{**r, "cards": ", ".join(r["cards"]) or "-", "measured_min": round(r["measured_s"] / 60, 1),
            "estimated_done_min": round(r["estimated_done_s"] / 60, 1),
            "ratio": round(r["measured_over_estimate"], 2), "rest_min": round(r["estimated_rest_s"] / 60)}
           for r in rows],
          ["profile", ("recorded", "runs recorded"), ("runs", "grid runs (before staging)"), "slices", "cards",
           ("measured_min", "measured min"), ("estimated_done_min", "estimate of those, min"),
           ("ratio", "measured / estimate"), ("rest_min", "rest, min (scaled estimate)")])
    write_json(args.out, {"benchmark": "grid_progress", "reference": str(args.records), "to_h100": args.to_h100,
                          "profiles": rows, "machine": machine_info("cpu")})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
