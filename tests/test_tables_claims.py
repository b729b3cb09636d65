"""Arms, per-seed aggregation and the paper's numbers, on hand-made records (the claims rule:
tests/test_claims.py).

Fixture (by hand): shapes-binary, ratios 0.95 and 0.99, seeds 0, 1, 2, ERM, one lr each.
Test WA per seed = base + 0.01 * seed (+ 0.10 at ratio 0.99 for FFR only):
  None 0.20, USB 0.30, ASB 0.40, FFR 0.60, FFR stage 1 alone 0.50; test BA = WA + 0.3.
So FFR's WA averaged over the two ratios is 0.65 + 0.01 * seed (mean over seeds 0.66), and FFR
beats USB by 0.30 at 0.95 and 0.40 at 0.99 in every seed.
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ffr_lib.paper_numbers import iclr_table1_wide, load_numbers, paper_table
from ffr_lib.results import ResultStore, records_frame
from ffr_lib.sweeps.plan import closure
from ffr_lib.sweeps.profiles import SD_LIKE, TINY_WORLD, get_profile
from ffr_lib.sweeps.selection import select
from ffr_lib.tables import (
    STAGE1,
    MissingRecords,
    arm,
    arm_rows,
    import_records,
    in_arm,
    load_results,
    mode_arms,
    paired,
    percent,
    prepare,
    shared_runs,
    summarise,
)
from ffr_lib.training.config import RunConfig

BASE = RunConfig(data=TINY_WORLD, epochs=1, width=8, pre_lr=1e-3, **SD_LIKE)
WA = {("none", "1-2"): 0.20, ("usb", "1-2"): 0.30, ("asb", "1-2"): 0.40, ("ffr", "1-2"): 0.60, ("ffr", "1"): 0.50}


def record(config: RunConfig, wa: float, ba: float | None = None, val: float | None = None) -> dict:
    c = config.canonical()
    metrics = {"wa": wa, "ba": wa + 0.3 if ba is None else ba, "avg": wa, "wca": wa, "acc": wa, "groups": {}}
    return {"hash": c.hash, "config": c.to_dict(), "status": "ok", "test": metrics,
            "val": {**metrics, "wa": wa if val is None else val}, "test_synthetic": metrics}


def fixture_records() -> list[dict]:
    recs = []
    for (mode, order), wa in WA.items():
        for ratio in (0.95, 0.99):
            for seed in (0, 1, 2):
                c = replace(BASE, mode=mode, order=order, ratio=ratio, seed=seed)
                bump = 0.10 if (mode, order) == ("ffr", "1-2") and ratio == 0.99 else 0.0
                recs.append(record(c, wa + 0.01 * seed + bump))
    return recs


@pytest.fixture
def selected() -> pd.DataFrame:
    return prepare(select(records_frame(fixture_records()), "val_worst_group"))


def test_arm_membership_is_canonical():
    none = replace(BASE, mode="none").canonical()
    assert in_arm(none, {"mode": "none", "fingerprint": 0.3, "recipe": "balanced"})  # None ignores the generator
    assert in_arm(none, {"mode": "ffr", "order": "2"})  # stage 2 alone is None
    ffr = replace(BASE, mode="ffr").canonical()
    assert not in_arm(ffr, STAGE1) and in_arm(replace(ffr, order="1").canonical(), STAGE1)
    assert not in_arm(ffr, {"fingerprint": 0.0}) and in_arm(ffr, {"fingerprint": 0.3})
    assert in_arm(replace(ffr, corruption=5).canonical(), arm(mode_arms()["FFR"], corruption=None))
    assert not in_arm(replace(ffr, corruption=5).canonical(), mode_arms()["FFR"])


def test_summarise_averages_ratios_per_seed_then_seeds(selected):
    table = summarise(selected, mode_arms("erm", stage1=True))
    ffr = table.set_index("row").loc["FFR"]
    assert ffr["n"] == 3 and ffr["cells"] == 2 and ffr["ratios"] == "0.95 0.99"
    assert ffr["test_wa_mean"] == pytest.approx(0.66)
    assert ffr["test_wa_std"] == pytest.approx(0.01)
    assert ffr["test_ba_mean"] == pytest.approx(0.96)
    assert 0.65 - 1e-9 <= ffr["test_wa_ci_lo"] <= ffr["test_wa_ci_hi"] <= 0.67 + 1e-9
    assert table.set_index("row").loc["FFR stage 1 only", "test_wa_mean"] == pytest.approx(0.51)
    by = summarise(selected, {"FFR": mode_arms()["FFR"]}, by=("ratio",))
    assert by["test_wa_mean"].round(6).tolist() == [0.61, 0.71]
    missing = summarise(selected, {"GroupDRO FFR": mode_arms("groupdro")["FFR"]})
    assert missing["n"].tolist() == [0] and percent(missing)["WA %"].tolist() == ["not run"]


def test_percent_formats_mean_and_interval(selected):
    shown = percent(summarise(selected, {"None": mode_arms()["None"]}))
    assert shown["WA %"][0].startswith("21.0 [") and shown["BA %"][0].startswith("51.0 [")


def test_paired_differences_match_by_cell(selected):
    diffs = paired(selected, mode_arms()["FFR"], mode_arms()["USB"])
    assert diffs["seed"].tolist() == [0, 1, 2] and diffs["cells"].tolist() == [2, 2, 2]
    assert np.allclose(diffs["diff"], 0.35)  # (0.30 + 0.40) / 2 in every seed
    only_99 = paired(selected, mode_arms()["FFR"], mode_arms()["USB"], where={"ratio": (0.99,)})
    assert np.allclose(only_99["diff"], 0.40) and only_99["cells"].tolist() == [1, 1, 1]


def test_load_results_lists_missing_runs_and_imports_shared(tmp_path):
    configs = get_profile("smoke").configs()
    store = ResultStore(tmp_path / "smoke")
    for i, c in enumerate(configs[:-1]):
        store.write(record(c, 0.1 * i))
    res = load_results("smoke", tmp_path)
    assert res.missing == (configs[-1].label(),)
    with pytest.raises(MissingRecords, match="1 run"):
        res.require()
    store.write(record(configs[-1], 0.5))
    res = load_results("smoke", tmp_path).require()
    assert len(res.selected) == len(configs)  # FFR's stage 1 (a dependency) has no record here: not required
    meta = res.meta()
    assert meta["sweep_profile"] == "smoke" and meta["seeds"] == [0] and len(meta["hashes"]) == len(res.selected)
    other = ResultStore(tmp_path / "copy")
    assert import_records(store, other, [configs[0].hash, "000000000000"]) == 1
    assert other.get(configs[0].hash) == store.get(configs[0].hash)


def test_loading_a_store_reads_a_shared_stores_records_without_copying_them(tmp_path):
    """quick-ablations shares quick's runs (SHARES): loading shows them but writes no loose copy
    (`ffr figures` had left 167 untracked copies in results/paper-labelfree/runs)."""
    configs = get_profile("quick-ablations").configs()
    base = [c for c in closure(configs).values() if c.hash in shared_runs("quick-ablations")]
    assert base
    quick = ResultStore(tmp_path / "quick")
    quick.write(record(base[0], 0.5))
    res = load_results("quick-ablations", tmp_path)
    assert base[0].hash in set(res.runs["hash"])
    assert not (tmp_path / "quick-ablations" / "runs").exists() or not ResultStore(tmp_path / "quick-ablations").loose()


def test_arm_rows_where_filters(selected):
    rows = arm_rows(selected, mode_arms()["ASB"], where={"ratio": (0.95,), "seed": (1, 2)})
    assert sorted(rows["seed"]) == [1, 2] and set(rows["ratio"]) == {0.95}


# -- the paper's numbers ---------------------------------------------------------------------
def test_paper_numbers_are_labelled_and_transcribed():
    t1 = paper_table("iclr_table1")
    assert len(t1) == 48 and set(t1["source"]) == {"paper (ICLR)"}
    row = t1[(t1["method"] == "erm") & (t1["mode"] == "ffr") & (t1["dataset"] == "CelebA-HQ")]
    assert row[["wa", "ba"]].values.tolist() == [[77.1, 86.8]]
    stage = paper_table("eccv_table1")
    assert stage["row"].tolist()[-1] == "1 then 2 (FFR)" and stage["wa"].tolist() == [51.2, 30.6, 59.6, 72.6]
    assert set(paper_table("eccv_table4")["severity"]) == {0, 5}
    for name, entry in load_numbers().items():
        assert entry["source"] in ("paper (ECCV)", "paper (ICLR)"), name
    wide = iclr_table1_wide()
    assert wide.shape == (16, 6) and wide.loc[0, "UTK-Face"] == "5.9/51.3"
    with pytest.raises(KeyError, match="known: eccv_figure4_quotes"):
        paper_table("eccv_table99")


def test_paper_numbers_refuse_an_unlabelled_table(tmp_path):
    bad = tmp_path / "numbers.yaml"
    bad.write_text("t:\n  source: ours\n  title: x\n  rows: []\n")
    with pytest.raises(ValueError, match="source must read 'paper"):
        load_numbers(bad)


def test_partial_store_is_refused_unless_asked(tmp_path, capsys):
    from ffr_lib.tables import MissingRecords, Results

    partial = Results("paper", tmp_path, pd.DataFrame(), ("shapes-binary r=0.9 none/erm lr=0.001 s=0",), "val_worst_group")
    with pytest.raises(MissingRecords, match="1 run"):
        partial.require()
    assert partial.require(partial=True) is partial
    assert "partial store: 1 run(s)" in capsys.readouterr().out
