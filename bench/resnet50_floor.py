"""The floor of ResNet-50 training at 224 px: its FLOPs per image over the GPU's bf16 matmul rate.

    python bench/resnet50_floor.py --tflops 798     # rate measured on an H100 (see docs/performance.md)
    python bench/resnet50_floor.py --measure        # measure the rate here (an 8192^3 bf16 matmul; CUDA)

FLOPs of one training step (forward + backward) are counted by torch.utils.flop_counter on a
batch of 2 (per image = half), so no GPU is needed for the count. images/s at the floor =
rate / FLOPs per image: no real loop reaches it (convolutions, norms and memory traffic run
below the peak matmul rate), so measured/floor says how far a loop is from the hardware.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import RESULTS, machine_info, table, write_json
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import resnet50


def train_flops_per_image(side: int = 224) -> float:
    model = resnet50()
    x = torch.randn(2, 3, side, side)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return counter.get_total_flops() / 2


def measured_tflops(n: int = 8192, repeats: int = 10) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e12


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tflops", type=float, help="bf16 matmul rate in TFLOP/s (where it was measured: see docs)")
    p.add_argument("--measure", action="store_true", help="measure the rate on this machine's GPU")
    p.add_argument("--measured-images-per-s", type=float, help="a loop's measured rate, to compare with the floor")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.measure:
        args.tflops = measured_tflops()
    if args.tflops is None:
        p.error("give --tflops or --measure")
    flops = train_flops_per_image()
    floor = args.tflops * 1e12 / flops
    row = {"gflops_per_image": flops / 1e9, "tflops": args.tflops, "floor_images_per_s": floor,
           "measured_images_per_s": args.measured_images_per_s,
           "share_of_floor": None if args.measured_images_per_s is None else args.measured_images_per_s / floor}
    text = table([row], [("gflops_per_image", "GFLOP/image (train)"), ("tflops", "bf16 TFLOP/s"),
                         ("floor_images_per_s", "floor images/s"), ("measured_images_per_s", "measured"),
                         ("share_of_floor", "measured / floor")])
    device = "cuda" if args.measure else "cpu"
    write_json(args.out or RESULTS / "resnet50_floor.json", {"machine": machine_info(device), **row, "table": text})
    return row


if __name__ == "__main__":
    main()
