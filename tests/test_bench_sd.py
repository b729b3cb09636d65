"""Smoke test of bench/sd_throughput.py: its main, in-process, on the tiny architecture (CPU, 64 px)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_script(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the script imports bench/_common.py as `_common`
    spec = importlib.util.spec_from_file_location("sd_throughput", BENCH / "sd_throughput.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "sd_throughput", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_tiny_run_writes_one_row_per_setting_and_batch(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    bench = load_script(monkeypatch)
    out = tmp_path / "sd.json"
    args = ["--tiny", "--device", "cpu", "--batches", "1", "2", "--steps", "2", "--dpm-steps", "3", "--repeats", "1",
            "--out", str(out)]  # fmt: skip
    assert bench.main(args) == 0
    result = json.loads(out.read_text())
    assert result["tiny"] is True and result["resolution"] == 64 and result["dtype"] == "float32"
    assert result["complete"] is True and "NOT measured" in result["quality"]
    assert result["guidance"] == 7.5 and result["attention_processors"] == ["AttnProcessor2_0"]
    keys = [(r["name"], r["scheduler_class"], r["steps"], r["batch"]) for r in result["rows"]]
    assert keys == [
        ("authors-2", "PNDMScheduler", 2, 10),  # the authors' 10 prompts per call
        ("ours", "PNDMScheduler", 2, 1),
        ("ours", "PNDMScheduler", 2, 2),
        ("ours-dpm++", "DPMSolverMultistepScheduler", 3, 1),
        ("ours-dpm++", "DPMSolverMultistepScheduler", 3, 2),
    ]
    for row in result["rows"]:
        assert row["error"] is None and row["images_per_s"] > 0 and len(row["seconds"]) == 1
        assert row["reference"] == "authors-2" and row["peak_memory_gib"] > 0
        assert row["ratio_vs_authors"] == pytest.approx(row["images_per_s"] / result["rows"][0]["images_per_s"])
    assert result["machine"]["command"].endswith("--out " + str(out)) and result["machine"]["cpu_count"] >= 1
    assert set(result["versions"]) == {"torch", "diffusers", "transformers"}
    assert result["configs"]["unet"]["down_block_types"][-1] == "DownBlock2D"


def test_full_configs_are_v1_4_and_plan_pairs_rows_with_the_authors(monkeypatch):
    bench = load_script(monkeypatch)
    cfg = bench.configs(tiny=False)
    assert cfg["unet"]["block_out_channels"] == [320, 640, 1280, 1280] and cfg["unet"]["cross_attention_dim"] == 768
    assert cfg["vae"]["scaling_factor"] == 0.18215 and cfg["text_encoder"]["vocab_size"] == 49408
    assert cfg["scheduler"]["skip_prk_steps"] is True and cfg["scheduler"]["steps_offset"] == 1
    rows = bench.plan([1, 8, 32], [50, 25], [20, 25])
    assert [(r.name, r.steps, r.batch) for r in rows[:2]] == [("authors-animals", 50, 10), ("authors-faces", 25, 10)]
    assert len(rows) == 2 + 6 + 6
    assert {(r.steps, r.reference) for r in rows if r.name == "ours"} == {(50, "authors-animals"), (25, "authors-faces")}
    assert {r.reference for r in rows if r.name == "ours-dpm++"} == {"authors-animals"}  # substitute for PNDM at 50
    rows = [{"name": "authors-faces", "reference": "authors-faces", "images_per_s": 2.0},
            {"name": "ours", "reference": "authors-faces", "images_per_s": 3.0},
            {"name": "ours", "reference": "authors-faces", "images_per_s": None}]  # fmt: skip
    assert [r["ratio_vs_authors"] for r in bench.with_ratios(rows)] == [1.0, 1.5, None]
