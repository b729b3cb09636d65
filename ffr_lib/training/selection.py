"""Model selection: named pure functions over the flattened run records (results.frame()).

Each function returns, per cell (all config fields but the seed and the tuned hyperparameters
lr, freeze_bn, pre_lr, weight_decay), the rows of every seed of the one hyperparameter setting
it chooses, with a `selection` column naming the rule:
- `val_worst_group` (default, the authors'): the best mean validation WA over seeds;
- `val_worst_class`: the best mean validation worst-class accuracy (needs no bias labels);
- `oracle`: the best mean *test* WA, labelled "oracle (test WA)": an upper bound, not a result.
The best epoch of each run was already chosen by validation WA inside the run. DFR records
carry their ERM base's validation metrics, so DFR follows the selected ERM model. Where the
records hold FFR stage-1 runs for several stage-1 learning rates, the stage-1 lr (pre_lr) is
chosen first, on those runs, as the authors selected stage 1 before stage 2.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..registry import Registry
from .config import TUNED, RunConfig

Selection = Callable[[pd.DataFrame], pd.DataFrame]
SELECTIONS: Registry[Selection] = Registry("selection")

CELL_EXCLUDE = ("hash", "status", "seed", *TUNED)


def cell_columns(df: pd.DataFrame) -> list[str]:
    """The config columns that define a cell (present in `df`)."""
    config_fields = [f for f in RunConfig.__dataclass_fields__ if f not in CELL_EXCLUDE]
    return [c for c in config_fields if c in df.columns]


def _key(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One hashable key per row over `columns` (NaN-safe: None and NaN become 'None')."""
    if not columns or df.empty:
        return pd.Series("", index=df.index, dtype=object)
    return df[columns].apply(lambda row: "|".join(str(v) for v in row), axis=1)


def select_by(df: pd.DataFrame, metric: str, name: str) -> pd.DataFrame:
    """Per cell, all seeds of the tuned setting with the best mean `metric` (ties: the first
    setting in sorted order, so the choice is deterministic)."""
    if df.empty:
        return df.assign(selection=pd.Series(dtype=str))
    if metric not in df.columns:
        raise KeyError(f"selection {name!r} needs column {metric!r}")
    df = df.copy()
    tuned = [c for c in TUNED if c in df.columns]
    df["_cell"] = _key(df, cell_columns(df))
    df["_setting"] = _key(df, tuned)
    means = df.groupby(["_cell", "_setting"], sort=True)[metric].mean().reset_index()
    best = means.loc[means.groupby("_cell", sort=True)[metric].idxmax(), ["_cell", "_setting"]]
    chosen = df.merge(best, on=["_cell", "_setting"])
    return chosen.drop(columns=["_cell", "_setting"]).assign(selection=name)


def restrict_stage1(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Keep two-stage FFR rows whose pre_lr is the stage-1 lr chosen by `metric` on the stage-1
    runs of their cell (when those records are present); other rows pass unchanged."""
    needed = {"mode", "order", "pre_lr", "method"}
    if not needed <= set(df.columns):
        return df
    stage1 = df[(df["mode"] == "ffr") & (df["order"] == "1") & (df["method"] == "erm")]
    two = (df["mode"] == "ffr") & df["order"].isin(["1-2"])
    if stage1.empty or not two.any():
        return df
    # a stage-1 cell is the two-stage run's cell with its generator and data, minus stage-2 fields
    shared = [c for c in cell_columns(df) if c not in ("mode", "order", "method", "freeze_bn", "epochs", "dro_step", "pre_epochs")]
    s1 = stage1.assign(_cell=_key(stage1, shared))
    best = s1.groupby(["_cell", "lr"])[metric].mean().reset_index()
    best = best.loc[best.groupby("_cell")[metric].idxmax()].set_index("_cell")["lr"]
    cells = _key(df, shared)
    chosen_lr = cells.map(best)
    keep = ~two | chosen_lr.isna() | (df["pre_lr"] == chosen_lr)
    return df[keep]


@SELECTIONS.register("val_worst_group")
def val_worst_group(df: pd.DataFrame) -> pd.DataFrame:
    return select_by(restrict_stage1(df, "val_wa"), "val_wa", "val_worst_group")


@SELECTIONS.register("val_worst_class")
def val_worst_class(df: pd.DataFrame) -> pd.DataFrame:
    return select_by(restrict_stage1(df, "val_wca"), "val_wca", "val_worst_class")


@SELECTIONS.register("oracle")
def oracle(df: pd.DataFrame) -> pd.DataFrame:
    return select_by(df, "test_wa", "oracle (test WA)")


def select(df: pd.DataFrame, rule: str = "val_worst_group") -> pd.DataFrame:
    """Apply the named selection rule to flattened records."""
    return SELECTIONS[rule](df)
