"""The embedded world: purity, determinism, layouts, pool sizes."""

import numpy as np
import pytest
import torch

from ffr_lib.data import PAPER_RATIOS, biased_counts, load_dataset
from ffr_lib.data.render import render
from ffr_lib.data.world import LAYOUTS, WorldConfig, render_labelled, split_counts, split_labels, world_split

SMALL = dict(train_majority=40, train_minority=8, val_majority=20, val_minority=10, test_per_group=6)


def test_image_is_a_pure_function_of_seed_split_index():
    cfg = WorldConfig(**SMALL)
    y, b = split_labels(cfg, "train")
    full, _ = render_labelled(cfg, "train", np.arange(len(y)), y, b, batch=7)
    pick = np.array([45, 3, 17])
    alone, _ = render_labelled(cfg, "train", pick, y[pick], b[pick], batch=1)
    assert np.array_equal(full[pick], alone)  # batching never changes a pixel


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = world_split(WorldConfig(seed=1, **SMALL), "test")
    b = world_split(WorldConfig(seed=1, **SMALL), "test")
    c = world_split(WorldConfig(seed=2, **SMALL), "test")
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)
    assert torch.equal(a.y, c.y) and torch.equal(a.b, c.b)


def test_splits_differ_from_each_other():
    cfg = WorldConfig(**SMALL)
    y, b = np.zeros(4, np.int64), np.zeros(4, np.int64)
    train, _ = render_labelled(cfg, "train", np.arange(4), y, b)
    val, _ = render_labelled(cfg, "val", np.arange(4), y, b)
    assert not np.array_equal(train, val)


@pytest.mark.parametrize("layout,groups", [("binary", 4), ("animals", 8)])
def test_layout_groups_and_majority(layout, groups):
    cfg = WorldConfig(layout=layout, **SMALL)
    data = world_split(cfg, "train")
    counts = data.count_array()
    assert int((counts > 0).sum()) == groups
    for k in range(len(LAYOUTS[layout].class_names)):
        assert counts[k].argmax() == k  # class k's majority scene is scene k
    if layout == "animals":  # each family keeps to its own pair of scenes
        assert counts[:2, 2:].sum() == 0 and counts[2:, :2].sum() == 0


@pytest.mark.parametrize("layout", ["binary", "animals"])
def test_default_pool_reaches_every_paper_ratio(layout):
    cfg = WorldConfig(layout=layout)
    pool = np.zeros((len(cfg.spec.class_names), len(cfg.spec.bias_names)), np.int64)
    for y, b, n in split_counts(cfg, "train"):
        pool[y, b] = n
    assert all(pool[k, k] >= 5000 for k in range(pool.shape[0]))
    for r in PAPER_RATIOS:
        kept = biased_counts(pool, r)
        assert (kept[pool > 0] >= 1).all()


def test_web_corpus_is_mildly_biased():
    cfg = WorldConfig(web_per_class=100)
    counts = {(y, b): n for y, b, n in split_counts(cfg, "web")}
    assert counts == {(0, 0): 70, (0, 1): 30, (1, 0): 30, (1, 1): 70}


def test_masks_line_up_with_the_rendered_shape():
    # a flat scene and no camera noise: shape pixels are exactly the shape colour
    from ffr_lib.data import render as R

    cfg_size = 32
    index = np.arange(6)
    images, masks = render(0, "mask-test", index, ["square"] * 6, ["lake"] * 6, cfg_size,
                           camera=R.Camera(exposure=0.0, blur_sigma=0.0, noise_std=0.0),
                           style=R.Style(texture_smoothing=1.0))
    for img, m in zip(images, masks):
        assert 60 < m.sum() < 400  # about 12 % of the image
        inside = img[:, m].astype(int)
        outside = img[:, ~m].astype(int)
        # the scene is flat (texture removed): outside pixels are one colour, inside ones differ from it
        assert np.ptp(outside, axis=1).max() <= 1 or np.abs(inside.mean(1) - outside.mean(1)).max() > 20
        assert np.abs(np.median(inside, 1) - np.median(outside, 1)).max() > 20


def test_64px_and_registry():
    splits = load_dataset("shapes-animals", size=64, progress=False, **SMALL)
    assert splits.train.images.shape[1:] == (3, 64, 64)
    assert splits.majority == (0, 1, 2, 3)
    assert len(splits.test) == 8 * SMALL["test_per_group"]
    with pytest.raises(KeyError, match="known: .*shapes-binary"):
        load_dataset("no-such-dataset")
