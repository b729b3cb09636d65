"""Where a packed training step spends its GPU time: torch.profiler's CUDA kernels, grouped.

    python bench/studies/pack_profile.py --device cuda --runs 32 [--freeze-bn] [--compile]

Trains K small ResNets packed (ffr_lib.training.packing.train_packed, CUDA graphs off so the
profiler sees each kernel; the JSON results in bench/results are of the K-group network that
packing used until 2026-11-25) for a few epochs on world images and prints the kernels by total CUDA
time, summed into classes (convolution forward / backward, batch norm, elementwise, optimiser,
other), and the kernels a run launches per step. --compile: the training forward through
torch.compile (inductor), as `ffr sweep --compile`. Writes
bench/results/pack_profile_<device>[_frozen_bn][_compile]_<runs>.json (the K-group files keep
their old names).
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

import _bench  # noqa: F401 - bench/ on sys.path
import torch
from _common import RESULTS, default_device, machine_info, table, write_json
from torch.profiler import ProfilerActivity, profile

from ffr_lib.data.world import WorldConfig, world_split
from ffr_lib.training.models import build_model
from ffr_lib.training.packing import PackMember, train_packed

CLASSES = (  # first match wins; kernel names are cuDNN's / PyTorch's
    ("batch norm", re.compile(r"batch_?norm|bn_|welford", re.I)),
    ("convolution", re.compile(r"conv|implicit_?gemm|cudnn|xmma|sm\d+_.*gemm|cutlass", re.I)),
    ("optimiser", re.compile(r"adam|foreach|multi_tensor", re.I)),
    ("elementwise / copy", re.compile(r"elementwise|vectorized|copy|fill|index|gather|scatter", re.I)),
    ("reduction / loss", re.compile(r"reduce|softmax|nll|cross", re.I)),
)


def kind(name: str) -> str:
    return next((label for label, pattern in CLASSES if pattern.search(name)), "other")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default=default_device())
    p.add_argument("--runs", type=int, default=32)
    p.add_argument("--images", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--freeze-bn", action="store_true", help="BN in eval mode, as FFR stage 2's frozen-BN runs")
    p.add_argument("--compile", action="store_true", help="training forward through torch.compile (inductor)")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    torch.backends.cudnn.benchmark = True
    data = world_split(WorldConfig(layout="binary", size=32), "train", progress=False)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    train, val = data.subset(order[: args.images]), data.subset(order[-256:])
    groups = [(0, 0), (0, 1), (1, 0), (1, 1)]

    def models():
        out = []
        for s in range(args.runs):
            torch.manual_seed(s)
            m = build_model("resnet-small", 2, width=32).to(args.device)
            out.append(m.to(memory_format=torch.channels_last) if args.device.startswith("cuda") else m)
        return out

    members = [PackMember(train, val, "erm", 1e-3, s) for s in range(args.runs)]
    backend = "inductor" if args.compile else None
    train_packed(models(), members, groups, epochs=1, freeze_bn=args.freeze_bn, cuda_graphs=False,
                 compile_backend=backend)  # warm-up (and compilation)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        train_packed(models(), members, groups, epochs=args.epochs, freeze_bn=args.freeze_bn, cuda_graphs=False,
                     compile_backend=backend)
    events = [e for e in prof.key_averages() if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA]
    total = sum(e.self_device_time_total for e in events) or 1.0
    kernels = sorted(({"kernel": e.key[:90], "class": kind(e.key), "ms": e.self_device_time_total / 1e3,
                       "share": e.self_device_time_total / total, "calls": e.count} for e in events),
                     key=lambda r: -r["ms"])
    by_class = defaultdict(float)
    for k in kernels:
        by_class[k["class"]] += k["ms"]
    classes = sorted(({"class": c, "ms": ms, "share": ms / (total / 1e3)} for c, ms in by_class.items()),
                     key=lambda r: -r["ms"])
    steps = args.epochs * -(-args.images // 128)
    launches = sum(e.count for e in events) / (steps * args.runs)
    print(f"{args.runs} runs packed, {args.images} images x {args.epochs} epochs ({steps} steps), "
          f"freeze_bn={args.freeze_bn}, compile={args.compile}: {total / 1e3:.0f} ms of CUDA kernels, "
          f"{total / 1e3 / steps / args.runs:.3f} ms and {launches:.0f} kernels a run's step (validation included)")
    table(classes, [("class", "kernel class"), ("ms", "CUDA ms"), ("share", "share")])
    print()
    table(kernels[: args.top], [("kernel", "kernel"), ("class", "class"), ("ms", "CUDA ms"), ("share", "share"),
                                ("calls", "calls")])
    payload = {"machine": machine_info(args.device), "runs": args.runs, "images": args.images,
               "epochs": args.epochs, "freeze_bn": args.freeze_bn, "compile": args.compile, "steps": steps,
               "cuda_ms": total / 1e3, "kernels_per_run_step": launches,
               "classes": classes, "kernels": kernels[:60]}
    suffix = ("_frozen_bn" if args.freeze_bn else "") + ("_compile" if args.compile else "") + f"_{args.runs}"
    write_json(RESULTS / f"pack_profile_{args.device.split(':')[0]}{suffix}.json", payload)
    return payload


if __name__ == "__main__":
    main()
