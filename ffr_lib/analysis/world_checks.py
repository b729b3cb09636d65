"""Checks of the embedded world with the real training loop: calibration and the knobs' effects.

Calibration asks two things of the world and nothing else (never the paper's claims):
- learnable: ERM on balanced real data reaches a high real-test WA (the shape is learnable);
- tempting: ERM on the 99 % biased real split has WA far below BA (the scene is a shortcut).
The knob grid measures, per (fingerprint, fidelity) of the procedural generator:
- detector: held-out accuracy of a small CNN telling real from synthetic images with the same
  (y, b) labels (the fingerprint's effect: can a model learn G?);
- transfer: real-test WA and BA of ERM trained on balanced synthetic data only, selected on
  balanced real validation (the fidelity's effect: what FFR's stage 1 hands to stage 2).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.composite import CompositeConfig, load_composite
from ..data.grouped import GroupedImages
from ..data.splits import VAL_FLOOR, make_biased
from ..data.world import WorldConfig, load_shapes
from ..generation.procedural import ProceduralGenerator
from ..training.loop import evaluate, train_stage
from ..training.models import build_model


@lru_cache(maxsize=2)
def _world(world: WorldConfig | CompositeConfig):
    """The world's splits, rendered once per process (every check of a grid shares them); the
    composite benchmark's too (its CompositeConfig and CompositeGenerator take the same checks)."""
    return load_composite(world) if isinstance(world, CompositeConfig) else load_shapes(world, progress=False)


@dataclass(frozen=True)
class CheckConfig:
    """Training settings of the checks (the world's own: a small CNN from scratch)."""

    model: str = "resnet-small"  # name in ffr_lib.training.models.MODELS
    width: int = 32  # small model width
    pretrained: bool = False  # ImageNet weights where the model has them (the world's checks: from scratch)
    lr: float = 1e-3  # Adam learning rate
    epochs: int = 20  # epochs; the best by validation WA is kept
    batch_size: int = 128
    per_group: int = 2500  # balanced sets: images per (y, b) group (capped by the pool)
    detector_per_group: int = 1000  # real-vs-synthetic detector: training images per group and source
    seed: int = 0
    device: str = "cpu"


def balanced_subset(data: GroupedImages, per_group: int, seed: int) -> GroupedImages:
    """At most `per_group` random samples of every (y, b) group present, in pool order."""
    rng = np.random.default_rng([seed, 0xBA1])
    y, b = data.y.cpu().numpy(), data.b.cpu().numpy()
    keep = []
    for yi, bi in sorted(set(zip(y.tolist(), b.tolist()))):
        members = np.flatnonzero((y == yi) & (b == bi))
        keep.append(np.sort(rng.choice(members, size=min(per_group, len(members)), replace=False)))
    return data.subset(torch.from_numpy(np.sort(np.concatenate(keep))))


def _groups(data: GroupedImages) -> list[tuple[int, int]]:
    return sorted(set(zip(data.y.tolist(), data.b.tolist())))


def _fit(train: GroupedImages, val: GroupedImages, test: GroupedImages, n_classes: int, cfg: CheckConfig) -> dict:
    """Train a fresh model with ERM; real-test metrics of the best epoch by validation WA."""
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    model = build_model(cfg.model, n_classes, width=cfg.width, pretrained=cfg.pretrained).to(device)
    groups = _groups(test)
    t0 = time.perf_counter()
    result = train_stage(model, train, val, groups, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size,
                         seed=cfg.seed)
    metrics = evaluate(model, test.to(device), groups, set_name="test set")
    return {"test_wa": metrics["wa"], "test_ba": metrics["ba"], "test_acc": metrics["acc"],
            "best_epoch": result.best_epoch, "seconds": time.perf_counter() - t0}


def calibration(world: WorldConfig, cfg: CheckConfig = CheckConfig(), ratio: float = 0.99) -> pd.DataFrame:
    """Two rows: ERM on balanced real data, and ERM on the `ratio`-biased real split."""
    splits = _world(world)
    n_classes = len(world.spec.class_names)
    rows = []
    train = balanced_subset(splits.train, cfg.per_group, cfg.seed)
    val = balanced_subset(splits.val, VAL_FLOOR * 10, cfg.seed)
    rows.append({"check": "learnable: ERM, balanced real", "train_n": len(train), **_fit(train, val, splits.test,
                                                                                         n_classes, cfg)})
    train = make_biased(splits.train, ratio, cfg.seed, majority=splits.majority)
    val = make_biased(splits.val, ratio, cfg.seed, floor=VAL_FLOOR, majority=splits.majority)
    rows.append({"check": f"tempting: ERM, real biased {ratio:g}", "train_n": len(train),
                 **_fit(train, val, splits.test, n_classes, cfg)})
    out = pd.DataFrame(rows)
    out.insert(0, "layout", world.layout)
    return out


def as_source_task(real: GroupedImages, synthetic: GroupedImages) -> GroupedImages:
    """Real and synthetic images as a 2-class task: y = source (0 real, 1 synthetic), b kept."""
    both = GroupedImages.concat([real, synthetic])
    return GroupedImages(images=both.images, y=both.g.clone(), b=both.b, g=both.g,
                         class_names=("real", "synthetic"), bias_names=both.bias_names)


def detector_accuracy(world: WorldConfig, generator: ProceduralGenerator, cfg: CheckConfig) -> float:
    """Held-out accuracy of a small CNN telling real from synthetic images (chance 0.5)."""
    splits = _world(world)
    real = {}
    n = cfg.detector_per_group
    for split, per_group in (("train", n), ("val", n // 4), ("test", n // 4)):
        pool = splits.train if split == "train" else splits.val if split == "val" else splits.test
        real[split] = balanced_subset(pool, per_group, cfg.seed)
    start = 0
    tasks = {}
    for split, r in real.items():
        syn = generator.generate(r.y.numpy(), r.b.numpy(), seed=cfg.seed, start=start)
        start += len(r)
        tasks[split] = as_source_task(r, syn)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    model = build_model(cfg.model, 2, width=cfg.width, pretrained=False).to(device)
    groups = _groups(tasks["test"])
    train_stage(model, tasks["train"], tasks["val"], groups, lr=cfg.lr, epochs=cfg.epochs,
                batch_size=cfg.batch_size, seed=cfg.seed)
    return float(evaluate(model, tasks["test"].to(device), groups, set_name="detector test")["acc"])


def transfer(world: WorldConfig, generator: ProceduralGenerator, cfg: CheckConfig) -> dict:
    """ERM on balanced synthetic data only; real-test metrics (selected on balanced real val)."""
    splits = _world(world)
    labels = balanced_subset(splits.train, cfg.per_group, cfg.seed)
    syn = generator.generate(labels.y.numpy(), labels.b.numpy(), seed=cfg.seed + 1000)
    val = balanced_subset(splits.val, VAL_FLOOR * 10, cfg.seed)
    return _fit(syn, val, splits.test, len(world.spec.class_names), cfg)


def knob_grid(
    world: WorldConfig,
    fingerprints: Sequence[float],
    fidelities: Sequence[float],
    cfg: CheckConfig = CheckConfig(),
    progress: bool = True,
) -> pd.DataFrame:
    """One row per (fingerprint, fidelity): detector accuracy and synthetic-only transfer."""
    rows = []
    cells = [(f, q) for q in fidelities for f in fingerprints]
    for fp, fid in tqdm(cells, desc=f"knobs shapes-{world.layout}", disable=not progress):
        gen = ProceduralGenerator(world, fingerprint=fp, fidelity=fid)
        t = transfer(world, gen, cfg)
        rows.append({"layout": world.layout, "fingerprint": fp, "fidelity": fid,
                     "detector_acc": detector_accuracy(world, gen, cfg),
                     "transfer_wa": t["test_wa"], "transfer_ba": t["test_ba"], "seed": cfg.seed})
    return pd.DataFrame(rows)


def knob_figure(table: pd.DataFrame):
    """Two heat maps over (fingerprint, fidelity): detector accuracy and transfer WA."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, col, title in ((axes[0], "detector_acc", "real-vs-synthetic detector accuracy"),
                           (axes[1], "transfer_wa", "synthetic-only ERM: real-test WA")):
        pivot = table.pivot_table(index="fidelity", columns="fingerprint", values=col)
        im = ax.imshow(pivot.values, origin="lower", aspect="auto", vmin=0 if col != "detector_acc" else 0.5, vmax=1)
        ax.set_xticks(range(pivot.shape[1]), [f"{v:g}" for v in pivot.columns], fontsize=7)
        ax.set_yticks(range(pivot.shape[0]), [f"{v:g}" for v in pivot.index], fontsize=7)
        ax.set_xlabel("fingerprint")
        ax.set_ylabel("fidelity")
        ax.set_title(title, fontsize=9)
        for i in range(pivot.shape[0]):
            for j in range(pivot.shape[1]):
                if np.isfinite(pivot.values[i, j]):
                    ax.text(j, i, f"{pivot.values[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w")
        fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    return fig
