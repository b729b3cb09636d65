"""Figures: sample grids of images per subgroup and the paper's figures from result tables."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .data.grouped import SOURCE_NAMES, GroupedImages


def sample_grid(
    sets: Sequence[GroupedImages],
    per_group: int = 8,
    titles: Sequence[str] | None = None,
    seed: int = 0,
) -> plt.Figure:
    """One row per (y, b) group present in the first set, `per_group` images of each set side by
    side (e.g. real beside synthetic); images are drawn at random with `seed`."""
    first = sets[0]
    groups = [(y, b) for y in range(first.n_classes) for b in range(first.n_biases)
              if int(((first.y == y) & (first.b == b)).sum()) > 0]
    ncols = per_group * len(sets)
    fig, axes = plt.subplots(len(groups), ncols, figsize=(ncols * 0.7, len(groups) * 0.75), squeeze=False)
    rng = np.random.default_rng(seed)
    for r, (y, b) in enumerate(groups):
        for s, data in enumerate(sets):
            idx = ((data.y == y) & (data.b == b)).nonzero().flatten().numpy()
            pick = rng.choice(idx, size=min(per_group, len(idx)), replace=False) if len(idx) else []
            for c in range(per_group):
                ax = axes[r, s * per_group + c]
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if c < len(pick):
                    ax.imshow(data.images[pick[c]].permute(1, 2, 0).numpy(), interpolation="nearest")
                if c == 0 and s == 0:
                    ax.set_ylabel(f"{first.class_names[y]}\n{first.bias_names[b]}", rotation=0, ha="right",
                                  va="center", fontsize=9)
                if r == 0 and c == 0:
                    label = titles[s] if titles else SOURCE_NAMES[int(data.g[0])] if len(data) else ""
                    ax.set_title(label, fontsize=10, loc="left")
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig
