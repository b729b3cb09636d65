"""Calibrate the composite benchmark and measure its generators with the real training loop.

    # learnability and shortcut strength (docs/composite.md), a CPU at reduced scale:
    python scripts/composite_checks.py --what calibration --layout binary --width 16 --epochs 20 \
        --per-group 1250 --threads 1 --device cpu --out figures
    python scripts/composite_checks.py --what calibration --layout binary --model efficientnet-lite0 \
        --pretrained --lr 1e-4 --epochs 4 --per-group 1250 --threads 1 --device cpu --out figures
    # a generator: real-vs-synthetic detector, synthetic-only transfer, class-only majority lean
    python scripts/composite_checks.py --what generator --generator models/diffusion-composite-binary \
        --layout binary --device cuda --out models/diffusion-composite-binary
    python scripts/composite_checks.py --what generator --generator procedural --fingerprint 0.3 --fidelity 0.75
    python scripts/composite_checks.py --merge PART/composite_calibration.csv ... --out figures

Writes <out>/composite_calibration.csv or <out>/composite_generator_<layout>.csv (with sidecars).
The checks are ffr_lib.analysis.world_checks' (the world's own), run on a CompositeConfig.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ffr_lib.analysis.world_checks import CheckConfig, calibration, detector_accuracy, transfer
from ffr_lib.data.composite import CompositeConfig
from ffr_lib.data.idx import IdxError
from ffr_lib.io import save_table


def make_generator(args: argparse.Namespace, config: CompositeConfig):
    """The procedural stand-in at (fingerprint, fidelity), or a diffusion checkpoint folder."""
    if args.generator == "procedural":
        from ffr_lib.generation.composite import CompositeGenerator

        return CompositeGenerator(config, fingerprint=args.fingerprint, fidelity=args.fidelity)
    from ffr_lib.generation.diffusion import DiffusionGenerator

    gen = DiffusionGenerator(args.generator, device=args.device, batch=args.sample_batch)
    # the web corpus's size shapes the generator's training data only, never the real splits the
    # checks read (session 16's checkpoints were trained on 2,000 web images a class)
    if replace(gen.world, web_per_class=config.web_per_class) != config:
        raise ValueError(f"{args.generator} models {gen.world}, not {config}")
    return gen


def class_only_lean(generator, config: CompositeConfig, per_class: int, seed: int) -> dict:
    """Share of class-only samples on each class's majority scene (the web corpus has web_majority)."""
    from ffr_lib.generation.composite import scene_classifier

    n = len(config.spec.class_names)
    y = np.repeat(np.arange(n), per_class)
    out = generator.generate(y, None, seed, start=20_000_000)
    b = scene_classifier(config).predict(out.images, y)  # what the images show, for any generator
    return {"lean": float((b == y).mean()), **{f"lean_{config.spec.class_names[k]}": float((b[y == k] == k).mean())
                                               for k in range(n)}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--what", nargs="+", default=["calibration"], choices=["calibration", "generator"])
    p.add_argument("--layout", nargs="+", default=["binary", "animals"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--model", default="resnet-small")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--pretrained", action="store_true", help="ImageNet weights (efficientnet-lite0)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--per-group", type=int, default=2500, help="balanced sets: images per group")
    p.add_argument("--detector-per-group", type=int, default=1000)
    p.add_argument("--generator", default="procedural", help="'procedural' or a diffusion checkpoint folder")
    p.add_argument("--fingerprint", type=float, default=0.3)
    p.add_argument("--fidelity", type=float, default=0.75)
    p.add_argument("--lean-per-class", type=int, default=1000)
    p.add_argument("--sample-batch", type=int, default=256)
    p.add_argument("--out", type=Path, default=Path("figures"))
    p.add_argument("--merge", type=Path, nargs="+", help="only merge calibration tables (CSV) of separate runs")
    args = p.parse_args()
    if args.merge:  # parts run apart (one process a layout or model): each part's sidecar kept
        checks = [{"pretrained": False, **json.loads(f.with_suffix(".json").read_text())["check"]} for f in args.merge]
        parts = [pd.read_csv(f).assign(**check) for f, check in zip(args.merge, checks)]
        table = pd.concat(parts, ignore_index=True)[["layout", "model", "pretrained", "width", "lr", "epochs", "check",
                                                     "train_n", "test_wa", "test_ba", "test_acc", "best_epoch", "seconds"]]
        sidecars = [json.loads(f.with_suffix(".json").read_text()) for f in args.merge]
        save_table(table, "composite_calibration", {"made_by": "scripts/composite_checks.py --merge", "parts": sidecars},
                   args.out)
        print(table.to_string(index=False))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        run(args)
    except (IdxError, FileNotFoundError, ValueError) as err:  # a bad object folder, checkpoint or setting
        print(f"composite_checks: {err}", file=sys.stderr)
        return 2
    return 0


def run(args: argparse.Namespace) -> None:
    cfg = CheckConfig(model=args.model, width=args.width, pretrained=args.pretrained, lr=args.lr, epochs=args.epochs,
                      per_group=args.per_group, detector_per_group=args.detector_per_group, device=args.device)
    meta = {"check": asdict(cfg), "made_by": "scripts/composite_checks.py", "threads": torch.get_num_threads(),
            "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"}
    if "calibration" in args.what:
        t0 = time.perf_counter()
        table = pd.concat([calibration(CompositeConfig(layout=lay), cfg) for lay in args.layout], ignore_index=True)
        table = table.assign(model=cfg.model, pretrained=cfg.pretrained, width=cfg.width, lr=cfg.lr, epochs=cfg.epochs)
        save_table(table, "composite_calibration", {**meta, "layouts": args.layout}, args.out)
        print(table.to_string(index=False), f"\n({time.perf_counter() - t0:.0f} s)", flush=True)
    if "generator" in args.what:
        for lay in args.layout:
            t0 = time.perf_counter()
            config = CompositeConfig(layout=lay)
            gen = make_generator(args, config)
            t = transfer(config, gen, cfg)
            row = {"layout": lay, "generator": args.generator,
                   "fingerprint": args.fingerprint if args.generator == "procedural" else None,
                   "fidelity": args.fidelity if args.generator == "procedural" else None,
                   "detector_acc": detector_accuracy(config, gen, cfg), "transfer_wa": t["test_wa"],
                   "transfer_ba": t["test_ba"], **class_only_lean(gen, config, args.lean_per_class, cfg.seed),
                   "web_majority": config.web_majority, "seconds": time.perf_counter() - t0}
            table = pd.DataFrame([row])
            save_table(table, f"composite_generator_{lay}", {**meta, "config": asdict(config)}, args.out)
            print(table.to_string(index=False), flush=True)


if __name__ == "__main__":
    sys.exit(main())
