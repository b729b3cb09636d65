"""RunConfig.corruption (ECCV table 4): a severity applied to every synthetic image of a run,
added without changing the hash (or record) of any run that does not set it."""

from dataclasses import replace

import numpy as np
import pytest

from ffr_lib.generation.corruptions import corrupt
from ffr_lib.sweeps.profiles import TINY_WORLD, get_profile
from ffr_lib.training.config import RunConfig
from ffr_lib.training.modes import compose, corrupted

TINY = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=1, width=8, mode="ffr", fingerprint=0.3, fidelity=0.75)


def test_default_corruption_leaves_dict_and_hash_unchanged():
    d = RunConfig().to_dict()
    assert "corruption" not in d
    # the hash of the default config before the field existed (commit 588d72c)
    assert RunConfig().hash == "9b403080e69b"
    assert RunConfig.from_dict(d) == RunConfig()
    assert "corruption" in replace(TINY, corruption=5).to_dict()


def test_corruption_is_part_of_a_synthetic_run_only():
    none = replace(TINY, mode="none")
    assert replace(none, corruption=5).hash == none.hash  # no synthetic image to corrupt
    assert replace(TINY, corruption=5).hash != TINY.hash
    assert replace(TINY, corruption=5).canonical().corruption == 5
    with pytest.raises(ValueError, match="corruption"):
        RunConfig(corruption=6)


def test_synthetic_stage_is_corrupted_image_by_image():
    clean, dirty = compose(replace(TINY, order="1")), compose(replace(TINY, order="1", corruption=3))
    a, b = clean.stages[0], dirty.stages[0]
    assert (a.y == b.y).all() and (a.b == b.b).all() and (b.g == 1).all()
    i = 7
    want = corrupt(a.images[i].permute(1, 2, 0).numpy().copy(), 3, np.random.SeedSequence([TINY.seed, i, 0xC0]))
    assert np.array_equal(b.images[i].permute(1, 2, 0).numpy(), want)
    assert not np.array_equal(a.images[i].numpy(), b.images[i].numpy())
    # the real test set is never corrupted; the synthetic test set is (it comes from the same source)
    assert (clean.test.images == dirty.test.images).all()
    assert not (clean.test_synthetic.images == dirty.test_synthetic.images).all()


def test_corrupted_severity_zero_is_identity():
    data = compose(replace(TINY, order="1")).stages[0]
    assert corrupted(data, 0, seed=0) is data


def test_ablation_profiles_cover_every_table():
    configs = get_profile("quick-ablations").configs()
    modes = {(c.mode, c.order, c.recipe, c.corruption, c.model) for c in configs}
    for needed in [("ffr", "2-1", "balanced", 0, "resnet-small"), ("ffr", "1-2", "biased", 0, "resnet-small"),
                   ("ffr", "1-2", "agnostic", 0, "resnet-small"), ("usb", "1-2", "balanced", 5, "resnet-small"),
                   ("ffr", "1-2", "scaled", 0, "resnet-small")]:
        assert needed in modes, needed
    assert {c.model for c in configs} == {"resnet-small"}  # the CPU profile leaves ECCV table 8's ViT to paper-ablations
    assert ("ffr", "1-2", "balanced", 0, "vit-small") in {(c.mode, c.order, c.recipe, c.corruption, c.model)
                                                          for c in get_profile("paper-ablations").configs()}
    knobs = {(c.fingerprint, c.fidelity) for c in configs if c.mode == "asb" and c.recipe == "balanced"
             and c.corruption == 0}
    assert knobs == {(fp, fid) for fp in (0.0, 0.3) for fid in (0.0, 0.75)}
    assert {c.seed for c in configs} == {0}
    paper = get_profile("paper-ablations").configs()
    assert {c.seed for c in paper} == {0, 1, 2, 3, 4} and max(c.scale for c in paper) == 6.0
    assert {c.dataset for c in paper if c.order == "2-1"} == {"shapes-animals"}
    kinds = {(c.mode, c.order, c.recipe, c.corruption, c.model) for c in paper}
    for needed in [("ffr", "2-1", "balanced", 0, "resnet-small"), ("ffr", "1-2", "biased", 0, "resnet-small"),
                   ("ffr", "1-2", "agnostic", 0, "resnet-small"), ("usb", "1-2", "balanced", 5, "resnet-small"),
                   ("ffr", "1-2", "scaled", 0, "resnet-small"), ("ffr", "1-2", "balanced", 0, "vit-small")]:
        assert needed in kinds, needed
    shared = {c.hash for c in get_profile("paper").configs()}
    assert {c.hash for c in paper if c.order == "2-1" or c.recipe in ("biased", "agnostic")} <= shared
