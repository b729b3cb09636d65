"""Real-vs-synthetic detector accuracy and synthetic-only transfer for a diffusion checkpoint.

    python scripts/diffusion_checks.py models/diffusion-binary --guidance 1 3 --device cuda --out DIR

The same two measurements as the procedural generator's knob grid (ffr_lib.analysis.world_checks),
so the generators can be compared; writes <out>/diffusion_checks_<layout>.csv with a sidecar.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from ffr_lib.analysis.world_checks import CheckConfig, detector_accuracy, transfer
from ffr_lib.generation.diffusion import DiffusionGenerator
from ffr_lib.io import save_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0])
    p.add_argument("--steps", type=int, default=25, help="DDIM steps")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--per-group", type=int, default=2500)
    p.add_argument("--detector-per-group", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path("figures"))
    args = p.parse_args()
    cfg = CheckConfig(epochs=args.epochs, per_group=args.per_group, detector_per_group=args.detector_per_group,
                      device=args.device)
    rows = []
    for w in args.guidance:
        gen = DiffusionGenerator(args.model, device=args.device, steps=args.steps, batch=512, guidance=w)
        world = gen.model.world
        t = transfer(world, gen, cfg)
        rows.append({"layout": world.layout, "generator": "diffusion", "guidance": w, "steps": args.steps,
                     "detector_acc": detector_accuracy(world, gen, cfg), "transfer_wa": t["test_wa"],
                     "transfer_ba": t["test_ba"], "seed": cfg.seed})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    save_table(table, f"diffusion_checks_{world.layout}", {"check": asdict(cfg), "model": str(args.model),
                                                          "made_by": "scripts/diffusion_checks.py"}, args.out)


if __name__ == "__main__":
    main()
