"""bench/studies/epoch_cap.py: which records an epoch cap leaves the same, changes or makes unknown."""

from __future__ import annotations

import pytest


@pytest.fixture
def epoch_cap(bench_script):
    return bench_script("epoch_cap")


def _record(h: str, val_wa: list[float], n: int, prefix: str | None = None) -> dict:
    best = max(range(len(val_wa)), key=lambda i: (val_wa[i], -i)) + 1  # the first best epoch
    return {"hash": h, "prefix": prefix, "best_epoch": best, "train_counts": {"y0b0g0": n},
            "history": [{"epoch": e + 1, "val_wa": w} for e, w in enumerate(val_wa)]}


def _grid() -> list[dict]:
    # stage 1 (best epoch 3) -> stage 2 (best 2); a single-stage run (best 4) -> its DFR refit
    return [_record("s1", [0.5, 0.6, 0.9, 0.8], 10), _record("s2", [0.4, 0.7, 0.7, 0.6], 5, prefix="s1"),
            _record("n", [0.3, 0.5, 0.5, 0.8], 20), {"hash": "d", "base": "n", "best_epoch": 4}]


def test_statuses_follow_best_epochs_and_parents(epoch_cap):
    at3 = epoch_cap.outcomes(_grid(), 3)
    assert {h: o["status"] for h, o in at3.items()} == {"s1": "same", "s2": "same", "n": "changed", "d": "unknown"}
    assert at3["n"]["val_wa_drop"] == pytest.approx(0.3)  # 0.8 at epoch 4, 0.5 among the first 3
    at2 = epoch_cap.outcomes(_grid(), 2)
    assert {h: o["status"] for h, o in at2.items()} == {"s1": "changed", "s2": "unknown", "n": "changed",
                                                         "d": "unknown"}
    assert at2["s1"]["val_wa_drop"] == pytest.approx(0.3)
    assert all(o["status"] == "same" for o in epoch_cap.outcomes(_grid(), 4).values())


def test_first_best_epoch_wins_ties(epoch_cap):
    assert epoch_cap.best_val_wa(_grid()[1]["history"], 4) == (2, 0.7)


def test_image_steps_and_rows(epoch_cap):
    assert epoch_cap.image_steps(_grid(), 4) == 40 + 20 + 80
    rows = epoch_cap.cap_rows(_grid(), [3, 4], rate=35.0)
    assert (rows[0]["image_steps"], rows[0]["same"], rows[0]["changed"], rows[0]["unknown"]) == (105, 2, 1, 1)
    assert rows[0]["share"] == pytest.approx(105 / 140)
    assert rows[0]["steady_min"] == pytest.approx(105 / 35 / 60)
    assert (rows[1]["same"], rows[1]["mean_drop"], rows[1]["max_drop"]) == (4, 0.0, 0.0)


def test_missing_parent_is_named(epoch_cap):
    records = [_record("s2", [0.4, 0.7], 5, prefix="gone")]
    with pytest.raises(KeyError, match="s2.*gone"):
        epoch_cap.outcomes(records, 1)
