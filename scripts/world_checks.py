"""Calibrate the embedded world and measure the generator knobs' effects with the real loop.

    python scripts/world_checks.py --what calibration knobs --device cuda --out figures
    # a CPU profile's world (docs/world.md, "The CPU profile"): its pool, width and epochs
    python scripts/world_checks.py --what calibration --layout binary --device cpu --world train_majority=1000 \
        train_minority=500 --per-group 500 --width 16 --epochs 20 --out DIR

Writes figures/world_calibration.csv and figures/world_knobs.{csv,png,svg} (with sidecars).
The numbers go into docs/world.md.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import torch

from ffr_lib.analysis.world_checks import CheckConfig, calibration, knob_figure, knob_grid
from ffr_lib.data.world import WorldConfig
from ffr_lib.io import save_figure, save_table

FINGERPRINTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
FIDELITIES = (0.0, 0.25, 0.5, 1.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--what", nargs="+", default=["calibration", "knobs"], choices=["calibration", "knobs"])
    p.add_argument("--layout", nargs="+", default=["binary", "animals"])
    p.add_argument("--knob-layout", default="binary", help="layout of the knob grid")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--per-group", type=int, default=2500)
    p.add_argument("--width", type=int, default=32, help="small ResNet width")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--world", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="WorldConfig fields of the calibrated world, e.g. train_majority=1000 (a CPU profile's world)")
    p.add_argument("--fingerprints", type=float, nargs="+", default=FINGERPRINTS)
    p.add_argument("--fidelities", type=float, nargs="+", default=FIDELITIES)
    p.add_argument("--detector-per-group", type=int, default=1000)
    p.add_argument("--knob-epochs", type=int, default=10, help="epochs of the knob grid's trainings")
    p.add_argument("--out", type=Path, default=Path("figures"))
    p.add_argument("--merge", type=Path, nargs="+", help="only merge knob tables (CSV) of parallel parts")
    args = p.parse_args()
    cfg = CheckConfig(epochs=args.epochs, per_group=args.per_group, device=args.device, width=args.width, lr=args.lr,
                      detector_per_group=args.detector_per_group)
    world_options = {k: float(v) if "." in v else int(v) for k, v in (item.split("=", 1) for item in args.world)}
    meta = {"check": asdict(cfg), "made_by": "scripts/world_checks.py", "device_name":
            torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"}
    if args.merge:  # parts computed elsewhere (a GPU job): keep each part's own sidecar
        table = pd.concat([pd.read_csv(f) for f in args.merge], ignore_index=True)
        table = table.drop_duplicates(["layout", "fingerprint", "fidelity", "seed"], keep="last")
        table = table.sort_values(["fidelity", "fingerprint"], ignore_index=True)
        parts = [json.loads(f.with_suffix(".json").read_text()) if f.with_suffix(".json").exists() else None
                 for f in args.merge]
        knob_meta = {"made_by": "scripts/world_checks.py --merge", "parts": parts}
        save_table(table, "world_knobs", knob_meta, args.out)
        save_figure(knob_figure(table), "world_knobs", knob_meta, args.out)
        print(table.to_string(index=False))
        return
    if "calibration" in args.what:
        t0 = time.perf_counter()
        table = pd.concat([calibration(WorldConfig(layout=lay, **world_options), cfg) for lay in args.layout],
                          ignore_index=True)
        save_table(table, "world_calibration", {**meta, "layouts": args.layout, "world": world_options}, args.out)
        print(table.to_string(index=False), f"\n({time.perf_counter() - t0:.0f} s)", flush=True)
    if "knobs" in args.what:
        t0 = time.perf_counter()
        world = WorldConfig(layout=args.knob_layout)
        cfg = replace(cfg, epochs=args.knob_epochs)
        meta = {**meta, "check": asdict(cfg)}
        table = knob_grid(world, args.fingerprints, args.fidelities, cfg)
        meta = {**meta, "world": world, "fingerprints": args.fingerprints, "fidelities": args.fidelities}
        save_table(table, "world_knobs", meta, args.out)
        save_figure(knob_figure(table), "world_knobs", meta, args.out)
        print(table.to_string(index=False), f"\n({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
