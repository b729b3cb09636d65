"""Model selection: named pure functions over the flattened run records (results.frame()).

Each function returns, per cell (all config fields but the seed and the tuned hyperparameters
lr, freeze_bn, pre_lr, weight_decay and the method's own: hp_<name> columns, and dro_step), the rows of every seed of the one hyperparameter setting
it chooses, with a `selection` column naming the rule:
- `val_worst_group` (default, the authors'): the best mean validation WA over seeds;
- `val_worst_class`: the best mean validation worst-class accuracy (needs no bias labels);
- `oracle`: the best mean *test* WA, labelled "oracle (test WA)": an upper bound, not a result.

Ties are broken by a stated chain, never by sort order (CHAINS): after the rule's metric, the
mean validation BA (oracle: test BA), then the lowest mean group-balanced validation loss at
the runs' best epochs; settings equal on all of these take the smaller lr, then unfrozen BN,
then the smaller stage-1 lr and weight decay (SETTING_ORDER), then the smaller value of each
method hyperparameter. The best epoch of each run was
chosen inside the run by the same keys (loop.EPOCH_KEYS). DFR records carry their ERM base's
validation metrics, so DFR follows the selected ERM model. Where the records hold FFR stage-1
runs for several stage-1 learning rates, the stage-1 lr (pre_lr) is chosen first, on those
runs, by the same chain (`choose_stage1`, which the sweep's staged planning uses too), and
stage-2 settings are chosen among the runs from that stage 1 only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..registry import Registry
from ..training.config import TUNED, RunConfig
from ..training.methods import legacy_fields

Selection = Callable[[pd.DataFrame], pd.DataFrame]
SELECTIONS: Registry[Selection] = Registry("selection")

CELL_EXCLUDE = ("hash", "status", "seed", *TUNED)
HP_PREFIX = "hp_"  # a method's hyperparameter <name> is the frame column hp_<name> (results.flatten)
# (column, +1 larger is better | -1 smaller is better): the rule's metric first, then the rest
CHAINS: dict[str, tuple[tuple[str, int], ...]] = {
    "val_wa": (("val_wa", 1), ("val_ba", 1), ("val_loss", -1)),
    "val_wca": (("val_wca", 1), ("val_ba", 1), ("val_loss", -1)),
    "test_wa": (("test_wa", 1), ("test_ba", 1)),
}
SETTING_ORDER = ("lr", "freeze_bn", "pre_lr", "weight_decay")  # last resort: smaller first, False first
# a stage-1 cell is a two-stage run's cell minus the fields that only stage 2 has
STAGE2_ONLY = ("mode", "order", "method", "freeze_bn", "epochs", "pre_epochs")


def tuned_columns(df: pd.DataFrame) -> list[str]:
    """The columns of `df` that selection tunes per cell: TUNED's, the methods' hyperparameters
    (hp_<name>) and the flat fields some of them once were (dro_step)."""
    own = sorted(c for c in df.columns if c.startswith(HP_PREFIX))
    return [c for c in TUNED if c in df.columns] + own + [c for c in legacy_fields() if c in df.columns]


def cell_columns(df: pd.DataFrame) -> list[str]:
    """The config columns that define a cell (present in `df`)."""
    config_fields = [f for f in RunConfig.__dataclass_fields__ if f not in CELL_EXCLUDE]
    return [c for c in config_fields if c in df.columns]


def _key(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One hashable key per row over `columns` (NaN-safe: None and NaN become 'None')."""
    if not columns or df.empty:
        return pd.Series("", index=df.index, dtype=object)
    return df[columns].apply(lambda row: "|".join(str(v) for v in row), axis=1)


def rank_settings(df: pd.DataFrame, cell: Sequence[str], chain: Sequence[tuple[str, int]],
                  tuned: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (cell, setting): the chain's means over seeds, `n` seeds and `rank` within
    the cell (0 = chosen), ordered by the chain, then SETTING_ORDER. Also `tie_broken_by`: for
    the chosen setting, the first key that separated it from the runner-up ('' if alone, the
    setting order if nothing did)."""
    keys = [(c, d) for c, d in chain if c in df.columns]
    if not keys:
        raise KeyError(f"selection needs column {chain[0][0]!r}")
    tuned = tuned_columns(df) if tuned is None else [c for c in tuned if c in df.columns]
    df = df.assign(_cell=_key(df, list(cell)), _setting=_key(df, tuned))
    agg = {c: "mean" for c, _ in keys}
    means = df.groupby(["_cell", "_setting"], sort=False).agg({**agg, **{t: "first" for t in tuned}})
    means["n"] = df.groupby(["_cell", "_setting"], sort=False).size()
    means = means.reset_index()
    sort_cols, ascending = [], []
    for c, d in keys:
        col = f"_sort_{c}"
        # NaN (a key a record lacks) ranks last and ties with other NaN
        means[col] = (-d * means[c]).fillna(np.inf)
        sort_cols.append(col)
        ascending.append(True)
    for t in [*(t for t in SETTING_ORDER if t in tuned), *(t for t in tuned if t not in SETTING_ORDER)]:
        if t in tuned:
            col = f"_sort_{t}"
            means[col] = means[t].map(lambda v: (1, 0.0) if v is None or (isinstance(v, float) and np.isnan(v))
                                      else (0, float(v)))
            sort_cols.append(col)
            ascending.append(True)
    means = means.sort_values(["_cell", *sort_cols], ascending=[True, *ascending], kind="mergesort")
    means["rank"] = means.groupby("_cell", sort=False).cumcount()
    broken = {}
    for cell_key, part in means.groupby("_cell", sort=False):
        if len(part) < 2:
            broken[cell_key] = ""
            continue
        first, second = part.iloc[0], part.iloc[1]
        broken[cell_key] = next((c for c, _ in keys if not _same(first[c], second[c])), "setting order")
    means["tie_broken_by"] = means["_cell"].map(broken).where(means["rank"] == 0, "")
    return means.drop(columns=sort_cols)


def _same(a: float, b: float) -> bool:
    return (pd.isna(a) and pd.isna(b)) or (not pd.isna(a) and not pd.isna(b) and abs(a - b) < 1e-12)


def select_by(df: pd.DataFrame, metric: str, name: str) -> pd.DataFrame:
    """Per cell, all seeds of the tuned setting first by CHAINS[metric], then SETTING_ORDER."""
    if df.empty:
        return df.assign(selection=pd.Series(dtype=str))
    if metric not in df.columns:
        raise KeyError(f"selection {name!r} needs column {metric!r}")
    ranked = rank_settings(df, cell_columns(df), CHAINS[metric])
    best = ranked.loc[ranked["rank"] == 0, ["_cell", "_setting"]]
    tuned = tuned_columns(df)
    keyed = df.assign(_cell=_key(df, cell_columns(df)), _setting=_key(df, tuned))
    chosen = keyed.reset_index(drop=True).merge(best, on=["_cell", "_setting"])
    return chosen.drop(columns=["_cell", "_setting"]).assign(selection=name)


def stage1_rows(df: pd.DataFrame) -> pd.DataFrame:
    """FFR stage-1 runs (synthetic only, ERM) among flattened records."""
    if not {"mode", "order", "method"} <= set(df.columns):
        return df.iloc[0:0]
    return df[(df["mode"] == "ffr") & (df["order"] == "1") & (df["method"] == "erm")]


def stage1_cell_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in cell_columns(df) if c not in STAGE2_ONLY]


def choose_stage1(df: pd.DataFrame, metric: str = "val_wa", candidates: pd.DataFrame | None = None) -> pd.Series:
    """Per stage-1 cell (its key over stage1_cell_columns), the chosen stage-1 lr: the stage-1
    runs' lr first by CHAINS[metric], then the smaller lr. `candidates`: rows whose (stage-1
    cell, pre_lr) are the only lrs to choose from (the two-stage runs' own; stage-1 runs at other
    lrs, such as the stage-order ablation's, are not candidates). Empty without stage-1 runs."""
    stage1 = stage1_rows(df)
    if candidates is not None and not stage1.empty:
        cols = stage1_cell_columns(df)
        allowed = set(zip(_key(candidates, cols), candidates["pre_lr"].astype(float).round(15)))
        mine = list(zip(_key(stage1, cols), stage1["lr"].astype(float).round(15)))
        stage1 = stage1[[k in allowed for k in mine]]
    if stage1.empty or metric not in stage1.columns:
        return pd.Series(dtype=float)
    ranked = rank_settings(stage1, stage1_cell_columns(df), CHAINS[metric], tuned=("lr",))
    return ranked[ranked["rank"] == 0].set_index("_cell")["lr"]


def two_stage(df: pd.DataFrame) -> pd.Series:
    """bool per row: an FFR run trained from a stage-1 model (order 1-2)."""
    return (df["mode"] == "ffr") & (df["order"] == "1-2")


def restrict_stage1(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Keep two-stage FFR rows whose pre_lr is the stage-1 lr chosen by `metric` on the stage-1
    runs of their cell (among the pre_lr values the cell's two-stage runs have, when those
    stage-1 records are present); other rows pass unchanged."""
    if not {"mode", "order", "pre_lr", "method"} <= set(df.columns):
        return df
    two = two_stage(df)
    if not two.any():
        return df
    chosen = choose_stage1(df, metric, candidates=df[two])
    if chosen.empty:
        return df
    chosen_lr = _key(df, stage1_cell_columns(df)).map(chosen)
    keep = ~two | chosen_lr.isna() | np.isclose(df["pre_lr"].astype(float), chosen_lr.astype(float))
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


# -- the selection report: edges, ties, degenerate runs ------------------------------------
REPORT_FIELDS = ("dataset", "ratio", "mode", "order", "recipe", "method", "model", "corruption", "scale",
                 "fingerprint", "fidelity")


def selection_report(df: pd.DataFrame, rule: str = "val_worst_group") -> pd.DataFrame:
    """Per cell and tuned hyperparameter with several candidates: the chosen value, the grid's
    candidates, `edge` ('top', 'bottom' or ''), the key that broke a tie with the runner-up
    (`tie_broken_by`: empty or the rule's metric means no tie on it), seeds, and the number of
    chosen and of all runs of the cell that are degenerate (validation WA 0 at every epoch).
    FFR's stage-1 lr gets its own rows (hyperparameter 'pre_lr', mode 'ffr[1]'). For an FFR
    stage-2 lr chosen at the bottom edge, `stage1_val_wa` gives the stage-1 runs' mean
    validation WA: equal to the chosen runs' means the bottom is where FFR keeps its stage 1."""
    metric = {"val_worst_group": "val_wa", "val_worst_class": "val_wca", "oracle": "test_wa"}[rule]
    chain = CHAINS[metric]
    rows = []
    df = df.reset_index(drop=True)
    if "degenerate" not in df.columns:
        df = df.assign(degenerate=False)
    stage1 = stage1_rows(df)
    if not stage1.empty and "pre_lr" in df.columns:  # every stage-1 lr of the cells two-stage runs start in
        cols = stage1_cell_columns(df)
        cells = set(_key(df[two_stage(df)], cols))
        stage1 = stage1[_key(stage1, cols).isin(cells)]
    if not stage1.empty:
        ranked = rank_settings(stage1, stage1_cell_columns(df), chain, tuned=("lr",))
        for cell, part in ranked.groupby("_cell", sort=True):
            if len(part) < 2:
                continue
            one = stage1[_key(stage1, stage1_cell_columns(df)) == cell]
            rows.append(_report_row(one.iloc[0], "pre_lr", part, metric, one, mode="ffr[1]"))
    chosen_two = restrict_stage1(df, metric)
    cells = cell_columns(chosen_two)
    ranked = rank_settings(chosen_two, cells, chain)
    keyed = chosen_two.assign(_cell=_key(chosen_two, cells))
    for cell, part in ranked.groupby("_cell", sort=True):
        runs = keyed[keyed["_cell"] == cell]
        for param in [t for t in tuned_columns(runs) if runs[t].dropna().nunique() > 1]:
            row = _report_row(runs.iloc[0], param, part, metric, runs)
            if param == "lr" and row["edge"] == "bottom" and row["mode"] == "ffr" and not stage1.empty:
                row["stage1_val_wa"] = _stage1_mean(stage1, runs, part)
            rows.append(row)
    return pd.DataFrame(rows)


def _report_row(first: pd.Series, param: str, ranked: pd.DataFrame, metric: str, runs: pd.DataFrame,
                mode: str | None = None) -> dict:
    column = "lr" if param == "pre_lr" else param
    best = ranked[ranked["rank"] == 0].iloc[0]
    candidates = sorted({float(v) for v in ranked[column].dropna()})
    value = float(best[column])
    numeric = column != "freeze_bn"  # a yes/no choice has no edge
    edge = "" if len(candidates) < 2 or not numeric else "top" if value == candidates[-1] else \
        "bottom" if value == candidates[0] else ""
    chosen_runs = runs
    if param != "pre_lr":
        chosen_runs = runs[np.isclose(runs[column].astype(float), value)] if column in runs else runs
    row = {f: first[f] for f in REPORT_FIELDS if f in first.index}
    if mode is not None:
        row["mode"] = mode
    row.update(hyperparameter=param, chosen=value, candidates=" ".join(f"{c:g}" for c in candidates), edge=edge,
               tie_broken_by=best["tie_broken_by"] if best["tie_broken_by"] != metric else "",
               seeds=int(best["n"]), chosen_mean=float(best[metric]),
               degenerate_chosen=int(chosen_runs["degenerate"].fillna(False).astype(bool).sum()),
               degenerate_all=int(runs["degenerate"].fillna(False).astype(bool).sum()))
    return row


def _stage1_mean(stage1: pd.DataFrame, runs: pd.DataFrame, ranked: pd.DataFrame) -> float:
    """The mean validation WA of the stage-1 runs the chosen stage-2 setting started from."""
    pre = float(ranked[ranked["rank"] == 0].iloc[0]["pre_lr"])
    cell = _key(runs.iloc[[0]], stage1_cell_columns(runs)).iloc[0]
    mine = stage1[(_key(stage1, stage1_cell_columns(runs)) == cell) & np.isclose(stage1["lr"].astype(float), pre)]
    return float(mine["val_wa"].mean()) if len(mine) else float("nan")


def report_summary(report: pd.DataFrame) -> dict[str, int]:
    """Counts a reader checks first: cells reported, edges, ties broken past the metric, chosen
    degenerate runs."""
    if report.empty:
        return {"rows": 0, "edges": 0, "ties": 0, "degenerate_chosen": 0}
    return {"rows": len(report), "edges": int((report["edge"] != "").sum()),
            "ties": int((report["tie_broken_by"] != "").sum()),
            "degenerate_chosen": int(report["degenerate_chosen"].sum())}
