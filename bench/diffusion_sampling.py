"""CPU (or GPU) sampling throughput of the embedded conditional diffusion model, in images per second.

    python bench/diffusion_sampling.py --n 256 --steps 25 --batch 64 --threads 2
    python bench/diffusion_sampling.py --layout binary animals --n 128     # both committed checkpoints
    python bench/diffusion_sampling.py --device cuda --n 4000 --batch 512

By default the committed checkpoint of each layout (models/diffusion-<layout>) is sampled; --model
names another folder, --fresh a freshly initialised model of the default size (the speed does
not depend on the weights). Prints images/s and the time 4,000 32 px images would take at that
rate (sampling is batch by batch, so the time grows linearly with the count). The machine's load
matters: the JSON keeps the load average before and after each measurement.
Writes bench/results/diffusion_sampling_<device>.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, machine_info, synchronize, table, write_json

MODELS = Path(__file__).resolve().parents[1] / "models"
TARGET = 4_000  # the check: 4,000 32 px images on a CPU in minutes


def load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def measure(args: argparse.Namespace, layout: str) -> dict:
    """Sample args.n images of `layout` once after a one-pass warm-up; the table's row."""
    import torch

    from ffr_lib.data.world import WorldConfig
    from ffr_lib.generation.diffusion import ConditionalDiffusion

    folder = Path(args.model) if args.model else MODELS / f"diffusion-{layout}"
    if args.fresh or not (folder / "config.json").is_file():
        torch.manual_seed(0)
        model, source = ConditionalDiffusion(WorldConfig(layout=layout)).to(args.device), "fresh (untrained)"
    else:
        model = ConditionalDiffusion.load(folder, args.device)
        root = MODELS.parent
        source = str(folder.resolve().relative_to(root)) if folder.resolve().is_relative_to(root) else str(folder)
    n_params = sum(q.numel() for q in model.parameters())
    rng = np.random.default_rng(0)
    y = rng.integers(0, model.n_classes, args.n)
    b = np.array([rng.choice(model.world.spec.support[k]) for k in y])
    model.sample(y[:1], b[:1], seed=0, steps=1, batch=args.batch)  # warm-up: one pass
    synchronize(args.device)
    load_before = load_average()
    t0 = time.perf_counter()
    model.sample(y, b, seed=0, steps=args.steps, batch=args.batch, guidance=args.guidance)
    synchronize(args.device)
    seconds = time.perf_counter() - t0
    rate = args.n / seconds
    return {
        "layout": layout, "model": source, "parameters_m": n_params / 1e6, "images": args.n,
        "size": model.world.size, "steps": args.steps, "batch": args.batch, "guidance": args.guidance,
        "seconds": seconds, "images_per_s": rate, "minutes_for_4000": TARGET / rate / 60,
        "load_average_before": load_before, "load_average_after": load_average(),
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="checkpoint folder (default: models/diffusion-<layout>)")
    p.add_argument("--fresh", action="store_true", help="a freshly initialised model of the default size")
    p.add_argument("--layout", nargs="+", default=["binary"], choices=["binary", "animals"])
    p.add_argument("--n", type=int, default=256, help="images to sample")
    p.add_argument("--steps", type=int, default=25, help="DDIM steps")
    p.add_argument("--batch", type=int, default=64, help="images per pass")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance over the scene")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="JSON path (default bench/results/diffusion_sampling_<device>.json)")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [measure(args, layout) for layout in args.layout]
    table(rows, [("layout", "layout"), ("images", "images"), ("steps", "steps"), ("batch", "batch"),
                 ("seconds", "seconds"), ("images_per_s", "images/s"), ("minutes_for_4000", "min for 4,000"),
                 ("load_average_before", "load before"), ("load_average_after", "load after")])
    print(f"{rows[0]['parameters_m']:.2f} M parameters, {torch.get_num_threads()} threads on {args.device}; "
          f"'min for 4,000' extrapolates the measured rate linearly")
    payload = {"benchmark": "diffusion_sampling", "rows": rows, "target_images": TARGET,
               "machine": machine_info(args.device)}
    device = torch.device(args.device).type
    out = args.out or RESULTS / f"diffusion_sampling_{device}.json"
    print("wrote", write_json(out, payload))
    return payload


if __name__ == "__main__":
    main()
