"""`ffr figures`: notebooks 02-04's tables rebuilt from the committed results, byte for byte, with
no training; a missing record is named; notebook parameters agree with the command's options."""

import io
import shutil
from pathlib import Path

import papermill
import pytest
import yaml

from ffr_lib.cli import main
from ffr_lib.paper_figures import build, build_all, notebook_meta
from ffr_lib.paper_figures.build import OPTIONS, SWEEPS
from ffr_lib.results import ResultStore
from ffr_lib.sweeps.profiles import get_profile

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures"
RESULTS = ROOT / "results"
NEEDED = [RESULTS / "quick" / "runs", RESULTS / "quick-ablations" / "runs", RESULTS / "paper-v1" / "packs"]
pytestmark = pytest.mark.skipif(not all(p.is_dir() for p in NEEDED), reason="committed results/ stores absent")


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("ffr figures must not train")

    monkeypatch.setattr("ffr_lib.sweeps.sweep.run_sweep", refuse)
    monkeypatch.setattr("ffr_lib.training.runner.Runner.run", refuse)


@pytest.mark.slow
def test_ffr_figures_reproduces_the_committed_csvs(tmp_path, capsys):
    """figures/ holds the paper-scale stores' figures (the notebooks' defaults, with their fallbacks)."""
    out = tmp_path / "figs"
    assert main(["figures", "--only", "03", "04", "--results", str(RESULTS), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "03_ffr_ablations: 16 tables, 7 figures" in printed and "04_mitigation_combinations: 8 tables, 2 figures" in printed
    assert "FALLBACK" in printed  # neither evidence-protocol store exists yet
    built = sorted(out.glob("*.csv"))
    assert len(built) == 24  # 16 + 8, the selection reports included
    for path in built:
        assert path.read_bytes() == (FIGURES / path.name).read_bytes(), f"{path.name} differs from figures/"
    assert not (out / "eccv_table8_vit.png").exists()  # the CPU profile runs no ViT: a table saying so, no figure
    for name in ("eccv_figure3", "ours_regime_map", "eccv_table1_stage_order"):
        assert (out / f"{name}.png").is_file() and (out / f"{name}.svg").is_file()
    # a second build over the first changes no table
    first = {p.name: p.read_bytes() for p in built}
    assert build_all("paper", RESULTS, out, only=["04"], stream=io.StringIO()) == 0
    assert {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))} == first


def test_sidecars_name_profile_hashes_and_seeds():
    meta = yaml.safe_load((FIGURES / "eccv_figure3.json").read_text())
    assert meta["profile"] == "paper" and meta["sweep_profile"] == "paper-v1" and meta["seeds"] == [0, 1, 2]
    assert (meta["default_store"], meta["shown_store"]) == ("paper", "paper-v1")  # the fallback, said
    assert set(meta["hashes"]) <= ResultStore(RESULTS / "paper-v1").hashes()
    assert len(meta["hashes"]) == 5 * 2 * 5 * 3  # arms x datasets x ratios x seeds, one setting each
    assert meta["selection"] == "val_worst_group" and meta["commit"]
    paper = yaml.safe_load((FIGURES / "eccv_figure3_paper.json").read_text())
    assert "not ours" in paper["numbers"]


def test_generation_tables_are_reproduced(tmp_path):
    meta = notebook_meta("02", "quick")
    for name in ("generation_prompts", "generation_recipes", "generation_corruptions", "generation_detector",
                 "generation_composite"):
        for art in build(name, tmp_path, meta):
            csv = tmp_path / f"{art.name}.csv"
            assert csv.read_bytes() == (FIGURES / csv.name).read_bytes(), name


def test_composite_generator_rows_by_hand(tmp_path):
    """Each measured table is a row; a learned generator is labelled by its checkpoint's steps and
    each row by the scale its check ran at (the sidecar); an empty folder is an empty table."""
    import json

    from ffr_lib.paper_figures.generation import composite_generator_table

    figures, models = tmp_path / "figures", tmp_path / "models"
    (models / "diffusion-composite-binary").mkdir(parents=True)
    figures.mkdir()
    (models / "diffusion-composite-binary" / "config.json").write_text(
        json.dumps({"meta": {"steps_done": 3500, "steps_before": 3400, "train": {"init": "models/diffusion-composite-binary"}}}))
    head = "layout,generator,fingerprint,fidelity,detector_acc,transfer_wa,transfer_ba,lean,web_majority,seconds\n"
    (figures / "composite_generator_diffusion_binary.csv").write_text(
        head + "binary,models/diffusion-composite-binary,,,0.9985,0.6,0.75,0.72,0.7,65\n")
    (figures / "composite_generator_procedural_binary.csv").write_text(head + "binary,procedural,0.3,0.75,1,0.9,0.96,0.69,0.7,5\n")
    (figures / "composite_generator_procedural_binary.json").write_text(
        json.dumps({"check": {"device": "cpu", "width": 16, "epochs": 10, "per_group": 1250}}))
    table = composite_generator_table(figures, models)
    assert table["generator"].tolist() == ["learned diffusion (6,900 steps)",
                                           "procedural stand-in (fingerprint 0.3, fidelity 0.75)"]
    assert table["check"].tolist() == ["", "cpu: width 16, 10 epochs, 1,250 a group"]
    assert table["transfer_wa"].tolist() == [0.6, 0.9] and table["lean"].tolist() == [0.72, 0.69]
    assert composite_generator_table(tmp_path / "none", models).empty


def test_a_missing_record_is_named(tmp_path):
    shutil.copytree(RESULTS / "quick" / "runs", tmp_path / "quick" / "runs")
    config = next(c for c in get_profile("quick").configs() if c.mode == "usb" and c.ratio == 0.99)
    ResultStore(tmp_path / "quick").record_path(config.hash).unlink()
    stream = io.StringIO()
    assert build_all("quick", tmp_path, tmp_path / "out", only=["04"], stream=stream) == 1
    text = stream.getvalue()
    assert "not built" in text and config.label() in text and "1 run(s)" in text
    assert not (tmp_path / "out").exists()


def test_notebook_parameters_agree_with_ffr_figures():
    nb = {p.stem[:2]: p for p in (ROOT / "notebooks").glob("0[234]_*.ipynb")}
    assert sorted(nb) == ["02", "03", "04"]
    for key in ("03", "04"):
        params = papermill.inspect_notebook(str(nb[key]))
        assert params["sweep_profile"]["default"].strip("'\"") == SWEEPS["paper"][key]
        assert params["fallback"]["default"] == "True" and params["run_missing"]["default"] == "False"
    params = papermill.inspect_notebook(str(nb["04"]))
    assert float(params["table1_ratio"]["default"]) == OPTIONS["paper"]["table1_ratio"]
    quick = yaml.safe_load((ROOT / "notebooks" / "profiles" / "quick.yaml").read_text())
    assert quick["04_mitigation_combinations"]["table1_ratio"] == OPTIONS["quick"]["table1_ratio"]
    for key in ("03", "04"):
        assert quick[nb[key].stem]["sweep_profile"] == SWEEPS["quick"][key]
    paper = yaml.safe_load((ROOT / "notebooks" / "profiles" / "paper.yaml").read_text())
    assert paper["04_mitigation_combinations"]["table1_ratio"] == OPTIONS["paper"]["table1_ratio"]
    for key in ("03", "04"):
        assert paper[nb[key].stem]["sweep_profile"] == SWEEPS["paper"][key]
