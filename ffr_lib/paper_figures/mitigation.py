"""Notebook 04, mitigation combinations: ECCV figure 3 (WA, BA against the bias ratio per
dataset, None/USB/ASB/FFR with ERM), figure 4 (the mode x method grid) and ICLR table 1 (every
method x mode at one ratio), each beside the paper's numbers; and claims 1, 6, 6b and 6c."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..claims import RULE, judge
from ..paper_claims import claims_of
from ..paper_numbers import paper_table
from ..tables import Results, mode_arms, summarise
from .common import BUILDERS, Artifact, heat_map, line_panel, mark_paper, save, sidecar

MODES = ("None", "USB", "ASB", "FFR")
METHODS = {"erm": "ERM", "groupdro": "GroupDRO", "resampling": "Resampling", "dfr": "DFR"}
PAPER_DATASETS = ("CelebA-HQ", "UTK-Face", "SpuCo Animals")
PAPER_COLOURS = ("#8c6d31", "#d6a756", "#f0dfb4")  # the paper's datasets' bars


def grid_arms(view: Mapping | None = None) -> dict[str, dict]:
    """'<mode>/<method>' -> arm, for every mode x method (on `view`'s backbone and knobs)."""
    return {f"{mode}/{method}": spec for method in METHODS for mode, spec in mode_arms(method, **(view or {})).items()}


def view_selected(results: Results, view: Mapping | None) -> pd.DataFrame:
    """The store's selected runs of `view`'s backbone (all of them without a view)."""
    sel = results.selected
    return sel[sel["model"] == view["model"]] if view and "model" in view and len(sel) else sel


def _shown(results: Results, view: Mapping | None) -> str:
    """The store as titles name it: '<profile> [<model>]' under a view."""
    return f"{results.profile} [{view['model']}]" if view and "model" in view else results.profile


def _split(table: pd.DataFrame) -> pd.DataFrame:
    parts = table["row"].str.split("/", expand=True)
    return table.assign(mode=parts[0], method=parts[1].map(METHODS))


@BUILDERS.register("eccv_figure3")
def eccv_figure3(results: Results, out: str | Path, meta: Mapping, view: Mapping | None = None) -> Artifact:
    """WA and BA against the bias ratio, a column per dataset, with ERM; FFR's stage 1 alone
    dashed. Beside it, the paper's 99.9 % ERM points (ICLR table 1: the figure's last ratio)."""
    arms = mode_arms("erm", stage1=True, **(view or {}))
    table = summarise(results, arms, by=("dataset", "ratio"))
    paper = paper_table("iclr_table1")
    paper = paper[paper["method"] == "erm"].reset_index(drop=True)
    datasets = sorted(set(table["dataset"])) or ["(no runs)"]
    fig, axes = plt.subplots(2, len(datasets) + 1, figsize=(3.5 * (len(datasets) + 1), 6.4), squeeze=False)
    styles = {"FFR stage 1 only": {"ls": "--", "color": "gray"}}
    for j, ds in enumerate(datasets):
        part = table[table["dataset"] == ds]
        for i, metric in enumerate(("test_wa", "test_ba")):
            line_panel(axes[i, j], part, "ratio", metric, list(arms), styles)
            axes[i, j].set_title(f"ours ({_shown(results, view)}): {ds}, {metric[5:].upper()}", fontsize=10)
            axes[i, j].set_xlabel("bias ratio", fontsize=9)
            axes[i, j].tick_params(labelsize=9)
    axes[0, 0].legend(fontsize=9)
    for i, metric in enumerate(("wa", "ba")):
        wide = paper.pivot_table(index="mode", columns="dataset", values=metric, sort=False) / 100
        ax = axes[i, -1]
        for k, ds in enumerate(wide.columns):  # browns: never the colours of our modes' lines
            ax.bar(np.arange(len(wide)) + 0.27 * (k - 1), wide[ds].to_numpy(), width=0.27, label=ds,
                   color=PAPER_COLOURS[k % len(PAPER_COLOURS)], edgecolor="black", linewidth=0.5)
        ax.set_xticks(range(len(wide)), [m.upper() if m != "none" else "None" for m in wide.index], fontsize=9)
        ax.set_ylim(0, 1.45)  # room for the legend above the bars
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.tick_params(labelsize=9)
        mark_paper(ax, f"ICLR table 1, ERM at 99.9 %, {metric.upper()}")
        ax.legend(fontsize=8, loc="upper center", ncol=2, title="real datasets", title_fontsize=8)
    fig.tight_layout()
    art = Artifact("eccv_figure3", table, paper, fig)
    return save(art, out, sidecar(results, arms, meta, paper_numbers="iclr_table1 (ERM rows)"))


@BUILDERS.register("eccv_figure4")
def eccv_figure4(results: Results, out: str | Path, meta: Mapping, view: Mapping | None = None) -> Artifact:
    """The mode x method grid of WA and BA, averaged over datasets and ratios per seed, then
    over seeds; cells without runs say 'not run in this profile'. Beside it: the numbers the paper quotes."""
    arms = grid_arms(view)
    table = _split(summarise(results, arms))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, metric in zip(axes, ("test_wa", "test_ba")):
        col = f"{metric}_mean"
        values = table[col] if col in table else pd.Series(np.nan, index=table.index)
        pivot = table.assign(v=values).pivot_table(index="mode", columns="method", values="v", dropna=False,
                                                   sort=False).reindex(index=list(MODES), columns=list(METHODS.values()))
        heat_map(ax, pivot.iloc[::-1], f"ours ({_shown(results, view)}): {metric[5:].upper()}, mean over datasets and ratios")
    fig.tight_layout()
    art = Artifact("eccv_figure4", table, paper_table("eccv_figure4_quotes"), fig)
    return save(art, out, sidecar(results, arms, meta, paper_numbers="eccv_figure4_quotes"))


@BUILDERS.register("iclr_table1")
def iclr_table1(results: Results, out: str | Path, meta: Mapping, ratio: float = 0.999,
                view: Mapping | None = None) -> Artifact:
    """Every method x mode at `ratio`, a column pair per dataset; beside it ICLR table 1 at 99.9 %."""
    arms = grid_arms(view)
    where = {"ratio": [ratio]}
    table = _split(summarise(results, arms, by=("dataset",), where=where))
    table.insert(1, "ratio", ratio)
    paper = paper_table("iclr_table1")
    art = Artifact("iclr_table1", table, paper, None)
    return save(art, out, sidecar(results, arms, meta, where, ratio=ratio, paper_numbers="iclr_table1"))


def wide_table1(table: pd.DataFrame) -> pd.DataFrame:
    """Our table 1 as printed: a row per (method, mode), 'WA/BA' in percent per dataset."""
    if table.empty or "dataset" not in table:
        return pd.DataFrame({"note": ["no runs at this ratio"]})
    shown = table.assign(cell=(table["test_wa_mean"] * 100).map("{:.1f}".format) + "/"
                         + (table["test_ba_mean"] * 100).map("{:.1f}".format))
    wide = shown.pivot_table(index=["method", "mode"], columns="dataset", values="cell", aggfunc="first", sort=False)
    order = [(m, mode) for m in METHODS.values() for mode in MODES]
    wide = wide.reindex([o for o in order if o in wide.index]).reset_index()
    wide.columns.name = None
    return wide


@BUILDERS.register("claims_04")
def claims_table_04(results: Results, out: str | Path, meta: Mapping, view: Mapping | None = None) -> Artifact:
    """Claims 1, 6 and its neighbours 6b, 6c on this notebook's store: the claims engine's rows for it
    (figures/claims.csv holds every claim on every store)."""
    table = judge(results, claims_of("04"), _shown(results, view), fixed=view)
    art = Artifact("claims_04", table)
    return save(art, out, sidecar(results, None, meta, rule=RULE))


NOTEBOOK_04 = ("eccv_figure3", "eccv_figure4", "iclr_table1", "claims_04", "selection_04")
