"""The claims rule (ffr_lib.claims.RULE) on hand-worked pairs, and the engine on hand-made stores.

Pairs are given in points (what `decide` receives): columns cell, seed, a, b.
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ffr_lib import claims as C
from ffr_lib.results import ResultStore, bootstrap_ci, records_frame
from ffr_lib.sweeps.profiles import SD_LIKE, TINY_WORLD, get_profile
from ffr_lib.sweeps.selection import select
from ffr_lib.tables import mode_arms, paired_cells, prepare
from ffr_lib.training.config import RunConfig


def pairs(cells: dict[str, list[tuple[float, float]]]) -> pd.DataFrame:
    """cell -> [(a, b) per seed] as decide()'s input."""
    rows = [{"cell": cell, "seed": s, "a": a, "b": b} for cell, ab in cells.items() for s, (a, b) in enumerate(ab)]
    return pd.DataFrame(rows)


def diffs(cells: dict[str, list[float]]) -> pd.DataFrame:
    """cell -> per-seed differences (b = 0)."""
    return pairs({c: [(d, 0.0) for d in ds] for c, ds in cells.items()})


# -- the rule ----------------------------------------------------------------------------------
def test_three_positive_seeds_in_one_cell_are_inconclusive():
    ev = C.decide(diffs({"c": [1.0, 2.0, 3.0]}))
    # the percentile interval alone would call it supported: its 2.5 % quantile is the smallest seed
    # (all three resampled to 1.0 has probability 1/27 = 3.7 % > 2.5 %), the sign test at p = 1/8
    assert ev.ci_lo == 1.0 and ev.ci_hi <= 3.0
    assert ev.verdict == C.INCONCLUSIVE and ev.note == "3 paired differences (< 6)"
    assert ev.effect == 2.0 and ev.cells == 1 and ev.seeds == 3 and ev.holds == 1


def test_clearly_positive_over_cells_is_supported():
    ev = C.decide(diffs({"x": [8.0, 10.0, 12.0], "y": [9.0, 10.0, 11.0], "z": [10.0, 10.0, 10.0]}))
    assert ev.verdict == C.SUPPORTED and ev.note == ""
    assert ev.effect == 10.0 and ev.cells == 3 and ev.seeds == 3 and ev.holds == 3
    # a resample's effect is a mean of cell means, each within its cell's range: in [9, 11]
    assert 9.0 <= ev.ci_lo < 10.0 < ev.ci_hi <= 11.0
    assert ev.p_improve == 1.0


def test_six_pairs_is_enough():
    ev = C.decide(diffs({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]}))
    assert ev.verdict == C.SUPPORTED and ev.ci_lo >= 1.0


def test_clearly_negative_is_not_supported():
    ev = C.decide(diffs({"x": [-8.0, -10.0, -12.0], "y": [-9.0, -10.0, -11.0], "z": [-10.0, -10.0, -10.0]}))
    assert ev.verdict == C.NOT_SUPPORTED and "reversed" in ev.note
    assert ev.effect == -10.0 and ev.holds == 0 and ev.p_improve == 0.0
    assert -11.0 <= ev.ci_lo < -10.0 < ev.ci_hi <= -9.0


def test_ties_are_inconclusive_and_count_one_half():
    ev = C.decide(pairs({"x": [(0.5, 0.5)] * 3, "y": [(0.7, 0.7)] * 3}))
    assert ev.effect == 0.0 and ev.ci_lo == 0.0 and ev.ci_hi == 0.0
    assert ev.verdict == C.INCONCLUSIVE and ev.note == "the interval contains 0"
    assert ev.p_improve == 0.5 and ev.holds == 0


def test_no_runs_and_thin_cells_are_inconclusive():
    none = C.decide(pd.DataFrame(columns=["cell", "seed", "a", "b"]))
    assert none.verdict == C.INCONCLUSIVE and none.note == "no runs" and none.cells == 0
    assert np.isnan(none.effect) and np.isnan(none.ci_lo)
    one = C.decide(diffs({c: [5.0] for c in "abcdefg"}))  # 7 cells, one seed each: no spread
    assert one.verdict == C.INCONCLUSIVE and one.note == "1 paired seed(s) in a cell (< 3)"
    assert one.effect == 5.0 and np.isnan(one.ci_lo) and one.holds == 7
    two = C.decide(diffs({"x": [5.0, 6.0, 7.0], "y": [5.0, 6.0, 7.0], "z": [5.0, 6.0]}))
    assert two.verdict == C.INCONCLUSIVE and two.note == "2 paired seed(s) in a cell (< 3)" and two.seeds == 2


def test_probability_of_improvement_by_hand():
    # cell x: a = (50, 60, 70) against b = (60, 60, 40): 50 beats 40 (1); 60 ties 60 twice and beats
    # 40 (0.5 + 0.5 + 1); 70 beats all (3): 6 of 9 = 2/3. Cell y: 1 against 0: 1. Mean: 5/6.
    x = (np.array([50.0, 60.0, 70.0]), np.array([60.0, 60.0, 40.0]))
    assert C.probability_of_improvement([x]) == pytest.approx(2 / 3)
    assert C.probability_of_improvement([x, (np.array([1.0]), np.array([0.0]))]) == pytest.approx(5 / 6)
    ev = C.decide(pairs({"x": list(zip(*x)), "y": [(1.0, 0.0), (1.0, 0.0), (1.0, 0.0)]}))
    assert ev.p_improve == pytest.approx(5 / 6)


def test_cells_where_the_direction_holds():
    ev = C.decide(diffs({"a": [1.0, 1.0, 1.0], "b": [-1.0, -2.0, 0.0], "c": [1.0, -1.0, 0.0], "d": [2.0, 2.0, 3.0]}))
    assert ev.holds == 2 and ev.cells == 4  # a and d; b is below, c is level


def test_the_bootstrap_never_mixes_seeds_across_cells():
    cells = {"x": [1.0, 1.0, 1.0], "y": [-1.0, -1.0, -1.0]}
    ev = C.decide(diffs(cells))
    # within each cell every resample is the cell's own value, so every effect is (1 - 1) / 2 = 0
    assert (ev.ci_lo, ev.ci_hi) == (0.0, 0.0) and ev.verdict == C.INCONCLUSIVE
    lo, hi = bootstrap_ci([1.0, 1.0, 1.0, -1.0, -1.0, -1.0], n_boot=C.N_BOOT)  # pooled: seeds mixed
    assert lo < -0.3 and hi > 0.3
    boot = C.stratified_bootstrap([np.array([5.0, 5.0]), np.array([0.0, 6.0])], n_boot=2000)
    assert set(np.unique(boot)) <= {2.5, 4.0, 5.5}  # (5 + {0, 3, 6}) / 2 only


def test_combine_and_rule_text():
    assert C.combine([C.SUPPORTED, C.SUPPORTED]) == C.SUPPORTED
    assert C.combine([C.SUPPORTED, C.INCONCLUSIVE]) == C.INCONCLUSIVE
    assert C.combine([C.SUPPORTED, C.NOT_SUPPORTED, C.INCONCLUSIVE]) == C.NOT_SUPPORTED
    assert C.combine([]) == C.INCONCLUSIVE
    for phrase in ("within that cell, never across", "fewer than 3 paired seeds", "fewer than 6 paired",
                   "p = 1/8", "ties counting 1/2"):
        assert phrase in C.RULE


# -- the engine on hand-made records ---------------------------------------------------------
BASE = RunConfig(data=TINY_WORLD, epochs=1, width=8, pre_lr=1e-3, **SD_LIKE)
WA = {"none": 0.20, "usb": 0.30, "asb": 0.40, "ffr": 0.60}
M = mode_arms("erm")


def record(config: RunConfig, wa: float) -> dict:
    c = config.canonical()
    metrics = {"wa": wa, "ba": wa, "avg": wa, "wca": wa, "acc": wa, "groups": {}}
    return {"hash": c.hash, "config": c.to_dict(), "status": "ok", "test": metrics, "val": metrics,
            "test_synthetic": metrics}


@pytest.fixture
def selected() -> pd.DataFrame:
    """WA = mode's base + 0.01 * seed, FFR + 0.10 more at 0.99; ratios 0.95, 0.99; seeds 0-2."""
    recs = [record(replace(BASE, mode=m, ratio=r, seed=s), wa + 0.01 * s + (0.10 if m == "ffr" and r == 0.99 else 0))
            for m, wa in WA.items() for r in (0.95, 0.99) for s in (0, 1, 2)]
    return prepare(select(records_frame(recs), "val_worst_group"))


def test_paired_cells_pairs_by_dataset_ratio_and_seed(selected):
    from ffr_lib.tables import arm_rows

    p = paired_cells(arm_rows(selected, M["FFR"]), arm_rows(selected, M["USB"]))
    assert len(p) == 6 and p["ratio"].tolist() == [0.95] * 3 + [0.99] * 3
    assert np.allclose(p["a"] - p["b"], [0.3] * 3 + [0.4] * 3) and all(len(h) == 2 for h in p["hashes"])
    assert paired_cells(arm_rows(selected, M["FFR"]), arm_rows(selected, mode_arms("dfr")["None"])).empty


def test_judge_one_cell_of_three_seeds_is_inconclusive(selected):
    one = C.Claim("1", "FFR beats USB at high bias", (C.Comparison("FFR > USB", M["FFR"], M["USB"]),),
                  where={"ratio": (0.99, 0.999)})
    row = C.judge(selected, [one]).iloc[0]
    assert row["cells"] == 1 and row["seeds"] == 3 and row["effect"] == pytest.approx(40.0)
    assert row["verdict"] == C.INCONCLUSIVE and row["note"] == "3 paired differences (< 6)"


def test_judge_over_two_cells_and_a_missing_arm(selected):
    claim = C.Claim("x", "FFR beats USB and lifts DFR", (
        C.Comparison("FFR > USB", M["FFR"], M["USB"], paper=C.PaperRef("ECCV table 1", "eccv_table1",
                                                                       {"row": "1 then 2 (FFR)"}, {"row": "2 then 1"})),
        C.Comparison("FFR+DFR > None+DFR", mode_arms("dfr")["FFR"], mode_arms("dfr")["None"]),
    ))
    table = C.judge(selected, [claim], store="hand")
    assert list(table.columns) == C.COLUMNS and table["store"].tolist() == ["hand", "hand"]
    first, second = table.iloc[0], table.iloc[1]
    # seeds' differences are 30 at 0.95 and 40 at 0.99 in every seed: no spread within a cell
    assert (first["effect"], first["ci_lo"], first["ci_hi"]) == pytest.approx((35.0, 35.0, 35.0))
    assert first["verdict"] == C.SUPPORTED and first["cells_direction_holds"] == 2
    assert first["paper_value"] == pytest.approx(72.6 - 59.6) and first["paper_ref"] == "ECCV table 1"
    assert second["verdict"] == C.INCONCLUSIVE and second["note"] == "no runs" and second["cells"] == 0
    assert set(table["claim_verdict"]) == {C.INCONCLUSIVE}
    assert C.judge(selected, [claim], keep_empty=False).shape[0] == 2  # one comparison has runs: kept
    text = C.report(table)
    assert "Claim x (hand)" in text and "no runs" in text and "+35.0 WA points" in text


def test_a_reversed_comparison_makes_the_claim_not_supported(selected):
    claim = C.Claim("r", "USB beats FFR", (C.Comparison("USB > FFR", M["USB"], M["FFR"]),
                                           C.Comparison("ASB > None", M["ASB"], M["None"])))
    table = C.judge(selected, [claim])
    assert table["verdict"].tolist() == [C.NOT_SUPPORTED, C.SUPPORTED]
    assert set(table["claim_verdict"]) == {C.NOT_SUPPORTED}


def test_scope_keeps_the_cells_where_its_arm_ran(selected):
    only_99 = selected[~((selected["mode"] == "asb") & (selected["ratio"] == 0.95))]
    claim = C.Claim("s", "scoped", (C.Comparison("FFR > USB", M["FFR"], M["USB"]),), scope=M["ASB"])
    row = C.judge(only_99, [claim]).iloc[0]
    assert row["cells"] == 1 and row["effect"] == pytest.approx(40.0)


def test_paper_ref_values_come_from_paper_numbers():
    assert C.PaperRef("x", "iclr_table1", {"method": "erm", "mode": "ffr"},
                      {"method": "erm", "mode": "usb"}).value() == pytest.approx((42.9 + 77.1 + 74.9 - 33.0 - 51.3 - 54.7) / 3)
    assert C.PaperRef("x", "eccv_figure4_quotes", {"row": "FFR lifts DFR WA by (points)"}).value() == 4.0
    assert np.isnan(C.PaperRef("no number").value())
    with pytest.raises(KeyError, match="no row matching"):
        C.PaperRef("x", "eccv_table1", {"row": "3 then 1"}).value()


def test_judge_stores_reads_every_store_probe_and_theorem(tmp_path):
    configs = get_profile("smoke").configs()
    store = ResultStore(tmp_path / "results" / "smoke")
    for c in configs:
        store.write(record(c, WA[c.mode]))
    (tmp_path / "results" / "not-a-profile" / "runs").mkdir(parents=True)
    probe = tmp_path / "probe.csv"
    pd.DataFrame({"mode": ["usb"] * 3 + ["ffr"] * 3, "seed": [0, 1, 2] * 2,
                  "probe": [1.0, 0.9, 0.95, 0.7, 0.6, 0.65]}).to_csv(probe, index=False)
    claims = [
        C.Claim("1", "runs", (C.Comparison("FFR > USB", M["FFR"], M["USB"]),)),
        C.Claim("5", "probe", (C.Comparison("USB > FFR", {"mode": "usb"}, {"mode": "ffr"}, "probe"),),
                evidence="probe", unit="probe accuracy points"),
        C.Claim("6", "nowhere", (C.Comparison("FFR+DFR > None+DFR", mode_arms("dfr")["FFR"], mode_arms("dfr")["None"]),)),
        C.Claim("8", "theorem", (C.Comparison("check"),), evidence="theory", unit="worst-cell TV",
                check=lambda: {"check": C.Evidence(C.SUPPORTED, 0.25, cells=4, holds=4)}),
    ]
    table, meta = C.judge_stores(claims, tmp_path / "results", {"saliency": probe, "absent": tmp_path / "none.csv"})
    assert table["claim"].tolist() == ["1", "5", "6", "8"]
    assert table["store"].tolist() == ["smoke", "saliency", C.NO_STORE, C.THEORY_STORE]
    runs, prb, nowhere, theorem = (table.iloc[i] for i in range(4))
    assert runs["effect"] == pytest.approx(30.0) and runs["note"] == "1 paired seed(s) in a cell (< 3)"
    assert prb["effect"] == pytest.approx(30.0) and prb["seeds"] == 3 and prb["note"] == "3 paired differences (< 6)"
    assert nowhere["note"] == "no runs in any store" and nowhere["verdict"] == C.INCONCLUSIVE
    assert theorem["verdict"] == C.SUPPORTED and pd.isna(theorem["seeds"]) and theorem["cells_direction_holds"] == 4
    assert set(meta) == {"smoke", "saliency"} and meta["smoke"]["seeds"] == [0]
    assert len(meta["smoke"]["hashes"]) == 2  # FFR's and USB's runs, the only ones read
    assert C.store_profiles(tmp_path / "results") == ["smoke"]
    (tmp_path / "results" / "paper-pilot-cpu" / "packs").mkdir(parents=True)  # a pilot chooses grids: never judged
    assert C.store_profiles(tmp_path / "results") == ["smoke"]


def test_an_incomplete_store_is_not_judged_but_counted(tmp_path):
    configs = get_profile("smoke").configs()
    store = ResultStore(tmp_path / "results" / "smoke")
    for c in configs[:-1]:  # one run of the grid still missing
        store.write(record(c, WA[c.mode]))
    claims = [C.Claim("1", "runs", (C.Comparison("FFR > USB", M["FFR"], M["USB"]),))]
    table, meta = C.judge_stores(claims, tmp_path / "results")
    assert table["store"].tolist() == [C.NO_STORE]  # nothing judged: the store is in progress
    assert meta == {"smoke": {"in_progress": True, "recorded": len(configs) - 1, "runs": len(configs)}}
    store.write(record(configs[-1], WA[configs[-1].mode]))
    table, meta = C.judge_stores(claims, tmp_path / "results")
    assert table["store"].tolist() == ["smoke"] and "in_progress" not in meta["smoke"]


def test_claim_views_judge_the_composite_store_per_backbone_on_its_own_knobs():
    """The arms are written on the world's base (small ResNet, SD-like knobs); the composite
    profile's learned sets carry no knobs, and its two backbones are judged apart."""
    from ffr_lib.claims import claim_views

    assert claim_views("paper") == [("paper", {})]
    views = dict(claim_views("composite"))
    assert list(views) == ["composite [efficientnet-lite0]", "composite [resnet-small]"]
    for label, fixed in views.items():
        assert fixed == {"model": label.split("[")[1].rstrip("]"), "corruption": 0, "recipe": "balanced",
                         "scale": 1.0, "fingerprint": 0.0, "fidelity": 0.0}
    # the smoke's stand-in runs at BASE's SD-like knobs (None's are normalised to 0): BASE's stand
    smoke = dict(claim_views("composite-smoke"))["composite-smoke [resnet-small]"]
    assert smoke == {"model": "resnet-small", "corruption": 0, "recipe": "balanced", "scale": 1.0}


def test_a_notebook_names_a_backbone_the_store_lacks():
    from ffr_lib.claims import store_view

    assert store_view("paper") == {} and store_view("composite", "resnet-small")["model"] == "resnet-small"
    with pytest.raises(ValueError, match=r"^backbone: composite holds efficientnet-lite0, resnet-small; got 'vit'$"):
        store_view("composite", "vit")
    with pytest.raises(ValueError, match=r"^backbone: composite holds efficientnet-lite0, resnet-small; got ''$"):
        store_view("composite")
    with pytest.raises(ValueError, match=r"^backbone: paper is judged on one backbone; leave backbone empty$"):
        store_view("paper", "resnet-small")
