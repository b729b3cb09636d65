"""The selection report of a notebook's store (issue #20): per cell and tuned hyperparameter, the
chosen value, whether it sits on an edge of its grid, the key that broke a tie, and degenerate runs
(validation WA 0 at every epoch). A table (`selection_03.csv`, `selection_04.csv`) a reader checks
before trusting a cell: an optimum on an edge means the grid may not hold the best setting."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ..sweeps.selection import report_summary, selection_report
from ..tables import Results
from .common import BUILDERS, Artifact, save, sidecar


def _build(name: str):
    def build(results: Results, out: str | Path, meta: Mapping) -> Artifact:
        runs = results.runs if results.runs is not None else pd.DataFrame()
        table = selection_report(runs, results.rule) if len(runs) else pd.DataFrame()
        art = Artifact(name, table)
        return save(art, out, sidecar(results, None, meta, summary=report_summary(table)))

    build.__doc__ = f"The selection report of the store notebook {name[-2:]} reads."
    return build


for _name in ("selection_03", "selection_04"):
    BUILDERS.register(_name)(_build(_name))


def flagged(report: pd.DataFrame) -> pd.DataFrame:
    """The report's rows a reader must look at: an edge, a tie broken past the rule's metric, or a
    chosen degenerate run."""
    if report.empty:
        return report
    return report[(report["edge"] != "") | (report["tie_broken_by"] != "") | (report["degenerate_chosen"] > 0)]
