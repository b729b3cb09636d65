"""The paper's tables from a results store: load and select a profile's runs, then slice them
into named *arms* and aggregate over seeds.

An arm is a partial RunConfig, a dict of field -> value such as {"mode": "ffr", "order": "1"}.
A selected run belongs to it when setting those fields on the run's config changes nothing,
compared canonically: a None run matches {"mode": "none", "fingerprint": 0.3} because a run
without synthetic data ignores the generator. Fields an arm leaves out are free (dataset, ratio,
seed and the tuned lr ...). A table row aggregates one arm: each seed's metric is first averaged
over the arm's cells (its datasets and ratios, as the paper reports means over ratios), then n,
mean, std and a 95 % bootstrap interval are taken over seeds (ffr_lib.results.aggregate).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .io import repo_relative
from .results import ResultStore, aggregate, records_frame
from .sweeps.plan import closure
from .sweeps.profiles import SD_LIKE, get_profile
from .sweeps.selection import HP_PREFIX, select
from .sweeps.staging import required
from .training.config import RunConfig, labels
from .training.methods import legacy_fields

Spec = Mapping[str, object]
METRICS = ("test_wa", "test_ba")
# stores whose records another profile may reuse (same hash = same work): copied, never re-trained
SHARES = {"quick-ablations": ("quick",), "paper-ablations": ("paper",), "paper-labelfree": ("paper",)}


def shared_runs(profile: str) -> set[str]:
    """Hashes of the runs (and their dependencies) of the profiles whose stores `profile` shares."""
    return {h for other in SHARES.get(profile, ()) for h in closure(get_profile(other).configs())}

BASE: dict = {"model": "resnet-small", "corruption": 0, "recipe": "balanced", "scale": 1.0, **SD_LIKE}
MODE_SPECS: dict[str, dict] = {
    "None": {"mode": "none"},
    "USB": {"mode": "usb"},
    "ASB": {"mode": "asb"},
    "FFR": {"mode": "ffr", "order": "1-2"},
}
STAGE1: dict = {"mode": "ffr", "order": "1", "method": "erm"}


class MissingRecords(RuntimeError):
    """Runs a table needs have no record in the store; the message lists them."""


def arm(*parts: Spec, **fields_: object) -> dict:
    """A spec from BASE, then `parts` and keywords in order (later wins); a value None drops
    the field (leaves it free)."""
    out = dict(BASE)
    for p in (*parts, fields_):
        out.update(p)
    return {k: v for k, v in out.items() if v is not None}


def mode_arms(method: str = "erm", stage1: bool = False, **extra: object) -> dict[str, dict]:
    """None / USB / ASB / FFR (and FFR's stage 1 alone) with `method`, on BASE plus `extra`."""
    arms = {label: arm(spec, {"method": method}, extra) for label, spec in MODE_SPECS.items()}
    if stage1:
        arms["FFR stage 1 only"] = arm(STAGE1, extra)
    return arms


# -- loading -------------------------------------------------------------------------------
def config_of(row: Mapping) -> RunConfig:
    """The RunConfig of one flattened record row (`data` is stored as JSON, a method's
    hyperparameters as hp_<name> columns, GroupDRO's step as `dro_step`)."""
    names = {f.name for f in fields(RunConfig)} - {"data", "hparams"}
    d = {k: row[k] for k in (*names, *legacy_fields()) if k in row}
    d = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in d.items()}
    if "corruption" in d:
        d["corruption"] = int(d["corruption"] or 0)
    d["data"] = json.loads(row.get("data", "[]"))
    d["hparams"] = {k.removeprefix(HP_PREFIX): v for k, v in row.items()
                    if k.startswith(HP_PREFIX) and not (isinstance(v, float) and np.isnan(v))}
    return RunConfig.from_dict({k: v for k, v in d.items() if v is not None or k not in legacy_fields()})


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Flattened records with every RunConfig column present (fields added later, such as
    `corruption`, filled with their default) and a `config` column of RunConfig objects."""
    if frame.empty:
        return frame.assign(config=pd.Series(dtype=object))
    frame = frame.copy()
    for f in fields(RunConfig):
        if f.name in ("data", "hparams"):  # JSON, and hp_<name> columns
            continue
        if f.name not in frame.columns:
            frame[f.name] = f.default
        elif frame[f.name].isna().any() and f.default is not None:
            frame[f.name] = frame[f.name].where(frame[f.name].notna(), f.default)
    frame["corruption"] = frame["corruption"].astype(int)
    frame["config"] = [config_of(r) for r in frame.to_dict("records")]
    return frame


def import_records(source: ResultStore, target: ResultStore, hashes: Sequence[str]) -> int:
    """Copy the records (and checkpoints) of `hashes` that `source` has and `target` lacks:
    a hash names the work, so the record is the same; returns how many were copied."""
    copied = 0
    for h in sorted(set(hashes)):
        if source.has(h) and not target.has(h):
            target.write(source.get(h))  # loose in the target, whether the source's is loose or packed
            copied += 1
            if source.checkpoint_path(h).is_file() and not target.checkpoint_path(h).is_file():
                target.checkpoints.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source.checkpoint_path(h), target.checkpoint_path(h))
    return copied


@dataclass(frozen=True, eq=False)
class Results:
    """A profile's selected runs, ready to be sliced into arms."""

    profile: str  # sweep profile (ffr_lib.sweeps.profiles)
    folder: Path  # its store
    selected: pd.DataFrame  # selected rows (all seeds of the chosen setting per cell), `config` column
    missing: tuple[str, ...]  # labels of the profile's runs without a record
    rule: str  # selection rule
    runs: pd.DataFrame | None = None  # every record of the profile, before selection (selection report)

    def require(self, partial: bool = False) -> Results:
        """Self when every run has a record; with `partial`, also when some are missing (a GPU
        sweep still under way): says how many, and the tables show what is there."""
        if self.missing and partial:
            print(f"{self.folder}: partial store: {len(self.missing)} run(s) of profile {self.profile!r} have no "
                  "record yet; tables and figures show the recorded cells only")
            return self
        if self.missing:
            shown = "\n  ".join(self.missing[:20]) + (f"\n  ... {len(self.missing) - 20} more" if len(self.missing) > 20 else "")
            raise MissingRecords(f"{self.folder}: {len(self.missing)} run(s) of profile {self.profile!r} have no "
                                 f"record (run `ffr sweep --profile {self.profile}`):\n  {shown}")
        return self

    def meta(self, rows: pd.DataFrame | None = None, **extra: object) -> dict:
        """Sidecar fields: profile, selection, config hashes and seeds of `rows` (default: all)."""
        rows = self.selected if rows is None else rows
        return {"sweep_profile": self.profile, "results": repo_relative(self.folder), "selection": self.rule,
                "hashes": sorted(set(rows["hash"])) if len(rows) else [],
                "seeds": sorted({int(s) for s in rows["seed"]}) if len(rows) else [], **extra}


def staged_needs(configs: Sequence[RunConfig], stores: Sequence[ResultStore],
                 nodes: Mapping[str, RunConfig] | None = None) -> tuple[list[RunConfig], list[RunConfig]]:
    """(needed, lacking): the runs of `configs` a complete store holds, given the records any of
    `stores` has (staged search's discarded stage 2s are not among them: sweeps.staging.required),
    and those of them no store has yet."""
    nodes = closure(configs) if nodes is None else nodes

    def has(h: str) -> bool:
        return any(s.has(h) for s in stores)

    have = {h: next(s.get(h) for s in stores if s.has(h)) for h in nodes if has(h)}
    needed = required(configs, have)
    return needed, [c for c in needed if not has(c.hash)]


def unrecorded(configs: Sequence[RunConfig], store: ResultStore, nodes: Mapping[str, RunConfig] | None = None
               ) -> list[RunConfig]:
    """The runs of `configs` a complete store would hold that `store` lacks (staged_needs)."""
    return staged_needs(configs, [store], nodes)[1]


def load_results(
    profile: str,
    results: str | Path = "results",
    rule: str = "val_worst_group",
    run_missing: bool = False,
    threads: int | None = 1,
    progress: bool = False,
    workers: int = 1,
) -> Results:
    """The selected runs of `profile` from `<results>/<profile>`. With `run_missing`, the
    profile's sweep runs first (it skips stored hashes, so it is instant when the records are
    committed), on this CPU in `workers` processes of `threads` threads; records another store
    already holds (SHARES) are read from it, and copied only for a sweep (which skips what its
    own folder holds), so that loading leaves no loose copies for git to show."""
    configs = get_profile(profile).configs()
    folder = Path(results) / profile
    store = ResultStore(folder)
    nodes = closure(configs)
    shared = [ResultStore(Path(results) / other) for other in SHARES.get(profile, ())]
    if run_missing:
        for source in shared:
            import_records(source, store, list(nodes))
    if run_missing and unrecorded(configs, store, nodes):
        from .sweeps.sweep import run_sweep

        pool = {"executor": "processes", "workers": workers} if workers > 1 else {"executor": "inprocess"}
        summary = run_sweep(configs, str(folder), progress=progress, device="cpu", threads=threads, **pool)
        if summary["errors"]:
            raise RuntimeError(f"sweep {profile}: {len(summary['errors'])} run(s) raised; first:\n"
                               f"{summary['errors'][0]['error']}")
    stores = [store, *shared]
    records = [next(s.get(h) for s in stores if s.has(h)) for h in sorted(nodes) if any(s.has(h) for s in stores)]
    lacking = staged_needs(configs, stores, nodes)[1]
    missing = tuple(label for c, label in zip(lacking, labels(lacking)))
    frame = prepare(records_frame(records))
    selected = prepare(select(frame.drop(columns="config"), rule)) if len(frame) else frame
    return Results(profile, folder, selected.reset_index(drop=True), missing, rule,
                   frame.drop(columns="config") if len(frame) else frame)


# -- arms ----------------------------------------------------------------------------------
def in_arm(config: RunConfig, spec: Spec) -> bool:
    """Whether setting `spec`'s fields on `config` leaves the run unchanged (canonically)."""
    try:
        return replace(config, **spec).hash == config.hash
    except ValueError:
        return False


def arm_rows(selected: pd.DataFrame, spec: Spec, where: Mapping[str, Sequence] | None = None) -> pd.DataFrame:
    """The selected rows of an arm; `where` keeps rows whose column takes one of the values."""
    if selected.empty:
        return selected
    keep = np.array([in_arm(c, spec) for c in selected["config"]], dtype=bool)
    rows = selected[keep]
    for col, values in (where or {}).items():
        rows = rows[rows[col].isin(list(values))]
    return rows


def per_seed(rows: pd.DataFrame, metrics: Sequence[str] = METRICS, by: Sequence[str] = ()) -> pd.DataFrame:
    """Each seed's metrics averaged over the arm's cells (datasets, ratios ...) within `by`."""
    keys = [*by, "seed"]
    grouped = rows.groupby(keys, sort=True, dropna=False)
    out = grouped[list(metrics)].mean()
    out["cells"] = grouped.size()
    return out.reset_index()


def summarise(
    results: Results | pd.DataFrame,
    arms: Mapping[str, Spec],
    metrics: Sequence[str] = METRICS,
    by: Sequence[str] = (),
    where: Mapping[str, Sequence] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per arm (and value of `by`): n seeds, cells per seed, the datasets and ratios it
    averages over, and per metric mean, std, ci_lo, ci_hi over seeds. An arm without runs is a
    row with n = 0 (shown as 'not run')."""
    selected = results.selected if isinstance(results, Results) else results
    out = []
    for label, spec in arms.items():
        rows = arm_rows(selected, spec, where)
        if rows.empty:
            if not by:
                out.append(pd.DataFrame([{"row": label, "n": 0}]))
            continue
        keys = list(by) or ["_all"]
        rows = rows.assign(_all=0)
        seeds = per_seed(rows, metrics, keys)
        table = aggregate(seeds, by=keys, metrics=metrics, n_boot=n_boot, seed=seed)
        cells = seeds.groupby(keys, sort=True)["cells"].max().to_numpy()
        info = list(rows.groupby(keys, sort=True))
        table.insert(0, "row", label)
        table["cells"] = cells
        table["datasets"] = [" ".join(sorted(set(part["dataset"]))) for _, part in info]
        table["ratios"] = [" ".join(f"{r:g}" for r in sorted(set(part["ratio"]))) for _, part in info]
        out.append(table.drop(columns="_all", errors="ignore"))
    if not out:
        return pd.DataFrame(columns=["row", *by, "n"])
    table = pd.concat(out, ignore_index=True)
    table["n"] = table["n"].astype(int)
    return table


def arm_hashes(results: Results, arms: Mapping[str, Spec], where: Mapping[str, Sequence] | None = None) -> pd.DataFrame:
    """All selected rows that some arm uses (for a sidecar's hashes and seeds)."""
    parts = [arm_rows(results.selected, spec, where) for spec in arms.values()]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts).drop_duplicates("hash") if parts else results.selected.iloc[:0]


def paired(
    selected: pd.DataFrame,
    better: Spec,
    worse: Spec,
    metric: str = "test_wa",
    where: Mapping[str, Sequence] | None = None,
) -> pd.DataFrame:
    """Per seed: `better` minus `worse` on `metric`, paired by (dataset, ratio, seed) and then
    averaged over the cells both arms have; columns seed, diff, cells."""
    keys = ["dataset", "ratio", "seed"]
    a = arm_rows(selected, better, where).groupby(keys)[metric].mean().rename("a")
    b = arm_rows(selected, worse, where).groupby(keys)[metric].mean().rename("b")
    both = pd.concat([a, b], axis=1, join="inner").reset_index()
    both["diff"] = both["a"] - both["b"]
    out = both.groupby("seed", sort=True).agg(diff=("diff", "mean"), cells=("diff", "size")).reset_index()
    return out


def paired_cells(better_rows: pd.DataFrame, worse_rows: pd.DataFrame, metric: str = "test_wa") -> pd.DataFrame:
    """Two arms' selected rows (arm_rows) paired by (dataset, ratio, seed), not averaged: one row
    per pair with columns dataset, ratio, seed, a (better's metric), b (worse's) and hashes (the
    runs behind both)."""
    keys = ["dataset", "ratio", "seed"]
    sides = [rows.groupby(keys, sort=True).agg(value=(metric, "mean"), hashes=("hash", tuple)).reset_index()
             if len(rows) else pd.DataFrame(columns=[*keys, "value", "hashes"]) for rows in (better_rows, worse_rows)]
    both = sides[0].merge(sides[1], on=keys, suffixes=("_a", "_b"))
    out = pd.DataFrame({**{k: both[k] for k in keys}, "a": both["value_a"].astype(float),
                        "b": both["value_b"].astype(float), "hashes": both["hashes_a"] + both["hashes_b"]},
                       columns=[*keys, "a", "b", "hashes"])
    return out.sort_values(keys, ignore_index=True)


def percent(table: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """A printable copy: per metric 'mean [lo, hi]' in percent, 'not run' where n = 0."""
    shown = table.copy()
    for m in metrics:
        label = m.replace("test_", "").replace("synth_", "synthetic ").upper() + " %"
        if f"{m}_mean" not in shown:
            shown[label] = "not run"
            continue
        mean, lo, hi = (shown[f"{m}_{k}"] * 100 for k in ("mean", "ci_lo", "ci_hi"))
        text = mean.map("{:.1f}".format) + " [" + lo.map("{:.1f}".format) + ", " + hi.map("{:.1f}".format) + "]"
        shown[label] = text.where(shown["n"] > 0, "not run")
    drop = [c for c in shown.columns if any(c.startswith(f"{m}_") for m in metrics)]
    return shown.drop(columns=drop)
