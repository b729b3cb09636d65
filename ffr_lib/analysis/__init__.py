"""Analysis: RISE and Grad-CAM saliency scored against shape masks; embeddings, t-SNE, source probe."""

from .embeddings import layer_features, penultimate_features, source_probe, tsne_2d
from .saliency import (
    RiseConfig,
    gradcam,
    mask_area,
    mass_on_mask,
    pointing_game,
    rise,
    rise_masks,
    saliency_scores,
)

__all__ = [
    "RiseConfig",
    "gradcam",
    "layer_features",
    "mask_area",
    "mass_on_mask",
    "penultimate_features",
    "pointing_game",
    "rise",
    "rise_masks",
    "saliency_scores",
    "source_probe",
    "tsne_2d",
]
