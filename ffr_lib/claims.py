"""The claims engine: the paper's claims (TARGETS.md, "The claims") decided from the evidence by
one rule, against every store that holds it.

A claim is one or more comparisons "A beats B": arms of ffr_lib.tables judged on a results store,
modes of the saliency study's real-vs-synthetic probe table, or a theorem checked on count
tables (a function that returns the check's outcome). The claims themselves are declared in
ffr_lib.paper_claims; this module holds the rule (RULE, `decide`) and applies it (`judge` on one
store, `judge_stores` on all). Effects are in points (a difference of 0.017 in WA is 1.7).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .tables import BASE, Results, arm_rows, load_results, paired_cells

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
MIN_SEEDS = 3  # paired seeds in every cell
MIN_PAIRS = 6  # paired differences in all: the fewest at which "all of one sign" has sign-test p < 0.025
N_BOOT = 10_000
LEVEL = 0.95
DECIMALS = 9  # effects are rounded to 1e-9 points, so float summation noise never decides a verdict
THEORY_STORE = "theory (notebook 01)"
NO_STORE = "(no store)"
RULE = (
    "Rule: a comparison 'A beats B' pairs A's and B's selected runs by cell (dataset, ratio) and seed and takes "
    "the differences A - B of the metric (test WA unless stated), in points. Its effect is the mean over cells of "
    "each cell's mean difference. Its 95 % interval is a percentile bootstrap stratified by cell (10,000 "
    "resamples, seed 0): every resample draws each cell's seeds with replacement within that cell, never across "
    "cells (rliable's stratified bootstrap), and recomputes the mean over cells. The comparison is SUPPORTED if "
    "the interval lies above 0, NOT SUPPORTED (reversed) if it lies below 0, and INCONCLUSIVE if it contains 0 "
    f"or the evidence is too thin: no paired runs, fewer than {MIN_SEEDS} paired seeds in a cell, or fewer than "
    f"{MIN_PAIRS} paired differences in all. Why: a percentile interval cannot be wider than the data's range, so "
    "with 3 seeds in one cell its 2.5 % quantile is the smallest seed and 'supported' would mean 'all three "
    "positive', a sign test at p = 1/8. n differences all of one sign have sign-test p = 2^-n, below the "
    f"interval's 2.5 % tail only from n = {MIN_PAIRS} (p = 1/64); and with fewer than {MIN_SEEDS} seeds a cell's "
    "resamples take one or three values, which says nothing of its spread. Beside the verdict: the cells whose "
    "mean difference has the claimed sign, and the probability of improvement P(A > B) (rliable's: in each cell "
    "the share of (A seed, B seed) pairs where A is higher, ties counting 1/2, averaged over cells). A claim of "
    "several comparisons is supported if all are, not supported if any is reversed, else inconclusive; it is "
    "judged on each store apart. Claim 8 is a theorem: it is checked exhaustively on count tables, not bootstrapped."
)

Spec = Mapping[str, object]


@dataclass(frozen=True)
class PaperRef:
    """Where the paper states a comparison and, when a paper_numbers.yaml table holds it, its value:
    the mean WA of the table's rows matching `better` minus that of `worse` (worse None: the
    matching row states the difference itself), in points."""

    where: str
    table: str | None = None
    better: Spec = field(default_factory=dict)
    worse: Spec | None = None

    def value(self) -> float:
        if self.table is None:
            return float("nan")
        from .paper_numbers import paper_table

        df = paper_table(self.table)

        def mean_wa(spec: Spec) -> float:
            rows = df[np.logical_and.reduce([df[k] == v for k, v in spec.items()])]
            if rows.empty:
                raise KeyError(f"paper table {self.table!r} has no row matching {dict(spec)}")
            return float(rows["wa"].mean())

        return mean_wa(self.better) - (mean_wa(self.worse) if self.worse is not None else 0.0)


@dataclass(frozen=True)
class Comparison:
    """'better' beats 'worse' on `metric`: arm specs (ffr_lib.tables) for run evidence, column
    filters of the probe table (e.g. {"mode": "usb"}) for probe evidence, unused for a theorem."""

    label: str  # "A > B"
    better: Spec = field(default_factory=dict)
    worse: Spec = field(default_factory=dict)
    metric: str = "test_wa"
    paper: PaperRef | None = None


@dataclass(frozen=True)
class Evidence:
    """One comparison judged on one store (effect and interval in points)."""

    verdict: str
    effect: float = float("nan")
    ci_lo: float = float("nan")
    ci_hi: float = float("nan")
    p_improve: float = float("nan")
    cells: int = 0
    seeds: int = 0  # paired seeds per cell (the fewest, where cells differ)
    holds: int = 0  # cells whose mean difference has the claimed sign
    note: str = ""


@dataclass(frozen=True)
class Claim:
    """One claim of TARGETS.md. `where` and `scope` name its cells: `where` keeps rows whose column
    takes one of the values (e.g. {"ratio": (0.99, 0.999)}), `scope` keeps the (dataset, ratio)
    cells where that arm ran (an ablation's own cells). `evidence`: runs | probe | theory; a
    theory claim's `check` returns an Evidence per comparison label."""

    number: str  # as in TARGETS.md ("6b": a neighbour the paper states beside claim 6)
    text: str
    comparisons: tuple[Comparison, ...]
    where: Mapping[str, Sequence] = field(default_factory=dict)
    scope: Spec | None = None
    evidence: str = "runs"
    unit: str = "WA points"
    check: Callable[[], Mapping[str, Evidence]] | None = None


# -- the rule ----------------------------------------------------------------------------------
def stratified_bootstrap(cells: Sequence[np.ndarray], n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(n_boot,) resampled effects: each cell's values (its seeds' differences) drawn with
    replacement within the cell, then the mean over cells of each cell's mean."""
    rng = np.random.default_rng(seed)
    total = np.zeros(n_boot)
    for x in cells:
        x = np.asarray(x, dtype=float)
        total += x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    return total / len(cells)


def probability_of_improvement(cells: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """rliable's P(A > B): per cell the share of (a_i, b_j) pairs with a_i > b_j, ties 1/2,
    averaged over cells. `cells`: (a, b) value arrays per cell."""
    shares = []
    for a, b in cells:
        a, b = np.asarray(a, dtype=float)[:, None], np.asarray(b, dtype=float)[None, :]
        shares.append(float(((a > b) + 0.5 * (a == b)).mean()))
    return float(np.mean(shares))


def decide(pairs: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> Evidence:
    """The verdict of one comparison from its pairs (columns cell, seed, a, b; one row per
    paired seed of a cell), under RULE."""
    if pairs.empty:
        return Evidence(INCONCLUSIVE, note="no runs")
    cells = [part for _, part in pairs.groupby("cell", sort=True)]
    diffs = [(p["a"] - p["b"]).to_numpy(dtype=float) for p in cells]
    means = np.round([d.mean() for d in diffs], DECIMALS)
    fewest, total = min(len(d) for d in diffs), sum(len(d) for d in diffs)
    lo = hi = float("nan")
    if fewest >= 2:  # one seed in a cell: no spread, no interval
        alpha = (1 - LEVEL) / 2
        boot = stratified_bootstrap(diffs, n_boot, seed)
        lo, hi = (float(v) for v in np.round(np.quantile(boot, [alpha, 1 - alpha]), DECIMALS))
    if fewest < MIN_SEEDS:
        verdict, note = INCONCLUSIVE, f"{fewest} paired seed(s) in a cell (< {MIN_SEEDS})"
    elif total < MIN_PAIRS:
        verdict, note = INCONCLUSIVE, f"{total} paired differences (< {MIN_PAIRS})"
    elif lo > 0:
        verdict, note = SUPPORTED, ""
    elif hi < 0:
        verdict, note = NOT_SUPPORTED, "reversed: the interval lies below 0"
    else:
        verdict, note = INCONCLUSIVE, "the interval contains 0"
    p_improve = probability_of_improvement([(p["a"].to_numpy(), p["b"].to_numpy()) for p in cells])
    effect = float(np.round(means.mean(), DECIMALS))
    return Evidence(verdict, effect, lo, hi, p_improve, len(cells), fewest, int((means > 0).sum()), note)


def combine(verdicts: Iterable[str]) -> str:
    """A claim's verdict from its comparisons' verdicts."""
    verdicts = list(verdicts)
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if any(v == NOT_SUPPORTED for v in verdicts):
        return NOT_SUPPORTED
    return INCONCLUSIVE


# -- evidence ----------------------------------------------------------------------------------
class ArmCache:
    """One store's selected rows sliced into arms, each spec's membership computed once (an
    arm's test hashes every selected config, and a claim list repeats arms)."""

    def __init__(self, selected: pd.DataFrame, fixed: Mapping[str, object] | None = None) -> None:
        self.selected = selected
        self.fixed = dict(fixed or {})  # a store's view (`claim_views`): BASE's values it replaces
        self._rows: dict = {}

    def rows(self, spec: Spec, where: Mapping[str, Sequence] | None = None) -> pd.DataFrame:
        # only where the arm kept BASE's value: an arm that sets a field (a biased recipe,
        # severity 5) is the comparison itself and stays as declared
        spec = {**spec, **{k: v for k, v in self.fixed.items() if k in spec and spec[k] == BASE.get(k)}}
        key = tuple(sorted((k, repr(v)) for k, v in spec.items()))
        if key not in self._rows:
            self._rows[key] = arm_rows(self.selected, spec)
        rows = self._rows[key]
        for col, values in (where or {}).items():
            rows = rows[rows[col].isin(list(values))]
        return rows


def run_pairs(arms: ArmCache, claim: Claim, comp: Comparison) -> pd.DataFrame:
    """A comparison's pairs on one store's selected runs, within the claim's cells, in points;
    columns cell, seed, a, b, hashes."""
    columns = ["cell", "seed", "a", "b", "hashes"]
    if arms.selected.empty:
        return pd.DataFrame(columns=columns)
    pairs = paired_cells(arms.rows(comp.better, claim.where), arms.rows(comp.worse, claim.where), comp.metric)
    if claim.scope is not None:
        rows = arms.rows(claim.scope, claim.where)
        cells = set(zip(rows["dataset"], rows["ratio"]))
        pairs = pairs[np.array([c in cells for c in zip(pairs["dataset"], pairs["ratio"])], dtype=bool)]
    cell = [f"{d} @ {r:g}" for d, r in zip(pairs["dataset"], pairs["ratio"])]
    return pd.DataFrame({"cell": cell, "seed": pairs["seed"], "a": 100 * pairs["a"], "b": 100 * pairs["b"],
                         "hashes": pairs["hashes"]}, columns=columns)


def probe_pairs(probe: pd.DataFrame, comp: Comparison) -> pd.DataFrame:
    """Pairs from a per-seed table (columns seed, `comp.metric`, and those `better`/`worse` filter
    on, e.g. the saliency study's `mode, seed, probe`): one cell, paired by seed, in points."""
    sides = []
    for spec in (comp.better, comp.worse):
        keep = np.logical_and.reduce([probe[k] == v for k, v in spec.items()]) if spec else np.ones(len(probe), bool)
        sides.append(probe[keep].groupby("seed")[comp.metric].mean())
    both = pd.concat(sides, axis=1, join="inner", keys=["a", "b"]).reset_index()
    return pd.DataFrame({"cell": "study cell", "seed": both["seed"], "a": 100 * both["a"], "b": 100 * both["b"]})


def _rows(claim: Claim, store: str, judged: Mapping[str, Evidence]) -> list[dict]:
    """COLUMNS rows of one claim on one store from its comparisons' evidence."""
    overall = combine(e.verdict for e in judged.values())
    out = []
    for comp in claim.comparisons:
        ev = judged[comp.label]
        unit = claim.unit if claim.evidence != "runs" or comp.metric == "test_wa" else f"{comp.metric} points"
        out.append({"claim": claim.number, "text": claim.text, "comparison": comp.label, "store": store,
                    "cells": ev.cells, "seeds": None if claim.evidence == "theory" else ev.seeds,
                    "effect": ev.effect, "ci_lo": ev.ci_lo, "ci_hi": ev.ci_hi, "p_improve": ev.p_improve,
                    "cells_direction_holds": ev.holds, "verdict": ev.verdict, "claim_verdict": overall,
                    "paper_value": comp.paper.value() if comp.paper else float("nan"), "unit": unit,
                    "note": ev.note, "paper_ref": comp.paper.where if comp.paper else ""})
    return out


COLUMNS = ["claim", "text", "comparison", "store", "cells", "seeds", "effect", "ci_lo", "ci_hi", "p_improve",
           "cells_direction_holds", "verdict", "claim_verdict", "paper_value", "unit", "note", "paper_ref"]


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a table of COLUMNS; counts are integers, a theorem's seeds empty."""
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.astype({"cells": "Int64", "seeds": "Int64", "cells_direction_holds": "Int64"})


def judge(results: Results | pd.DataFrame, claims: Sequence[Claim], store: str | None = None,
          n_boot: int = N_BOOT, seed: int = 0, keep_empty: bool = True, used: set | None = None,
          fixed: Mapping[str, object] | None = None) -> pd.DataFrame:
    """The run claims judged on one store's selected runs: one row per comparison (COLUMNS). A
    claim without paired runs for any comparison is kept as 'no runs', or left out if not
    `keep_empty`. `used` collects the hashes of the runs read; `fixed` replaces those of BASE's
    values that an arm kept (a view of the store, `claim_views`)."""
    arms = ArmCache(results.selected if isinstance(results, Results) else results, fixed)
    store = store or (results.profile if isinstance(results, Results) else "selected runs")
    rows = []
    for claim in claims:
        if claim.evidence != "runs":
            continue
        pairs = {c.label: run_pairs(arms, claim, c) for c in claim.comparisons}
        if all(p.empty for p in pairs.values()) and not keep_empty:
            continue
        rows += _rows(claim, store, {k: decide(p, n_boot, seed) for k, p in pairs.items()})
        if used is not None:
            used.update(h for p in pairs.values() for hs in p["hashes"] for h in hs)
    return _frame(rows)


# stores that exist to choose grids, not to test claims: one seed, lrs chosen to be too wide
NOT_JUDGED = ("paper-pilot", "paper-pilot-cpu")


# stores judged once per backbone (issue #23: the ImageNet-pretrained one and the one from scratch)
PER_BACKBONE = ("composite", "composite-smoke")


def claim_views(profile: str) -> list[tuple[str, dict]]:
    """(store label, arm fields) under which a profile's store is judged. The claims' arms are
    written on the world's base (ffr_lib.tables.BASE: the small ResNet, SD-like knobs); a
    PER_BACKBONE store is judged once per model, "<profile> [<model>]", and each of BASE's fields
    that the profile's runs of that model hold at one value takes that value in every arm that
    kept BASE's (the composite profile's learned sets carry no knobs: fingerprint and fidelity 0)."""
    if profile not in PER_BACKBONE:
        return [(profile, {})]
    from .sweeps.profiles import get_profile

    configs = get_profile(profile).configs()
    views = []
    for model in sorted({c.model for c in configs}):
        own = [c for c in configs if c.model == model]
        fixed: dict = {"model": model}
        for key in BASE:
            values = {getattr(c, key) for c in own}
            if key != "model" and len(values) == 1:
                fixed[key] = values.pop()
        views.append((f"{profile} [{model}]", fixed))
    return views


def store_view(profile: str, backbone: str = "") -> dict:
    """The arm fields a notebook shows `profile`'s store with: `backbone`'s view of a
    PER_BACKBONE store (`claim_views`), none for any other store."""
    views = {fixed["model"]: fixed for _, fixed in claim_views(profile) if "model" in fixed}
    if profile not in PER_BACKBONE:
        if backbone:
            raise ValueError(f"backbone: {profile} is judged on one backbone; leave backbone empty")
        return {}
    if backbone not in views:
        raise ValueError(f"backbone: {profile} holds {', '.join(sorted(views))}; got {backbone!r}")
    return views[backbone]


def store_profiles(results_dir: str | Path) -> list[str]:
    """The sweep profiles with a store (`runs/` or `packs/`) under `results_dir`, sorted; the
    pilots (NOT_JUDGED) left out."""
    from .sweeps.profiles import PROFILES

    return sorted(p for p in PROFILES.names() if p not in NOT_JUDGED
                  and any((Path(results_dir) / p / sub).is_dir() for sub in ("runs", "packs")))


def judge_stores(claims: Sequence[Claim], results_dir: str | Path = "results",
                 probes: Mapping[str, str | Path] | None = None, n_boot: int = N_BOOT,
                 seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Every claim against every store that holds its evidence: run claims on each profile's
    store under `results_dir`, probe claims on each named probe table (store label -> CSV),
    theorem claims by their check. A store that lacks a record of its profile's grid is not judged
    (its sidecar entry says how far it is). Returns the table (COLUMNS; a claim no store holds gets
    rows with store NO_STORE and 'no runs in any store') and, per run store, its sidecar fields."""
    from .store_choice import store_progress

    tables, meta = [], {}
    for profile in store_profiles(results_dir):
        progress = store_progress(profile, results_dir)
        if not progress.complete:  # a grid filled in slices is judged once, whole (verdicts never drift)
            meta[profile] = {"in_progress": True, "recorded": progress.recorded, "runs": progress.total}
            continue
        res = load_results(profile, results_dir)
        used: set = set()
        for label, fixed in claim_views(profile):
            tables.append(judge(res, claims, label, n_boot, seed, keep_empty=False, used=used, fixed=fixed))
        rows = res.selected[res.selected["hash"].isin(used)] if len(res.selected) else res.selected
        meta[profile] = {**res.meta(rows), "missing_records": len(res.missing)}
    for label, path in (probes or {}).items():
        if not Path(path).is_file():
            continue
        probe = pd.read_csv(path)
        for claim in (c for c in claims if c.evidence == "probe"):
            judged = {c.label: decide(probe_pairs(probe, c), n_boot, seed) for c in claim.comparisons}
            tables.append(_frame(_rows(claim, label, judged)))
        meta[label] = {"probe_table": str(path)}
    for claim in (c for c in claims if c.evidence == "theory"):
        tables.append(_frame(_rows(claim, THEORY_STORE, claim.check())))
    table = pd.concat(tables, ignore_index=True) if tables else _frame([])
    order = {c.number: i for i, c in enumerate(claims)}
    for claim in claims:
        if claim.number not in set(table["claim"]):
            none = {c.label: Evidence(INCONCLUSIVE, note="no runs in any store") for c in claim.comparisons}
            table = pd.concat([table, _frame(_rows(claim, NO_STORE, none))], ignore_index=True)
    table = table.assign(_c=table["claim"].map(order), _i=range(len(table)))
    return table.sort_values(["_c", "_i"]).drop(columns=["_c", "_i"]).reset_index(drop=True), meta


def report(table: pd.DataFrame) -> str:
    """The judged claims as text: per claim and store its verdict, its comparisons below."""
    lines = []
    for (number, store), part in table.groupby(["claim", "store"], sort=False):
        first = part.iloc[0]
        lines.append(f"Claim {number} ({store}): {first['text']}\n  -> {first['claim_verdict'].upper()}")
        for r in part.itertuples():
            if not r.cells:
                detail = r.note
            else:
                parts = [f"{r.cells} cell(s)" + (f" x {r.seeds} seed(s)" if not pd.isna(r.seeds) else ""),
                         f"{r.effect:+.{1 if r.unit.endswith('points') else 4}f} {r.unit}"]
                if not pd.isna(r.seeds):
                    parts.append("no interval" if np.isnan(r.ci_lo) else f"95 % CI [{r.ci_lo:+.1f}, {r.ci_hi:+.1f}]")
                    parts.append(f"P(A>B) {r.p_improve:.2f}")
                parts.append(f"direction holds in {r.cells_direction_holds}/{r.cells}")
                detail = ", ".join(parts) + (f"; {r.note}" if r.note else "")
            lines.append(f"     {r.comparison}: {detail} -> {r.verdict}")
    return "\n".join(lines)
