"""Recipes: exact per-group synthetic counts, worked by hand, and the report made before generation."""

from __future__ import annotations

import numpy as np
import pytest

from ffr_lib.generation.recipes import Recipe, recipe_counts_table, synthetic_counts, usb_counts

# CelebA-HQ at 99.9 % (OFFICIAL_CODE.md): rows not smiling / smiling, columns female / male
CELEBA_999 = np.array([[6, 5335], [7797, 8]])


def test_celeba_999_usb_and_balanced():
    usb = usb_counts(CELEBA_999)
    assert usb.tolist() == [[7791, 2462], [0, 7789]]  # each group topped up to 7797
    assert usb.sum() == 18042  # what the authors' USB adds
    assert synthetic_counts(CELEBA_999, Recipe("usb")).tolist() == usb.tolist()
    assert synthetic_counts(CELEBA_999, Recipe("balanced")).tolist() == [[4510, 4510], [4510, 4510]]  # 18042 // 4


def test_balanced_with_a_total():
    assert synthetic_counts(CELEBA_999, Recipe("balanced", total=1003)).tolist() == [[250, 250], [250, 250]]


def test_biased_follows_the_real_proportions():
    # share * 18042 floored: 6/13146*18042 = 8.2, 5335/13146*18042 = 7321.9, 7797/.. = 10700.8, 8/.. = 10.98
    assert synthetic_counts(CELEBA_999, Recipe("biased")).tolist() == [[8, 7321], [10700, 10]]
    # a group too small for one image still gets one
    assert synthetic_counts(np.array([[1, 9999], [9999, 1]]), Recipe("biased", total=100)).tolist() == [[1, 49], [49, 1]]


def test_scaled_is_a_multiple_of_the_real_set():
    n = int(CELEBA_999.sum())  # 13146
    for k in (1, 2, 6):
        counts = synthetic_counts(CELEBA_999, Recipe("scaled", scale=k))
        assert counts.tolist() == [[k * n // 4] * 2] * 2
    assert synthetic_counts(CELEBA_999, Recipe("scaled", scale=2)).tolist() == [[6573, 6573], [6573, 6573]]


def test_agnostic_fixes_images_per_class():
    counts = synthetic_counts(CELEBA_999, Recipe("agnostic"))
    assert counts.sum(axis=1).tolist() == [9020, 9020]  # the balanced total, per class


def test_animals_layout_keeps_its_support():
    real = np.array([[5000, 51, 0, 0], [51, 5000, 0, 0], [0, 0, 5000, 51], [0, 0, 51, 5000]])
    usb = usb_counts(real)
    assert usb.sum() == 4 * 4949
    bal = synthetic_counts(real, Recipe("balanced"))
    assert (bal[real == 0] == 0).all() and (bal[real > 0] == 4 * 4949 // 8).all()
    agn = synthetic_counts(real, Recipe("agnostic"))
    assert (agn[real == 0] == 0).all() and agn.sum(axis=1).tolist() == [4948] * 4


def test_counts_table_before_generation():
    table = recipe_counts_table(CELEBA_999, Recipe("balanced"), ("not smiling", "smiling"), ("female", "male"))
    assert list(table.columns) == ["y", "class", "b", "bias", "real", "synthetic", "total"]
    assert table["synthetic"].tolist() == [4510] * 4
    assert table["real"].tolist() == [6, 5335, 7797, 8]
    assert table["total"].tolist() == [4516, 9845, 12307, 4518]
    assert table.loc[table["bias"] == "male", "class"].tolist() == ["not smiling", "smiling"]
    agn = recipe_counts_table(CELEBA_999, Recipe("agnostic"))
    assert agn["bias"].tolist() == ["(any)", "(any)"] and agn["real"].tolist() == [5341, 7805]
    assert agn["synthetic"].tolist() == [9020, 9020]


def test_bad_recipes_are_refused():
    with pytest.raises(ValueError, match="unknown recipe 'even'.*balanced"):
        Recipe("even")
    with pytest.raises(ValueError, match="scale"):
        Recipe("scaled", scale=0)
    with pytest.raises(ValueError, match="total"):
        Recipe("balanced", total=-1)
    with pytest.raises(ValueError, match="all 0"):
        synthetic_counts(np.zeros((2, 2), dtype=int), Recipe("biased", total=10))
