"""The results store, model selection and aggregation, against a tiny committed fixture.

Fixture (tests/fixtures/results_tiny.jsonl), by hand:
- None/ERM, lr 1e-3: val WA 0.5, 0.6, 0.7 (mean 0.60), test WA 0.3, 0.4, 0.5, test BA 0.70, 0.75, 0.80;
  lr 1e-4: val WA 0.9, 0.3, 0.45 (mean 0.55; seed 0 alone would pick it), test WA 0.8 x 3.
- FFR/ERM stage 2 lr 1e-5, frozen BN: val WA 0.7, 0.65, 0.75 (mean 0.70), test WA 0.6, 0.7, 0.8,
  test BA 0.85 x 3; BN not frozen: val WA 0.6 x 3, test WA 0.9 x 3.
- one failed None run at lr 1e-2 (excluded from tables).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ffr_lib.results import ResultStore, aggregate, bootstrap_ci, load_jsonl, records_frame
from ffr_lib.sweeps.selection import SELECTIONS, cell_columns, select

FIXTURE = Path(__file__).parent / "fixtures" / "results_tiny.jsonl"
GOLDEN = Path(__file__).parent / "fixtures" / "results_tiny_table.csv"


@pytest.fixture
def frame() -> pd.DataFrame:
    return records_frame(load_jsonl(FIXTURE))


def golden_table(frame: pd.DataFrame) -> pd.DataFrame:
    chosen = select(frame, "val_worst_group")
    return aggregate(chosen, by=["mode", "lr", "freeze_bn"], metrics=("test_wa", "test_ba"), n_boot=1000, seed=0)


def test_fixture_frame(frame):
    assert len(frame) == 12  # the failed run is left out
    assert len(records_frame(load_jsonl(FIXTURE), status=None)) == 13
    assert "data" in cell_columns(frame) and "seed" not in cell_columns(frame) and "lr" not in cell_columns(frame)


def test_val_worst_group_averages_over_seeds(frame):
    chosen = select(frame, "val_worst_group")
    none = chosen[chosen["mode"] == "none"]
    assert none["lr"].unique().tolist() == [1e-3] and sorted(none["seed"]) == [0, 1, 2]
    ffr = chosen[chosen["mode"] == "ffr"]
    assert ffr["freeze_bn"].unique().tolist() == [True] and len(ffr) == 3
    assert set(chosen["selection"]) == {"val_worst_group"}


def test_oracle_is_labelled_and_uses_test(frame):
    chosen = select(frame, "oracle")
    assert set(chosen["selection"]) == {"oracle (test WA)"}
    assert chosen[chosen["mode"] == "none"]["lr"].unique().tolist() == [1e-4]
    assert chosen[chosen["mode"] == "ffr"]["freeze_bn"].unique().tolist() == [False]


def test_val_worst_class_uses_wca(frame):
    frame = frame.copy()
    # make lr 1e-4 best by worst-class accuracy only
    frame.loc[(frame["mode"] == "none") & (frame["lr"] == 1e-4), "val_wca"] = 0.99
    chosen = select(frame, "val_worst_class")
    assert chosen[chosen["mode"] == "none"]["lr"].unique().tolist() == [1e-4]
    assert set(SELECTIONS.names()) == {"val_worst_group", "val_worst_class", "oracle"}


def test_aggregate_by_hand(frame):
    table = golden_table(frame).set_index("mode")
    assert table.loc["none", "n"] == 3
    assert table.loc["none", "test_wa_mean"] == pytest.approx(0.4)
    assert table.loc["none", "test_wa_std"] == pytest.approx(0.1)
    assert table.loc["none", "test_ba_mean"] == pytest.approx(0.75)
    assert table.loc["none", "test_ba_std"] == pytest.approx(0.05)
    assert table.loc["ffr", "test_wa_mean"] == pytest.approx(0.7)
    assert table.loc["ffr", "test_ba_std"] == pytest.approx(0.0)
    # a constant metric has a degenerate interval; others lie within the values' range
    assert table.loc["ffr", "test_ba_ci_lo"] == table.loc["ffr", "test_ba_ci_hi"] == pytest.approx(0.85)
    assert 0.3 <= table.loc["none", "test_wa_ci_lo"] < 0.4 < table.loc["none", "test_wa_ci_hi"] <= 0.5


def test_golden_table(frame):
    table = golden_table(frame)
    golden = pd.read_csv(GOLDEN)
    pd.testing.assert_frame_equal(table.reset_index(drop=True), golden, check_dtype=False, rtol=1e-9)


def test_bootstrap_is_seeded():
    values = [0.1, 0.5, 0.9, 0.4]
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    lo, hi = bootstrap_ci(values, seed=3)
    assert min(values) <= lo < np.mean(values) < hi <= max(values)
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_aggregate_names_missing_columns(frame):
    with pytest.raises(KeyError, match="no column.*nonsense"):
        aggregate(frame, by=["nonsense"])


def test_store_roundtrip_and_index(tmp_path):
    store = ResultStore(tmp_path)
    records = load_jsonl(FIXTURE)
    for r in records:
        store.write(r)
    assert store.hashes() == {r["hash"] for r in records}
    assert store.get(records[0]["hash"]) == records[0]
    index = store.write_index()
    assert load_jsonl(index) == sorted(records, key=lambda r: r["hash"])
    assert not [p for p in store.runs.iterdir() if not p.name.endswith(".json")]  # no temp files left
    with pytest.raises(KeyError, match="no record nothere"):
        store.get("nothere")
    with pytest.raises(ValueError, match="needs its 'hash'"):
        store.write({"config": {}})


def _record(config, val_wa, test_wa):
    c = config.canonical()
    return {"hash": c.hash, "config": c.to_dict(), "status": "ok",
            "val": {"wa": val_wa, "ba": val_wa, "wca": val_wa, "groups": {}},
            "test": {"wa": test_wa, "ba": test_wa, "groups": {}}}


def test_stage1_lr_is_chosen_first_on_the_stage1_runs():
    from dataclasses import replace

    from ffr_lib.training.config import RunConfig

    ffr = RunConfig(mode="ffr", lr=1e-5, epochs=5, pre_epochs=10)
    records = []
    for seed in (0, 1):
        # stage-1 runs: pre_lr 1e-3 is better on validation
        records.append(_record(replace(ffr, pre_lr=1e-3, seed=seed).prefix(), 0.8, 0.5))
        records.append(_record(replace(ffr, pre_lr=1e-4, seed=seed).prefix(), 0.5, 0.5))
        # two-stage runs: after stage 2, pre_lr 1e-4 happens to look better
        records.append(_record(replace(ffr, pre_lr=1e-3, seed=seed), 0.7, 0.6))
        records.append(_record(replace(ffr, pre_lr=1e-4, seed=seed), 0.9, 0.6))
    chosen = select(records_frame(records), "val_worst_group")
    two_stage = chosen[chosen["order"] == "1-2"]
    assert two_stage["pre_lr"].unique().tolist() == [1e-3] and len(two_stage) == 2
    stage1 = chosen[chosen["order"] == "1"]
    assert stage1["lr"].unique().tolist() == [1e-3]
    # without the stage-1 records the choice is joint
    joint = select(records_frame([r for r in records if r["config"]["order"] == "1-2"]), "val_worst_group")
    assert joint["pre_lr"].unique().tolist() == [1e-4]


def test_a_packed_store_reads_as_the_loose_one_and_packs_byte_stably(tmp_path):
    """`pack` moves loose records into one gzip pack: the store then answers has/get/hashes/
    records/frame exactly as before; the same records give the same pack bytes; a record
    written again after packing (a rerun) wins, and a second pack drops the replaced one."""
    records = load_jsonl(FIXTURE)
    a, b = ResultStore(tmp_path / "a"), ResultStore(tmp_path / "b")
    for store in (a, b):
        for r in records:
            store.write(r)
    before = a.records()
    pa, pb = a.pack(), b.pack()
    assert pa.read_bytes() == pb.read_bytes() and pa.name == pb.name
    assert a.loose() == set() and not list(a.runs.glob("*.json"))
    assert a.records() == before and a.hashes() == {r["hash"] for r in records}
    assert ResultStore(tmp_path / "a").frame().equals(records_frame(before))
    assert a.pack() is None  # nothing loose
    changed = {**records[0], "status": "failed"}
    a.write(changed)
    assert ResultStore(tmp_path / "a").get(changed["hash"])["status"] == "failed"  # loose wins
    second = a.pack()
    fresh = ResultStore(tmp_path / "a")
    assert fresh.get(changed["hash"])["status"] == "failed" and len(fresh.records()) == len(records)
    assert sorted(p.name for p in a.packs.iterdir()) == sorted({pa.name, second.name})


def test_ffr_pack_packs_and_refuses_a_missing_folder(tmp_path, capsys):
    from ffr_lib.cli import main

    store = ResultStore(tmp_path / "s")
    for r in load_jsonl(FIXTURE)[:3]:
        store.write(r)
    assert main(["pack", str(tmp_path / "s")]) == 0
    assert "3 loose records packed" in capsys.readouterr().out
    assert main(["pack", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip().endswith("nope: no such results folder")


def test_ffr_pack_leaves_out_copies_of_a_shared_stores_records(tmp_path, capsys):
    """paper-labelfree's sweep copies paper's records it reuses into its own folder (tables.SHARES);
    packing leaves those copies out (loading copies them again), but keeps a record of the same
    hash whose content differs, and every record of its own."""
    from ffr_lib.cli import main

    paper, free = ResultStore(tmp_path / "paper"), ResultStore(tmp_path / "paper-labelfree")
    for h in ("a1", "b2"):
        paper.write({"hash": h, "wa": 0.5})
    free.write({"hash": "a1", "wa": 0.5})  # a copy
    free.write({"hash": "b2", "wa": 0.7})  # same hash, other content: kept
    free.write({"hash": "c3", "wa": 0.9})  # its own
    assert main(["pack", str(tmp_path / "paper-labelfree")]) == 0
    out = capsys.readouterr().out
    assert "2 loose records packed" in out and "(1 copies of a shared store's records left out)" in out
    reread = ResultStore(tmp_path / "paper-labelfree")
    assert sorted(reread.packed()) == ["b2", "c3"] and not reread.loose()
