"""The pilot behind the evidence grids' lr ranges (issue #20; docs/performance.md "Evidence
protocol"): each arm trained over a wider lr range than any grid, so that a reader sees where
validation WA peaks, whether the grid chosen for the evidence runs holds that peak inside its
edges, and how far down FFR's stage 2 must go before it stays at its stage-1 model.

Arms: None/USB/ASB by mode, FFR's stage 1 alone (`ffr stage 1`, order 1, synthetic data only) and
FFR's stage 2 (`ffr stage 2`, from the stage 1 at the profile's `pre_lr`). `pilot_table` has one
row per (dataset, ratio, model, arm, lr) with seed means; `chosen` marks the lr the selection
chain (sweeps/selection.CHAINS: validation WA, then BA, then loss, then the smaller lr) picks
within the pilot's range, `edge` whether that lr is the pilot's top or bottom."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..sweeps.selection import CHAINS, rank_settings
from ..tables import Results
from .common import BUILDERS, Artifact, save, sidecar

CELL = ("dataset", "ratio", "model", "arm")
METRICS = ("val_wa", "val_ba", "test_wa", "test_ba", "best_epoch")
ARM_ORDER = ("none", "usb", "asb", "ffr stage 1", "ffr stage 2")
ARM_STYLE = {"none": ("tab:gray", "o"), "usb": ("tab:orange", "s"), "asb": ("tab:red", "^"),
             "ffr stage 1": ("tab:cyan", "D"), "ffr stage 2": ("tab:blue", "v")}


def arm_of(runs: pd.DataFrame) -> pd.Series:
    """The pilot arm of each flattened record (ERM runs only are pilot arms; others get '')."""
    ffr = runs["mode"] == "ffr"
    order = runs["order"] if "order" in runs else pd.Series("1-2", index=runs.index)
    arm = runs["mode"].where(~ffr, np.where(order == "1", "ffr stage 1", "ffr stage 2"))
    erm = runs["method"] == "erm" if "method" in runs else True
    return arm.where(erm, "")


def pilot_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, ratio, model, arm, lr): seeds `n`, the seed means of METRICS, the count of
    degenerate runs (validation WA 0 at every epoch), `chosen` and `edge` (see module doc)."""
    df = runs.assign(arm=arm_of(runs))
    df = df[df["arm"] != ""]
    if df.empty:
        return pd.DataFrame(columns=[*CELL, "lr", "n", *METRICS, "degenerate", "chosen", "edge", "start_val_wa"])
    if "degenerate" not in df:
        df = df.assign(degenerate=False)
    metrics = [m for m in METRICS if m in df]
    grouped = df.groupby([*CELL, "lr"], sort=True)
    table = grouped[metrics].mean()
    table["n"] = grouped.size()
    table["degenerate"] = grouped["degenerate"].apply(lambda s: int(s.fillna(False).astype(bool).sum()))
    table = table.reset_index()
    ranked = rank_settings(df, list(CELL), CHAINS["val_wa"], tuned=("lr",))
    best = ranked[ranked["rank"] == 0]
    chosen = {(cell, float(lr)) for cell, lr in zip(best["_cell"], best["lr"])}
    keys = table[list(CELL)].apply(lambda row: "|".join(str(v) for v in row), axis=1)
    table["chosen"] = [(k, float(lr)) in chosen for k, lr in zip(keys, table["lr"])]
    lo = table.groupby(list(CELL))["lr"].transform("min")
    hi = table.groupby(list(CELL))["lr"].transform("max")
    table["edge"] = np.where(~table["chosen"], "", np.where(table["lr"] == hi, "top",
                                                             np.where(table["lr"] == lo, "bottom", "")))
    table["arm"] = pd.Categorical(table["arm"], [a for a in ARM_ORDER if a in set(table["arm"])], ordered=True)
    table = table.sort_values([*CELL, "lr"]).reset_index(drop=True)
    table["arm"] = table["arm"].astype(str)
    table["start_val_wa"] = _start_val_wa(df, table)
    return table[[*CELL, "lr", "n", *metrics, "degenerate", "chosen", "edge", "start_val_wa"]]


def _start_val_wa(df: pd.DataFrame, table: pd.DataFrame) -> list[float]:
    """For stage-2 rows, the mean validation WA of the stage-1 runs they start from (stage 1 at
    their pre_lr): where stage 2's curve meets it, FFR keeps its stage-1 model. NaN elsewhere."""
    if "pre_lr" not in df:
        return [np.nan] * len(table)
    first = df[df["arm"] == "ffr stage 1"].groupby([*CELL[:3], "lr"])["val_wa"].mean()
    pre = df[df["arm"] == "ffr stage 2"].groupby([*CELL[:3], "lr"])["pre_lr"].first()
    out = []
    for r in table.itertuples():
        key = (r.dataset, r.ratio, r.model, r.lr)
        start = (r.dataset, r.ratio, r.model, pre.get(key, np.nan)) if r.arm == "ffr stage 2" else None
        out.append(float(first.get(start, np.nan)) if start is not None else np.nan)
    return out


def pilot_figure(table: pd.DataFrame):
    """One panel per (dataset, ratio, model): validation WA (solid) and test WA (dashed) against
    lr for every arm; the chosen lr circled; dotted: the stage-1 model stage 2 starts from."""
    panels = table[["dataset", "ratio", "model"]].drop_duplicates().sort_values(["model", "dataset", "ratio"])
    n = max(len(panels), 1)
    cols = min(n, 3)  # wrapped, so that labels stay legible at 100 % zoom
    rows_ = -(-n // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(5.2 * cols, 4.2 * rows_), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, (_, p) in zip(axes.flat, panels.iterrows()):
        part = table[(table["dataset"] == p["dataset"]) & (table["ratio"] == p["ratio"]) & (table["model"] == p["model"])]
        for arm in [a for a in ARM_ORDER if a in set(part["arm"])]:
            rows = part[part["arm"] == arm].sort_values("lr")
            colour, marker = ARM_STYLE[arm]
            ax.plot(rows["lr"], rows["val_wa"], color=colour, marker=marker, label=f"{arm} (val)")
            if "test_wa" in rows:
                ax.plot(rows["lr"], rows["test_wa"], color=colour, marker=marker, ls="--", alpha=0.6, ms=4)
            if rows["start_val_wa"].notna().any():
                ax.axhline(rows["start_val_wa"].dropna().iloc[0], color=colour, ls=":", lw=1.2,
                           label="stage 1 it starts from (val)")
            pick = rows[rows["chosen"]]
            ax.scatter(pick["lr"], pick["val_wa"], s=160, facecolors="none", edgecolors="black", linewidths=1.5, zorder=5)
        ax.set_xscale("log")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("learning rate", fontsize=10)
        ax.set_ylabel("worst-group accuracy", fontsize=10)
        ax.set_title(f"{p['dataset']} r={p['ratio']:g} {p['model']}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=9)
    axes.flat[0].legend(fontsize=8, loc="best", title="solid: validation, dashed: test\ncircled: chosen",
                      title_fontsize=8)
    fig.tight_layout()
    return fig


@BUILDERS.register("pilot")
def build_pilot(results: Results, out: str | Path, meta: Mapping) -> Artifact:
    """The pilot's lr curves and choices (table `pilot.csv`, figure `pilot.png`)."""
    runs = results.runs if results.runs is not None else pd.DataFrame()
    table = pilot_table(runs) if len(runs) else pilot_table(pd.DataFrame(columns=["mode", "method", "lr", *CELL]))
    fig = pilot_figure(table) if len(table) else None
    edges = table[table["chosen"] & (table["edge"] != "")]
    art = Artifact("pilot", table, figure=fig)
    out_meta = sidecar(None, None, {**meta, **results.meta(results.runs if len(runs) else None)}, chosen_on_edge=[
        f"{r.dataset} {r.ratio:g} {r.model} {r.arm}: {r.edge} ({r.lr:g})" for r in edges.itertuples()])
    save(art, out, out_meta)
    if fig is not None:
        plt.close(fig)
    return art
