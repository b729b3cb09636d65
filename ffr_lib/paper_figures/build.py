"""`ffr figures`: every figure and table of notebooks 02-04, rebuilt from stored results alone,
and `claims.csv`: every claim of the paper judged on every store (ffr_lib.claims).

Notebooks and this command call the same builders with the same arguments, so the CSVs they
write are byte for byte the same (fixed float format, seeded bootstrap); sidecars differ only in
the commit. A notebook profile maps each notebook to the sweep profile whose store it reads.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from ..claims import RULE, judge_stores
from ..errors import UsageError
from ..io import repo_relative
from ..paper_claims import CLAIMS
from ..store_choice import StoreChoice, choice_meta, choose_store, shown_ratio
from ..tables import MissingRecords, Results, load_results
from .ablations import NOTEBOOK_03
from .common import BUILDERS, REPO_FIGURES, Artifact, save
from .generation import NOTEBOOK_02
from .mitigation import NOTEBOOK_04

NOTEBOOK_STEMS = {"02": "02_generation", "03": "03_ffr_ablations", "04": "04_mitigation_combinations"}
ARTIFACTS = {"02": NOTEBOOK_02, "03": NOTEBOOK_03, "04": NOTEBOOK_04}
# notebook profile -> notebook -> sweep profile whose store it reads (02 reads none)
SWEEPS = {"quick": {"03": "quick-ablations", "04": "quick"}, "paper": {"03": "paper-ablations", "04": "paper"},
          "paper-v1": {"04": "paper-v1"}}  # paper-v1: the grid before the evidence protocol
CLAIMS_META = {"made_by": "`ffr figures` (ffr_lib.paper_figures.build.build_claims)", "profile": "every store"}
FALLBACK_PROFILES = ("paper",)  # notebook profiles whose incomplete stores fall back, as the notebooks' defaults do
# notebook profile -> builder options (the notebooks' parameters of the same name)
OPTIONS = {"quick": {"table1_ratio": 0.99}, "paper": {"table1_ratio": 0.999}, "paper-v1": {"table1_ratio": 0.999}}


def notebook_meta(notebook: str, profile: str) -> dict:
    """The sidecar fields every artifact of a notebook shares (the same from `ffr figures`)."""
    return {"made_by": f"notebooks/{NOTEBOOK_STEMS[notebook]}.ipynb (or `ffr figures`)", "profile": profile}


def probe_tables(figures: str | Path = REPO_FIGURES) -> dict[str, Path]:
    """The saliency study's real-vs-synthetic probe tables (claim 5) that exist: store label -> CSV.
    Notebook 05's default view (the paper grid's models, 2 seeds) writes the first, its `paper`
    notebook profile (3 seeds) the second."""
    figures = Path(figures)
    found = {"saliency (default view)": figures / "saliency_source_probe.csv",
             "saliency (paper)": figures / "paper" / "saliency_source_probe.csv"}
    return {label: path for label, path in found.items() if path.is_file()}


@BUILDERS.register("claims")
def build_claims(results: str | Path, out: str | Path, meta: Mapping, figures: str | Path = REPO_FIGURES) -> Artifact:
    """`claims.csv`: every claim of ffr_lib.paper_claims judged on every store under `results`
    (and the probe tables under `figures`); its sidecar names the rule and each store's runs."""
    table, stores = judge_stores(CLAIMS, results, probe_tables(figures))
    for entry in stores.values():  # the repository's path, not this checkout's: the same bytes in every clone
        if "probe_table" in entry:
            entry["probe_table"] = repo_relative(entry["probe_table"])
    extra = {"rule": RULE, "claims": "ffr_lib/paper_claims.py",
             "units": "effect, ci_lo, ci_hi and paper_value in the row's `unit` (WA points: 1.7 = 0.017 WA)",
             "paper_value": "the paper's own number for the comparison, on its datasets: orientation, never part of "
                            "a verdict", "stores": stores}
    return save(Artifact("claims", table), out, {**meta, **extra})


def build(name: str, *args, **options) -> list[Artifact]:
    """Run one builder; always a list (a builder may write several artifacts)."""
    out = BUILDERS[name](*args, **options)
    return out if isinstance(out, list) else [out]


def store_of(notebook: str, profile: str, results: str | Path) -> StoreChoice:
    """The store notebook 03 or 04 reads under a notebook profile: `paper` falls back as the notebooks'
    defaults do (ffr_lib.store_choice), every other profile reads its own store."""
    return choose_store(SWEEPS[profile][notebook], results, notebook, fallback=profile in FALLBACK_PROFILES)


def build_notebook(notebook: str, profile: str = "quick", results: str | Path = "results",
                   out: str | Path = "figures", table1_ratio: float | None = None, run_missing: bool = False,
                   close: bool = True, loaded: Results | None = None,
                   choice: StoreChoice | None = None) -> list[Artifact]:
    """Every artifact of one notebook. 03 and 04 read their sweep profile's store, or the fallback
    `choice` names (MissingRecords when runs have no record, unless `run_missing` trains them;
    `loaded`: that store, read already); 02 needs no store."""
    import matplotlib.pyplot as plt

    meta = notebook_meta(notebook, profile)
    arts: list[Artifact] = []
    if notebook == "02":
        for name in NOTEBOOK_02:
            arts += build(name, out, meta)
    else:
        store = choice.sweep_profile if choice is not None else SWEEPS[profile][notebook]
        meta = {**meta, **(choice_meta(choice) if choice is not None else {})}
        res = loaded or load_results(store, results, run_missing=run_missing).require()
        wanted = OPTIONS[profile]["table1_ratio"] if table1_ratio is None else table1_ratio
        ratio, _ = shown_ratio(wanted, res.selected["ratio"] if len(res.selected) else [])
        for name in ARTIFACTS[notebook]:
            arts += build(name, res, out, meta, **({"ratio": ratio} if name == "iclr_table1" else {}))
    if close:
        for a in arts:
            if a.figure is not None:
                plt.close(a.figure)
    return arts


def build_all(profile: str = "paper", results: str | Path = "results", out: str | Path = "figures",
              only: Sequence[str] | None = None, stream: TextIO | None = None) -> int:
    """`ffr figures`: build the notebooks' artifacts and claims.csv (`only`: notebooks and/or
    "claims"); returns 1 if a notebook lacked records."""
    import matplotlib

    stream = sys.stdout if stream is None else stream
    matplotlib.use("Agg")
    if profile not in SWEEPS:
        raise KeyError(f"unknown notebook profile {profile!r}; known: {', '.join(SWEEPS)}")
    chosen = [nb.zfill(2) for nb in (only or sorted(ARTIFACTS)) if nb != "claims"]
    for nb in chosen:
        if nb not in ARTIFACTS:
            raise KeyError(f"no artifacts for notebook {nb!r}; known: {', '.join(sorted(ARTIFACTS))}, claims")
    # the stores first: a missing record is reported at once, not after notebook 02's minutes of rendering
    code, stores, choices = 0, {}, {}
    for nb in chosen:
        if nb in SWEEPS[profile]:
            try:
                choices[nb] = store_of(nb, profile, results)
                if choices[nb].fallback:
                    stream.write(f"{NOTEBOOK_STEMS[nb]}: {choices[nb].banner}\n")
                stores[nb] = load_results(choices[nb].sweep_profile, results).require()
            except (MissingRecords, UsageError) as exc:
                stream.write(f"{NOTEBOOK_STEMS[nb]}: not built: {exc}\n")
                stream.flush()
                code = 1
    for nb in chosen:
        if nb in SWEEPS[profile] and nb not in stores:
            continue
        arts = build_notebook(nb, profile, results, out, loaded=stores.get(nb), choice=choices.get(nb))
        files = sorted({p.name for a in arts for p in a.paths})
        tables = [f for f in files if f.endswith(".csv")]
        stream.write(f"{NOTEBOOK_STEMS[nb]}: {len(tables)} tables, {sum(f.endswith('.png') for f in files)} "
                     f"figures (PNG + SVG) in {out}: {', '.join(Path(f).stem for f in tables)}\n")
    if not only or "claims" in only:
        table = build("claims", results, out, CLAIMS_META)[0].table
        stores = ", ".join(dict.fromkeys(table["store"]))
        stream.write(f"claims: {len(table)} comparisons of {table['claim'].nunique()} claims on {stores} in "
                     f"{out}: claims (README findings: python -m ffr_lib.findings --write README.md)\n")
    return code
