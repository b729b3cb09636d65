"""What every figure builder shares: the Artifact it returns, saving beside the paper's numbers,
and the two plot shapes (lines with intervals, annotated heat maps)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..io import save_figure, save_table
from ..registry import Registry
from ..tables import Results, arm_hashes

BUILDERS: Registry = Registry("figure")
# the repository's figures/: measured tables (knob grid, diffusion checks) are read from here
REPO_FIGURES = Path(__file__).resolve().parents[2] / "figures"


@dataclass
class Artifact:
    """What a builder wrote: our table, the paper's numbers beside it (or None), the figure."""

    name: str
    table: pd.DataFrame
    paper: pd.DataFrame | None = None
    figure: object | None = None
    paths: list[Path] = field(default_factory=list)


def sidecar(results: Results | None, arms: Mapping | None, base: Mapping, where: Mapping | None = None,
            **extra: object) -> dict:
    """The sidecar of an artifact: `base` (made_by, profile) and the sweep profile, selection,
    config hashes and seeds of the runs its arms use."""
    meta = dict(base)
    if results is not None:
        rows = arm_hashes(results, arms, where) if arms is not None else None
        meta.update(results.meta(rows))
    meta.update(extra)
    return meta


def save(art: Artifact, out: str | Path, meta: Mapping) -> Artifact:
    """`<name>.csv` (ours), `<name>_paper.csv` (the paper's, when given), `<name>.png/.svg`."""
    out = Path(out)
    art.paths.append(save_table(art.table, art.name, dict(meta), out))
    if art.paper is not None:
        art.paths.append(save_table(art.paper, f"{art.name}_paper", {**meta, "numbers": "the paper's, from "
                                    "ffr_lib/paper_numbers.yaml (TARGETS.md); not ours"}, out))
    if art.figure is not None:
        with plt.rc_context({"svg.hashsalt": art.name}):  # fixed SVG ids: the same figure, the same bytes
            art.paths += save_figure(art.figure, art.name, dict(meta), out)
    return art


def scope(results: Results, spec: Mapping) -> dict[str, list]:
    """The datasets and ratios where arm `spec` has runs: a table's other rows are restricted to
    them, so that every row of an ablation compares like with like."""
    from ..tables import arm_rows

    rows = arm_rows(results.selected, spec)
    return {"dataset": sorted(set(rows["dataset"])), "ratio": sorted(set(rows["ratio"]))}


def line_panel(ax, table: pd.DataFrame, x: str, metric: str, rows: Sequence[str], styles: Mapping | None = None) -> None:
    """One line per row label of a summarise() table over `x`, with its bootstrap interval."""
    for label in rows:
        part = table[(table["row"] == label) & (table["n"] > 0)].sort_values(x)
        if part.empty:
            continue
        style = dict((styles or {}).get(label, {}))
        xs = part[x].astype(float).to_numpy()
        mean = part[f"{metric}_mean"].to_numpy()
        err = np.vstack([mean - part[f"{metric}_ci_lo"].to_numpy(), part[f"{metric}_ci_hi"].to_numpy() - mean])
        ax.errorbar(xs, mean, yerr=err, marker="o", ms=4, capsize=3, label=label, **style)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)


NOT_RUN = "not run in\nthis profile"  # what a heat-map cell without runs says
PAPER_FACE = "#f3ecdd"  # the background of every panel that shows the paper's numbers, never ours


def mark_paper(ax, title: str) -> None:
    """A panel of the paper's numbers: its own background, and a title that says whose they are."""
    ax.set_facecolor(PAPER_FACE)
    ax.set_title(f"THE PAPER'S NUMBERS (not ours)\n{title}", fontsize=10, color="saddlebrown")


def heat_map(ax, pivot: pd.DataFrame, title: str, vmin: float = 0.0, vmax: float = 1.0, cmap="viridis",
             fmt: str = "{:.2f}", text: pd.DataFrame | None = None, colorbar: bool = True,
             missing: str = NOT_RUN) -> None:
    """An annotated heat map of `pivot` (rows drawn bottom-up); NaN cells read `missing` (why they
    are empty) on a hatched grey ground; `text` (same shape) replaces the numbers shown; labels are
    black on light cells, white on dark."""
    values = pivot.to_numpy(dtype=float)
    im = ax.imshow(values, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap=cmap)
    for i, j in zip(*np.nonzero(~np.isfinite(values))):
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#eeeeee", edgecolor="#bbbbbb", hatch="//",
                                   lw=0))
    ax.set_xticks(range(pivot.shape[1]), [f"{v:g}" if isinstance(v, float) else str(v) for v in pivot.columns],
                  fontsize=9)
    ax.set_yticks(range(pivot.shape[0]), [f"{v:g}" if isinstance(v, float) else str(v) for v in pivot.index],
                  fontsize=9)
    ax.set_title(title, fontsize=10)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            shown = text.iloc[i, j] if text is not None else (missing if not np.isfinite(v) else fmt.format(v))
            r, g, b, _ = im.cmap(im.norm(v)) if np.isfinite(v) else (1, 1, 1, 1)
            ax.text(j, i, shown, ha="center", va="center", fontsize=9 if np.isfinite(v) else 8,
                    color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")
    if colorbar:
        plt.colorbar(im, ax=ax, fraction=0.046)


def paper_bars(ax, paper: pd.DataFrame, label_col: str, title: str) -> None:
    """The paper's WA (and BA) as bars, titled with their source: never drawn on our axes."""
    y = np.arange(len(paper))
    ax.barh(y - 0.2, paper["wa"] / 100, height=0.4, label="WA", color="tab:red")
    if "ba" in paper:
        ax.barh(y + 0.2, paper["ba"] / 100, height=0.4, label="BA", color="tab:gray")
    ax.set_yticks(y, paper[label_col].astype(str), fontsize=9)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    if title.startswith("ours"):
        ax.set_title(title, fontsize=10)
    else:
        mark_paper(ax, title)
    ax.legend(fontsize=9, loc="lower right")
