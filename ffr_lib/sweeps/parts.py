"""A grid cut into N parts of about equal work, each a slice that fits one GPU call (`ffr sweep
--part K/N`; issue #21, docs/performance.md "How the evidence runs proceed").

A part holds whole families: a two-stage FFR run goes with every run trained from the same
stage-1 cell (each candidate lr and seed: staged search chooses among them, and a stage 2 in
another call would train its stage 1 again), any other run with the rest of its cell (every lr
and seed). Families go to parts greedily, the most work first, each to the part with the least
so far (ties: the lower part), so every part ends within one family's work of an equal share.
Work is schedule.estimated_cost over each family's trainings, its stage 1s included, and
REFIT_COST for each refit.
"""

from __future__ import annotations

from collections.abc import Sequence, Set

from ..training.config import RunConfig
from .plan import closure
from .schedule import estimated_cost
from .staging import stage1_cell, two_stage

# a refit (DFR, AFR) in estimated_cost's units (epochs over the real split): its median 0.39 s
# against 0.050 s a unit in the H200 records bench/grid_estimate.py reads
REFIT_COST = 8.0


def cost(config: RunConfig) -> float:
    """A run's work for balancing parts: its training's, or a refit's."""
    return estimated_cost(config) if config.trains else REFIT_COST


def family(config: RunConfig) -> str:
    """The key of the family a run goes with (its stage-1 cell, else its own cell)."""
    two = two_stage(config)
    if two is not None:
        return stage1_cell(two.prefix())
    c = config.canonical()  # a stage-1 run that is also a run of the grid joins its stage 2s
    return stage1_cell(c if c.trains else c.base())


def split(configs: Sequence[RunConfig], n: int, shared: Set[str] = frozenset()) -> list[list[RunConfig]]:
    """`configs` in `n` parts (each in the configs' order; some may be empty when families are
    fewer than parts). `shared`: hashes of runs another profile's store holds (tables.SHARES;
    the sweep copies their records), which weigh nothing."""
    if n < 1:
        raise ValueError(f"parts: n must be at least 1, got {n}")
    families: dict[str, list[RunConfig]] = {}
    for c in configs:
        families.setdefault(family(c), []).append(c)
    work = {key: sum(cost(c) for c in closure(members).values() if c.hash not in shared)
            for key, members in families.items()}
    load, owner = [0.0] * n, {}
    for key in sorted(families, key=lambda k: (-work[k], k)):
        k = min(range(n), key=lambda i: (load[i], i))
        owner[key] = k
        load[k] += work[key]
    parts: list[list[RunConfig]] = [[] for _ in range(n)]
    for c in configs:
        parts[owner[family(c)]].append(c)
    return parts
