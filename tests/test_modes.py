"""Modes compose exactly the training sets they should: counts by (y, b, g), against the
authors' CelebA-HQ 99.9 % numbers (count-only) and on a tiny embedded world."""

from dataclasses import replace

import numpy as np
import pytest

from ffr_lib.sweeps.profiles import TINY_WORLD
from ffr_lib.training.config import RunConfig
from ffr_lib.training.modes import compose, synthetic_counts_for

TINY = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=1, width=8)


def counts_by_source(data) -> dict[str, int]:
    df = data.counts(by_source=True)
    return {f"y{r.y}b{r.b}g{r.g}": int(r.count) for r in df.itertuples()}


# -- count-only: OFFICIAL_CODE.md, CelebA-HQ at 99.9 % ------------------------------------
CELEBA_999 = np.array([[6, 5335], [7797, 8]])  # train groups in (y, b) order


def test_celeba_999_usb_adds_18042():
    sup = CELEBA_999 > 0
    usb = synthetic_counts_for(RunConfig(mode="usb"), CELEBA_999, sup, "usb")
    assert usb.sum() == 18_042
    assert (CELEBA_999 + usb == 7797).all()  # every group topped up to the largest


@pytest.mark.parametrize("mode,stage", [("asb", "asb"), ("ffr", "synthetic")])
def test_celeba_999_asb_ffr_use_4510_per_group(mode, stage):
    sup = CELEBA_999 > 0
    counts = synthetic_counts_for(RunConfig(mode=mode), CELEBA_999, sup, stage)
    assert (counts == 4_510).all()


# -- the tiny world: real [[200, 11], [11, 200]] at 0.95 (ceil(200 * 0.05 / 0.95) = 11) --------
def test_none_trains_on_the_biased_real_split():
    data = compose(replace(TINY, mode="none"))
    assert len(data.stages) == 1
    assert counts_by_source(data.stages[0]) == {"y0b0g0": 200, "y0b1g0": 11, "y1b0g0": 11, "y1b1g0": 200}
    assert data.val.count_array().tolist() == [[60, 10], [10, 60]]  # VAL_FLOOR = 10
    assert data.test_synthetic is None and not data.source_groups
    assert data.train_weights[(0, 1)] == pytest.approx(11 / 422)


def test_usb_tops_every_group_up_to_the_largest():
    data = compose(replace(TINY, mode="usb"))
    assert counts_by_source(data.stages[0]) == {
        "y0b0g0": 200, "y0b1g0": 11, "y0b1g1": 189, "y1b0g0": 11, "y1b0g1": 189, "y1b1g0": 200,
    }
    assert data.source_groups  # methods group by (y, b, g)


def test_asb_adds_a_balanced_set_of_usbs_total():
    data = compose(replace(TINY, mode="asb"))
    per_group = (2 * 189) // 4  # 94
    assert counts_by_source(data.stages[0]) == {
        "y0b0g0": 200, "y0b0g1": per_group, "y0b1g0": 11, "y0b1g1": per_group,
        "y1b0g0": 11, "y1b0g1": per_group, "y1b1g0": 200, "y1b1g1": per_group,
    }


def test_ffr_stage1_synthetic_only_then_stage2_real():
    data = compose(replace(TINY, mode="ffr"))
    assert [counts_by_source(s) for s in data.stages] == [
        {"y0b0g1": 94, "y0b1g1": 94, "y1b0g1": 94, "y1b1g1": 94},
        {"y0b0g0": 200, "y0b1g0": 11, "y1b0g0": 11, "y1b1g0": 200},
    ]
    assert not data.source_groups  # FFR groups are (y, b)
    assert data.test_synthetic.count_array().tolist() == [[20, 20], [20, 20]]


def test_animals_layout_only_its_8_groups():
    data = compose(replace(TINY, dataset="shapes-animals", mode="usb"))
    assert len(data.groups) == 8
    real = data.stages[0].subset(data.stages[0].g == 0).count_array()
    synthetic = data.stages[0].subset(data.stages[0].g == 1).count_array()
    assert real.tolist() == [[200, 11, 0, 0], [11, 200, 0, 0], [0, 0, 200, 11], [0, 0, 11, 200]]
    assert synthetic.tolist() == [[0, 189, 0, 0], [189, 0, 0, 0], [0, 0, 0, 189], [0, 0, 189, 0]]


def test_biased_pretraining_follows_the_real_ratio():
    data = compose(replace(TINY, mode="ffr", recipe="biased"))
    stage1 = data.stages[0].count_array()
    # same total as USB (378), in the real split's proportions 200:11
    assert stage1.tolist() == [[179, 9], [9, 179]]


# -- stage ablations are settings of the one mode ------------------------------------------
def test_stage_orders():
    assert replace(TINY, mode="ffr", order="1-2").stages == ("synthetic", "real")
    assert replace(TINY, mode="ffr", order="1").stages == ("synthetic",)
    assert replace(TINY, mode="ffr", order="2-1").stages == ("real", "synthetic")
    # stage 2 alone is training on the real split: the None run itself
    assert replace(TINY, mode="ffr", order="2").hash == replace(TINY, mode="none").hash


def test_prefixes_are_ordinary_runs():
    ffr = replace(TINY, mode="ffr", method="groupdro", lr=1e-5, pre_lr=1e-3, pre_epochs=3, freeze_bn=True)
    stage1 = ffr.prefix()
    assert stage1 == replace(TINY, mode="ffr", order="1", lr=1e-3, epochs=3).canonical()
    two_one = replace(TINY, mode="ffr", order="2-1", pre_lr=1e-3)
    assert two_one.prefix().hash == replace(TINY, mode="none", lr=1e-3).hash
    assert replace(TINY, mode="none").prefix() is None


def test_canonical_ignores_what_cannot_matter():
    none = replace(TINY, mode="none")
    assert replace(none, fingerprint=0.3, recipe="biased", freeze_bn=True, pre_lr=1.0).hash == none.hash
    assert replace(none, seed=1).hash != none.hash
    ffr = replace(TINY, mode="ffr")
    assert replace(ffr, fingerprint=0.3).hash != ffr.hash
    assert replace(ffr, pre_lr=None).hash == replace(ffr, pre_lr=ffr.lr).hash
    # loader options hash the same in any order
    assert RunConfig(data=(("b", 1), ("a", 2))).hash == RunConfig(data=(("a", 2), ("b", 1))).hash


def test_unknown_mode_is_an_error_listing_the_known():
    with pytest.raises(ValueError, match="none, usb, asb, ffr"):
        RunConfig(mode="mixup")
