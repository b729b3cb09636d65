"""Exporting notebook 05's checkpoints out of a store (study_checkpoints.py; issue #21)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ffr_lib.store_choice import cpu_study
from ffr_lib.study_checkpoints import default_study, export_study

ROOT = Path(__file__).resolve().parents[1]


def _notebook(tmp_path: Path, study: dict) -> Path:
    """A notebook whose parameters cell declares `study` (and the world generator's knobs)."""
    lines = [f"{k}: {type(v).__name__} = {v!r}" for k, v in {**study, "fingerprint": 0.3, "fidelity": 0.75}.items()]
    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "\n".join(lines),
            "outputs": [], "execution_count": None}
    path = tmp_path / "05.ipynb"
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_default_study_is_notebook_05s_parameters():
    study, fingerprint, fidelity = default_study()
    assert study["results_dir"] == "../results/paper" and study["dataset"] == "shapes-animals"
    assert study["ratio"] == 0.999 and study["seeds"] == [0, 1] and (fingerprint, fidelity) == (0.3, 0.75)


def test_export_copies_the_study_checkpoints_in_float16(tmp_path):
    store = ROOT / "results" / "quick"
    nb = _notebook(tmp_path, cpu_study())
    full = export_study(store, tmp_path / "fp32", notebook=nb)
    half = export_study(store, tmp_path / "fp16", half=True, notebook=nb)
    assert full.needed == 4 and len(full.found) == 4 and full.missing == ()  # None, USB, ASB, FFR at seed 0
    assert set(full.found) == {p.stem for p in (store / "checkpoints").glob("*.pt")}
    assert half.found == full.found and half.bytes < 0.55 * full.bytes
    for h in full.found:
        a = torch.load(tmp_path / "fp32" / f"{h}.pt", weights_only=True)
        b = torch.load(tmp_path / "fp16" / f"{h}.pt", weights_only=True)
        assert a.keys() == b.keys()
        for k in a:
            if a[k].is_floating_point():
                assert b[k].dtype == torch.float16 and torch.allclose(b[k].float(), a[k], rtol=1e-3, atol=1e-4)
            else:
                assert torch.equal(a[k], b[k])


def test_export_names_what_the_store_lacks(tmp_path):
    nb = _notebook(tmp_path, {**cpu_study(), "seeds": [0, 7]})  # no seed 7 in the committed CPU store
    out = export_study(ROOT / "results" / "quick", tmp_path / "out", notebook=nb)
    assert out.needed == 8 and len(out.found) == 4 and len(out.missing) == 4


def test_export_at_another_ratio_selects_that_ratios_models(tmp_path):
    nb = _notebook(tmp_path, cpu_study())
    here = export_study(ROOT / "results" / "quick", tmp_path / "a", notebook=nb)
    there = export_study(ROOT / "results" / "quick", tmp_path / "b", notebook=nb, ratio=0.95)
    assert len(here.found) == 4 and there.needed == 4  # the committed CPU study holds one ratio
    assert there.found == () and set(there.missing).isdisjoint(here.found)
    more = export_study(ROOT / "results" / "quick", tmp_path / "c", notebook=nb, seeds=[0, 5])
    assert more.needed == 8 and set(more.found) == set(here.found)  # seed 5 is not in the CPU store


def test_cli_refuses_a_missing_store_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ffr_lib.cli", "export-checkpoints", str(tmp_path / "nope"),
                           "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "no such results folder" in proc.stderr


@pytest.mark.parametrize("field", ["seeds", "fidelity"])
def test_a_notebook_without_a_study_field_is_named(tmp_path, field):
    study = {k: v for k, v in cpu_study().items() if k != field}
    nb = _notebook(tmp_path, study)
    if field == "fidelity":  # _notebook always adds the knobs: rewrite without it
        text = json.loads(nb.read_text())
        text["cells"][0]["source"] = "\n".join(line for line in text["cells"][0]["source"].split("\n")
                                               if not line.startswith("fidelity"))
        nb.write_text(json.dumps(text))
    with pytest.raises(ValueError, match=field):
        default_study(nb)


def test_the_committed_default_view_has_every_checkpoint_it_shows_within_20_mb():
    """A clone shows notebook 05's paper-scale models, no fallback: every model the default
    parameters select from the committed `paper` records has its checkpoint committed, and the
    committed paper checkpoints stay within issue #21's 20 MB."""
    from ffr_lib.study_checkpoints import study_hashes

    study, fingerprint, fidelity = default_study()
    hashes = study_hashes(ROOT / "results" / "paper", study, fingerprint, fidelity)
    assert len(hashes) == 4 * len(study["seeds"])
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout: which files are committed cannot be read")
    tracked = subprocess.run(["git", "ls-files", "results/paper/checkpoints"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert sorted(tracked) == sorted(f"results/paper/checkpoints/{h}.pt" for h in hashes.values())
    assert sum((ROOT / name).stat().st_size for name in tracked) <= 20_000_000
