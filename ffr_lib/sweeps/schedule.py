"""Scheduling a plan: each run's estimated work, the ready queue a pool of workers takes runs
from (dependency order, longest path first), packs of runs that train together on one GPU, and
the plan cut into independent groups for several devices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..training.config import RunConfig
from ..training.methods import METHODS
from .plan import Plan


def estimated_cost(config: RunConfig) -> float:
    """A run's own training work in epochs over its real training split, to order runs only
    (set sizes are known once the run composes its data): real 1, USB 2 (every group topped up to
    the largest, twice the real set at high ratios with two scenes a class), the synthetic set 1
    (recipe 'scaled': scale), ASB the real set plus the synthetic one; a refit (DFR, AFR) 0. A
    method's reference model (JTT's identification) adds its epochs on the same set."""
    if not config.trains:
        return 0.0
    synthetic = config.scale if config.recipe == "scaled" else 1.0
    last = config.stages[-1]
    size = {"real": 1.0, "usb": 2.0, "synthetic": synthetic, "asb": 1.0 + synthetic}[last]
    return (config.epochs + METHODS[config.method].reference_epochs(dict(config.hparams))) * size


class ReadyQueue:
    """A plan's pending runs in dependency order for a pool of workers (list scheduling, longest
    path first): a run is ready once every dependency in the plan has finished, and the ready run
    with the most estimated work ahead (its own and its longest chain of dependents) goes first.

    Phase barriers idle a worker while another finishes its phase's last run: notebook 05's five
    runs (FFR stage 1 then stage 2 beside None, USB, ASB) take 386-389 s on 2 CPU workers phase
    by phase and 316-332 s in this order (bench/schedule.py)."""

    def __init__(self, plan: Plan) -> None:
        self.runs = {c.hash: c for phase in plan.phases for c in phase}
        self.waiting = {h: {d.hash for d in c.dependencies() if d.hash in self.runs} for h, c in self.runs.items()}
        self.dependents: dict[str, list[str]] = {h: [] for h in self.runs}
        for h, deps in self.waiting.items():
            for d in deps:
                self.dependents[d].append(h)
        self.ahead: dict[str, float] = {}
        for h in self.runs:
            self._work_ahead(h)
        self.order = {h: i for i, h in enumerate(self.runs)}  # ties: the plan's order
        self.ready = [h for h, deps in self.waiting.items() if not deps]
        self.left = len(self.runs)

    def _work_ahead(self, h: str) -> float:
        if h not in self.ahead:
            below = max((self._work_ahead(d) for d in self.dependents[h]), default=0.0)
            self.ahead[h] = estimated_cost(self.runs[h]) + below
        return self.ahead[h]

    def pop(self) -> RunConfig | None:
        """The next run to start, or None while every unfinished run waits on a running one."""
        if not self.ready:
            return None
        h = min(self.ready, key=lambda k: (-self.ahead[k], self.order[k]))
        self.ready.remove(h)
        return self.runs[h]

    def finished(self, h: str) -> None:
        """Run `h` is done (stored, failed or errored): its dependents may become ready."""
        self.left -= 1
        for d in self.dependents[h]:
            self.waiting[d].discard(h)
            if not self.waiting[d]:
                self.ready.append(d)


def simulate(plan: Plan, workers: int, phased: bool = False) -> tuple[float, list[tuple[float, RunConfig]]]:
    """Makespan and (start, run) of each run if `plan` ran on `workers` workers and every run
    lasted its estimated_cost: in ReadyQueue's order, or phase by phase in plan order (each run
    on the first free worker, as the pools did before ReadyQueue). bench/schedule.py sets it
    beside measured wall times."""
    starts: list[tuple[float, RunConfig]] = []
    clock = 0.0
    if phased:
        for phase in plan.phases:
            free = [clock] * workers
            for c in phase:
                w = free.index(min(free))
                starts.append((free[w], c))
                free[w] += estimated_cost(c)
            clock = max(free)
        return clock, starts
    queue, running = ReadyQueue(plan), []  # running: (end, hash)
    while queue.left:
        while len(running) < workers and (c := queue.pop()) is not None:
            starts.append((clock, c))
            running.append((clock + estimated_cost(c), c.hash))
        clock, h = min(running)
        running.remove((clock, h))
        queue.finished(h)
    return clock, starts


def pack_key(config: RunConfig) -> str:
    """Runs with one key can train as one pack (packing.py): they differ only in the seed, the
    lr, the method and the generator's knobs, none of which changes a training set's size."""
    return replace(config, seed=0, lr=0.0, method="erm", pre_lr=None, fingerprint=0.0, fidelity=0.0,
                   corruption=0).hash


def packs(phase: Sequence[RunConfig], max_pack: int) -> list[list[RunConfig]]:
    """The trainings of a phase grouped by pack_key, at most `max_pack` runs a pack (in order);
    a group larger than that is cut into packs of nearly equal size (20 by 9: 7, 6, 7)."""
    groups: dict[str, list[RunConfig]] = {}
    for c in phase:
        if c.trains:
            groups.setdefault(pack_key(c), []).append(c)
    out = []
    for g in groups.values():
        n = -(-len(g) // max_pack)  # packs needed
        bounds = [round(i * len(g) / n) for i in range(n + 1)]
        out += [g[a:b] for a, b in zip(bounds, bounds[1:])]
    return out


def work_groups(plan: Plan) -> list[Plan]:
    """The plan cut into independent sub-plans for several devices: two pending runs share a group
    when one depends on the other or when they may share a pack (pack_key), so every group runs on
    its own and packs(group phase) gives exactly the packs of the whole plan. Largest estimated
    work first (estimated_cost; longest-processing-time order for a pool of devices). The paper
    grid is 50 groups, the largest 3.6 % of its work."""
    runs = {c.hash: c for phase in plan.phases for c in phase}
    parent = {h: h for h in runs}

    def root(h: str) -> str:
        while parent[h] != h:
            parent[h] = parent[parent[h]]
            h = parent[h]
        return h

    first_of_key: dict[str, str] = {}
    for h, c in runs.items():
        for d in c.dependencies():
            if d.hash in runs:
                parent[root(h)] = root(d.hash)
        if c.trains:
            k = pack_key(c)
            parent[root(h)] = root(first_of_key.setdefault(k, h))
    members: dict[str, set[str]] = {}
    for h in runs:
        members.setdefault(root(h), set()).add(h)
    groups = [Plan([p for p in ([c for c in phase if c.hash in m] for phase in plan.phases) if p], plan.keep, 0)
              for m in members.values()]
    return sorted(groups, key=lambda g: -sum(estimated_cost(c) for p in g.phases for c in p))
