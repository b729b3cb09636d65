"""Print how fast the embedded world renders: 50,000 32 px images on one CPU core.

    .venv/bin/python scripts/world_speed.py [--n 50000] [--size 32] [--layout binary]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from ffr_lib.data.world import WorldConfig, render_labelled


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--layout", default="binary")
    args = p.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cfg = WorldConfig(layout=args.layout, size=args.size)
    rng = np.random.default_rng(0)
    n_classes, n_biases = len(cfg.spec.class_names), len(cfg.spec.bias_names)
    groups = cfg.spec.groups()
    pick = rng.integers(len(groups), size=args.n)
    y = np.array([groups[i][0] for i in pick])
    b = np.array([groups[i][1] for i in pick])
    t0 = time.perf_counter()
    images, _ = render_labelled(cfg, "speed", np.arange(args.n), y, b, progress=True)
    dt = time.perf_counter() - t0
    print(f"layout={args.layout} ({n_classes}x{n_biases}) size={args.size} n={args.n}: "
          f"{dt:.1f} s, {args.n / dt:,.0f} images/s on one core ({images.nbytes / 2**20:.0f} MiB uint8)")


if __name__ == "__main__":
    main()
