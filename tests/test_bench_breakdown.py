"""bench/grid_breakdown.py: packs found from their shared pack_seconds, seconds and image-steps summed."""

from __future__ import annotations

import json
import tarfile

import pytest


@pytest.fixture
def breakdown(bench_script):
    return bench_script("grid_breakdown")


def _record(run: int, train_s: float, epochs: list[float], n: int, mode: str = "ffr", ratio: float = 0.99) -> dict:
    return {"hash": f"h{run}", "config": {"dataset": "shapes-binary", "mode": mode, "order": "1-2", "freeze_bn": False,
                                          "ratio": ratio},
            "pack_seconds": {"data": 1.0, "start": 0.5, "train": train_s}, "train_counts": {"y0b0g0": n},
            "history": [{"epoch": e + 1, "seconds": s} for e, s in enumerate(epochs)]}


def test_packs_are_found_and_summed(breakdown, tmp_path):
    # pack A: 2 runs of 100 images, 3 epochs, the slowest run's epochs 2.0, 1.0, 1.0 -> steady 3.0, first +1.0
    # pack B: 1 run of 50 images, epochs 1.0, 1.0, 1.0; a record at another ratio and one without a pack
    records = [_record(0, 4.5, [2.0, 1.0, 0.9], 100), _record(1, 4.5, [1.5, 0.8, 1.0], 100),
               _record(2, 3.2, [1.0, 1.0, 1.0], 50, mode="usb"), _record(3, 9.0, [1.0] * 3, 10, ratio=0.9),
               {"hash": "dfr", "config": {"dataset": "shapes-binary", "ratio": 0.99}}]
    rows = breakdown.breakdown(records, ratios=[0.99])
    assert [r["kind"] for r in rows] == ["shapes-binary ffr 1-2", "shapes-binary usb 1-2", "all"]
    ffr, usb, total = rows
    assert (ffr["packs"], ffr["runs"], ffr["image_steps"]) == (1, 2, 600)
    assert ffr["steady_s"] == pytest.approx(3.0) and ffr["first_epochs_excess_s"] == pytest.approx(1.0)
    assert ffr["steps_per_s"] == pytest.approx(600 / 4.5) and ffr["steady_steps_per_s"] == pytest.approx(200)
    assert (total["packs"], total["runs"], total["image_steps"], total["data_s"]) == (2, 3, 750, 2.0)
    assert total["train_s"] == pytest.approx(7.7) and usb["first_epochs_excess_s"] == 0

    # the same from a store folder and from a .tgz of its records; a wrong path names itself
    runs = tmp_path / "store" / "runs"
    runs.mkdir(parents=True)
    for r in records:
        (runs / f"{r['hash']}.json").write_text(json.dumps(r))
    with tarfile.open(tmp_path / "r.tgz", "w:gz") as tar:
        tar.add(runs, arcname="runs")
    for source in (tmp_path / "store", tmp_path / "r.tgz"):
        assert breakdown.breakdown(breakdown.load_records(source), ratios=[0.99]) == rows
    with pytest.raises(FileNotFoundError, match="nothing.txt"):
        breakdown.load_records(tmp_path / "nothing.txt")
