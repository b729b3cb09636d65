"""Notebook 05's study: the final None / USB / ASB / FFR models (ERM) of one cell and what is
measured on them: WA/BA on the real and the synthetic test set (ECCV table 3), saliency maps
of minority-subgroup images scored against the world's shape masks (figure 6, made
measurable), and how far their embeddings separate real from synthetic images (figure 5).

Models come from a results store through `Runner.model_of`: a stored checkpoint is loaded,
otherwise the run is trained once and its checkpoint kept there, so the next run loads it.
Where the store holds several settings of a cell (a sweep's lr grid), the setting chosen by
model selection (`val_worst_group` by default) is used, with all requested seeds.
Keys of the dicts below are (mode, seed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.grouped import REAL, SOURCE_NAMES, SYNTHETIC, DatasetSplits, GroupedImages
from ..metrics import evaluate_predictions
from ..results import ResultStore, aggregate, records_frame
from ..sweeps.selection import SELECTIONS
from ..sweeps.sweep import run_sweep
from ..training.config import MODE_NAMES, TUNED, RunConfig
from ..training.loop import logits_of
from ..training.models import Classifier
from ..training.modes import SYNTHETIC_TEST_START, data_root, dataset_splits, support, synthetic_set
from ..training.runner import Runner, determinism
from .embeddings import penultimate_features, source_probe, tsne_2d
from .saliency import RiseConfig, gradcam, rise, saliency_scores

Key = tuple[str, int]  # (mode, seed)
METHODS = ("RISE", "Grad-CAM")


# -- which runs ------------------------------------------------------------------------------
def _cell_key(config: RunConfig) -> str:
    return repr(sorted(config.cell().items()))


def study_configs(
    base: RunConfig,
    modes: Sequence[str] = MODE_NAMES,
    seeds: Sequence[int] = (0,),
    store: ResultStore | None = None,
    selection: str = "val_worst_group",
) -> dict[Key, RunConfig]:
    """The ERM run of each mode and seed: `base` with that mode, or, where `store` holds
    records of the same cell, the tuned setting (lr, pre_lr, freeze_bn, weight decay) that
    `selection` picks among them (FFR's stage-1 lr first, as in the tables)."""
    unknown = [m for m in modes if m not in MODE_NAMES]
    if unknown:
        raise ValueError(f"modes: unknown {', '.join(map(repr, unknown))}; known: {', '.join(MODE_NAMES)}")
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    records = [r for r in (store.records() if store is not None else []) if r.get("status", "ok") == "ok"]
    cells = {}
    for r in records:
        try:
            cells.setdefault(_cell_key(RunConfig.from_dict(r["config"])), []).append(r)
        except (TypeError, ValueError):
            continue  # a record of another schema is no candidate
    out = {}
    for mode in modes:
        target = replace(base, mode=mode, method="erm", seed=seeds[0]).canonical()
        own = cells.get(_cell_key(target), [])
        if own:
            prefix = target.prefix()
            stage1 = cells.get(_cell_key(prefix), []) if prefix is not None else []
            chosen = SELECTIONS[selection](records_frame(own + stage1))
            picks = [RunConfig.from_dict(store.get(h)["config"]) for h in chosen["hash"]]
            pick = next(c for c in picks if _cell_key(c) == _cell_key(target))
            target = replace(target, **{k: getattr(pick, k) for k in TUNED})
        for s in seeds:
            out[(mode, int(s))] = replace(target, seed=int(s)).canonical()
    return out


@dataclass(frozen=True, eq=False)
class StudyModels:
    """Final models (eval mode) and their run records, by (mode, seed)."""

    models: dict[Key, Classifier]
    configs: dict[Key, RunConfig]
    records: dict[Key, dict]
    trained: tuple[str, ...]  # hashes trained by this call (dependencies included)
    loaded: tuple[str, ...]  # hashes whose checkpoints were loaded
    # penultimate features of whole test sets, by (mode, seed, set name): (images, (N, D) features);
    # one forward pass serves the accuracy table and the probe (`set_features`)
    features: dict[tuple[str, int, str], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


def set_features(study: StudyModels, key: Key, name: str, data: GroupedImages) -> torch.Tensor:
    """float32 (N, D) penultimate features of `data` under the model of `key`, computed once per
    study and set (a cached entry counts only for the very same image tensor)."""
    cached = study.features.get((*key, name))
    if cached is None or cached[0] is not data.images:
        cached = (data.images, penultimate_features(study.models[key], data.images, _features))
        study.features[(*key, name)] = cached
    return cached[1]


def final_models(
    configs: Mapping[Key, RunConfig],
    folder: str | Path,
    device: str | torch.device = "cpu",
    threads: int | None = 1,
    progress: bool = True,
    workers: int = 1,
) -> StudyModels:
    """Each run's final model from its checkpoint in `folder`, else trained now (deterministic on
    CPU for a thread count), with its record written if missing and its checkpoint kept. With
    workers > 1 the missing runs train first in that many processes (the same records)."""
    store = ResultStore(folder)
    keep = frozenset(c.hash for c in configs.values())
    trained: list[str] = []  # hashes trained by this call (the sweep's are loaded below)
    missing = [c for c in configs.values() if not store.has(c.hash)]
    if workers > 1 and missing:
        stored_before = store.hashes()
        summary = run_sweep(missing, str(folder), executor="processes", progress=progress, device=str(device),
                            workers=workers, threads=threads, keep=keep)
        if summary["errors"]:
            raise RuntimeError(f"final_models: {len(summary['errors'])} run(s) raised; first:\n"
                               f"{summary['errors'][0]['error']}")
        trained = sorted(store.hashes() - stored_before)  # with FFR's stage 1, its own record
    runner = Runner(store, device, threads, keep=keep)
    models, records, loaded = {}, {}, []
    for key, config in tqdm(configs.items(), desc="models", disable=not progress):
        with determinism(runner.device, threads):
            model, done, reused = runner.model_of(config)
        models[key] = model.eval()
        records[key] = store.get(config.hash)
        trained += [h for h in done if h not in trained]
        loaded += [h for h in reused if h not in loaded and h not in trained and h == config.hash]
    return StudyModels(models, dict(configs), records, tuple(trained), tuple(loaded))


# -- which images ----------------------------------------------------------------------------
def cell_splits(config: RunConfig) -> DatasetSplits:
    """The dataset (world) of a run, as the runner loads it (cached in-process)."""
    return dataset_splits(config.dataset, config.data, data_root(config.dataset))


def real_and_synthetic_test(config: RunConfig) -> tuple[GroupedImages, GroupedImages]:
    """(real test set, synthetic test set) of a run: the synthetic one has the real test's
    (y, b) counts and comes from the run's generator and seed, as the runner's `test_synthetic`.
    The generator settings are read from `config` as given: pass the study's base (a canonical
    None run has them reset to 0)."""
    splits = cell_splits(config)
    counts = splits.test.count_array() * support(splits)
    return splits.test, synthetic_set(config, counts, start=SYNTHETIC_TEST_START)


def majority_of(splits: DatasetSplits) -> tuple[int, ...]:
    """Each class's majority bias: the dataset's own, else its largest training-pool group."""
    if splits.majority is not None:
        return tuple(int(b) for b in splits.majority)
    return tuple(int(b) for b in splits.train.count_array().argmax(1))


def minority_examples(
    data: GroupedImages, majority: Sequence[int], per_group: int, seed: int
) -> GroupedImages:
    """`per_group` images (drawn with `seed`) of every minority (y, b) group present, i.e. b not
    class y's majority bias, in group order (y, then b)."""
    if per_group < 1:
        raise ValueError(f"per_group must be >= 1, got {per_group}")
    rng = np.random.default_rng(seed)
    y, b = data.y.cpu().numpy(), data.b.cpu().numpy()
    picks = []
    for yi in range(data.n_classes):
        for bi in range(data.n_biases):
            idx = np.flatnonzero((y == yi) & (b == bi))
            if bi == majority[yi] or len(idx) == 0:
                continue
            if len(idx) < per_group:
                raise ValueError(f"group y{yi}b{bi} holds {len(idx)} images, per_group asks for {per_group}")
            picks.append(np.sort(rng.choice(idx, per_group, replace=False)))
    if not picks:
        raise ValueError("no minority group in the set")
    return data.subset(np.concatenate(picks))


def study_examples(
    sets: Mapping[int, tuple[GroupedImages, GroupedImages]], majority: Sequence[int], per_group: int
) -> dict[int, GroupedImages]:
    """Per seed, the images whose maps are scored: `per_group` of every minority group of its
    real test set, then as many of its synthetic one (minority_examples, drawn with the seed)."""
    return {s: GroupedImages.concat([minority_examples(real, majority, per_group, seed=s),
                                     minority_examples(synth, majority, per_group, seed=s)])
            for s, (real, synth) in sets.items()}


def grid_rows(examples: GroupedImages, per_group: int) -> list[int]:
    """Indices into a study_examples set of the first image of each minority group, real then
    synthetic, group by group: the rows of the saliency grid."""
    n_groups = len(examples) // (2 * per_group)
    return [k * per_group + source * n_groups * per_group for k in range(n_groups) for source in (0, 1)]


# -- ECCV table 3 ----------------------------------------------------------------------------
def accuracy_table(
    study: StudyModels, sets: Mapping[int, tuple[GroupedImages, GroupedImages]]
) -> pd.DataFrame:
    """One row per (mode, seed, test set): WA, BA and per-group accuracies over the (y, b)
    groups of the dataset; `sets` maps a seed to its (real, synthetic) test sets."""
    rows = []
    for (mode, seed), model in study.models.items():
        real, synth = sets[seed]
        groups = [tuple(map(int, g)) for g in np.argwhere(real.count_array() > 0)]
        for name, data in (("real", real), ("synthetic", synth)):
            with torch.no_grad():  # the head on the cached features: the forward pass the probe reads too
                logits = model.head(set_features(study, (mode, seed), name, data).to(model.head.weight.device))
            m = evaluate_predictions(logits.argmax(1).cpu(), data.y, data.b, groups, set_name=f"{name} test set")
            rows.append({"mode": mode, "seed": seed, "test": name, "wa": m["wa"], "ba": m["ba"], **m["groups"]})
    return pd.DataFrame(rows)


def over_seeds(per_seed: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Mean, std (NaN for one seed) and a bootstrap interval over seeds (`results.aggregate`)."""
    return aggregate(per_seed, by=list(by), metrics=list(metrics))


# -- saliency -------------------------------------------------------------------------------
TARGETS = ("predicted", "true")


def saliency_maps(
    model: torch.nn.Module,
    images: GroupedImages,
    method: str,
    rise_config: RiseConfig,
    gradcam_layer: str,
    classes: torch.Tensor | None = None,
) -> torch.Tensor:
    """float32 (N, H, W) maps of each image by 'RISE' or 'Grad-CAM' for `classes` (N,) (default:
    the true class y)."""
    classes = images.y if classes is None else classes
    if method == "RISE":
        return rise(model, images.images, classes, rise_config)
    if method == "Grad-CAM":
        device = next(model.parameters()).device
        return gradcam(model, images.images.to(device), gradcam_layer, classes)
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def saliency_study(
    study: StudyModels,
    examples: Mapping[int, GroupedImages],
    rise_config: RiseConfig,
    gradcam_layer: str,
    target: str = "predicted",
    tolerance: float = 0.0,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[tuple[str, int, str], torch.Tensor]]:
    """Maps of every model for its seed's `examples` (images with masks), by both methods, for
    the class each model predicts (target='predicted': where it looks when it decides) or the
    true class ('true': where the evidence for the right answer lies).

    Returns (scores, maps): one score row per (mode, seed, method, image) with the image's
    source, y, b, the model's prediction and whether it is correct, the share of saliency mass
    on the shape (NaN for a constant map), the shape's area share (chance), the pointing-game
    hit (a miss for a constant map) and `empty` (the map is constant: Grad-CAM gives all zeros
    where no channel's weighted evidence is positive); maps[(mode, seed, method)] is float32
    (N, H, W).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    rows, maps = [], {}
    jobs = [(key, method) for key in study.models for method in METHODS]
    for (mode, seed), method in tqdm(jobs, desc="saliency", disable=not progress):
        data = examples[seed]
        if data.masks is None:
            raise ValueError(f"examples of seed {seed} carry no shape masks; saliency cannot be scored")
        model = study.models[(mode, seed)]
        predicted = logits_of(model, data.images.to(next(model.parameters()).device)).argmax(1).cpu()
        classes = predicted if target == "predicted" else data.y
        sal = saliency_maps(model, data, method, rise_config, gradcam_layer, classes)
        maps[(mode, seed, method)] = sal
        scores = saliency_scores(sal, data.masks, tolerance)
        flat = sal.flatten(1)
        scores["empty"] = (flat.max(1).values == flat.min(1).values).numpy()  # no localisation at all
        scores.loc[scores["empty"], "hit"] = False  # its 'maximum' would be an arbitrary pixel
        scores.insert(0, "image", np.arange(len(data)))
        rows.append(scores.assign(mode=mode, seed=seed, method=method, source=[SOURCE_NAMES[int(g)] for g in data.g],
                                  y=data.y.numpy(), b=data.b.numpy(), predicted=predicted.numpy(),
                                  correct=(predicted == data.y).numpy()))
    return pd.concat(rows, ignore_index=True), maps


def saliency_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (mode, method, source): the image means per seed (mass on the shape over the maps that
    are not constant, its chance level the shape's area, pointing-game hit rate, share of
    constant maps, accuracy on the images), then mean and std over seeds."""
    metrics = ["mass", "area", "hit", "empty", "correct"]
    scores = scores.astype({"hit": float, "empty": float, "correct": float})
    per_seed = scores.groupby(["mode", "method", "source", "seed"], sort=False)[metrics].mean()
    out = over_seeds(per_seed.reset_index(), ["mode", "method", "source"], metrics)
    keep = ["mode", "method", "source", "n", "mass_mean", "mass_std", "area_mean", "hit_mean", "hit_std", "empty_mean",
            "correct_mean"]
    out = out[keep].rename(columns={"n": "seeds", "area_mean": "chance", "empty_mean": "empty",
                                    "correct_mean": "accuracy"})
    order = {m: i for i, m in enumerate(MODE_NAMES)}
    return out.sort_values(["method", "source", "mode"], key=lambda c: c.map(order) if c.name == "mode" else c,
                           ignore_index=True)


# -- embeddings (ECCV figure 5) --------------------------------------------------------------
def _features(model: Classifier, images: torch.Tensor) -> torch.Tensor:
    return model.features(images)


def source_separation(
    study: StudyModels,
    sets: Mapping[int, tuple[GroupedImages, GroupedImages]],
    tsne_per_source: int = 300,
    tsne_seeds: Sequence[int] | None = None,
    modes: Sequence[str] = ("usb", "asb", "ffr"),
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[Key, dict[str, np.ndarray]]]:
    """Real-vs-synthetic linear probe on each model's penultimate features of the whole real and
    synthetic test sets (held-out accuracy; 0.5 = inseparable), and t-SNE coordinates of
    `tsne_per_source` images of each source for the models of `tsne_seeds` (default: the first).

    Returns (probe rows: mode, seed, probe, n per source; panels[(mode, seed)] = {'xy' (M, 2),
    'g' (M,), 'y' (M,)}).
    """
    keys = [k for k in study.models if k[0] in modes]
    seeds = sorted({s for _, s in keys})
    tsne_seeds = seeds[:1] if tsne_seeds is None else list(tsne_seeds)
    rows, panels = [], {}
    for mode, seed in tqdm(keys, desc="embeddings", disable=not progress):
        real, synth = sets[seed]
        f_real = set_features(study, (mode, seed), "real", real)
        f_synth = set_features(study, (mode, seed), "synthetic", synth)
        rows.append({"mode": mode, "seed": seed, "probe": source_probe(f_real, f_synth, seed=seed),
                     "per_source": min(len(real), len(synth))})
        if seed in tsne_seeds:
            rng = np.random.default_rng(seed)
            i_r = np.sort(rng.choice(len(real), min(tsne_per_source, len(real)), replace=False))
            i_s = np.sort(rng.choice(len(synth), min(tsne_per_source, len(synth)), replace=False))
            xy = tsne_2d(torch.cat([f_real[i_r], f_synth[i_s]]), seed=seed)
            panels[(mode, seed)] = {
                "xy": xy,
                "g": np.r_[np.full(len(i_r), REAL), np.full(len(i_s), SYNTHETIC)],
                "y": np.r_[real.y.numpy()[i_r], synth.y.numpy()[i_s]],
            }
    return pd.DataFrame(rows), panels
