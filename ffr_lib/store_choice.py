"""What a notebook shows by default: the paper-scale store, or a visible fallback.

Each notebook's defaults name the paper-scale store (`paper`, `paper-ablations`; notebook 05 the
paper-scale checkpoints). A GPU sweep fills those stores later (issue #21); until a store holds a
record for every run of its profile, the notebook shows the next store of FALLBACKS that does,
and says so in a banner at its top: which store was wanted, how many of its runs are recorded,
which store is shown instead, and how to retrain on a CPU. Nothing here trains or writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

# the CPU profile: what a CPU user retrains with (docs/world.md, "The CPU profile")
CPU_PROFILE = "quick"
# a store -> the stores shown instead while it is incomplete, in order
FALLBACKS = {"paper": ("paper-v1", CPU_PROFILE), "paper-ablations": (f"{CPU_PROFILE}-ablations",)}
WHAT = {
    "paper": "the paper-scale grid under the evidence protocol, 5 seeds",
    "paper-ablations": "notebook 03 at the paper's scale under the evidence protocol, 5 seeds",
    "paper-v1": "the paper-scale grid before the evidence protocol, 3 seeds",
    CPU_PROFILE: "the CPU profile's committed store, one seed on a small world",
    f"{CPU_PROFILE}-ablations": "the CPU profile's committed ablations, one seed on a small world",
}
# the CPU profile's notebook parameters (notebooks/profiles/<cpu>.yaml) train into outputs/cpu/
RETRAIN = "`ffr notebooks --profile {cpu} --only {nb}` (into outputs/cpu/, minutes on 2 cores)"


@dataclass(frozen=True)
class StoreProgress:
    """How much of a sweep profile's store is recorded (records of shared stores count)."""

    profile: str
    recorded: int
    total: int

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.recorded == self.total


@dataclass(frozen=True)
class StoreChoice:
    """The store a notebook reads, and the banner that says why."""

    requested: str  # the sweep profile the parameters name
    sweep_profile: str  # the one read
    passed_over: tuple[StoreProgress, ...]  # incomplete stores skipped on the way
    banner: str

    @property
    def fallback(self) -> bool:
        return self.sweep_profile != self.requested


def _state(folder: Path) -> tuple:
    """What a store holds, as cheaply as the file system says it: each pack's and loose record's
    name, size and modification time (a record written, packed or replaced changes it)."""
    files = [*sorted((folder / "packs").glob("*.jsonl.gz")), *sorted((folder / "runs").glob("*.json"))]
    return tuple((f.name, st.st_size, st.st_mtime_ns) for f in files for st in (f.stat(),))


_PROGRESS: dict[tuple, StoreProgress] = {}  # (profile, stores' states) -> its progress, this process


def store_progress(profile: str, results: str | Path) -> StoreProgress:
    """Records of `profile`'s runs in `<results>/<profile>` or a store it shares (tables.SHARES),
    out of the runs a complete store holds (staged search's discarded stage 2s are not counted:
    sweeps.staging.required); reads only, never creates a folder. Kept per process while the
    stores are unchanged: `ffr figures` asks nine times, for `paper` twice, and each answer
    plans the whole grid (~9 s for `paper`)."""
    from .results import ResultStore
    from .sweeps.profiles import get_profile
    from .tables import SHARES, staged_needs

    folders = [Path(results).resolve() / name for name in (profile, *SHARES.get(profile, ()))]
    key = (profile, *((str(f), _state(f)) for f in folders if f.is_dir()))
    if key not in _PROGRESS:
        stores = [ResultStore(f) for f in folders if f.is_dir()]
        needed, lacking = staged_needs(get_profile(profile).configs(), stores)
        _PROGRESS[key] = StoreProgress(profile, len(needed) - len(lacking), len(needed))
    return _PROGRESS[key]


def _where(path: str | Path) -> str:
    """A folder as a reader finds it: relative to the repository (`results/paper`, not `../results/paper`)."""
    from .io import repo_relative

    return repo_relative(path)


def _store_line(p: StoreProgress, results: str | Path) -> str:
    state = "does not exist yet" if p.recorded == 0 else f"holds {p.recorded:,} of its {p.total:,} runs"
    return f"`{_where(Path(results) / p.profile)}`, {WHAT.get(p.profile, p.profile)}, {state}"


def choose_store(requested: str, results: str | Path, notebook: str, fallback: bool = True,
                 partial: bool = False) -> StoreChoice:
    """The store to show for `requested`: itself when complete (or `partial`, or no `fallback`),
    else the first complete store of FALLBACKS[requested]. A UsageError when none is complete."""
    from .sweeps.profiles import PROFILES

    if requested not in PROFILES:
        raise UsageError(f"sweep_profile: unknown sweep profile {requested!r}; known: {', '.join(PROFILES)}")
    chain = (requested, *FALLBACKS.get(requested, ())) if fallback and not partial else (requested,)
    passed: list[StoreProgress] = []
    for name in chain:
        progress = store_progress(name, results)
        if progress.complete or name == requested and (partial or len(chain) == 1):
            break
        passed.append(progress)
    else:
        lines = "; ".join(_store_line(p, results) for p in passed)
        raise UsageError(f"sweep_profile {requested!r}: no complete store to show: {lines}")
    retrain = RETRAIN.format(cpu=CPU_PROFILE, nb=notebook)
    if not passed:
        banner = (f"Showing `{_where(Path(results) / name)}`: {WHAT.get(name, name)}, {progress.recorded:,} of "
                  f"{progress.total:,} runs recorded. Retrain on a CPU: {retrain}.")
        return StoreChoice(requested, name, (), banner)
    skipped = "; ".join(_store_line(p, results) for p in passed)
    banner = (f"FALLBACK: showing `{_where(Path(results) / name)}`, {WHAT.get(name, name)}, instead of the default store. "
              f"{skipped[0].upper()}{skipped[1:]}: a GPU sweep fills it (`ffr sweep --profile {requested}`), and this "
              f"notebook then shows it with no change. Retrain on a CPU: {retrain}.")
    return StoreChoice(requested, name, tuple(passed), banner)


def banner_html(text: str) -> str:
    """The banner as an HTML box: amber for a fallback, blue otherwise; `code` spans kept."""
    import html
    import re

    body = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))
    colour = ("#fff3cd", "#e0a800") if text.startswith("FALLBACK") else ("#e7f1ff", "#1f6feb")
    return (f"<div style='background:{colour[0]};border-left:6px solid {colour[1]};padding:8px 12px;"
            f"font-size:110%;line-height:1.5'>{body}</div>")


def show_banner(text: str) -> None:
    """The banner as a highlighted box in Jupyter, as plain text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:  # pragma: no cover - IPython is a notebooks extra
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
        return
    display(HTML(banner_html(text)))


def shown_ratio(wanted: float, ratios) -> tuple[float, str]:
    """`wanted` if the store holds it, else its highest ratio, with a line that says so ('' when kept)."""
    held = sorted({float(r) for r in ratios})
    if not held or wanted in held:
        return wanted, ""
    return held[-1], f"this store has no runs at {wanted:g}: shown at its highest ratio, {held[-1]:g}"


def choice_meta(choice: StoreChoice) -> dict:
    """Sidecar fields: which store the defaults wanted and which was shown (paths left out, so that a
    notebook and `ffr figures` write the same sidecar)."""
    return {"default_store": choice.requested, "shown_store": choice.sweep_profile} if choice.fallback else {}


# -- notebook 05: whose checkpoints ------------------------------------------------------------
STUDY_FIELDS = ("results_dir", "dataset", "world", "ratio", "epochs", "width", "lr", "val_floor", "seeds")
STUDY_MODES = ("none", "usb", "asb", "ffr")


def cpu_study() -> dict:
    """Notebook 05's committed CPU study: the CPU profile's world, model and epochs at 0.99, seed 0;
    its models are the CPU sweep's ERM runs, their checkpoints kept in results/<cpu>/checkpoints
    (a path relative to the notebooks' folder, where they run)."""
    from .sweeps.profiles import QUICK_BASE

    return {"results_dir": f"../results/{CPU_PROFILE}", "dataset": QUICK_BASE.dataset, "world": dict(QUICK_BASE.data),
            "ratio": 0.99, "epochs": QUICK_BASE.epochs, "width": QUICK_BASE.width, "lr": QUICK_BASE.lr,
            "val_floor": QUICK_BASE.val_floor, "seeds": [0]}


@dataclass(frozen=True)
class StudyChoice:
    """The models notebook 05 shows: where their checkpoints are, their seeds and base run, and why."""

    results_dir: str
    seeds: list[int]
    base: object  # RunConfig: the study's cell (mode and seed are set per model)
    checkpoints: tuple[int, int]  # (found, needed) in results_dir
    fallback: bool
    banner: str


def _study_base(study: dict, fingerprint: float, fidelity: float):
    from .training.config import RunConfig

    return RunConfig(dataset=study["dataset"], data=tuple(dict(study["world"]).items()), ratio=study["ratio"],
                     epochs=study["epochs"], width=study["width"], lr=study["lr"], pre_lr=study["lr"],
                     val_floor=study["val_floor"], fingerprint=fingerprint, fidelity=fidelity)


def _checkpoints(study: dict, base) -> tuple[int, int]:
    """(checkpoints found, needed) of the study's final models in its results folder; reads only."""
    from .analysis.saliency_study import study_configs
    from .results import ResultStore

    folder = Path(study["results_dir"])
    store = ResultStore(folder) if folder.is_dir() else None
    configs = study_configs(base, STUDY_MODES, study["seeds"], store=store)
    found = sum(store is not None and store.checkpoint_path(c.hash).is_file() for c in configs.values())
    return found, len(configs)


def _describe(study: dict) -> str:
    seeds = ", ".join(map(str, study["seeds"]))
    return (f"{study['dataset']} at {study['ratio']:g}, width {study['width']}, {study['epochs']} epochs, "
            f"seed{'s' if len(study['seeds']) > 1 else ''} {seeds}")


def choose_study(study: dict, fingerprint: float, fidelity: float, fallback: bool = True) -> StudyChoice:
    """Notebook 05's models: `study` (its STUDY_FIELDS) when every final model's checkpoint is in its
    results folder, or with no `fallback` (missing ones then train); else the committed CPU study."""
    base = _study_base(study, fingerprint, fidelity)
    found, needed = _checkpoints(study, base)
    retrain = RETRAIN.format(cpu=CPU_PROFILE, nb="05")
    if found == needed or not fallback:
        note = "" if found == needed else f" ({needed - found} of its {needed} models have no checkpoint: they train now)"
        banner = (f"Showing the models in `{_where(study['results_dir'])}`: {_describe(study)}{note}. "
                  f"Retrain on a CPU: {retrain}.")
        return StudyChoice(study["results_dir"], list(study["seeds"]), base, (found, needed), False, banner)
    cpu = cpu_study()
    cpu_base = _study_base(cpu, fingerprint, fidelity)
    cpu_found, cpu_needed = _checkpoints(cpu, cpu_base)
    state = "does not exist yet" if not Path(study["results_dir"]).is_dir() else \
        f"holds {found} of the {needed} checkpoints"
    banner = (f"FALLBACK: showing the committed CPU study (`{_where(cpu['results_dir'])}`: {_describe(cpu)}; "
              f"{cpu_found} of {cpu_needed} checkpoints) instead of the paper-scale models. "
              f"`{_where(study['results_dir'])}` ({_describe(study)}) {state}: a GPU sweep keeps them "
              f"(`ffr sweep --profile paper` keeps every mode's ERM checkpoints), and this notebook then shows "
              f"them with no change. Retrain on a CPU: {retrain}.")
    return StudyChoice(cpu["results_dir"], list(cpu["seeds"]), cpu_base, (cpu_found, cpu_needed), True, banner)
