"""Reports built from data alone (no training): the world's subgroup tables and sample grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from .data.splits import PAPER_RATIOS, WORLD_VAL_FLOOR, ratio_table
from .data.world import WorldConfig, load_shapes
from .io import save_figure, save_table
from .plots import sample_grid


def world_report(config: WorldConfig, out: str | Path = "figures") -> list[Path]:
    """Subgroup table (pools and biased splits at every paper ratio) and a sample grid."""
    splits = load_shapes(config, progress=False)
    spec = config.spec
    counts = {name: getattr(splits, name).count_array() for name in ("train", "val", "test")}
    table = ratio_table(counts, spec.class_names, spec.bias_names, PAPER_RATIOS, majority=splits.majority,
                        val_floor=WORLD_VAL_FLOOR)
    name = f"world_{config.layout}"
    meta = {"world": config, "ratios": PAPER_RATIOS, "val_floor": WORLD_VAL_FLOOR, "made_by": "ffr world"}
    paths = [save_table(table, f"{name}_subgroups", meta, out)]
    fig = sample_grid([splits.test], per_group=10, titles=[f"shapes-{config.layout}, real test images"])
    paths += save_figure(fig, f"{name}_samples", meta, out)
    plt.close(fig)
    return paths
