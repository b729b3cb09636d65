"""GPU time of a profile's grid, estimated from measured run records (no GPU needed). An
estimate, not a measurement: issue #21's evidence runs record the real one.

    python bench/grid_estimate.py --records bench/results/records_r0.999_compose_ahead_h200.tgz \\
        --profiles paper paper-ablations --to-h100 0.92

Model. A training's GPU seconds are proportional to its work, `sweeps.schedule.estimated_cost` (epochs x
the size of its last stage's training set relative to the real split: real 1, USB 2, synthetic
1 or the recipe's scale, ASB 1 + that). The rate, seconds per unit of work, is measured per
model from the reference records (`--records`: a store folder or a .tgz of records; each
record's `seconds` is its share of its pack's data, start and training plus its own evaluation
and write, so their sum is the device's busy time): sum of seconds / sum of work over the
records that trained. A refit (DFR, AFR) costs the median of the reference's DFR refits. A model without
reference records takes the small ResNet's rate and is marked imputed. A profile's trainings are
those a staged sweep trains (stage 2 only from the chosen stage-1 lr: `staging.staged_count`);
each process adds `--overhead` seconds (start, world rendering, compiling; the records hold it
once). A run of an earlier profile in `--profiles` is counted there only: `ffr sweep` copies the
records of a store that another shares (tables.SHARES: paper-ablations reuses paper's). `--to-h100 F`: the reference ran on an H200 and an H100 runs at F of its rate
(docs/performance.md measured 0.92), so times are divided by F. Writes
bench/results/grid_estimate_<profiles>.json (or --out).
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from _common import RESULTS, machine_info, table, write_json
from grid_breakdown import load_records

from ffr_lib.sweeps.grids import unique
from ffr_lib.sweeps.plan import closure
from ffr_lib.sweeps.profiles import get_profile
from ffr_lib.sweeps.schedule import estimated_cost
from ffr_lib.sweeps.staging import staged_count
from ffr_lib.training.config import RunConfig

REFERENCE_MODEL = "resnet-small"


def rates(records: list[dict]) -> tuple[dict[str, float], float, dict[str, int]]:
    """Seconds per unit of work for each model, the median seconds of a DFR refit, and how many
    training records each rate rests on."""
    seconds, work, runs = defaultdict(float), defaultdict(float), defaultdict(int)
    refits = []
    for r in records:
        if r.get("status", "ok") != "ok" or "seconds" not in r:
            continue
        c = RunConfig.from_dict(r["config"])
        if not c.trains:
            refits.append(r["seconds"])
            continue
        seconds[c.model] += r["seconds"]
        work[c.model] += estimated_cost(c)
        runs[c.model] += 1
    if not work:
        raise SystemExit("grid_estimate: the reference records hold no finished training")
    return {m: seconds[m] / work[m] for m in work}, statistics.median(refits) if refits else 0.0, dict(runs)


def run_seconds(c: RunConfig, rate: dict[str, float], refit: float) -> float:
    """The model's seconds for one run: a refit's median, or its work at its model's rate (the
    small ResNet's where the model has none)."""
    if not c.trains:
        return refit
    return estimated_cost(c) * rate.get(c.model, rate[REFERENCE_MODEL])


def estimate(configs: list[RunConfig], rate: dict[str, float], refit: float, seen: set[str] | None = None) -> dict:
    """Trainings, refits, work and estimated seconds of a grid's staged closure, leaving out the
    runs in `seen` (an earlier profile's, whose records the sweep copies: tables.SHARES) and
    adding this grid's to it."""
    seen = set() if seen is None else seen
    nodes = [c for c in closure(staged_count(unique(configs))).values() if c.hash not in seen]
    seen.update(c.hash for c in nodes)
    out = {"trainings": 0, "refits": 0, "work": 0.0, "seconds": 0.0, "imputed_models": set()}
    for c in nodes:
        out["seconds"] += run_seconds(c, rate, refit)
        if not c.trains:
            out["refits"] += 1
            continue
        if c.model not in rate:
            out["imputed_models"].add(c.model)
        out["trainings"] += 1
        out["work"] += estimated_cost(c)
    out["imputed_models"] = sorted(out["imputed_models"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=Path, required=True, help="reference store folder or .tgz of records")
    parser.add_argument("--profiles", nargs="+", default=["paper", "paper-ablations"])
    parser.add_argument("--overhead", type=float, default=100.0, help="seconds a process adds (start, compile)")
    parser.add_argument("--to-h100", type=float, default=None, metavar="F",
                        help="reference from an H200: an H100 runs at F of its rate (times / F)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    records = load_records(args.records)
    rate, refit, based_on = rates(records)
    factor = 1.0 / args.to_h100 if args.to_h100 else 1.0
    rows, results, seen = [], {}, set()
    for name in args.profiles:  # a run of an earlier profile counts there only (the sweep copies it)
        est = estimate(get_profile(name).configs(), rate, refit, seen)
        minutes = (est["seconds"] + args.overhead) * factor / 60
        results[name] = {**est, "minutes": minutes}
        rows.append({"profile": name, "trainings": est["trainings"], "refits": est["refits"],
                     "work": round(est["work"]), "minutes": round(minutes),
                     "imputed": ", ".join(est["imputed_models"]) or "-"})
    total = sum(r["minutes"] for r in results.values())
    rows.append({"profile": "total", "trainings": sum(r["trainings"] for r in results.values()),
                 "refits": sum(r["refits"] for r in results.values()),
                 "work": round(sum(r["work"] for r in results.values())), "minutes": round(total), "imputed": ""})
    device = f"H100 (reference / {args.to_h100:.2f})" if args.to_h100 else "the reference's device"
    table(rows, ["profile", ("trainings", "trainings (staged)"), ("refits", "refits (DFR, AFR)"),
                 ("work", "work (epoch-sets)"), ("minutes", f"minutes on {device}"), ("imputed", "rate imputed for")])
    print("rates (s per unit of work): " + ", ".join(f"{m} {r:.4f} ({based_on[m]} runs)" for m, r in rate.items())
          + f"; DFR refit {refit:.2f} s")
    out = args.out or RESULTS / f"grid_estimate_{'_'.join(args.profiles)}.json"
    write_json(out, {"benchmark": "grid_estimate", "reference": str(args.records), "rates": rate,
                     "rate_runs": based_on, "refit_seconds": refit, "overhead_seconds": args.overhead,
                     "to_h100": args.to_h100, "profiles": results, "total_minutes": total,
                     "machine": machine_info("cpu")})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
