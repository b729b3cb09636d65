"""The authors' training and evaluation rate (images/s) on the real datasets' file formats, beside
ours, for the GPU-hour model (bench/gpu_hours.py).

    python bench/authors_loop.py                                  # every kind, 2 workers, on cuda
    python bench/authors_loop.py --kinds celeba-hq --files 'celeba-hq=/data/CelebA-HQ-img/*.jpg'
    python bench/authors_loop.py --device cpu --model resnet-small --images 64 --kinds utk-face   # a smoke run

AUTHORS is their loop as their training scripts write it (OFFICIAL_CODE.md): one file per sample
opened with PIL, Resize((224, 224)), ToTensor, Normalize, a DataLoader with num_workers=2 (their
value; --workers changes it), batch 128, shuffle, fp32 ResNet-50 (cuDNN's TF32 default), Adam,
`.to('cuda')` per batch; evaluation the same loader without shuffle under no_grad. Their files are
decoded at full size every epoch: CelebA-HQ 1024 px JPEGs, UTK-Face 200 px JPEGs, SpuCo Animals
PNGs, and their Stable Diffusion images 512 px PNGs. OURS trains from the decoded uint8 set on the
GPU (train_stage, as bench/train_throughput.py times it), evaluates with logits_of, and decodes
each file once (image_cache.decode_all, one thread per CPU core) into the cache.

Without --files the files are made here: world images upsampled to the kind's side plus Gaussian
noise (--noise), so that they compress about as photographs do; their mean size is in the JSON.
SpuCo Animals' image size is not known here (ImageNet-derived; 384 px assumed): measure on the
real files with --files when you have them. images/s is the second epoch's (the first is warm-up);
each epoch restarts the loader's workers, as theirs does. Writes bench/results/authors_loop_<device>.json.
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from _common import RESULTS, default_device, is_cuda, machine_info, synchronize, table, write_json
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from train_throughput import new_model, run_ours, steady_rate, world_images

from ffr_lib.data.image_cache import decode_all
from ffr_lib.training.loop import logits_of
from ffr_lib.training.models import IMAGENET_MEAN, IMAGENET_STD

KINDS = {  # the files each dataset's loader opens: side in px, format
    "celeba-hq": (1024, "jpg"),
    "utk-face": (200, "jpg"),
    "spuco-animals": (384, "png"),  # assumed: ImageNet-derived, size not known here
    "synthetic": (512, "png"),  # the authors' Stable Diffusion images, saved at 512 px
}
SIDE, BATCH, LR, WEIGHT_DECAY = 224, 128, 1e-4, 1e-5


class AuthorsFiles(Dataset):
    """One file per sample, PIL, Resize((224, 224)), ToTensor, Normalize: their transform."""

    def __init__(self, paths: list[Path], labels: list[int]) -> None:
        from torchvision import transforms

        self.paths, self.labels = paths, labels
        self.transform = transforms.Compose([
            transforms.Resize((SIDE, SIDE)), transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.paths[i]) as im:
            return self.transform(im.convert("RGB")), self.labels[i]


def write_files(folder: Path, n: int, side: int, fmt: str, noise: float) -> list[Path]:
    """n photograph-like files: world images at 64 px upsampled to `side`, plus a field of noise
    (one field, shifted by a random offset per image), written by a thread per core."""
    folder.mkdir(parents=True, exist_ok=True)
    base = world_images("train", min(n, 256), 64, 64).images.float()
    rng = np.random.default_rng(0)
    field = rng.normal(0, noise, size=(side, side, 3)).astype(np.float32)
    shifts = rng.integers(0, side, size=(n, 2))

    def one(i: int) -> Path:
        img = F.interpolate(base[i % len(base)][None], size=(side, side), mode="bilinear", align_corners=False)[0]
        arr = img.permute(1, 2, 0).numpy() + np.roll(field, tuple(shifts[i]), axis=(0, 1))
        path = folder / f"{i:06d}.{fmt}"
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, **({"quality": 90} if fmt == "jpg" else {}))
        return path

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(one, range(n)))


def loader(paths: list[Path], workers: int, shuffle: bool) -> DataLoader:
    labels = [i % 2 for i in range(len(paths))]
    return DataLoader(AuthorsFiles(paths, labels), batch_size=BATCH, shuffle=shuffle, num_workers=workers)


def authors_train(paths: list[Path], workers: int, args) -> tuple[float, bool]:
    """Their training loop, 2 epochs; images/s of the second."""
    device = torch.device(args.device)
    model = new_model(args.model, 32, torch.device("cpu")).to(device)  # fp32, not channels_last
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    seconds = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        for x, y in loader(paths, workers, shuffle=True):
            optimizer.zero_grad()
            x, y = x.to(device), y.to(device)
            loss = criterion(model.head(model.backbone(x)), y)
            loss.backward()
            optimizer.step()
        synchronize(args.device)
        seconds.append(time.perf_counter() - t0)
    return steady_rate(len(paths), seconds)


@torch.no_grad()
def authors_eval(paths: list[Path], workers: int, args) -> float:
    """Their evaluation pass (no shuffle, no_grad, fp32); images/s of the second pass."""
    device = torch.device(args.device)
    model = new_model(args.model, 32, torch.device("cpu")).to(device).eval()
    seconds = []
    for _ in range(2):
        t0 = time.perf_counter()
        for x, _ in loader(paths, workers, shuffle=False):
            model.head(model.backbone(x.to(device))).argmax(1)
        synchronize(args.device)
        seconds.append(time.perf_counter() - t0)
    return len(paths) / seconds[-1]


def loader_only(paths: list[Path], workers: int) -> float:
    """The loader alone (the CPU's ceiling for their loop): images/s of one pass."""
    t0 = time.perf_counter()
    for _ in loader(paths, workers, shuffle=True):
        pass
    return len(paths) / (time.perf_counter() - t0)


def ours_decode(paths: list[Path]) -> float:
    """Our one-time decode to 224 px uint8 (image_cache.decode_all, a thread per core)."""
    t0 = time.perf_counter()
    decode_all(paths, SIDE, workers=os.cpu_count() or 1, progress=False)
    return len(paths) / (time.perf_counter() - t0)


def ours_rates(args) -> dict:
    """Our loop on the same machine: train_stage images/s (also with torch.compile, as `ffr sweep
    --compile`, unless --compile off) and logits_of images/s at 224 px."""
    device = torch.device(args.device)
    train = world_images("train", args.images, SIDE, 64)
    val = world_images("val", 64, SIDE, 64)
    how = SimpleNamespace(device=args.device, epochs=args.epochs, batch=BATCH)
    out = {"ours_train_images_per_s": run_ours(new_model(args.model, 32, device), train, val, how, "ours")["images_per_s"]}
    if args.compile == "on" or (args.compile == "auto" and is_cuda(args.device)):
        compiled = new_model(args.model, 32, device)
        compiled.compile()
        out["ours_compile_train_images_per_s"] = run_ours(compiled, train, val, how, "ours + compile")["images_per_s"]
    model = new_model(args.model, 32, device)
    images = train.images.to(device)
    logits_of(model, images)  # warm-up
    synchronize(args.device)
    t0 = time.perf_counter()
    logits_of(model, images)
    synchronize(args.device)
    return {**out, "ours_eval_images_per_s": len(images) / (time.perf_counter() - t0)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    p.add_argument("--files", nargs="+", default=[], metavar="KIND=GLOB", help="time these files instead of made ones")
    p.add_argument("--images", type=int, default=1280, help="files per kind (10 batches of 128)")
    p.add_argument("--epochs", type=int, default=2, help="training epochs (the first is warm-up)")
    p.add_argument("--workers", type=int, nargs="+", default=[2], help="DataLoader workers (theirs: 2)")
    p.add_argument("--noise", type=float, default=6.0, help="std of the noise added to made files (0..255)")
    p.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                   help="also time our loop with torch.compile (auto: on CUDA)")
    p.add_argument("--model", default="resnet50", help="resnet50 (theirs); resnet-small for a CPU smoke run")
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--tmp", help="folder for the made files (default: a temporary folder)")
    p.add_argument("--out", help="JSON path (default bench/results/authors_loop_<device>.json)")
    args = p.parse_args(argv)
    args.device = args.device or default_device()
    args.files = dict(f.split("=", 1) for f in args.files)
    unknown = sorted(set(args.files) - set(KINDS))
    if unknown:
        p.error(f"--files: unknown kind(s) {unknown}; known: {', '.join(KINDS)}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ffr-bench-authors-", dir=args.tmp) as tmp:
        for kind in args.kinds:
            side, fmt = KINDS[kind]
            if kind in args.files:
                paths = sorted(Path(p) for p in glob.glob(args.files[kind]))[: args.images]
                made = False
                if not paths:
                    raise SystemExit(f"--files {kind}: no file matches {args.files[kind]!r}")
            else:
                paths, made = write_files(Path(tmp) / kind, args.images, side, fmt, args.noise), True
            with Image.open(paths[0]) as im:
                size = im.size
            base = {"kind": kind, "files": len(paths), "made_here": made, "size_px": list(size), "format": fmt,
                    "mean_bytes": float(np.mean([p.stat().st_size for p in paths]))}
            decode = ours_decode(paths)
            for workers in args.workers:
                train, warm = authors_train(paths, workers, args)
                rows.append({**base, "workers": workers, "authors_train_images_per_s": train, "warmup_included": warm,
                             "authors_eval_images_per_s": authors_eval(paths, workers, args),
                             "loader_images_per_s": loader_only(paths, workers), "ours_decode_images_per_s": decode})
                print(f"{kind}: {workers} workers: authors train {train:,.0f} images/s", flush=True)
    ours = ours_rates(args)
    table(rows, [("kind", "kind"), ("size_px", "px"), ("format", "format"), ("workers", "workers"),
                 ("authors_train_images_per_s", "authors train/s"), ("authors_eval_images_per_s", "authors eval/s"),
                 ("loader_images_per_s", "loader alone/s"), ("ours_decode_images_per_s", "ours decode once/s")])
    compiled = ours.get("ours_compile_train_images_per_s")
    print(f"ours ({args.model}, same machine): train {ours['ours_train_images_per_s']:,.0f} images/s"
          + (f" ({compiled:,.0f} with torch.compile)" if compiled else "")
          + f", eval {ours['ours_eval_images_per_s']:,.0f} images/s")
    payload = {"benchmark": "authors_loop", "model": args.model, "side": SIDE, "batch": BATCH, "epochs": args.epochs,
               "noise": args.noise, "rows": rows, **ours,
               "fp32_matmul_precision": torch.get_float32_matmul_precision(),
               "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32, "machine": machine_info(args.device)}
    device = "cuda" if is_cuda(args.device) else "cpu"
    out = args.out or RESULTS / f"authors_loop_{device}.json"
    print("wrote", write_json(out, payload))
    return payload


if __name__ == "__main__":
    main()
