"""`ffr reproduce`: the committed stores' figures, then the CPU retrain in its own folder, then the
comparison it prints; checked without running a notebook."""

import json
from pathlib import Path

import pandas as pd
import pytest

from ffr_lib.cli import _cpu_runs, main
from ffr_lib.comparison import comparison, comparison_text
from ffr_lib.notebooks import plan
from ffr_lib.store_choice import CPU_PROFILE


def test_the_cpu_retrain_writes_only_under_its_own_folder(tmp_path):
    runs = _cpu_runs(plan(CPU_PROFILE, out=tmp_path / "nb"), tmp_path / "cpu")
    by_stem = {r.source.stem[:2]: r.parameters for r in runs}
    assert all(p["figures_dir"] == str(tmp_path / "cpu" / "figures") for p in by_stem.values())
    assert by_stem["03"]["results_dir"] == by_stem["04"]["results_dir"] == str(tmp_path / "cpu" / "results")
    assert by_stem["05"]["results_dir"] == str(tmp_path / "cpu" / "results" / CPU_PROFILE)
    assert by_stem["03"]["run_missing"] and by_stem["04"]["run_missing"] and not by_stem["04"]["fallback"]


@pytest.mark.parametrize("cpu_out", ["figures", "figures/cpu", "."])
def test_a_cpu_folder_over_the_committed_figures_or_results_is_refused(cpu_out, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "--out", "figures", "--cpu-out", cpu_out]) == 2
    assert "--cpu-out" in capsys.readouterr().err
    assert not (tmp_path / "figures").exists()


def _figure3(folder: Path, rows: list[tuple], store: str, seeds: list[int]) -> None:
    folder.mkdir(parents=True)
    pd.DataFrame(rows, columns=["row", "dataset", "ratio", "test_wa_mean", "test_ba_mean"]).to_csv(
        folder / "eccv_figure3.csv", index=False)
    (folder / "eccv_figure3.json").write_text(json.dumps({"sweep_profile": store, "seeds": seeds}))


def test_the_comparison_pairs_each_cpu_cell_with_the_paper_scale_one(tmp_path):
    _figure3(tmp_path / "cpu", [("USB", "shapes-binary", 0.99, 0.10, 0.55), ("None", "shapes-binary", 0.99, 0.0, 0.5),
                                ("None", "shapes-binary", 0.95, 0.2, 0.6)], "quick", [0])
    _figure3(tmp_path / "paper", [("None", "shapes-binary", 0.99, 0.30, 0.70), ("USB", "shapes-binary", 0.99, 0.0, 0.5),
                                  ("None", "shapes-animals", 0.99, 0.9, 0.9)], "paper-v1", [0, 1, 2])
    table, cpu, paper = comparison(tmp_path / "cpu", tmp_path / "paper")
    assert (cpu, paper) == ("quick, 1 seed", "paper-v1, 3 seeds")
    assert table[["row", "ratio"]].astype(str).values.tolist() == [["None", "0.95"], ["None", "0.99"], ["USB", "0.99"]]
    assert table["WA paper"].isna().tolist() == [True, False, False]
    assert table.loc[1, ["WA cpu", "WA paper", "BA paper"]].tolist() == [0.0, 0.3, 0.7]
    text = comparison_text(tmp_path / "cpu", tmp_path / "paper")
    assert text.splitlines()[0].startswith("CPU retrain (") and "paper-v1, 3 seeds" in text.splitlines()[0]
    assert "  -  " in text or text.rstrip().split("\n")[2].rstrip().endswith("-")
