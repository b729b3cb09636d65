"""The CPU retrain beside the paper-scale numbers: the short table `ffr reproduce` prints last.

Both sides are read from figure 3's table (`eccv_figure3.csv`: real-test WA and BA of None, USB,
ASB, FFR and FFR's stage 1 alone with ERM, mean over seeds), on the datasets and ratios the CPU
retrain ran; the sidecars say which store and how many seeds each side stands for.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

FIGURE = "eccv_figure3"
ROWS = ("None", "USB", "ASB", "FFR", "FFR stage 1 only")


def _side(folder: Path) -> tuple[pd.DataFrame, str]:
    """Figure 3's table in `folder` and a label naming its store and seeds."""
    table = pd.read_csv(folder / f"{FIGURE}.csv", keep_default_na=False, na_values=[""])  # the row "None" is a mode
    sidecar = folder / f"{FIGURE}.json"
    meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    store = meta.get("sweep_profile", "?")
    seeds = meta.get("seeds", [])
    return table, f"{store}, {len(seeds)} seed{'s' if len(seeds) != 1 else ''}"


def comparison(cpu_figures: str | Path, paper_figures: str | Path) -> tuple[pd.DataFrame, str, str]:
    """(table, cpu label, paper label): a row per (dataset, ratio, mode) of the CPU side with WA and BA
    of both sides (NaN where the paper-scale store has no such cell)."""
    cpu, cpu_label = _side(Path(cpu_figures))
    paper, paper_label = _side(Path(paper_figures))
    keys = ["row", "dataset", "ratio"]
    cols = {"test_wa_mean": "WA", "test_ba_mean": "BA"}
    both = cpu[keys + list(cols)].rename(columns=cols).merge(
        paper[keys + list(cols)].rename(columns=cols), on=keys, how="left", suffixes=(" cpu", " paper"))
    both = both[both["row"].isin(ROWS)].copy()
    both["row"] = pd.Categorical(both["row"], ROWS)
    return both.sort_values(["dataset", "ratio", "row"]).reset_index(drop=True), cpu_label, paper_label


def comparison_text(cpu_figures: str | Path, paper_figures: str | Path) -> str:
    """The comparison as printed: one line of provenance, then the table (WA, BA as fractions)."""
    table, cpu_label, paper_label = comparison(cpu_figures, paper_figures)
    shown = table.rename(columns={"row": "mode"})
    shown["ratio"] = shown["ratio"].map("{:g}".format)
    head = (f"CPU retrain ({cpu_figures}: {cpu_label}) beside the paper-scale numbers ({paper_figures}: "
            f"{paper_label}); ERM, real test set, mean over seeds:")
    return head + "\n" + shown.to_string(index=False, float_format="{:.2f}".format, na_rep="-")
