"""The paper's claims (TARGETS.md, "The claims") decided from the numbers, with one rule.

A claim is one or more comparisons "arm A beats arm B on a metric" (arms: ffr_lib.tables).
Each comparison is judged on the paired per-seed differences (RULE); the claim is supported
when every comparison is, not supported when any is reversed, and inconclusive otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .results import bootstrap_ci
from .tables import STAGE1, Results, arm, mode_arms, paired

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
MIN_SEEDS = 3  # with two seeds the bootstrap interval is just their range: a sign test at p = 1/4
RULE = (
    "Rule: a comparison 'A beats B' is judged on the paired per-seed difference A - B of the metric "
    "(test WA unless stated), each seed's difference averaged over the datasets and ratios both arms have. "
    "It is SUPPORTED if the 95 % percentile-bootstrap interval of the mean difference over seeds "
    "(1,000 resamples, seed 0) lies above 0, NOT SUPPORTED if it lies below 0, and INCONCLUSIVE if it "
    f"contains 0, or with fewer than {MIN_SEEDS} seeds (one seed has no spread to judge by, and the interval of "
    "two is merely their range) or no runs. "
    "A claim made of several comparisons is supported if all are, not supported if any is not, "
    "else inconclusive."
)


@dataclass(frozen=True)
class Comparison:
    """'better' beats 'worse' on `metric` (arm specs of ffr_lib.tables)."""

    label: str
    better: Mapping[str, object]
    worse: Mapping[str, object]
    metric: str = "test_wa"
    where: Mapping[str, Sequence] = field(default_factory=dict)  # e.g. {"ratio": (0.99, 0.999)}


@dataclass(frozen=True)
class Claim:
    number: int  # as numbered in TARGETS.md
    text: str
    comparisons: tuple[Comparison, ...]


def decide(diffs: Sequence[float], n_boot: int = 1000, seed: int = 0) -> tuple[str, float, float, float]:
    """(verdict, mean, ci_lo, ci_hi) of per-seed differences under RULE."""
    x = np.asarray(diffs, dtype=float)
    if len(x) == 0:
        return INCONCLUSIVE, np.nan, np.nan, np.nan
    mean = float(x.mean())
    if len(x) < MIN_SEEDS:
        return INCONCLUSIVE, mean, np.nan, np.nan
    lo, hi = bootstrap_ci(x, n_boot=n_boot, seed=seed)
    verdict = SUPPORTED if lo > 0 else NOT_SUPPORTED if hi < 0 else INCONCLUSIVE
    return verdict, mean, lo, hi


def combine(verdicts: Iterable[str]) -> str:
    """A claim's verdict from its comparisons' verdicts."""
    verdicts = list(verdicts)
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if any(v == NOT_SUPPORTED for v in verdicts):
        return NOT_SUPPORTED
    return INCONCLUSIVE


def judge(results: Results | pd.DataFrame, claims: Sequence[Claim], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per comparison: claim, comparison, metric, seeds, cells, mean difference and its
    interval, the comparison's verdict and its claim's verdict."""
    selected = results.selected if isinstance(results, Results) else results
    rows = []
    for claim in claims:
        part = []
        for comp in claim.comparisons:
            diffs = paired(selected, comp.better, comp.worse, comp.metric, comp.where) if len(selected) else \
                pd.DataFrame({"seed": [], "diff": [], "cells": []})
            verdict, mean, lo, hi = decide(diffs["diff"].to_numpy(), n_boot=n_boot, seed=seed)
            part.append({"claim": claim.number, "text": claim.text, "comparison": comp.label, "metric": comp.metric,
                         "seeds": len(diffs), "cells": int(diffs["cells"].sum()) if len(diffs) else 0,
                         "mean_diff": mean, "ci_lo": lo, "ci_hi": hi, "verdict": verdict})
        overall = combine(p["verdict"] for p in part)
        rows += [{**p, "claim_verdict": overall} for p in part]
    return pd.DataFrame(rows)


def report(table: pd.DataFrame) -> str:
    """The judged claims as text: one line per claim with its verdict, its comparisons below."""
    lines = []
    for number, part in table.groupby("claim", sort=True):
        first = part.iloc[0]
        lines.append(f"Claim {number}: {first['text']}\n  -> {first['claim_verdict'].upper()}")
        for r in part.itertuples():
            if r.seeds == 0:
                detail = "no runs"
            else:
                ci = "no interval (1 seed)" if np.isnan(r.ci_lo) else f"95 % CI [{100 * r.ci_lo:+.1f}, {100 * r.ci_hi:+.1f}]"
                detail = f"{r.seeds} seed(s), {r.cells} cell(s): mean {100 * r.mean_diff:+.1f} points, {ci}"
            lines.append(f"     {r.comparison} ({r.metric}): {detail} -> {r.verdict}")
    return "\n".join(lines)


# -- the claims of TARGETS.md that the notebooks test ----------------------------------------
HIGH_BIAS = {"ratio": (0.99, 0.999)}
_M = mode_arms("erm")


def claims_04() -> list[Claim]:
    """Notebook 04: claim 1 (FFR beats USB and ASB with ERM at high bias) and claim 6 (FFR as
    stage 1 lifts GroupDRO, Resampling and DFR)."""
    one = Claim(1, "With ERM at high bias (99 %, 99.9 %), FFR's WA is above USB's and ASB's.", (
        Comparison("FFR > USB", _M["FFR"], _M["USB"], where=HIGH_BIAS),
        Comparison("FFR > ASB", _M["FFR"], _M["ASB"], where=HIGH_BIAS),
    ))
    six = Claim(6, "FFR as stage 1 lifts GroupDRO, Resampling and DFR.", tuple(
        Comparison(f"FFR+{m} > None+{m}", mode_arms(m)["FFR"], mode_arms(m)["None"])
        for m in ("groupdro", "resampling", "dfr")
    ))
    return [one, six]


def claims_03() -> list[Claim]:
    """Notebook 03: claims 2 (stage order), 3 (pretraining set), 4 (corrupted synthetic data)
    and 7 (bias-aware prompts)."""
    ffr = _M["FFR"]
    two = Claim(2, "Stage order: 1 then 2 beats 2 then 1, stage 1 alone and stage 2 alone on WA.", (
        Comparison("1-2 > 2-1", ffr, arm(ffr, order="2-1")),
        Comparison("1-2 > stage 1 only", ffr, arm(STAGE1)),
        Comparison("1-2 > stage 2 only (None)", ffr, _M["None"]),
    ))
    three = Claim(3, "Balanced synthetic pretraining beats biased synthetic pretraining, which beats none.", (
        Comparison("balanced > biased", ffr, arm(ffr, recipe="biased")),
        Comparison("biased > none", arm(ffr, recipe="biased"), _M["None"]),
    ))
    four = Claim(4, "With corrupted synthetic images (severity 5) FFR still beats USB and ASB.", (
        Comparison("FFR > USB at severity 5", arm(ffr, corruption=5), arm(_M["USB"], corruption=5)),
        Comparison("FFR > ASB at severity 5", arm(ffr, corruption=5), arm(_M["ASB"], corruption=5)),
    ))
    seven = Claim(7, "Bias-aware prompts beat bias-agnostic prompts.", (
        Comparison("{bias} {class} > {class}", ffr, arm(ffr, recipe="agnostic")),
    ))
    return [two, three, four, seven]
