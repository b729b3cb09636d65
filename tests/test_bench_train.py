"""bench/train_throughput.py runs end to end on a CPU and writes both loops' rows."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import their neighbour `_common`
    yield importlib.import_module("train_throughput")
    sys.modules.pop("train_throughput", None)
    sys.modules.pop("_common", None)


@pytest.mark.slow
def test_train_throughput_writes_both_loops(bench_module, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "tt.json"
        payload = bench_module.main(["--device", "cpu", "--images", "64", "--epochs", "2", "--width", "8",
                                     "--batch", "32", "--workers", "1", "--tmp", str(tmp_path), "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    written = json.loads(out.read_text())
    assert written["rows"] == json.loads(json.dumps(payload["rows"]))
    rows = {row["loop"]: row for row in written["rows"]}
    assert set(rows) == {"ours", "naive"}  # compile is CUDA-only under --compile auto; no --packed
    for row in rows.values():
        assert row["images_per_s"] > 0 and row["peak_memory_mib"] > 0
        assert len(row["epoch_seconds"]) == 2 and not row["warmup_included"]
    assert rows["naive"]["ratio_vs_naive"] == 1.0
    assert rows["ours"]["ratio_vs_naive"] == pytest.approx(rows["ours"]["images_per_s"] / rows["naive"]["images_per_s"])
    assert written["images"] == 64 and written["width"] == 8 and written["machine"]["device"] == "cpu"
    assert any("compile" in note for note in written["notes"])
    assert not list(tmp_path.glob("ffr-bench-png-*"))  # the PNG folder is removed afterwards


def test_steady_rate_leaves_out_the_first_epoch(bench_module):
    assert bench_module.steady_rate(100, [10.0, 2.0, 3.0]) == (pytest.approx(40.0), False)
    assert bench_module.steady_rate(100, [4.0]) == (pytest.approx(25.0), True)


def test_world_images_upsamples_to_the_requested_side(bench_module):
    data = bench_module.world_images("val", 6, 48, 32)
    assert data.images.shape == (6, 3, 48, 48) and data.images.dtype == torch.uint8
    assert set(data.y.tolist()) <= {0, 1} and len(data.b) == 6
