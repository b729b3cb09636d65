"""Sweeps: a grid of runs, its DAG of shared work, and its execution against a results store.

A grid expands (field -> values) axes over a base RunConfig; configs are canonicalised and
deduplicated by hash. The plan adds every dependency (FFR stage 1, DFR's ERM base), orders the
nodes in phases (a node runs after all its dependencies), leaves out what the store already
holds, and marks the checkpoints to keep. An executor (executors.py) runs the phases.
"""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..numerics import Numerics, check_store, expected
from ..results import ResultStore
from . import staging
from .config import RunConfig


@dataclass(frozen=True)
class Grid:
    """The product of `axes` ((field, values) pairs) applied to `base`."""

    base: RunConfig
    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def configs(self) -> list[RunConfig]:
        names = [name for name, _ in self.axes]
        unknown = [n for n in names if n not in RunConfig.__dataclass_fields__]
        if unknown:
            raise ValueError(f"Grid axes name unknown RunConfig field(s): {', '.join(unknown)}")
        values = [tuple(v) for _, v in self.axes]
        return [replace(self.base, **dict(zip(names, combo))) for combo in itertools.product(*values)]


def grid(base: RunConfig, **axes: Sequence[Any]) -> Grid:
    """Grid(base, axes) from keyword axes: grid(base, ratio=(0.95, 0.99), seed=(0, 1))."""
    return Grid(base, tuple((k, tuple(v)) for k, v in axes.items()))


def unique(configs: Iterable[RunConfig]) -> list[RunConfig]:
    """Canonical configs, first occurrence of each hash kept, order preserved."""
    seen: dict[str, RunConfig] = {}
    for c in configs:
        c = c.canonical()
        seen.setdefault(c.hash, c)
    return list(seen.values())


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


def estimated_cost(config: RunConfig) -> float:
    """A run's own training work in epochs over its real training split, to order runs only
    (set sizes are known once the run composes its data): real 1, USB 2 (every group topped up to
    the largest, twice the real set at high ratios with two scenes a class), the synthetic set 1
    (recipe 'scaled': scale), ASB the real set plus the synthetic one; a DFR refit 0."""
    if not config.trains:
        return 0.0
    synthetic = config.scale if config.recipe == "scaled" else 1.0
    last = config.stages[-1]
    size = {"real": 1.0, "usb": 2.0, "synthetic": synthetic, "asb": 1.0 + synthetic}[last]
    return config.epochs * size


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


def run_one(config: dict, folder: str, keep: Sequence[str], device: str = "cpu", threads: int | None = None,
            compile_backend: str | None = None) -> dict:
    """Execute one run (a config dict) against the store in `folder`: the unit every executor
    ships. Returns {'hash', 'label', 'status', 'error'}; a diverged run is a stored failure,
    any other exception is returned as status 'error' and not stored (a resume retries it)."""
    from .runner import Runner

    c = RunConfig.from_dict(config)
    try:
        record = Runner(ResultStore(folder), device=device, threads=threads, keep=frozenset(keep),
                        compile_backend=compile_backend).run(c)
        return {"hash": c.hash, "label": c.label(), "status": record["status"], "error": record.get("error")}
    except Exception:  # noqa: BLE001 - one run's bug must not end the sweep; it is reported
        return {"hash": c.hash, "label": c.label(), "status": "error", "error": traceback.format_exc()}


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


def run_pack(configs: Sequence[dict], folder: str, keep: Sequence[str], device: str = "cpu",
             threads: int | None = None, compile_backend: str | None = None,
             composed: Mapping[str, Any] | None = None) -> list[dict]:
    """Execute runs (config dicts) as one pack; outcomes as run_one's. If the pack cannot be
    built or fails, each run is retried alone (so a packing problem never loses a run).
    `composed`: their data sets composed ahead (modes.RunData by canonical hash)."""
    from .runner import Runner

    cs = [RunConfig.from_dict(c) for c in configs]
    try:
        runner = Runner(ResultStore(folder), device=device, threads=threads, keep=frozenset(keep),
                        compile_backend=compile_backend)
        records = runner.run_pack(cs, composed)
        return [{"hash": c.hash, "label": c.label(), "status": r["status"], "error": r.get("error")}
                for c, r in zip(cs, records)]
    except Exception:  # noqa: BLE001 - fall back to one run at a time
        note = traceback.format_exc(limit=3)
        outcomes = [run_one(c, folder, keep, device, threads, compile_backend) for c in configs]
        for o in outcomes:
            o["pack_error"] = note
        return outcomes


def run_many(configs: Sequence[dict], folder: str, keep: Sequence[str], device: str = "cpu",
             threads: int | None = None) -> list[dict]:
    """Several runs in one process (one SLURM task or one worker job)."""
    return [run_one(c, folder, keep, device, threads) for c in configs]


# executor -> (default device, default threads) of the runs it trains
_EXECUTOR_DEVICE = {"inprocess": ("cpu", None), "packed": ("cuda", None), "processes": ("cpu", 1),
                    "gpus": ("cuda", None), "slurm": ("cuda", None)}


def sweep_numerics(executor: str, options: Mapping[str, Any]) -> Numerics | None:
    """The numerics the runs of a sweep with `executor` and its `options` get (None: dry run)."""
    if executor not in _EXECUTOR_DEVICE:
        return None
    device, threads = _EXECUTOR_DEVICE[executor]
    device = options.get("device") or (options.get("devices") or [device])[0]
    return expected(device, options.get("threads") or threads, options.get("compile_backend"))


def run_sweep(
    configs: Sequence[RunConfig],
    folder: str,
    executor: str = "inprocess",
    progress: bool = True,
    keep: Sequence[str] = (),
    allow_mixed_numerics: bool = False,
    **options: Any,
) -> dict:
    """Plan the sweep over `configs` against the store in `folder` and run it with `executor`
    (a name in executors.EXECUTORS; `options` go to it); `keep`: hashes whose checkpoints to keep
    besides those the DAG needs. Raises numerics.MixedNumerics before training anything if the
    store holds runs computed in other numerics (unless `allow_mixed_numerics`). Returns a
    summary: counts of runs done, stored, failed and errored, the trainings with and without
    reuse, and the errors."""
    from .executors import EXECUTORS

    store = ResultStore(folder)
    plan = make_plan(configs, store, keep)
    first, outcomes = plan, []
    numerics = sweep_numerics(executor, options) if plan.pending else None
    if numerics is not None:
        check_store(store.records(), numerics, str(store.folder), allow_mixed_numerics)
    while True:  # staged search: each round trains what is decided; the stage-1 choices come next
        done = EXECUTORS[executor](plan, str(store.folder), progress=progress, **options)
        if done is None:  # a dry run
            break
        outcomes += done
        if not plan.deferred or not any(o["status"] in ("ok", "failed") for o in done):
            break  # nothing waits, or nothing new was stored (a stage 1 that errors stays deferred)
        plan = make_plan(configs, store, keep)
        if not plan.pending:
            break
    if executor != "dry" and store.runs.is_dir():
        store.write_index()
    return {
        **first.counts,
        "pending": first.pending,
        "deferred": plan.deferred,
        "stored_before": first.stored,
        "done": sum(o["status"] == "ok" for o in outcomes),
        "failed": sum(o["status"] == "failed" for o in outcomes),
        "errors": [o for o in outcomes if o["status"] == "error"],
    }
