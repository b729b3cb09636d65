"""Theorem 1 on count tables: hand-worked values, the closed form, and property tests."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ffr_lib import theory as T
from ffr_lib.generation.recipes import Recipe


def test_independent_table_has_zero_dependence():
    # P(Y) = (1/3, 2/3) in every (b, g) cell
    table = np.stack([np.outer([1, 2], [3, 5]), np.outer([1, 2], [4, 0])], axis=2)
    d = T.dependence(table)
    assert max(abs(v) for v in (d.tv_bg, d.mi_bg, d.tv_b, d.mi_b)) < 1e-12
    assert T.augmentation_floor(table[..., 0]).radius == pytest.approx(0.0, abs=1e-9)
    value, syn = T.exhaustive_optimum(table[..., 0], 2)
    assert value == pytest.approx(0.0, abs=1e-12) and not syn.any()  # no augmentation needed


def test_biased_2x2_by_hand():
    real = np.array([[6, 1], [2, 3]])  # rows y, columns b
    # P(Y=0 | b0) = 6/8 = 3/4, P(Y=0 | b1) = 1/4, P(Y=0) = 7/12
    # TV(b0) = |3/4 - 7/12| = 1/6, TV(b1) = |1/4 - 7/12| = 1/3  ->  worst cell 1/3
    assert T.max_tv(T.as_table(real)) == pytest.approx(1 / 3)
    # I(Y; B) = sum p(y,b) ln(p(y,b) / (p(y) p(b))), p(b) = (8/12, 4/12), p(y) = (7/12, 5/12):
    #   1/2 ln(9/7) + 1/12 ln(3/7) + 1/6 ln(3/5) + 1/4 ln(9/5) = 0.116858 nats
    mi = 0.5 * math.log(9 / 7) + math.log(3 / 7) / 12 + math.log(3 / 5) / 6 + 0.25 * math.log(9 / 5)
    assert T.mutual_information(T.as_table(real)) == pytest.approx(mi)
    assert mi == pytest.approx(0.116858, abs=1e-6)
    # closed form: (3/4 - 1/4) / 2 = 1/4 at q = (1/2, 1/2)
    floor = T.augmentation_floor(real)
    assert floor.radius == pytest.approx(0.25) and floor.q == pytest.approx((0.5, 0.5))
    assert T.two_class_floor(real) == pytest.approx(0.25)
    # reaching it needs P(Y) = 1/2, i.e. s1 = s0 + 2, with every synthetic cell's P(Y=0) in
    # [1/4, 3/4]: synthetic [[1, 1], [2, 2]] (cells at 1/3) does it; with at most 1 per cell the
    # only way to P(Y) = 1/2 is s = [[0, 0], [1, 1]], whose cells are pure class 1 (TV 1/2).
    v2, syn2 = T.exhaustive_optimum(real, 2)
    assert v2 == pytest.approx(0.25)
    assert T.max_tv(T.as_table(real, syn2)) == pytest.approx(0.25)
    v1, _ = T.exhaustive_optimum(real, 1)
    assert v1 > 0.25 + 1e-9


def test_usb_removes_dependence_on_b_but_not_on_b_and_g():
    real = np.array([[9, 1], [1, 9]])
    (table,) = T.mode_tables(real, "USB").values()
    assert table[..., 1].tolist() == [[0, 8], [8, 0]]
    d = T.dependence(table)
    assert d.tv_b == pytest.approx(0.0) and d.mi_b == pytest.approx(0.0, abs=1e-12)
    # real b0 cell (9, 1): |9/10 - 1/2| = 0.4; synthetic b0 cell (0, 8): |0 - 1/2| = 0.5
    assert d.tv_bg == pytest.approx(0.5)
    assert d.mi_bg > 0.1


def test_exhaustive_converges_to_closed_form():
    real = np.array([[18, 2], [1, 1]])
    # a_b0 = 18/19, a_b1 = 2/3: rho* = (18/19 - 2/3) / 2 = 8/57 at q0 = 46/57. P(Y=0) = 46/57
    # needs 57 (20 + s0) = 46 (22 + s0 + s1), i.e. 11 s0 + 128 = 46 s1: smallest s0 = 26, s1 = 9,
    # e.g. 13 class-0 samples per synthetic cell: reached at max_count = 13, not at 12.
    rho = 8 / 57
    assert T.augmentation_floor(real).radius == pytest.approx(rho)
    values = [T.exhaustive_optimum(real, k)[0] for k in (0, 2, 4, 8, 12, 13)]
    assert all(a >= b - 1e-12 for a, b in zip(values, values[1:]))  # non-increasing in the budget
    assert all(v > rho + 1e-9 for v in values[:-1])
    assert values[-1] == pytest.approx(rho)


def test_mi_infimum_is_zero_but_tv_keeps_its_floor():
    real = np.array([[18, 2], [1, 1]])
    mis, tvs = [], []
    for scale in (1, 10, 100, 1000):
        d = T.dependence(T.as_table(real, np.full((2, 2), 10 * scale)))
        mis.append(d.mi_bg)
        tvs.append(d.tv_bg)
    assert all(a > b > 0 for a, b in zip(mis, mis[1:])) and mis[-1] < 1e-3
    assert min(tvs) >= 8 / 57


def test_three_classes_need_the_lp():
    real = np.eye(3, dtype=np.int64) * 5  # each b holds one class: TV diameter 1, radius 2/3
    floor = T.augmentation_floor(real)
    assert floor.radius == pytest.approx(2 / 3)
    assert floor.q == pytest.approx((1 / 3,) * 3)


def test_families_and_by_family_measures():
    support = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=bool)
    fams = T.families(support)
    assert [(ys.tolist(), bs.tolist()) for ys, bs in fams] == [([0, 1], [0, 1]), ([2, 3], [2, 3])]
    real = np.where(support, 5, 0)  # balanced within each family
    table = T.as_table(real)
    assert T.dependence(table).tv_b == pytest.approx(0.5)  # B decides the family
    assert T.dependence(table, by_family=True).tv_b == pytest.approx(0.0)
    assert T.augmentation_floor(real, by_family=True).radius == pytest.approx(0.0, abs=1e-9)


def test_mode_tables_stages():
    real = np.array([[9, 1], [1, 9]])
    assert list(T.mode_tables(real, "None")) == ["train"]
    ffr = T.mode_tables(real, "FFR")
    assert ffr["stage 1"][..., 0].sum() == 0 and ffr["stage 1"][..., 1].tolist() == [[4, 4], [4, 4]]
    assert ffr["stage 2"][..., 1].sum() == 0 and ffr["stage 2"][..., 0].tolist() == real.tolist()
    asb = T.mode_tables(real, "ASB", Recipe("balanced"))["train"]
    assert asb[..., 1].tolist() == [[4, 4], [4, 4]]
    with pytest.raises(ValueError, match="unknown mode 'GAN'"):
        T.mode_tables(real, "GAN")


def test_world_dependence_binary_at_90():
    df = T.world_dependence(layouts=("binary",), ratios=(0.9,))
    assert len(df) == 5
    row = df.set_index(["mode", "stage"])
    # minority = ceil(5000 * 0.1 / 0.9) = 556; P(Y=0 | lake) = 5000 / 5556, P(Y) = (1/2, 1/2)
    assert row.loc[("None", "train"), "tv_bg"] == pytest.approx(5000 / 5556 - 0.5)
    assert row.loc[("None", "train"), "floor"] == pytest.approx(5000 / 5556 - 0.5)
    assert row.loc[("USB", "train"), "tv_b"] == pytest.approx(0.0)
    assert row.loc[("USB", "train"), "tv_bg"] == pytest.approx(0.5)
    assert row.loc[("FFR", "stage 1"), ["tv_bg", "mi_bg"]].tolist() == pytest.approx([0.0, 0.0], abs=1e-12)
    assert row.loc[("FFR", "stage 2"), "n_synthetic"] == 0


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="empty"):
        T.max_tv(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="limit"):
        T.exhaustive_optimum(np.ones((3, 3), dtype=int), 10)
    with pytest.raises(ValueError, match="do not match"):
        T.as_table(np.ones((2, 2)), np.ones((2, 3)))


biased_tables = arrays(np.int64, st.sampled_from([(2, 2), (2, 3), (3, 2)]), elements=st.integers(0, 6))


def _is_biased(real: np.ndarray) -> bool:
    cols = real[:, real.sum(axis=0) > 0]
    cond = cols / cols.sum(axis=0)
    return bool(np.abs(cond - cond[:, :1]).max() > 0)


@settings(max_examples=40, deadline=None)
@given(biased_tables)
def test_no_augmentation_reaches_zero_and_none_beats_the_floor(real):
    assume(real.sum() > 0 and _is_biased(real))
    floor = T.augmentation_floor(real).radius
    assert floor > 0
    tv, syn = T.exhaustive_optimum(real, 3)
    assert tv >= floor - 1e-9  # the exhaustive optimum never beats the closed form
    assert T.max_tv(T.as_table(real, syn)) == pytest.approx(tv)
    mi, _ = T.exhaustive_optimum(real, 3, measure="mi")
    assert mi > 0


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, (2, 3), elements=st.integers(0, 9)))
def test_lp_matches_two_class_closed_form(real):
    assume((real.sum(axis=0) > 0).any())
    assert T.augmentation_floor(real).radius == pytest.approx(T.two_class_floor(real), abs=1e-9)
