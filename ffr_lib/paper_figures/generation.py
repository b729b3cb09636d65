"""Notebook 02, generation: the prompt sets per dataset, samples of every generator per subgroup
beside real images, the recipes' subgroup tables, the corruption chain at severities 0-5, and
the real-vs-synthetic detector's accuracy per generator and knob setting (read from the
measured tables in figures/, never retrained here). No results store is involved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..data.splits import biased_counts
from ..data.world import WorldConfig, split_counts, world_split
from ..generation.corruptions import SEVERITIES, corrupt
from ..generation.procedural import ProceduralGenerator
from ..generation.prompts import PROMPTS_FILE, load_prompts
from ..generation.recipes import Recipe, recipe_counts_table
from ..plots import sample_grid
from ..sweeps.profiles import SD_LIKE
from .common import BUILDERS, REPO_FIGURES, Artifact, heat_map, save

DATASETS = ("celeba-hq", "utk-face", "spuco-animals", "shapes-binary", "shapes-animals")
MODELS = REPO_FIGURES.parent / "models"
KNOB_SETTINGS = ((0.0, 0.0), (SD_LIKE["fingerprint"], SD_LIKE["fidelity"]), (1.0, 1.0))


def prompt_groups(n_classes: int, n_biases: int) -> list[tuple[int, int]]:
    """The (y, b) groups a dataset has: all pairs for 2 x 2; for 4 x 4 (SpuCo Animals and the
    animals world) two families of two classes, each on its own two scenes."""
    if n_classes == 2:
        return [(y, b) for y in range(2) for b in range(n_biases)]
    return [(y, b) for y in range(n_classes) for b in range(n_biases) if y // 2 == b // 2]


def prompt_table(datasets: Sequence[str] = DATASETS, seed: int = 0) -> pd.DataFrame:
    """One row per dataset, prompt set and group: the template and one drawn prompt (seed
    `seed`); sets that never name the bias give one class-only row per class (bias '(any)')."""
    rows = []
    for ds in datasets:
        entry = load_prompts(ds)
        groups = prompt_groups(len(entry.class_names), len(entry.bias_names))
        for name, pset in entry.sets.items():
            if pset.template is not None:
                y = np.array([g[0] for g in groups])
                b = np.array([g[1] for g in groups])
                drawn = pset.prompts(y, b, seed)
                for (yi, bi), text in zip(groups, drawn):
                    rows.append({"dataset": ds, "set": name, "class": entry.class_names[yi],
                                 "bias": entry.bias_names[bi], "template": pset.template, "example": text})
            if pset.class_only is not None:
                y = np.arange(len(entry.class_names))
                for yi, text in zip(y, pset.prompts(y, None, seed)):
                    rows.append({"dataset": ds, "set": name, "class": entry.class_names[yi], "bias": "(any)",
                                 "template": pset.class_only, "example": text})
    return pd.DataFrame(rows)


@BUILDERS.register("generation_prompts")
def prompts(out: str | Path, meta: Mapping) -> Artifact:
    table = prompt_table()
    return save(Artifact("generation_prompts", table), out, {**meta, "prompts_file": str(PROMPTS_FILE.name)})


def recipe_tables(layout: str = "binary", ratio: float = 0.99, scale: float = 2.0) -> pd.DataFrame:
    """Each recipe's subgroup table for the world's default training pool cut at `ratio`."""
    world = WorldConfig(layout=layout)
    pool = np.zeros((len(world.spec.class_names), len(world.spec.bias_names)), dtype=np.int64)
    for y, b, n in split_counts(world, "train"):
        pool[y, b] = n
    real = biased_counts(pool, ratio, majority=list(range(pool.shape[0])))  # class k: scene k
    parts = []
    for recipe in (Recipe("usb"), Recipe("balanced"), Recipe("biased"), Recipe("agnostic"), Recipe("scaled", scale=scale)):
        t = recipe_counts_table(real, recipe, world.spec.class_names, world.spec.bias_names, support=pool > 0)
        label = f"scaled {scale:g}x" if recipe.name == "scaled" else recipe.name
        parts.append(t.assign(dataset=f"shapes-{layout}", ratio=ratio, recipe=label))
    table = pd.concat(parts, ignore_index=True)
    return table[["dataset", "ratio", "recipe", "y", "class", "b", "bias", "real", "synthetic", "total"]]


@BUILDERS.register("generation_recipes")
def recipes(out: str | Path, meta: Mapping, ratio: float = 0.99) -> Artifact:
    table = pd.concat([recipe_tables("binary", ratio), recipe_tables("animals", ratio)], ignore_index=True)
    return save(Artifact("generation_recipes", table), out, {**meta, "ratio": ratio})


def sample_sets(layout: str, per_group: int, diffusion: str | Path | None, steps: int = 25) -> tuple[list, list[str]]:
    """Real test images, the procedural generator at KNOB_SETTINGS and (when the checkpoint
    folder exists) the diffusion model, `per_group` images of each (y, b) group each."""
    world = WorldConfig(layout=layout)
    real = world_split(world, "test")
    groups = [(y, b) for y, b in world.spec.groups()]
    y = np.repeat([g[0] for g in groups], per_group)
    b = np.repeat([g[1] for g in groups], per_group)
    sets, titles = [real], ["real"]
    for fp, fid in KNOB_SETTINGS:
        sets.append(ProceduralGenerator(world, fingerprint=fp, fidelity=fid).generate(y, b, seed=0))
        titles.append(f"procedural fp={fp:g} fid={fid:g}")
    if diffusion is not None and (Path(diffusion) / "config.json").is_file():
        from ..generation.diffusion import DiffusionGenerator

        torch.set_num_threads(max(1, torch.get_num_threads()))
        gen = DiffusionGenerator(diffusion, steps=steps, batch=len(y))
        sets.append(gen.generate(y, b, seed=0))
        titles.append(f"diffusion ({Path(diffusion).name}, {steps} steps)")
    return sets, titles


@BUILDERS.register("generation_samples")
def samples(out: str | Path, meta: Mapping, per_group: int = 4, models: str | Path = MODELS) -> list[Artifact]:
    """A grid per layout: real beside each generator, `per_group` images per (y, b) group."""
    arts = []
    for layout in ("binary", "animals"):
        sets, titles = sample_sets(layout, per_group, Path(models) / f"diffusion-{layout}")
        fig = sample_grid(sets, per_group=per_group, titles=titles, seed=0)
        table = pd.DataFrame({"column": titles, "images": [len(s) for s in sets]})
        arts.append(save(Artifact(f"generation_samples_{layout}", table, None, fig), out,
                         {**meta, "per_group": per_group, "layout": layout}))
    return arts


def corruption_examples(layout: str = "binary", seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """uint8 (groups, severities, H, W, 3): one SD-like synthetic image per group at every
    severity, and per severity the mean absolute pixel change from severity 0."""
    world = WorldConfig(layout=layout)
    groups = list(world.spec.groups())
    gen = ProceduralGenerator(world, **SD_LIKE)
    base = gen.generate(np.array([g[0] for g in groups]), np.array([g[1] for g in groups]), seed)
    hwc = base.images.permute(0, 2, 3, 1).numpy()
    grid = np.stack([[corrupt(np.ascontiguousarray(img), s, np.random.SeedSequence([seed, i, 0xC0]))
                      for s in SEVERITIES] for i, img in enumerate(hwc)])
    change = [float(np.abs(grid[:, s].astype(int) - grid[:, 0].astype(int)).mean()) for s in SEVERITIES]
    return grid, pd.DataFrame({"severity": SEVERITIES, "mean_abs_change": change})


@BUILDERS.register("generation_corruptions")
def corruptions(out: str | Path, meta: Mapping) -> Artifact:
    grid, table = corruption_examples()
    fig, axes = plt.subplots(grid.shape[0], grid.shape[1], figsize=(1.1 * grid.shape[1], 1.1 * grid.shape[0]),
                             squeeze=False)
    for i in range(grid.shape[0]):
        for s in range(grid.shape[1]):
            axes[i, s].imshow(grid[i, s], interpolation="nearest")
            axes[i, s].set_axis_off()
            if i == 0:
                axes[i, s].set_title(f"severity {s}", fontsize=9)
    fig.suptitle("pixelate + defocus blur + gaussian noise (ECCV table 4), SD-like synthetic images", fontsize=10)
    return save(Artifact("generation_corruptions", table, None, fig), out, meta)


def detector_table(figures: str | Path = REPO_FIGURES) -> pd.DataFrame:
    """Detector accuracy and synthetic-only transfer per generator and knob setting, from the
    measured tables: world_knobs.csv (procedural grid) and any diffusion_checks_*.csv."""
    figures = Path(figures)
    parts = []
    knobs = figures / "world_knobs.csv"
    if knobs.is_file():
        k = pd.read_csv(knobs)
        parts.append(k.assign(generator="procedural", source=knobs.name))
    for path in sorted(figures.glob("diffusion_checks_*.csv")):
        d = pd.read_csv(path)
        parts.append(d.assign(generator=d.get("generator", "diffusion"), source=path.name))
    if not parts:
        return pd.DataFrame(columns=["generator", "layout", "fingerprint", "fidelity", "detector_acc", "source"])
    table = pd.concat(parts, ignore_index=True)
    first = [c for c in ("generator", "layout", "fingerprint", "fidelity", "guidance", "detector_acc", "transfer_wa",
                         "transfer_ba") if c in table]
    return table[first + [c for c in table.columns if c not in first]]


@BUILDERS.register("generation_detector")
def detector(out: str | Path, meta: Mapping, figures: str | Path = REPO_FIGURES) -> Artifact:
    table = detector_table(figures)
    proc = table[table["generator"] == "procedural"]
    layouts = sorted(set(proc["layout"])) if len(proc) else []
    fig, axes = plt.subplots(max(len(layouts), 1), 2, figsize=(9, 3 * max(len(layouts), 1)), squeeze=False)
    for i, layout in enumerate(layouts):
        part = proc[proc["layout"] == layout]
        for j, (col, title, vmin) in enumerate((("detector_acc", "detector accuracy", 0.5),
                                                ("transfer_wa", "synthetic-only ERM: real-test WA", 0.0))):
            pivot = part.pivot_table(index="fingerprint", columns="fidelity", values=col)
            heat_map(axes[i, j], pivot, f"shapes-{layout}: {title}", vmin, 1.0)
            axes[i, j].set_xlabel("fidelity", fontsize=9)
            axes[i, j].set_ylabel("fingerprint", fontsize=9)
    fig.tight_layout()
    return save(Artifact("generation_detector", table, None, fig), out,
                {**meta, "measured_in": sorted(set(table["source"])) if len(table) else []})


COMPOSITE_MEASURES = (("detector_acc", "detector accuracy"), ("transfer_wa", "transfer: real-test WA"),
                      ("transfer_ba", "transfer: real-test BA"), ("lean", "class-only lean"))


def composite_generator_table(figures: str | Path = REPO_FIGURES, models: str | Path = MODELS) -> pd.DataFrame:
    """The composite benchmark's generators, one row per (layout, generator), from the measured
    tables figures/composite_generator_*.csv (scripts/composite_checks.py): detector accuracy,
    synthetic-only transfer, class-only lean. A learned generator's row names its checkpoint's
    training steps (config.json: its last run's and those of the runs it continued)."""
    import json

    rows = []
    for path in sorted(Path(figures).glob("composite_generator_*.csv")):
        sidecar = path.with_suffix(".json")
        check = json.loads(sidecar.read_text()).get("check", {}) if sidecar.is_file() else {}
        scale = (f"{check['device']}: width {check['width']}, {check['epochs']} epochs, {check['per_group']:,} a group"
                 if {"device", "width", "epochs", "per_group"} <= set(check) else "")
        for r in pd.read_csv(path).to_dict("records"):
            name = str(r["generator"])
            if name == "procedural":
                label = f"procedural stand-in (fingerprint {r['fingerprint']:g}, fidelity {r['fidelity']:g})"
            else:
                config = Path(models) / Path(name).name / "config.json"
                trained = json.loads(config.read_text())["meta"] if config.is_file() else {}
                steps = trained.get("steps_done")
                label = "learned diffusion" + (f" ({trained.get('steps_before', 0) + steps:,} steps)" if steps else "")
            rows.append({"layout": r["layout"], "generator": label, **{k: r[k] for k, _ in COMPOSITE_MEASURES},
                         "web_majority": r["web_majority"], "check": scale, "source": path.name})
    return pd.DataFrame(rows, columns=["layout", "generator", *(k for k, _ in COMPOSITE_MEASURES), "web_majority",
                                       "check", "source"])


@BUILDERS.register("generation_composite")
def composite_generators(out: str | Path, meta: Mapping, figures: str | Path = REPO_FIGURES,
                         models: str | Path = MODELS) -> Artifact:
    """Grouped bars per (layout, generator): detector accuracy (chance 0.5), transfer WA and BA,
    and the class-only lean beside the web corpus's (0.7)."""
    table = composite_generator_table(figures, models)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / max(len(table), 1)
    x = np.arange(len(COMPOSITE_MEASURES))
    for i, r in enumerate(table.itertuples()):
        values = [getattr(r, k) for k, _ in COMPOSITE_MEASURES]
        bars = ax.bar(x + (i - (len(table) - 1) / 2) * width, values, width, label=f"composite-{r.layout}: {r.generator}")
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="detector chance (0.5)")
    if len(table):
        ax.axhline(float(table["web_majority"].iloc[0]), color="black", ls="--", lw=1,
                   label=f"web corpus lean ({table['web_majority'].iloc[0]:g})")
    ax.set_xticks(x, [t for _, t in COMPOSITE_MEASURES], fontsize=10)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("share", fontsize=10)
    ax.set_title("composite benchmark: how detectable each generator is and how well it transfers", fontsize=11)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    return save(Artifact("generation_composite", table, None, fig), out,
                {**meta, "measured_in": sorted(set(table["source"]))})


NOTEBOOK_02 = ("generation_prompts", "generation_recipes", "generation_samples", "generation_corruptions",
               "generation_detector", "generation_composite")
