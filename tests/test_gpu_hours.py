"""bench/gpu_hours.py: the GPU-hour model's arithmetic on a hand-worked grid, and which inputs it
reads as measured or modelled."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffr_lib.training.config import RunConfig


@pytest.fixture
def gh(bench_script):
    return bench_script("gpu_hours")


def counts(gh):
    # ratio 0.9 keeps the whole pool: train 200 = (10, 90, 90, 10); val pool (10, 20, 20, 10) stays 60
    # (its floor is 10 a group); test 20. USB tops up to 90: (80, 0, 0, 80) = 160; ASB/FFR 40 a group.
    return {"celeba-hq": gh.Counts(np.array([[10, 90], [90, 10]]), np.array([[10, 20], [20, 10]]),
                                   np.array([[5, 5], [5, 5]]), (1, 0))}


def grid() -> list[RunConfig]:
    base = RunConfig(dataset="celeba-hq", ratio=0.9, epochs=2, lr=1e-4)
    return [base,  # None/ERM
            RunConfig(dataset="celeba-hq", ratio=0.9, epochs=2, mode="ffr", lr=1e-5, pre_lr=1e-4),
            RunConfig(dataset="celeba-hq", ratio=0.9, epochs=2, mode="ffr", lr=1e-6, pre_lr=1e-4),
            RunConfig(dataset="celeba-hq", ratio=0.9, epochs=2, method="dfr", lr=1e-4),  # refits None/ERM
            RunConfig(dataset="celeba-hq", ratio=0.9, epochs=2, mode="usb", lr=1e-4)]


def rates(gh, train: dict, evaluate: dict, generate: float, decode: dict | None = None):
    return gh.Rates(train, evaluate, {"celeba-hq": generate}, decode or {})


def test_node_images_by_hand(gh):
    c = counts(gh)["celeba-hq"]
    none, ffr, _, dfr, usb = grid()
    assert gh.node_images(none, c, False) == ({"celeba-hq": 400, "synthetic": 0}, {"celeba-hq": 3 * 60 + 20, "synthetic": 0})
    assert gh.node_images(ffr.prefix(), c, False) == ({"celeba-hq": 0, "synthetic": 320}, {"celeba-hq": 200, "synthetic": 20})
    assert gh.node_images(usb, c, False) == ({"celeba-hq": 400, "synthetic": 320}, {"celeba-hq": 200, "synthetic": 20})
    assert gh.node_images(dfr, c, False) == ({}, {"celeba-hq": 80})
    assert gh.node_images(dfr, c, True) == ({}, {"celeba-hq": 280, "synthetic": 0})  # their DFR: + ERM's train set


def test_training_seconds_with_and_without_reuse_by_hand(gh):
    c = counts(gh)
    ours = rates(gh, {"celeba-hq": 100, "synthetic": 100}, {"celeba-hq": 200, "synthetic": 200}, 2)
    theirs = rates(gh, {"celeba-hq": 50, "synthetic": 20}, {"celeba-hq": 100, "synthetic": 40}, 1)
    # ours: None 4 + 1; stage 1 3.2 + 1 + 0.1; two stage 2s 4 + 1 + 0.1 each; DFR 0.4; USB 7.2 + 1 + 0.1
    assert gh.training_seconds(grid(), c, ours, reuse=True, dfr_forwards_train=False) == {"celeba-hq": pytest.approx(28.2)}
    # theirs: None 8 + 2; stage 1 16 + 2 + 0.5; stage 2s 8 + 2 + 0.5 each; DFR 2.8; USB 8 + 16 + 2 + 0.5
    assert gh.training_seconds(grid(), c, theirs, reuse=True, dfr_forwards_train=True) == {"celeba-hq": pytest.approx(78.8)}
    # without reuse each FFR run trains its stage 1 (18.5) and the DFR run its ERM base (10)
    assert gh.training_seconds(grid(), c, theirs, reuse=False, dfr_forwards_train=True) == {
        "celeba-hq": pytest.approx(10 + 2 * (10.5 + 18.5) + (2.8 + 10) + 26.5)}


def test_synthetic_images_decode_and_budget_by_hand(gh):
    c = counts(gh)
    # per group: the largest need (USB 80, FFR 40) + the synthetic test (5) -> 85 x 4 groups
    assert gh.synthetic_needed(grid(), c) == {"celeba-hq": 340}
    ours = rates(gh, {"celeba-hq": 100, "synthetic": 100}, {"celeba-hq": 200, "synthetic": 200}, 2,
                 decode={"celeba-hq": 10, "synthetic": 20})
    theirs = rates(gh, {"celeba-hq": 50, "synthetic": 20}, {"celeba-hq": 100, "synthetic": 40}, 4)
    assert gh.decode_seconds("celeba-hq", c["celeba-hq"], 340, ours) == pytest.approx((200 + 60 + 20) / 10 + 340 / 20)
    out = gh.budget(grid(), c, ours, theirs)
    rows = {r["step"]: r for r in out["rows"]}
    assert rows["generation"]["images_ffr"] == 340 and rows["generation"]["images_authors"] == 40_000
    assert rows["generation"]["ffr"] * 3600 == pytest.approx(170) and rows["generation"]["authors"] * 3600 == pytest.approx(10_000)
    assert rows["training"]["ffr"] * 3600 == pytest.approx(28.2 + 45)
    assert rows["training"]["authors"] * 3600 == pytest.approx(78.8)
    assert out["ratio_authors"] == pytest.approx((10_000 + 78.8) / (170 + 73.2))
    assert out["ratio_no_reuse"] == pytest.approx((10_000 + 107.3) / (170 + 73.2))
    assert "| **authors / ffr** | | 1.00 |" in gh.markdown(out)


def write(path, payload) -> None:
    path.write_text(json.dumps({**payload, "machine": {"gpu_name": "GPU X", "command": "cmd", "date": "2026-12-09"}}))


def test_inputs_say_measured_or_modelled(gh, tmp_path):
    write(tmp_path / "train.json", {"rows": [{"loop": "ours", "images_per_s": 300.0},
                                             {"loop": "naive", "images_per_s": 100.0, "workers": 8}]})
    sd_rows = [{"name": n, "steps": st, "batch": b, "images_per_s": v} for n, st, b, v in (
        ("authors-faces", 25, 10, 5.0), ("authors-animals", 50, 10, 2.5), ("ours", 25, 32, 6.0), ("ours", 50, 32, 3.0),
        ("ours-dpm++", 20, 32, 7.0))]
    write(tmp_path / "sd.json", {"rows": sd_rows})
    ours, theirs, inputs = gh.measured_rates(tmp_path / "train.json", tmp_path / "sd.json", tmp_path / "none.json",
                                             "pndm", 32)
    assert ours.train["synthetic"] == 300 and ours.eval["celeba-hq"] == 900 and theirs.train["utk-face"] == 100
    assert ours.generate == {"celeba-hq": 6.0, "utk-face": 6.0, "spuco-animals": 3.0}
    assert theirs.generate == {"celeba-hq": 5.0, "utk-face": 5.0, "spuco-animals": 2.5}
    how = {i["input"]: i["how"] for i in inputs}
    assert how["ffr evaluation, images/s"] == "modelled" and how["authors' training, celeba-hq, images/s"] == "modelled"
    assert how["ffr training (ours), images/s"] == "measured"
    kinds = ("celeba-hq", "utk-face", "spuco-animals", "synthetic")
    loop_rows = [{"kind": k, "workers": 2, "size_px": [s, s], "format": "png", "made_here": True,
                  "authors_train_images_per_s": 10.0 * s, "authors_eval_images_per_s": 20.0 * s,
                  "ours_decode_images_per_s": 1000.0} for k, s in zip(kinds, (1, 2, 3, 4))]
    write(tmp_path / "loop.json", {"rows": loop_rows, "ours_train_images_per_s": 400.0, "ours_eval_images_per_s": 1200.0,
                                   "ours_compile_train_images_per_s": 500.0})
    ours, theirs, inputs = gh.measured_rates(tmp_path / "train.json", tmp_path / "sd.json", tmp_path / "loop.json",
                                             "dpm++", 32, compiled=True)
    assert ours.train["celeba-hq"] == 500 and ours.eval["synthetic"] == 1200 and ours.generate["spuco-animals"] == 7.0
    assert theirs.train == {"celeba-hq": 10.0, "utk-face": 20.0, "spuco-animals": 30.0, "synthetic": 40.0}
    assert ours.decode["synthetic"] == 1000.0 and {i["how"] for i in inputs} == {"measured"}
    with pytest.raises(SystemExit, match="has no row 'ours' at 25 steps, batch 8"):
        gh.measured_rates(tmp_path / "train.json", tmp_path / "sd.json", tmp_path / "none.json", "pndm", 8)
