"""Image-steps of the `composite` profile's grid, per backbone, and its wall time at given rates.

Every training of the grid's DAG (each node once: FFR stage 1 and DFR's ERM base shared) trains
epochs x its set's size image-steps; the set sizes follow from the pools' counts alone (biased
split, the recipe's synthetic counts), so nothing is rendered. The wall time divides by a rate
per backbone (packed image-steps/s on one GPU) and adds a fixed share for first epochs, data,
refits and start-up (the world's paper grid: ~30 %, docs/performance.md).

    python bench/composite_profile_cost.py --rate resnet-small=100000 --rate efficientnet-lite0=50000
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from _common import RESULTS, machine_info, table, write_json

from ffr_lib.data.composite import CompositeConfig
from ffr_lib.data.splits import biased_counts
from ffr_lib.data.world import split_counts
from ffr_lib.sweeps.plan import closure
from ffr_lib.sweeps.profiles import get_profile
from ffr_lib.training.modes import synthetic_counts_for


def pool_counts(dataset: str, data: tuple) -> np.ndarray:
    config = CompositeConfig(layout=dataset.removeprefix("composite-"), **dict(data))
    pool = np.zeros((len(config.spec.class_names), len(config.spec.bias_names)), dtype=np.int64)
    for y, b, n in split_counts(config, "train"):
        pool[y, b] = n
    return pool


def set_size(config, stage: str) -> int:
    pool = pool_counts(config.dataset, config.data)
    real = biased_counts(pool, config.ratio, majority=list(range(pool.shape[0])))
    if stage == "real":
        return int(real.sum())
    synthetic = int(synthetic_counts_for(config, real, pool > 0, stage).sum())
    return synthetic if stage == "synthetic" else int(real.sum()) + synthetic


def image_steps(profile: str) -> dict[str, dict]:
    out: dict[str, dict] = defaultdict(lambda: {"trainings": 0, "image_steps": 0})
    for c in closure(get_profile(profile).configs()).values():
        if c.trains:
            row = out[c.model]
            row["trainings"] += 1
            row["image_steps"] += c.epochs * set_size(c, c.stages[-1])
    return dict(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="composite")
    p.add_argument("--rate", action="append", default=[], metavar="MODEL=STEPS_PER_S",
                   help="packed training image-steps/s of a backbone on the target GPU")
    p.add_argument("--overhead", type=float, default=0.3, help="fixed costs as a share of the wall time")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    rates = {k: float(v) for k, v in (r.split("=") for r in args.rate)}
    rows = []
    for model, row in image_steps(args.profile).items():
        rate = rates.get(model)
        train_s = row["image_steps"] / rate if rate else None
        rows.append({"model": model, **row, "rate": rate, "train_min": train_s / 60 if rate else None,
                     "wall_min": train_s / 60 / (1 - args.overhead) if rate else None})
    table(rows, ["model", "trainings", "image_steps", "rate", "train_min", "wall_min"])
    total = sum(r["wall_min"] or 0 for r in rows)
    print(f"total wall (rated backbones): {total:.1f} min")
    out = args.out or RESULTS / f"composite_profile_cost_{args.profile}.json"
    write_json(out, {"machine": machine_info("cpu"), "profile": args.profile, "rows": rows,
                     "overhead": args.overhead, "total_wall_min": total})


if __name__ == "__main__":
    main()
