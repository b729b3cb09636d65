"""Train the embedded world's conditional diffusion model on its "web" corpus.

Recommended GPU run, one layout (one H100, about 5-7 minutes; --max-minutes stops it early and
saves if the GPU is slower than expected, and config.json / train_log.csv say how far it got):

    python scripts/train_diffusion.py --layout binary --steps 15000 --batch 512 --lr 3e-4 \
        --web-per-class 10000 --max-minutes 7 --out models/diffusion-binary --device cuda

Both layouts in one call on one GPU (the small model leaves the GPU mostly idle, so two
processes share it well; on the device tool write under $OUT so the folders come back):

    for L in binary animals; do python scripts/train_diffusion.py --layout $L --steps 15000 \
        --batch 512 --lr 3e-4 --web-per-class 10000 --max-minutes 7 --out $OUT/diffusion-$L \
        --device cuda > $OUT/train-$L.txt 2>&1 & done; wait

The composite benchmark (64 px; the web corpus's objects are MNIST's validation digits, never in
the real pools); one H100, both layouts at once, under 8 minutes (docs/composite.md):

    for L in binary animals; do python scripts/train_diffusion.py --benchmark composite --layout $L \
        --steps 20000 --batch 256 --lr 3e-4 --warmup 200 --channels 32 64 64 96 --max-minutes 6 \
        --eval-per-group 32 --out $OUT/diffusion-composite-$L --device cuda > $OUT/train-composite-$L.txt 2>&1 & done; wait

A CPU smoke run:

    python scripts/train_diffusion.py --layout binary --steps 20 --batch 16 --web-per-class 40 \
        --out /tmp/diffusion-smoke --device cpu --eval-per-group 2 --eval-steps 5

Writes to --out: config.json (world, layout names, model and training settings), the EMA
weights (model-<sha>.safetensors), train_log.csv (loss every --log-every steps), and after
training eval.json (scene read back from (y, b) samples; share of class-only samples on the
majority scene) and samples.png (per group a row of real test images, then a row of samples;
then a row of class-only samples per class).
Needs only torch, diffusers (with safetensors), pillow and this package.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from ffr_lib.data.composite import CompositeConfig, composite_split
from ffr_lib.data.world import WorldConfig, world_split
from ffr_lib.generation.diffusion import ConditionalDiffusion, DiffusionConfig, TrainConfig
from ffr_lib.generation.diffusion_train import evaluate, train
from ffr_lib.io import atomic_write_bytes, atomic_write_text


def sample_grid(model: ConditionalDiffusion, per_row: int = 8, seed: int = 0, steps: int = 25) -> np.ndarray:
    """uint8 (H, W, 3) grid: per (class, scene) group a row of real test images, then a row of
    samples; then one row of class-only samples per class; 2 px gaps."""
    spec, s = model.world.spec, model.world.size
    small = replace(model.world, test_per_group=per_row)
    real = composite_split(small, "test") if isinstance(small, CompositeConfig) else world_split(small, "test")
    rows = []
    for yi, bi in spec.groups():
        rows.append(real.images[(real.y == yi) & (real.b == bi)][:per_row])
        rows.append(model.sample(np.full(per_row, yi), np.full(per_row, bi), seed, steps=steps, batch=per_row).images)
    for yi in range(len(spec.class_names)):
        rows.append(model.sample(np.full(per_row, yi), None, seed + 1, steps=steps, batch=per_row).images)
    gap = 2
    grid = np.full((len(rows) * (s + gap), per_row * (s + gap), 3), 255, dtype=np.uint8)
    for r, imgs in enumerate(rows):
        for c, img in enumerate(imgs.permute(0, 2, 3, 1).numpy()):
            grid[r * (s + gap) : r * (s + gap) + s, c * (s + gap) : c * (s + gap) + s] = img
    return grid


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", default="shapes", choices=["shapes", "composite"],
                   help="the embedded world (shapes-*) or the composite benchmark (composite-*)")
    p.add_argument("--layout", default="binary", choices=["binary", "animals"], help="world layout")
    p.add_argument("--size", type=int, help="image side in px (world: 32 or 64, default 32; composite: default 64)")
    p.add_argument("--world-seed", type=int, default=0, help="world seed (the web corpus)")
    p.add_argument("--web-per-class", type=int,
                   help="web corpus images per class (default: --init's, else the benchmark's own: world 2,000, composite 10,000)")
    p.add_argument("--web-majority", type=float, help="majority share per class (default: the benchmark's own, 0.7)")
    p.add_argument("--channels", type=int, nargs="+", default=list(DiffusionConfig.block_out_channels),
                   help="UNet channels per level (attention at the last level)")
    p.add_argument("--layers-per-block", type=int, default=DiffusionConfig.layers_per_block)
    p.add_argument("--p-uncond-bias", type=float, default=DiffusionConfig.p_uncond_bias,
                   help="share of training labels whose scene becomes 'no bias'")
    p.add_argument("--prediction-type", default=DiffusionConfig.prediction_type, choices=["epsilon", "v_prediction"],
                   help="what the UNet predicts; v_prediction is well posed at the schedule's zero terminal SNR")
    for f in fields(TrainConfig):
        if f.name == "flip":
            continue
        kind = (float if f.name in ("lr", "weight_decay", "ema_decay", "grad_clip", "max_minutes")
                else str if f.name == "init" else int)
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default)
    p.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--eval-per-group", type=int, default=64,
                   help="after training: samples per (y, b) group for eval.json (0 = no eval, no grid)")
    p.add_argument("--eval-steps", type=int, default=25, help="DDIM steps of the eval samples and the grid")
    p.add_argument("--eval-guidance", type=float, nargs="+", default=[1.0],
                   help="classifier-free guidance values to evaluate (eval-<w>.json each; eval.json is the first)")
    return p


def web_of_init(init: str | None) -> int | None:
    """The web corpus size a checkpoint folder was trained on: a continued run keeps its corpus."""
    if init is None:
        return None
    import json

    path = Path(init) / "config.json"
    try:
        return int(json.loads(path.read_text())["world"]["web_per_class"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"train_diffusion: --init {init}: no world.web_per_class in {path} ({type(exc).__name__})", file=sys.stderr)
        raise SystemExit(2) from None


def world_of(args: argparse.Namespace) -> WorldConfig | CompositeConfig:
    """The benchmark whose web corpus trains the model; web corpus size and lean default to the
    benchmark's own (a continued run: to its checkpoint's)."""
    kind = CompositeConfig if args.benchmark == "composite" else WorldConfig
    web = args.web_per_class or web_of_init(args.init) or kind.web_per_class
    return kind(layout=args.layout, size=args.size or kind.size, seed=args.world_seed, web_per_class=web,
                web_majority=kind.web_majority if args.web_majority is None else args.web_majority)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    world = world_of(args)
    levels = len(args.channels)
    config = DiffusionConfig(block_out_channels=tuple(args.channels), layers_per_block=args.layers_per_block,
                             attention_levels=(False,) * (levels - 1) + (True,), p_uncond_bias=args.p_uncond_bias,
                             prediction_type=args.prediction_type)
    run = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "flip"},
                      flip=not args.no_flip)
    t0 = time.perf_counter()
    model = train(world, config, run, args.out, device=args.device)
    meta = model.meta
    print(f"{args.out}: {meta['steps_done']} steps ({meta['stopped']}) in {time.perf_counter() - t0:.0f} s, "
          f"{meta['n_params'] / 1e6:.2f} M parameters; log {args.out / 'train_log.csv'}")
    if args.eval_per_group:
        import io
        import json

        from PIL import Image

        for k, w in enumerate(args.eval_guidance):
            report = evaluate(model, per_group=args.eval_per_group, per_class=4 * args.eval_per_group,
                              steps=args.eval_steps, batch=min(256, 4 * args.eval_per_group), guidance=w)
            report["guidance"] = w
            atomic_write_text(args.out / f"eval-{w:g}.json", json.dumps(report, indent=2) + "\n")
            if k == 0:
                first = report
                atomic_write_text(args.out / "eval.json", json.dumps(report, indent=2) + "\n")
            print(f"guidance {w:g}: scene read back {report['scene_agreement']:.3f}, class-only on majority "
                  f"{report['class_only_majority_share']:.3f}", flush=True)
        report = first
        buf = io.BytesIO()
        Image.fromarray(sample_grid(model, steps=args.eval_steps)).save(buf, format="PNG")
        atomic_write_bytes(args.out / "samples.png", buf.getvalue())
        print(f"scene read back on (y, b) samples: {report['scene_agreement']:.3f}; class-only samples on the "
              f"majority scene: {report['class_only_majority_share']:.3f} (web corpus {report['web_majority']}); "
              f"{args.out / 'eval.json'}, {args.out / 'samples.png'} (rows: real, sampled per group; class-only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
