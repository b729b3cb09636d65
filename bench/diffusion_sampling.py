"""CPU (or GPU) sampling throughput of the conditional diffusion model, in images per second.

    python scripts/bench_diffusion_sampling.py --n 256 --steps 25 --batch 64 --threads 2

Uses a checkpoint (--model) or a freshly initialised model of the default size (the speed does
not depend on the weights). Prints images/s and the implied time for 4,000 images.
The machine's load matters: say what else was running when you quote a number.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="checkpoint folder (default: a fresh model of the default size)")
    p.add_argument("--layout", default="binary", choices=["binary", "animals"])
    p.add_argument("--n", type=int, default=256, help="images to sample")
    p.add_argument("--steps", type=int, default=25, help="DDIM steps")
    p.add_argument("--batch", type=int, default=64, help="images per pass")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance over the scene")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    import torch

    from ffr_lib.data.world import WorldConfig
    from ffr_lib.generation.diffusion import ConditionalDiffusion

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model:
        model = ConditionalDiffusion.load(args.model, args.device)
    else:
        torch.manual_seed(0)
        model = ConditionalDiffusion(WorldConfig(layout=args.layout)).to(args.device)
    n_params = sum(q.numel() for q in model.parameters())
    rng = np.random.default_rng(0)
    y = rng.integers(0, model.n_classes, args.n)
    b = np.array([rng.choice(model.world.spec.support[k]) for k in y])
    model.sample(y[:1], b[:1], seed=0, steps=1, batch=args.batch)  # warm-up
    t0 = time.perf_counter()
    model.sample(y, b, seed=0, steps=args.steps, batch=args.batch, guidance=args.guidance)
    dt = time.perf_counter() - t0
    rate = args.n / dt
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{n_params / 1e6:.2f} M parameters, {args.steps} DDIM steps, batch {args.batch}, "
          f"{torch.get_num_threads()} threads on {args.device}: {args.n} images in {dt:.1f} s = {rate:.2f} images/s; "
          f"4,000 images ~ {4000 / rate / 60:.1f} min (load average {load:.2f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
