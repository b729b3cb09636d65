"""Training throughput and peak memory of the repo's loop against a naive reference loop.

    python bench/train_throughput.py --setting small32                  # 20,000 32 px images x 3 epochs
    python bench/train_throughput.py --setting resnet50_224             # 4,096 224 px images x 2 epochs
    python bench/train_throughput.py --setting small32 --packed 8       # + 8 runs trained at once
    python bench/train_throughput.py --device cpu --images 256 --epochs 2   # about a minute on 2 cores

OURS is ffr_lib.training.loop.train_stage on a model from runner.fresh_model: the whole uint8 set
on the device, index batches, bf16 autocast and channels_last on CUDA. NAIVE is what research
code typically does: PNG files, a per-sample PIL Dataset with ToTensor + Normalize, a DataLoader
with workers, fp32, .to(device) per batch, loss.item() every step. Both train the same network
(same class, same seed, same data, lr, weight decay, batch size and epochs) in one process.

images/s is the steady state: the first epoch (warm-up: cuDNN autotuning, torch.compile,
DataLoader start-up) is left out when there are two or more epochs. For OURS the per-epoch
seconds come from train_stage's history minus the time of its per-epoch validation on a 64-image
set (measured separately); the wall column is epochs * N / the whole call, warm-up included.
Peak memory: torch.cuda.max_memory_allocated on CUDA; on CPU the process's peak resident set
(DataLoader workers not counted), so on CPU it mostly measures the data held in memory. Ours' peak
includes the whole uint8 training set held on the device; the naive loop's only its batches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    RESULTS,
    default_device,
    is_cuda,
    machine_info,
    peak_memory_bytes,
    reset_peak_memory,
    synchronize,
    table,
    write_json,
)
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ffr_lib.data.grouped import GroupedImages
from ffr_lib.data.world import WorldConfig, render_labelled, split_labels
from ffr_lib.training.config import RunConfig
from ffr_lib.training.loop import evaluate, train_stage
from ffr_lib.training.models import IMAGENET_MEAN, IMAGENET_STD, Classifier
from ffr_lib.training.runner import fresh_model

SETTINGS = {  # model, image side, default images, default epochs
    "small32": ("resnet-small", 32, 20_000, 3),
    "resnet50_224": ("resnet50", 224, 4_096, 2),
}
LR, WEIGHT_DECAY, VAL_IMAGES = 1e-3, 1e-5, 64


# --- data ------------------------------------------------------------------------------------------
def world_images(split: str, n: int, side: int, render_size: int, seed: int = 0) -> GroupedImages:
    """n images of a shapes-binary split (a seeded draw over its groups), uint8 (n, 3, side, side).

    Rendered at `render_size` (32 or 64) and, when `side` is larger, upsampled once (bilinear)."""
    cfg = WorldConfig(layout="binary", size=render_size)
    pool_y, pool_b = split_labels(cfg, split)
    pool = len(pool_y)
    order = np.random.default_rng(seed).permutation(pool)
    index = np.concatenate([order, np.arange(pool, max(n, pool))])[:n]  # past the pool: more of the stream
    y, b = pool_y[index % pool], pool_b[index % pool]
    images = torch.from_numpy(render_labelled(cfg, split, index, y, b)[0])
    if side != render_size:
        images = torch.cat([
            F.interpolate(chunk.float(), size=(side, side), mode="bilinear", align_corners=False)
            .round().clamp(0, 255).to(torch.uint8)
            for chunk in images.split(256)
        ])
    spec = cfg.spec
    return GroupedImages.from_arrays(images, y, b, spec.class_names, spec.bias_names)


class PngFolder(Dataset):
    """The naive data path: one PNG per sample, opened with PIL in __getitem__."""

    def __init__(self, paths: list[Path], labels: list[int]) -> None:
        from torchvision import transforms

        self.paths, self.labels = paths, labels
        self.transform = transforms.Compose([
            transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        ])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.paths[i]) as im:
            return self.transform(im.convert("RGB")), self.labels[i]


def write_pngs(data: GroupedImages, folder: Path) -> list[Path]:
    paths = []
    for i, image in enumerate(data.images.permute(0, 2, 3, 1).numpy()):
        paths.append(folder / f"{i:06d}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


# --- measurements ----------------------------------------------------------------------------------
def steady_rate(n: int, seconds: list[float]) -> tuple[float, bool]:
    """images/s over the epochs after the first (all epochs when there is only one), and
    whether the warm-up epoch had to be included."""
    kept = seconds[1:] if len(seconds) > 1 else seconds
    return n * len(kept) / max(sum(kept), 1e-9), len(seconds) < 2


def new_model(model_name: str, width: int, device: torch.device, seed: int = 0) -> Classifier:
    config = RunConfig(model=model_name, width=width, pretrained=False, seed=seed)
    return fresh_model(config, 2, device)


def run_ours(model: Classifier, train: GroupedImages, val: GroupedImages, args, label: str,
             cuda_graphs: bool = True) -> dict:
    """train_stage as the runner calls it; returns the row of the table."""
    device = next(model.parameters()).device
    groups = WorldConfig().spec.groups()
    train_d, val_d = train.to(device), val.to(device)
    synchronize(args.device)
    how = reset_peak_memory(args.device)
    t0 = time.perf_counter()
    result = train_stage(model, train_d, val_d, groups, lr=LR, epochs=args.epochs, batch_size=args.batch,
                         weight_decay=WEIGHT_DECAY, seed=0, cuda_graphs=cuda_graphs)
    synchronize(args.device)
    wall = time.perf_counter() - t0
    peak = peak_memory_bytes(args.device)
    val_times = []
    for _ in range(3):  # what each epoch spent on validation, to subtract
        t1 = time.perf_counter()
        evaluate(model, val_d, groups)
        val_times.append(time.perf_counter() - t1)
    val_s = statistics.median(val_times)
    epoch_s = [max(row["seconds"] - val_s, 1e-9) for row in result.history]
    rate, warm = steady_rate(len(train), epoch_s)
    return {"loop": label, "images_per_s": rate, "wall_images_per_s": args.epochs * len(train) / wall,
            "peak_memory_mib": peak / 2**20, "memory_measure": how, "epoch_seconds": epoch_s,
            "history_seconds": [row["seconds"] for row in result.history], "val_seconds_subtracted": val_s,
            "warmup_included": warm, "wall_seconds": wall}


def run_naive(train: GroupedImages, args, model_name: str, folder: Path) -> dict:
    """The reference loop: PNGs, PIL, DataLoader, fp32, Adam, .item() every step."""
    device = torch.device(args.device)
    t0 = time.perf_counter()
    paths = write_pngs(train, folder)
    png_s = time.perf_counter() - t0
    workers = min(8, os.cpu_count() or 1) if args.workers is None else args.workers
    loader = DataLoader(PngFolder(paths, train.y.tolist()), batch_size=args.batch, shuffle=True,
                        num_workers=workers, pin_memory=is_cuda(args.device))
    model = new_model(model_name, args.width, torch.device("cpu")).to(device)  # same init, not channels_last
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    criterion = torch.nn.CrossEntropyLoss()
    synchronize(args.device)
    how = reset_peak_memory(args.device)
    epoch_s, losses = [], []
    t_all = time.perf_counter()
    for _ in range(args.epochs):
        t1 = time.perf_counter()
        model.train()
        running = 0.0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = criterion(model.head(model.backbone(x)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()
        losses.append(running / len(loader))
        synchronize(args.device)
        epoch_s.append(time.perf_counter() - t1)
    wall = time.perf_counter() - t_all
    rate, warm = steady_rate(len(train), epoch_s)
    return {"loop": "naive", "images_per_s": rate, "wall_images_per_s": args.epochs * len(train) / wall,
            "peak_memory_mib": peak_memory_bytes(args.device) / 2**20, "memory_measure": how,
            "epoch_seconds": epoch_s, "warmup_included": warm, "wall_seconds": wall, "workers": workers,
            "png_write_seconds": png_s, "mean_loss": losses}


def run_packed(k: int, train: GroupedImages, val: GroupedImages, args, model_name: str) -> dict:
    """K small ResNets at once through ffr_lib.training.packing (when that module exists)."""
    try:
        from ffr_lib.training.packing import PackMember, train_packed
    except ImportError as err:
        return {"loop": f"packed x{k}", "skipped": f"packing is not available ({err})"}
    device = torch.device(args.device)
    models = [new_model(model_name, args.width, device, seed=s) for s in range(k)]
    members = [PackMember(train, val, "erm", LR, s) for s in range(k)]
    synchronize(args.device)
    how = reset_peak_memory(args.device)
    t0 = time.perf_counter()
    results = train_packed(models, members, WorldConfig().spec.groups(), epochs=args.epochs,
                           batch_size=args.batch, weight_decay=WEIGHT_DECAY)
    synchronize(args.device)
    wall = time.perf_counter() - t0
    ok = [r for r in results if not isinstance(r, Exception)]
    if not ok:
        return {"loop": f"packed x{k}", "skipped": f"every packed run failed: {results[0]}"}
    epoch_s = [row["seconds"] for row in ok[0].history]  # one pack-wide time per epoch (val included)
    rate, warm = steady_rate(k * len(train), epoch_s)
    return {"loop": f"packed x{k}", "images_per_s": rate, "wall_images_per_s": k * args.epochs * len(train) / wall,
            "peak_memory_mib": peak_memory_bytes(args.device) / 2**20, "memory_measure": how,
            "epoch_seconds": epoch_s, "warmup_included": warm, "wall_seconds": wall, "runs": k,
            "failed_runs": len(results) - len(ok), "note": "aggregate over the K runs; validation not subtracted"}


# --- main ------------------------------------------------------------------------------------------
def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setting", default="small32", choices=sorted(SETTINGS))
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--images", type=int, help="training images (default: 20,000 small32, 4,096 resnet50_224)")
    p.add_argument("--epochs", type=int, help="epochs (default: 3 small32, 2 resnet50_224); the first is warm-up")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--width", type=int, default=32, help="base width of the small ResNet (small32)")
    p.add_argument("--render-size", type=int, choices=(32, 64), help="world render side before upsampling "
                   "(default 32 for small32, 64 for resnet50_224)")
    p.add_argument("--workers", type=int, help="naive DataLoader workers (default min(8, CPU count))")
    p.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                   help="also time ours + torch.compile (auto: on CUDA only; slow to compile on a CPU)")
    p.add_argument("--packed", type=int, default=0, help="K > 0: also train K small ResNets packed at once")
    p.add_argument("--skip-naive", action="store_true", help="time only our loop (e.g. after a library change)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--tmp", help="folder for the naive loop's PNG files (default: a temporary folder)")
    p.add_argument("--out", help="JSON path (default bench/results/train_throughput_<setting>_<device>.json)")
    args = p.parse_args(argv)
    model_name, side, n, epochs = SETTINGS[args.setting]
    args.device = args.device or default_device()
    args.images = args.images or n
    args.epochs = args.epochs or epochs
    args.render_size = args.render_size or (32 if side == 32 else 64)
    args.model_name, args.side = model_name, side
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    t0 = time.perf_counter()
    train = world_images("train", args.images, args.side, args.render_size)
    val = world_images("val", VAL_IMAGES, args.side, args.render_size)
    render_s = time.perf_counter() - t0
    print(f"{args.setting}: {args.model_name}, {args.images} images of {args.side} px x {args.epochs} epochs, "
          f"batch {args.batch}, on {args.device} (rendered in {render_s:.1f} s)")
    rows, notes = [], []
    ours = new_model(args.model_name, args.width, device)
    rows.append(run_ours(ours, train, val, args, "ours"))
    if is_cuda(args.device):  # the same loop without CUDA graphs, from the same initial weights
        eager = new_model(args.model_name, args.width, device)
        rows.append(run_ours(eager, train, val, args, "ours, no CUDA graphs", cuda_graphs=False))
        diff = max(float((a.float() - b.float()).abs().max()) for a, b in
                   zip(ours.state_dict().values(), eager.state_dict().values()))
        rows[-1]["max_abs_weight_diff_vs_graphs"] = diff
        notes.append(f"CUDA graphs vs eager after {args.epochs} epochs from one init: max |weight difference| "
                     f"{diff:.3g} (bf16 autocast; 0 when every kernel is deterministic)")
    compile_on = args.compile == "on" or (args.compile == "auto" and is_cuda(args.device))
    if compile_on:
        model = new_model(args.model_name, args.width, device)
        model.compile()  # in place: the Classifier keeps .features/.head and its state-dict keys
        try:
            rows.append(run_ours(model, train, val, args, "ours + compile"))
        except Exception as err:  # noqa: BLE001 - report, do not hide, a compiler failure
            rows.append({"loop": "ours + compile", "skipped": f"{type(err).__name__}: {err}"})
    else:
        notes.append("ours + compile not timed (--compile auto skips it off CUDA; pass --compile on)")
    if args.packed:
        if args.model_name != "resnet-small":
            rows.append({"loop": f"packed x{args.packed}", "skipped": "packing is for the small ResNet only"})
        else:
            rows.append(run_packed(args.packed, train, val, args, args.model_name))
    if is_cuda(args.device):
        torch.cuda.empty_cache()
    if not args.skip_naive:
        with tempfile.TemporaryDirectory(prefix="ffr-bench-png-", dir=args.tmp) as folder:
            rows.append(run_naive(train, args, args.model_name, Path(folder)))
    naive = next((r for r in rows if r["loop"] == "naive"), None)
    for row in rows:
        if naive and "images_per_s" in row:
            row["ratio_vs_naive"] = row["images_per_s"] / naive["images_per_s"]
            row["memory_ratio_vs_naive"] = row["peak_memory_mib"] / naive["peak_memory_mib"]
    table(rows, [("loop", "loop"), ("images_per_s", "images/s"), ("wall_images_per_s", "wall images/s"),
                 ("peak_memory_mib", "peak MiB"), ("ratio_vs_naive", "speed x naive"),
                 ("memory_ratio_vs_naive", "memory x naive")])
    for row in rows:
        if "skipped" in row:
            notes.append(f"{row['loop']}: {row['skipped']}")
        if row.get("warmup_included"):
            notes.append(f"{row['loop']}: one epoch only, so its warm-up is included")
    notes.append(f"peak memory: {rows[0].get('memory_measure')}")
    for note in notes:
        print("note:", note)
    payload = {
        "benchmark": "train_throughput", "setting": args.setting, "model": args.model_name,
        "width": args.width if args.model_name == "resnet-small" else None, "images": args.images,
        "side": args.side, "render_size": args.render_size, "epochs": args.epochs, "batch": args.batch,
        "val_images": VAL_IMAGES, "render_seconds": render_s, "rows": rows, "notes": notes,
        "machine": machine_info(args.device),
    }
    out = args.out or RESULTS / f"train_throughput_{args.setting}_{device.type}.json"
    print("wrote", write_json(out, payload))
    return payload


if __name__ == "__main__":
    main()
