"""How many generated images each Stable Diffusion filter would reject, on images this project can
generate without SD's weights: the procedural generator (the world's default SD-like knobs) and
the committed diffusion checkpoints (models/diffusion-<layout>), balanced over each world's groups.

    python bench/filter_rates.py                       # 2,000 procedural + 256 diffusion images a layout
    python bench/filter_rates.py --procedural 500 --diffusion 0

Filters (ffr_lib.generation.stable_diffusion.rejects): ours = pixel std < 4 (grey or black);
authors = their is_grayscale, |mean over channels - mean of red| under their scripts' thresholds:
1,500,000 / 512^2 = 5.72 levels (faces) and 200,000 / 512^2 = 0.76 levels (SpuCo Animals), scaled
by pixel count to these 32 px images (the per-pixel threshold is the same). Both are pixel
statistics, so they apply to any RGB image; the rates say what the filters do to these images,
not to Stable Diffusion's. Writes bench/results/filter_rates_cpu.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import RESULTS, machine_info, table, write_json

from ffr_lib.data.world import WorldConfig
from ffr_lib.generation.procedural import ProceduralGenerator
from ffr_lib.generation.stable_diffusion import AUTHORS_SIDE, AUTHORS_THRESHOLDS, rejects
from ffr_lib.sweeps.profiles import SD_LIKE

MODELS = Path(__file__).resolve().parents[1] / "models"
THRESHOLDS = {"faces": AUTHORS_THRESHOLDS["celeba-hq"], "animals": AUTHORS_THRESHOLDS["spuco-animals"]}


def balanced_labels(world: WorldConfig, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n // G images for each of the world's G (y, b) groups."""
    groups = [(y, b) for y in range(len(world.spec.class_names)) for b in world.spec.support[y]]
    per = n // len(groups)
    return (np.repeat([g[0] for g in groups], per).astype(np.int64), np.repeat([g[1] for g in groups], per).astype(np.int64))


def red_gap(images: np.ndarray) -> np.ndarray:
    """float (N,): |mean over channels - mean of red| in levels, per uint8 (N, H, W, 3) image."""
    means = images.reshape(len(images), -1, 3).astype(np.float64).mean(axis=1)
    return np.abs(means.mean(axis=1) - means[:, 0])


def rates(name: str, images: np.ndarray, blank_std: float) -> dict:
    """The row of one set: uint8 (N, H, W, 3) images, each filter's rejection rate."""
    ours = np.array([rejects(im, "ours", blank_std) for im in images])
    row = {"set": name, "images": len(images), "side": int(images.shape[1]), "ours_rejected": int(ours.sum()),
           "ours_rate": float(ours.mean())}
    for kind, threshold in THRESHOLDS.items():
        authors = np.array([rejects(im, "authors", threshold=threshold) for im in images])
        row.update({f"authors_{kind}_rejected": int(authors.sum()), f"authors_{kind}_rate": float(authors.mean()),
                    f"authors_{kind}_only": int((authors & ~ours).sum())})
    gap = red_gap(images)
    row["red_gap_quantiles"] = {q: float(np.quantile(gap, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)}
    return row


def hwc(data) -> np.ndarray:
    return data.images.permute(0, 2, 3, 1).numpy()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layout", nargs="+", default=["binary", "animals"], choices=["binary", "animals"])
    p.add_argument("--procedural", type=int, default=2000, help="procedural images a layout (0: none)")
    p.add_argument("--diffusion", type=int, default=256, help="diffusion-checkpoint images a layout (0: none)")
    p.add_argument("--blank-std", type=float, default=4.0, help="ours: SDConfig.blank_std")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--out", help="JSON path (default bench/results/filter_rates_cpu.json)")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for layout in args.layout:
        world = WorldConfig(layout=layout)
        if args.procedural:
            y, b = balanced_labels(world, args.procedural)
            data = ProceduralGenerator(world, **SD_LIKE).generate(y, b, args.seed)
            rows.append(rates(f"procedural {layout} (fingerprint 0.3, fidelity 0.75)", hwc(data), args.blank_std))
        if args.diffusion:
            from ffr_lib.generation.diffusion import DiffusionGenerator

            folder = MODELS / f"diffusion-{layout}"
            y, b = balanced_labels(world, args.diffusion)
            data = DiffusionGenerator(folder).generate(y, b, args.seed)
            rows.append(rates(f"diffusion {layout} (models/diffusion-{layout}, 25 DDIM steps)", hwc(data), args.blank_std))
    table(rows, [("set", "set"), ("images", "images"), ("ours_rate", "ours rejects"),
                 ("authors_faces_rate", "authors (faces) rejects"), ("authors_animals_rate", "authors (animals) rejects"),
                 ("authors_faces_only", "faces: authors only")])
    levels = {kind: t / AUTHORS_SIDE**2 for kind, t in THRESHOLDS.items()}
    print("authors' thresholds at 512 px: " + ", ".join(f"{k} {THRESHOLDS[k]:,} = {v:.3f} levels" for k, v in levels.items()))
    payload = {"benchmark": "filter_rates", "blank_std": args.blank_std, "authors_thresholds": THRESHOLDS,
               "authors_side": AUTHORS_SIDE, "authors_levels": levels, "seed": args.seed, "rows": rows,
               "machine": machine_info("cpu")}
    print("wrote", write_json(args.out or RESULTS / "filter_rates_cpu.json", payload))
    return payload


if __name__ == "__main__":
    main()
