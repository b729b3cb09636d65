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


def store_progress(profile: str, results: str | Path) -> StoreProgress:
    """Records of `profile`'s runs in `<results>/<profile>` or a store it shares (tables.SHARES);
    reads only, never creates a folder."""
    from .results import ResultStore
    from .tables import SHARES
    from .training.profiles import get_profile

    configs = get_profile(profile).configs()
    stores = [ResultStore(Path(results) / name) for name in (profile, *SHARES.get(profile, ()))]
    stores = [s for s in stores if s.folder.is_dir()]
    recorded = sum(any(s.has(c.hash) for s in stores) for c in configs)
    return StoreProgress(profile, recorded, len(configs))


def _store_line(p: StoreProgress, results: str | Path) -> str:
    state = "does not exist yet" if p.recorded == 0 else f"holds {p.recorded:,} of its {p.total:,} runs"
    return f"`{Path(results) / p.profile}`, {WHAT.get(p.profile, p.profile)}, {state}"


def choose_store(requested: str, results: str | Path, notebook: str, fallback: bool = True,
                 partial: bool = False) -> StoreChoice:
    """The store to show for `requested`: itself when complete (or `partial`, or no `fallback`),
    else the first complete store of FALLBACKS[requested]. A UsageError when none is complete."""
    from .training.profiles import PROFILES

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
        banner = (f"Showing `{Path(results) / name}`: {WHAT.get(name, name)}, {progress.recorded:,} of "
                  f"{progress.total:,} runs recorded. Retrain on a CPU: {retrain}.")
        return StoreChoice(requested, name, (), banner)
    skipped = "; ".join(_store_line(p, results) for p in passed)
    banner = (f"FALLBACK: showing `{Path(results) / name}`, {WHAT.get(name, name)}, instead of the default store. "
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
