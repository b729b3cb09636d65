"""Figures of notebook 05: saliency maps in the layout of ECCV figure 6 (one row per image, one
column pair per model, RISE beside Grad-CAM) and t-SNE panels of real vs synthetic embeddings
(figure 5) with the probe accuracy behind each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..data.grouped import SOURCE_NAMES, GroupedImages

MODE_LABELS = {"none": "ERM (None)", "usb": "USB", "asb": "ASB", "ffr": "FFR"}


def _bare(ax: plt.Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _unit(m: torch.Tensor) -> np.ndarray:
    """A map min-max scaled to [0, 1] (a constant map -> 0) for display."""
    a = m.double().numpy()
    span = a.max() - a.min()
    return (a - a.min()) / span if span > 0 else np.zeros_like(a)


def saliency_grid(
    images: GroupedImages,
    maps: Mapping[tuple[str, str], torch.Tensor],
    modes: Sequence[str],
    methods: Sequence[str] = ("RISE", "Grad-CAM"),
    alpha: float = 0.55,
) -> plt.Figure:
    """Rows: images (label: class, scene, source); columns: the image, then for each mode its
    maps by each method overlaid on the image (jet, min-max per map; a constant map is labelled
    so), with the shape's outline in white where `images.masks` is known.
    maps[(mode, method)] is (N, H, W) for `images`."""
    n, ncols = len(images), 1 + len(modes) * len(methods)
    fig, axes = plt.subplots(n, ncols, figsize=(1.15 * ncols, 1.2 * n + 0.5), squeeze=False)
    for r in range(n):
        picture = images.images[r].permute(1, 2, 0).numpy()
        mask = None if images.masks is None else images.masks[r].numpy()
        for c in range(ncols):
            ax = axes[r, c]
            _bare(ax)
            ax.imshow(picture, interpolation="nearest")
            if c > 0:
                mode, method = modes[(c - 1) // len(methods)], methods[(c - 1) % len(methods)]
                m = maps[(mode, method)][r]
                ax.imshow(_unit(m), cmap="jet", alpha=alpha, vmin=0, vmax=1, interpolation="bilinear")
                if float(m.max()) == float(m.min()):
                    ax.text(0.5, 0.06, "constant", transform=ax.transAxes, ha="center", va="bottom",
                            fontsize=7, color="white")
                if mask is not None and mask.any():
                    ax.contour(mask.astype(float), levels=[0.5], colors="white", linewidths=0.7)
                if r == 0:
                    ax.set_title(f"{MODE_LABELS.get(mode, mode)}\n{method}", fontsize=8)
            elif r == 0:
                ax.set_title("image", fontsize=8)
        y, b, g = int(images.y[r]), int(images.b[r]), int(images.g[r])
        axes[r, 0].set_ylabel(f"{images.class_names[y]}\n{images.bias_names[b]}\n{SOURCE_NAMES[g]}",
                              rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def tsne_panels(
    panels: Mapping[str, Mapping[str, np.ndarray]],
    probe: Mapping[str, float],
    class_names: Sequence[str],
) -> plt.Figure:
    """One panel per mode: t-SNE of real (o) and synthetic (x) test embeddings, coloured by
    source, with the real-vs-synthetic probe accuracy in the title. panels[mode] holds 'xy'
    (M, 2), 'g' (M,) and 'y' (M,)."""
    modes = list(panels)
    fig, axes = plt.subplots(1, len(modes), figsize=(3.4 * len(modes), 3.4), squeeze=False)
    colours = ("tab:blue", "tab:orange")
    markers = ("o", "^", "s", "P", "X", "D")
    for ax, mode in zip(axes[0], modes):
        p = panels[mode]
        for g in (0, 1):
            for y in np.unique(p["y"]):
                sel = (p["g"] == g) & (p["y"] == y)
                ax.scatter(p["xy"][sel, 0], p["xy"][sel, 1], s=8, alpha=0.6, c=colours[g],
                           marker=markers[int(y) % len(markers)], linewidths=0,
                           label=f"{SOURCE_NAMES[g]} {class_names[int(y)]}")
        ax.set_title(f"{MODE_LABELS.get(mode, mode)}: probe accuracy {probe[mode]:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, markerscale=2, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig
