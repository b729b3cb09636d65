"""Saliency maps (RISE, Grad-CAM) and their scores against known shape masks.

RISE (Petsiuk et al., BMVC 2018) is written here: no maintained package provides it for current
torch. Grad-CAM comes from the maintained `grad-cam` package (`pytorch_grad_cam`), wrapped thinly.
The embedded world knows each image's shape mask, so a map can be scored, which the paper could
not do: the share of saliency mass on the shape, and the pointing game (Zhang et al., 2016).

Any classifier works: a `torch.nn.Module` mapping images (N, 3, H, W), uint8 or float, to logits
(N, C). Maps are float32 (N, H, W) on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


@dataclass(frozen=True)
class RiseConfig:
    """RISE settings; the paper used 4000 masks on a 7x7 grid with p = 0.5 at 224 px."""

    n_masks: int = 4000  # masks per image (the same masks for every image)
    grid: int = 8  # coarse grid side s; cell = ceil(side / s) px (32 px -> 4 px cells)
    p: float = 0.5  # probability that a grid cell is kept
    batch: int = 500  # masked images per forward pass
    seed: int = 0  # seeds the masks and their shifts (torch.Generator on the CPU)
    scores: str = "softmax"  # 'softmax' (the paper) or 'logits': what weighs each mask
    centred: bool = True  # weigh by score - mean score, add the mean back: same map, less noise

    def __post_init__(self) -> None:
        if self.n_masks < 1:
            raise ValueError(f"RiseConfig.n_masks must be >= 1, got {self.n_masks}")
        if self.grid < 1:
            raise ValueError(f"RiseConfig.grid must be >= 1, got {self.grid}")
        if not 0.0 < self.p <= 1.0:
            raise ValueError(f"RiseConfig.p must be in (0, 1], got {self.p}")
        if self.batch < 1:
            raise ValueError(f"RiseConfig.batch must be >= 1, got {self.batch}")
        if self.scores not in ("softmax", "logits"):
            raise ValueError(f"RiseConfig.scores must be 'softmax' or 'logits', got {self.scores!r}")


def _device_of(model: torch.nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _check_images(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got shape {tuple(images.shape)}")


def _target_classes(classes: int | Sequence[int] | torch.Tensor, n: int) -> torch.Tensor:
    """(n,) int64 class per image from one int or n of them."""
    t = torch.as_tensor(classes, dtype=torch.int64).flatten()
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.numel() != n:
        raise ValueError(f"classes: expected one class or {n} (one per image), got {t.numel()}")
    if (t < 0).any():
        raise ValueError(f"classes must be >= 0, got {t.min().item()}")
    return t


def _cell(side: int, grid: int) -> int:
    return math.ceil(side / grid)


def rise_draws(h: int, w: int, config: RiseConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The random part of the masks: bool grids (n, s, s), row shifts (n,), column shifts (n,).

    Drawn all at once on the CPU, so the masks depend on the seed alone, not on batch or device.
    """
    gen = torch.Generator().manual_seed(config.seed)
    s, n = config.grid, config.n_masks
    grids = torch.rand((n, s, s), generator=gen) < config.p
    dy = torch.randint(0, _cell(h, s), (n,), generator=gen)
    dx = torch.randint(0, _cell(w, s), (n,), generator=gen)
    return grids, dy, dx


def upsample_masks(
    grids: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    """Soft masks (n, h, w) in [0, 1]: each grid bilinearly up-sampled to (s+1) cells, then cropped
    at its shift (dy, dx), so cell borders fall anywhere, not only on a fixed lattice."""
    n, s, _ = grids.shape
    ch, cw = _cell(h, s), _cell(w, s)
    up = F.interpolate(grids[:, None].float(), size=((s + 1) * ch, (s + 1) * cw), mode="bilinear")[:, 0]
    rows = dy.to(up.device)[:, None] + torch.arange(h, device=up.device)  # (n, h)
    cols = dx.to(up.device)[:, None] + torch.arange(w, device=up.device)  # (n, w)
    return up[torch.arange(n, device=up.device)[:, None, None], rows[:, :, None], cols[:, None, :]]


def rise_masks(h: int, w: int, config: RiseConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """All n_masks soft masks (n, h, w) of a config; what `rise` uses, for inspection and tests."""
    grids, dy, dx = rise_draws(h, w, config)
    return upsample_masks(grids.to(device), dy, dx, h, w)


def _apply(image: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """image (3, H, W) times masks (m, H, W) -> (m, 3, H, W), keeping the image's dtype (uint8 rounds)."""
    out = image.float()[None] * masks[:, None]
    if image.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out.to(image.dtype)


@torch.no_grad()
def rise(
    model: torch.nn.Module,
    images: torch.Tensor,
    classes: int | Sequence[int] | torch.Tensor,
    config: RiseConfig = RiseConfig(),
    device: torch.device | str | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """RISE saliency (N, H, W) of each image for its requested class.

    saliency = sum_i score_c(I * M_i) M_i / (n_masks * p), the masks M_i shared by all images.
    With config.centred (default) the mean score s of an image is taken out of the weights and
    added back as a constant, sum_i (score_i - s) M_i / (n_masks * p) + s: the same map in
    expectation (E[M] = p), without the noise of the mask density sum_i M_i, which otherwise
    dominates softmax scores near 1/C; centred=False is the paper's literal estimator.
    images: (N, 3, H, W) uint8 or float, passed to the model in that dtype (uint8 masked images
    are rounded); classes: one int for all or (N,). The model runs in eval mode on `device`
    (default: the model's), and its training flag is restored afterwards.
    """
    _check_images(images)
    n, _, h, w = images.shape
    target = _target_classes(classes, n)
    device = torch.device(device) if device is not None else _device_of(model)
    grids, dy, dx = rise_draws(h, w, config)
    out = torch.zeros(n, h * w, dtype=torch.float64, device=device)  # sum_i s_i M_i
    mask_sum = torch.zeros(h * w, dtype=torch.float64, device=device)  # sum_i M_i
    score_sum = torch.zeros(n, dtype=torch.float64, device=device)  # sum_i s_i
    was_training = model.training
    model.eval()
    try:
        starts = range(0, config.n_masks, config.batch)
        for start in tqdm(starts, desc="RISE", disable=not progress, leave=False):
            sl = slice(start, start + config.batch)
            masks = upsample_masks(grids[sl].to(device), dy[sl], dx[sl], h, w)  # (m, H, W)
            flat = masks.reshape(len(masks), -1).double()
            mask_sum += flat.sum(0)
            for i in range(n):
                logits = model(_apply(images[i].to(device), masks))  # (m, C)
                if logits.ndim != 2:
                    raise ValueError(f"model must return logits (N, C), got shape {tuple(logits.shape)}")
                c = int(target[i])
                if c >= logits.shape[1]:
                    raise ValueError(f"classes: class {c} requested but the model has {logits.shape[1]}")
                s = logits.softmax(1) if config.scores == "softmax" else logits
                out[i] += s[:, c].double() @ flat
                score_sum[i] += s[:, c].double().sum()
    finally:
        model.train(was_training)
    sal = out / (config.n_masks * config.p)
    if config.centred:
        # sum_i (s_i - mean s) M_i / (N p) + mean s: the mask-density noise mean_s * sum_i M_i / (N p)
        # is replaced by its expectation, mean_s (E[M] = p)
        mean_score = score_sum / config.n_masks
        sal = sal - mean_score[:, None] * mask_sum[None] / (config.n_masks * config.p) + mean_score[:, None]
    return sal.reshape(n, h, w).float().cpu()


def _resolve_layer(model: torch.nn.Module, layer: str | torch.nn.Module) -> torch.nn.Module:
    if isinstance(layer, torch.nn.Module):
        return layer
    try:
        return model.get_submodule(layer)
    except AttributeError as err:
        names = [name for name, _ in model.named_modules() if name]
        raise ValueError(f"target_layer {layer!r} not in the model; its layers: {', '.join(names)}") from err


def gradcam(
    model: torch.nn.Module,
    images: torch.Tensor,
    target_layer: str | torch.nn.Module,
    classes: int | Sequence[int] | torch.Tensor,
    batch: int = 256,
) -> torch.Tensor:
    """Grad-CAM maps (N, H, W) in [0, 1] from `pytorch_grad_cam.GradCAM` on `target_layer`.

    target_layer: a module of `model` or its dotted name (e.g. 'layer4'); classes: one int or (N,).
    Each map is min-max scaled per image by the package. The model's parameters must require
    gradients up to the target layer; its training flag is restored and its gradients cleared.
    """
    try:  # grad-cam imports cv2; the opencv-python build it pulls in needs libGL.so.1
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError as err:
        if "libGL" not in str(err):
            raise
        raise ImportError(
            f"grad-cam cannot import OpenCV ({err}): the GUI build opencv-python needs libGL. Put the "
            "headless build over it: pip install --force-reinstall --no-deps opencv-python-headless "
            "(or install libGL: apt-get install libgl1)"
        ) from err

    _check_images(images)
    n = len(images)
    target = _target_classes(classes, n)
    layer = _resolve_layer(model, target_layer)
    was_training = model.training
    maps = []
    try:
        with GradCAM(model=model, target_layers=[layer]) as cam:
            for start in range(0, n, batch):
                chunk = images[start : start + batch]
                targets = [ClassifierOutputTarget(int(c)) for c in target[start : start + batch]]
                maps.append(np.asarray(cam(input_tensor=chunk, targets=targets), dtype=np.float32))
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    return torch.from_numpy(np.concatenate(maps)).clamp_(0.0, 1.0)


def _check_pair(saliency: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    saliency, masks = torch.as_tensor(saliency), torch.as_tensor(masks)
    if saliency.ndim != 3:
        raise ValueError(f"saliency must be (N, H, W), got shape {tuple(saliency.shape)}")
    if masks.shape != saliency.shape:
        raise ValueError(f"masks shape {tuple(masks.shape)} differs from saliency shape {tuple(saliency.shape)}")
    return saliency.double().cpu(), masks.bool().cpu()


def mass_on_mask(saliency: torch.Tensor, masks: torch.Tensor, shift: str = "min") -> torch.Tensor:
    """Share (N,) of each map's saliency mass that lies on its mask's pixels.

    The map is first made non-negative: shift='min' subtracts its minimum (RISE maps carry a
    constant offset, the mean score, that would pull every share toward the mask's area share),
    shift='clip' sets negative values to 0. A map with no mass left (constant) gives NaN.
    Chance level is the mask's area share (`mask_area`).
    """
    s, m = _check_pair(saliency, masks)
    if shift == "min":
        s = s - s.flatten(1).min(1).values[:, None, None]
    elif shift == "clip":
        s = s.clamp(min=0)
    else:
        raise ValueError(f"shift must be 'min' or 'clip', got {shift!r}")
    total = s.flatten(1).sum(1)
    inside = (s * m).flatten(1).sum(1)
    return torch.where(total > 0, inside / total.clamp(min=1e-300), torch.nan)


def mask_area(masks: torch.Tensor) -> torch.Tensor:
    """Share (N,) of pixels inside each mask: the chance level of `mass_on_mask`."""
    m = torch.as_tensor(masks).bool()
    return m.flatten(1).double().mean(1)


def _dilate(masks: torch.Tensor, radius: float) -> torch.Tensor:
    """Masks grown by every pixel within Euclidean distance `radius` of them."""
    r = int(math.floor(radius))
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    disc = ((yy**2 + xx**2) <= radius**2).double()[None, None]
    grown = F.conv2d(masks.double()[:, None], disc, padding=r)[:, 0]
    return grown > 0.5


def pointing_game(saliency: torch.Tensor, masks: torch.Tensor, tolerance: float = 0.0) -> torch.Tensor:
    """Hits (N,) bool: the map's maximum lies on the mask, or within `tolerance` px of it.

    tolerance defaults to 0 (the pixel itself must be on the mask; Zhang et al. used 15 px at
    224 px). On ties the first maximum in row-major order counts.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    s, m = _check_pair(saliency, masks)
    if tolerance > 0:
        m = _dilate(m, tolerance)
    top = s.flatten(1).argmax(1)
    return m.flatten(1)[torch.arange(len(top)), top]


def saliency_scores(saliency: torch.Tensor, masks: torch.Tensor, tolerance: float = 0.0) -> pd.DataFrame:
    """One row per image: mass on the mask, the mask's area share (chance) and the pointing-game hit."""
    return pd.DataFrame(
        {
            "mass": mass_on_mask(saliency, masks).numpy(),
            "area": mask_area(masks).numpy(),
            "hit": pointing_game(saliency, masks, tolerance).numpy(),
        }
    )
