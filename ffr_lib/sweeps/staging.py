"""Staged search: FFR's stage-1 learning rate is chosen on stage-1 validation before any stage 2
is trained from it (as DomainBed and SubpopBench run a best-hyperparameter phase first).

A grid that crosses FFR's stage-2 settings with several stage-1 lrs (`pre_lr`; for the order
2-then-1, the lrs of its first stage, None's ERM) would train
every stage 2 from every stage 1, though selection keeps only the stage 2s of one stage 1
(selection.restrict_stage1). Here such runs are *gated*: grouped by their stage-1 cell (the
stage-1 run's config but its lr and seed), they wait until every candidate stage-1 run of the
group has a record; then the stage-1 lr is chosen on those records by the selection chain
(selection.CHAINS: mean validation WA over seeds, then BA, then loss, then the smaller lr) and
only the runs from the chosen stage 1 remain. `sweep.run_sweep` plans again after each round,
so a sweep trains the stage-1 phase, chooses, and trains the rest, and a killed sweep resumes
at whichever step it stopped. Refitting runs (DFR, AFR) are gated with the ERM runs they refit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from ..results import records_frame
from ..training.config import RunConfig
from .selection import CHAINS, rank_settings


def two_stage(config: RunConfig) -> RunConfig | None:
    """The two-stage FFR run (1-2 or 2-1) a config trains or refits (itself, or a refitting run's
    base), else None."""
    c = config.canonical()
    two = c if c.trains else c.base()
    return two if two.mode == "ffr" and two.order in ("1-2", "2-1") else None


def stage1_cell(config: RunConfig) -> str:
    """The key of a run's stage-1 cell: its stage-1 run's cell (all but lr and seed)."""
    return json.dumps(config.cell(), sort_keys=True, default=str)


def gated_groups(configs: Iterable[RunConfig]) -> dict[str, list[RunConfig]]:
    """Configs whose stage 1 is still to be chosen, by stage-1 cell: only cells whose configs
    start from two or more stage-1 lrs."""
    groups: dict[str, list[RunConfig]] = {}
    for c in configs:
        two = two_stage(c)
        if two is not None:
            groups.setdefault(stage1_cell(two.prefix()), []).append(c.canonical())
    return {k: v for k, v in groups.items() if len({two_stage(c).pre_lr for c in v}) > 1}


def candidates(group: Sequence[RunConfig]) -> list[RunConfig]:
    """The stage-1 runs a gated group chooses among: every candidate lr, every seed."""
    seen: dict[str, RunConfig] = {}
    for c in group:
        p = two_stage(c).prefix()
        seen.setdefault(p.hash, p)
    return list(seen.values())


def choose(stage1_records: Sequence[Mapping]) -> float | None:
    """The chosen stage-1 lr from the stage-1 records of one cell (ok ones), by the selection
    chain of validation WA; None without any."""
    frame = records_frame(stage1_records)
    if frame.empty:
        return None
    ranked = rank_settings(frame, [], CHAINS["val_wa"], tuned=("lr",))
    return float(ranked.loc[ranked["rank"] == 0, "lr"].iloc[0])


def resolve(configs: Sequence[RunConfig], records: Mapping[str, Mapping]) -> tuple[list[RunConfig], list[RunConfig], dict]:
    """Split `configs` into (runnable, deferred) against `records` (hash -> record): a gated
    group whose candidate stage-1 runs all have records keeps only its runs from the chosen
    stage-1 lr; a group still missing some waits (deferred), while its stage-1 runs are added
    to the runnable ones. Also returns {stage-1 cell: chosen lr} of the groups decided."""
    groups = gated_groups(configs)
    gated = {c.hash for g in groups.values() for c in g}
    runnable = [c for c in configs if c.canonical().hash not in gated]
    deferred, chosen = [], {}
    for key, group in groups.items():
        stage1 = candidates(group)
        have = [records[p.hash] for p in stage1 if p.hash in records]
        if len(have) < len(stage1):
            runnable += stage1
            deferred += group
            continue
        lr = choose([r for r in have if r.get("status", "ok") == "ok"])
        chosen[key] = lr
        if lr is not None:  # every stage 1 failed: nothing to train stage 2 from
            runnable += [c for c in group if abs(two_stage(c).pre_lr - lr) <= 1e-12 * max(1.0, lr)]
    return runnable, deferred, chosen


def staged_count(configs: Sequence[RunConfig]) -> list[RunConfig]:
    """The configs a staged sweep trains, whichever stage-1 lr it chooses: all but the gated
    runs, every candidate stage-1 run, and one candidate's gated runs per group (the group's
    runs are the same for each candidate, so any gives the count)."""
    groups = gated_groups(configs)
    gated = {c.hash for g in groups.values() for c in g}
    out = [c for c in configs if c.canonical().hash not in gated]
    for group in groups.values():
        out += candidates(group)
        first = min(two_stage(c).pre_lr for c in group)
        out += [c for c in group if two_stage(c).pre_lr == first]
    return out


def required(configs: Sequence[RunConfig], records: Mapping[str, Mapping]) -> list[RunConfig]:
    """The runs a complete store of `configs` holds, given the `records` it has (hash -> record):
    every run but those staged search discards (stage 2s, and their refits, from a stage-1 lr
    not chosen), and the stage-1 candidates of each gated group. A group still choosing needs
    all of its runs, as far as anyone can say yet. Each run once, in `configs`' order first."""
    runnable, deferred, _ = resolve(configs, records)
    out: dict[str, RunConfig] = {}
    for c in (*runnable, *deferred):
        out.setdefault(c.canonical().hash, c)
    return list(out.values())
