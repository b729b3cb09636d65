"""RISE, the Grad-CAM wrapper and the mask scores; the world's shape masks against its images."""

import math

import numpy as np
import pytest
import torch

from ffr_lib.analysis import (
    RiseConfig,
    gradcam,
    mask_area,
    mass_on_mask,
    pointing_game,
    rise,
    rise_masks,
    saliency_scores,
)
from ffr_lib.data.world import WorldConfig, world_split

REGION = (slice(8, 16), slice(16, 24))  # an 8x8 block of a 32x32 image: area share 1/16


class RegionModel(torch.nn.Module):
    """Class 0's logit is the mean of one pixel region; class 1's is 0. Accepts uint8 or float."""

    def __init__(self, rows: slice = REGION[0], cols: slice = REGION[1]):
        super().__init__()
        self.rows, self.cols = rows, cols

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255 if x.dtype == torch.uint8 else x
        m = x[:, :, self.rows, self.cols].mean((1, 2, 3))
        return torch.stack([m, torch.zeros_like(m)], 1)


def region_mask(n: int) -> torch.Tensor:
    m = torch.zeros(n, 32, 32, dtype=torch.bool)
    m[:, REGION[0], REGION[1]] = True
    return m


class TinyCNN(torch.nn.Module):
    def __init__(self, classes: int = 3):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, padding=1, stride=2),
            torch.nn.ReLU(),
        )
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255 if x.dtype == torch.uint8 else x
        return self.fc(self.pool(self.features(x)).flatten(1))


# --- RISE -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scores", ["softmax", "logits"])
def test_rise_puts_mass_on_the_region_the_score_reads(scores):
    torch.set_num_threads(1)
    images = torch.stack([torch.ones(3, 32, 32), torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))])
    sal = rise(RegionModel(), images, 0, RiseConfig(n_masks=2000, grid=8, scores=scores))
    masks = region_mask(2)
    assert sal.shape == (2, 32, 32) and sal.dtype == torch.float32
    area = mask_area(masks)
    assert torch.allclose(area, torch.full((2,), 1 / 16, dtype=torch.float64))
    share = mass_on_mask(sal, masks)
    assert (share > 4 * area).all(), share  # chance is the area share, 0.0625
    assert pointing_game(sal, masks).all()
    # moving the region the model reads moves the map's maximum with it
    moved = rise(RegionModel(slice(20, 28), slice(2, 10)), images, 0, RiseConfig(n_masks=2000, grid=8, scores=scores))
    assert not pointing_game(moved, masks).any()


def test_rise_literal_estimator_matches_the_formula_and_ignores_batching():
    """centred=False: sum_i score(I * M_i) M_i / (N p), checked against masks built by hand."""
    cfg = RiseConfig(n_masks=300, grid=4, p=0.3, batch=64, seed=5, scores="logits", centred=False)
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    model = RegionModel()
    masks = rise_masks(32, 32, cfg)  # (300, 32, 32)
    scores = model(image * masks[:, None])[:, 0]  # class 0 under every mask
    expected = (scores[:, None, None] * masks).sum(0) / (cfg.n_masks * cfg.p)
    got = rise(model, image, 0, cfg)
    assert torch.allclose(got[0], expected, atol=1e-5)
    other_batch = rise(model, image, 0, RiseConfig(**{**cfg.__dict__, "batch": 300}))
    assert torch.allclose(got, other_batch, atol=1e-6)


def test_rise_centred_is_the_literal_map_with_the_mask_density_replaced_by_its_mean():
    cfg = RiseConfig(n_masks=200, grid=4, seed=2, scores="logits", centred=False)
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    model = RegionModel()
    literal = rise(model, image, 0, cfg)[0]
    centred = rise(model, image, 0, RiseConfig(**{**cfg.__dict__, "centred": True}))[0]
    masks = rise_masks(32, 32, cfg)
    mean_score = model(image * masks[:, None])[:, 0].mean()
    density = masks.sum(0) / (cfg.n_masks * cfg.p)  # 1 in expectation
    assert torch.allclose(centred, literal - mean_score * density + mean_score, atol=1e-5)


def test_rise_masks_are_soft_shifted_and_keep_share_p():
    cfg = RiseConfig(n_masks=2000, grid=8, p=0.25, seed=0)
    m = rise_masks(32, 32, cfg)
    assert m.shape == (2000, 32, 32)
    assert m.min() >= 0 and m.max() <= 1
    assert abs(m.mean().item() - 0.25) < 0.01
    assert ((m > 0) & (m < 1)).float().mean() > 0.3  # bilinear, not binary
    assert torch.equal(m, rise_masks(32, 32, cfg))
    assert not torch.equal(m, rise_masks(32, 32, RiseConfig(n_masks=2000, grid=8, p=0.25, seed=1)))


def test_rise_seeded_uint8_and_restores_training_flag():
    model = TinyCNN().train()
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    cfg = RiseConfig(n_masks=64, batch=32, seed=4)
    a = rise(model, images, [0, 2], cfg)
    assert torch.equal(a, rise(model, images, [0, 2], cfg))
    assert not torch.equal(a, rise(model, images, [0, 2], RiseConfig(n_masks=64, batch=32, seed=5)))
    assert model.training


def test_rise_errors_name_the_culprit():
    with pytest.raises(ValueError, match="RiseConfig.p"):
        RiseConfig(p=0.0)
    with pytest.raises(ValueError, match="RiseConfig.scores"):
        RiseConfig(scores="probs")
    images = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="classes: expected one class or 2"):
        rise(RegionModel(), images, [0, 1, 0], RiseConfig(n_masks=4))
    with pytest.raises(ValueError, match="class 5 requested but the model has 2"):
        rise(RegionModel(), images, 5, RiseConfig(n_masks=4))
    with pytest.raises(ValueError, match=r"images must be \(N, 3, H, W\)"):
        rise(RegionModel(), images[:, :1], 0, RiseConfig(n_masks=4))


# --- Grad-CAM ---------------------------------------------------------------------------------


def test_gradcam_maps_have_image_shape_and_lie_in_unit_interval():
    torch.manual_seed(0)
    model = TinyCNN().train()
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    maps = gradcam(model, images, "features.2", [0, 1, 2, 0, 1], batch=2)
    assert maps.shape == (5, 32, 32) and maps.dtype == torch.float32
    assert maps.min() >= 0 and maps.max() <= 1
    assert maps.flatten(1).max(1).values.gt(0.5).any()  # min-max scaled, not all zero
    assert model.training  # grad-cam sets eval mode; the wrapper restores it
    assert all(p.grad is None for p in model.parameters())
    same = gradcam(model, images, model.features[2], [0, 1, 2, 0, 1])
    assert torch.allclose(maps, same, atol=1e-5)


def test_gradcam_unknown_layer_lists_known_ones():
    with pytest.raises(ValueError, match=r"target_layer 'layer4' not in the model.*features\.2"):
        gradcam(TinyCNN(), torch.rand(1, 3, 32, 32), "layer4", 0)


# --- scores -----------------------------------------------------------------------------------


def test_mass_on_mask_by_hand():
    sal = torch.tensor([[[1.0, 3.0], [0.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]], [[-1.0, 1.0], [0.0, 0.0]]])
    masks = torch.tensor([[[False, True], [False, False]]] * 3)
    got = mass_on_mask(sal, masks)
    assert got[0].item() == pytest.approx(3 / 4)  # min is 0: 3 of 4
    assert math.isnan(got[1].item())  # constant map: no mass after the shift
    assert got[2].item() == pytest.approx(2 / 4)  # shifted by -(-1): [0, 2, 1, 1]
    assert mass_on_mask(sal[2:], masks[2:], shift="clip").item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shift must be"):
        mass_on_mask(sal, masks, shift="none")
    with pytest.raises(ValueError, match="masks shape"):
        mass_on_mask(sal, masks[:, :1])


def test_pointing_game_by_hand_and_tolerance():
    sal = torch.zeros(2, 7, 7)
    sal[0, 3, 3] = 1.0  # on the mask
    sal[1, 3, 6] = 1.0  # 3 px right of the mask's edge column (3)
    masks = torch.zeros(2, 7, 7, dtype=torch.bool)
    masks[:, 2:5, 2:4] = True  # columns 2..3
    assert pointing_game(sal, masks).tolist() == [True, False]
    assert pointing_game(sal, masks, tolerance=2.9).tolist() == [True, False]
    assert pointing_game(sal, masks, tolerance=3.0).tolist() == [True, True]
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(sal, masks, tolerance=-1)
    table = saliency_scores(sal, masks)
    assert list(table.columns) == ["mass", "area", "hit"]
    assert table["hit"].tolist() == [True, False]
    assert table["area"].tolist() == pytest.approx([6 / 49, 6 / 49])
    assert table["mass"].tolist() == pytest.approx([1.0, 0.0])


# --- the world's shape masks ------------------------------------------------------------------


def _contrast(images: torch.Tensor, masks: torch.Tensor) -> np.ndarray:
    """Per image: summed |mean colour inside - mean colour outside| over the channels (0..765)."""
    x, m = images.double(), masks[:, None].double()
    inside = (x * m).sum((2, 3)) / m.sum((2, 3))
    outside = (x * (1 - m)).sum((2, 3)) / (1 - m).sum((2, 3))
    return (inside - outside).abs().sum(1).numpy()


def test_world_shape_masks_line_up_with_the_rendered_shapes():
    data = world_split(WorldConfig(layout="animals", test_per_group=4), "test")
    images, masks = data.images, data.masks
    assert masks is not None and masks.shape == (32, 32, 32) and masks.dtype == torch.bool
    area = mask_area(masks)
    assert (area > 0.03).all() and (area < 0.35).all()
    assert torch.equal(mass_on_mask(masks.float(), masks), torch.ones(32, dtype=torch.float64))
    assert pointing_game(masks.float(), masks).all()
    # the shape's colour differs from the scene's: the mask isolates it, a shifted mask does not
    on = _contrast(images, masks)
    shifted = _contrast(images, torch.roll(masks, shifts=(5, 5), dims=(1, 2)))
    assert np.median(on) > 60  # of 765
    assert (on > shifted).mean() >= 0.9
    assert np.median(on) > 2 * np.median(shifted)
