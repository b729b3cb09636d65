"""The plan of a sweep: a grid's closure (every dependency: FFR stage 1, DFR's ERM base), its
nodes ordered in phases (a node after all its dependencies), what the store already holds left
out, and the checkpoints to keep. Staged search (staging.py) defers the runs whose stage-1 lr is
still to be chosen. An executor (executors.py) runs the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..results import ResultStore
from ..training.config import RunConfig
from . import staging
from .grids import unique


def closure(configs: Iterable[RunConfig]) -> dict[str, RunConfig]:
    """Every config and, recursively, every dependency, by hash."""
    out: dict[str, RunConfig] = {}
    stack = list(unique(configs))
    while stack:
        c = stack.pop()
        if c.hash in out:
            continue
        out[c.hash] = c
        stack.extend(c.dependencies())
    return out


def depth(config: RunConfig) -> int:
    deps = config.dependencies()
    return 0 if not deps else 1 + max(depth(d) for d in deps)


def _locality(c: RunConfig) -> tuple:
    """Sort key keeping runs that share a data set together (in-process caches stay warm)."""
    return (c.dataset, str(c.data), c.ratio, c.seed, c.generator, c.fingerprint, c.fidelity, c.mode, c.method, c.lr)


def phases(configs: Iterable[RunConfig]) -> list[list[RunConfig]]:
    """The closure of `configs` in dependency order: phase k holds the nodes of depth k."""
    nodes = closure(configs).values()
    by_depth: dict[int, list[RunConfig]] = {}
    for c in nodes:
        by_depth.setdefault(depth(c), []).append(c)
    return [sorted(by_depth[d], key=_locality) for d in sorted(by_depth)]


def needed_checkpoints(configs: Iterable[RunConfig]) -> frozenset[str]:
    """Hashes of the runs some other run of the closure starts from."""
    return frozenset(d.hash for c in closure(configs).values() for d in c.dependencies())


def count_trainings(configs: Iterable[RunConfig]) -> dict[str, int]:
    """Network trainings the grid needs with reuse (each DAG node once) and without (every run
    trains its own stage 1 and every DFR run its own ERM base); DFR refits are linear fits."""

    def cost(c: RunConfig) -> int:
        return int(c.trains) + sum(cost(d) for d in c.dependencies())

    runs = unique(configs)
    nodes = closure(runs).values()
    staged = closure(staging.staged_count(runs)).values()
    return {
        "runs": len(runs),
        "nodes": len(nodes),
        "trainings_with_reuse": sum(c.trains for c in nodes),
        "trainings_without_reuse": sum(cost(c) for c in runs),
        "trainings_staged": sum(c.trains for c in staged),  # stage 2 only from the chosen stage 1
        "dfr_fits": sum(not c.trains for c in nodes),
    }


@dataclass(frozen=True)
class Plan:
    """What a sweep will do: pending nodes by phase, stored ones skipped, checkpoints kept."""

    phases: list[list[RunConfig]]
    keep: frozenset[str]
    stored: int  # nodes of the closure already in the store
    counts: dict[str, int] = field(default_factory=dict)
    deferred: int = 0  # runs waiting for their stage-1 lr to be chosen (staging.py); planned next round

    @property
    def pending(self) -> int:
        return sum(len(p) for p in self.phases)


class _StoreRecords(Mapping):
    """A store's records by hash, read on demand (staging.resolve asks for a few)."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store

    def __getitem__(self, key: str) -> dict:
        return self.store.get(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.store.has(key)

    def __iter__(self):
        return iter(self.store.hashes())

    def __len__(self) -> int:
        return len(self.store.hashes())


def make_plan(configs: Sequence[RunConfig], store: ResultStore, keep: Sequence[str] = ()) -> Plan:
    """The pending runs of `configs` by phase; `keep`: more hashes whose checkpoints to keep.
    Staged search (staging.py): runs whose stage-1 lr is still to be chosen are deferred, and
    their candidate stage-1 runs planned, until the store holds those runs' records."""
    configs = unique(configs)
    runnable, deferred, _ = staging.resolve(configs, _StoreRecords(store))
    done = store.hashes()
    all_phases = phases(runnable)
    keep = needed_checkpoints(configs) | frozenset(keep)
    # a stored dependency whose checkpoint is gone is re-trained by its dependents on demand
    pending = [[c for c in p if c.hash not in done] for p in all_phases]
    stored = sum(len(p) for p in all_phases) - sum(len(p) for p in pending)
    return Plan([p for p in pending if p], keep, stored, count_trainings(configs), len(deferred))
