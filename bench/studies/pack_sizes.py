"""Aggregate training throughput of K small runs packed (each on its own CUDA stream), for several K.

    python bench/studies/pack_sizes.py --device cuda --sizes 1 2 4 8 16 32 --images 10000 --epochs 3

Each K trains K copies of the small ResNet (width 32, 32 px, batch 128 each, ERM, bf16 and
channels_last on CUDA) with ffr_lib.training.packing.train_packed on one world training set;
images/s = K * N / seconds of the last epoch (validation on 256 images included). The row
"alone" is train_stage (the loop a single run uses). The ratio column is against "alone": how
much faster a grid of many small runs goes when packed K at a time. Picks the sweep's max pack.

--batch-sizes 128 256 512 1152: each K at each batch size (one run's batch). One run at batch
K x 128 does the work of K packed runs at 128 in kernels K times larger: what multi-run kernels
(one kernel a layer for K runs) could reach at best with cuDNN's and inductor's kernels.

--compile both: each K again with the runs' training forward through torch.compile (inductor;
`ffr sweep --compile`), all K runs sharing one compiled graph; `first_epoch_s` shows what the
compilation costs (once per architecture and process), the rate is the last epoch's as above.
"""

from __future__ import annotations

import argparse

import _bench  # noqa: F401 - bench/ on sys.path
import torch
from _common import (
    RESULTS,
    default_device,
    machine_info,
    peak_memory_bytes,
    reset_peak_memory,
    synchronize,
    table,
    write_json,
)

from ffr_lib.data.world import WorldConfig, world_split
from ffr_lib.training.loop import train_stage
from ffr_lib.training.models import build_model
from ffr_lib.training.packing import PackMember, train_packed


def model(seed: int, device: str):
    torch.manual_seed(seed)
    m = build_model("resnet-small", 2, width=32).to(device)
    return m.to(memory_format=torch.channels_last) if device.startswith("cuda") else m


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default=default_device())
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--graphs", choices=("on", "off"), default="on", help="CUDA graphs for each step (graphs.py)")
    p.add_argument("--compile", choices=("off", "on", "both"), default="off",
                   help="packed runs with the training forward through torch.compile (both: each K twice)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[128], help="each run's batch size")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    world = WorldConfig(layout="binary", size=32)
    data = world_split(world, "train", progress=False)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    train, val = data.subset(order[: args.images]), data.subset(order[-256:])
    groups = [(0, 0), (0, 1), (1, 0), (1, 1)]
    rows = []
    reset_peak_memory(args.device)
    m = model(0, args.device)
    graphs = args.graphs == "on"
    result = train_stage(m, train, val, groups, epochs=args.epochs, batch_size=128, seed=0, cuda_graphs=graphs)
    alone = len(train) / result.history[-1]["seconds"]
    rows.append({"runs": "alone", "batch": 128, "images_per_s": alone, "ratio": 1.0, "peak_mib": peak_memory_bytes(args.device) / 2**20})
    backends = {"off": [None], "on": ["inductor"], "both": [None, "inductor"]}[args.compile]
    for backend in backends:
        for batch in args.batch_sizes:
            for k in args.sizes:
                reset_peak_memory(args.device)
                members = [PackMember(train, val, "erm", 1e-3, s) for s in range(k)]
                synchronize(args.device)
                results = train_packed([model(s, args.device) for s in range(k)], members, groups,
                                       epochs=args.epochs, batch_size=batch, cuda_graphs=graphs,
                                       compile_backend=backend)
                rate = k * len(train) / results[0].history[-1]["seconds"]
                rows.append({"runs": k, "batch": batch, "compile": backend or "-", "images_per_s": rate,
                             "ratio": rate / alone, "first_epoch_s": results[0].history[0]["seconds"],
                             "peak_mib": peak_memory_bytes(args.device) / 2**20})
                print(rows[-1], flush=True)
    print()
    text = table(rows, [("runs", "runs packed"), ("batch", "batch a run"), ("compile", "compile"), ("images_per_s", "images/s (all runs)"),
                        ("ratio", "x alone"), ("first_epoch_s", "first epoch s"), ("peak_mib", "peak MiB")])
    payload = {"machine": machine_info(args.device), "images": len(train), "epochs": args.epochs, "graphs": graphs,
               "rows": rows,
               "table": text}
    suffix = ("" if graphs else "_no_graphs") + ("" if args.compile == "off" else f"_compile_{args.compile}")
    if args.batch_sizes != [128]:
        suffix += "_batch_" + "_".join(map(str, args.batch_sizes))
    write_json(args.out or RESULTS / f"pack_sizes_{args.device.split(':')[0]}{suffix}.json", payload)
    return payload


if __name__ == "__main__":
    main()
