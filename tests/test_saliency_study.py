"""Notebook 05's study: run choice, models trained once then loaded, test sets that match the
runner's, minority examples, saliency scores, the source probe and the figures (tiny world)."""

from dataclasses import replace

import matplotlib
import numpy as np
import pytest
import torch

from ffr_lib.analysis import RiseConfig, mask_area
from ffr_lib.analysis.saliency_figures import saliency_grid, tsne_panels
from ffr_lib.analysis.saliency_study import (
    METHODS,
    accuracy_table,
    cell_splits,
    final_models,
    grid_rows,
    majority_of,
    minority_examples,
    real_and_synthetic_test,
    saliency_study,
    saliency_summary,
    source_separation,
    study_configs,
    study_examples,
)
from ffr_lib.data.grouped import REAL, SYNTHETIC
from ffr_lib.results import ResultStore
from ffr_lib.sweeps.profiles import SD_LIKE, TINY_WORLD
from ffr_lib.training.config import RunConfig

matplotlib.use("Agg")

BASE = RunConfig(data=TINY_WORLD, ratio=0.95, epochs=1, width=8, batch_size=64, **SD_LIKE)
MODES = ("none", "usb", "asb", "ffr")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("saliency")
    configs = study_configs(BASE, seeds=(0,))
    first = final_models(configs, folder, progress=False)
    second = final_models(configs, folder, progress=False)
    return folder, configs, first, second


def _fake_record(config: RunConfig, val_wa: float) -> dict:
    config = config.canonical()
    metrics = {"wa": val_wa, "ba": val_wa, "groups": {}}
    return {"hash": config.hash, "config": config.to_dict(), "status": "ok", "val": metrics, "test": metrics}


def test_study_configs_without_a_store_are_the_base_per_mode_and_seed():
    configs = study_configs(BASE, seeds=(0, 2))
    assert sorted(configs) == sorted((m, s) for m in MODES for s in (0, 2))
    for (mode, seed), c in configs.items():
        assert c == replace(BASE, mode=mode, seed=seed).canonical() and c.method == "erm"
    assert configs[("none", 0)].fingerprint == 0.0  # canonical: None ignores the generator
    assert configs[("ffr", 0)].pre_lr == BASE.lr and configs[("ffr", 0)].order == "1-2"
    with pytest.raises(ValueError, match="unknown 'erm'"):
        study_configs(BASE, modes=("erm",))
    with pytest.raises(ValueError, match="seeds"):
        study_configs(BASE, seeds=())


def test_study_configs_take_the_setting_selection_picks_from_the_store(tmp_path):
    store = ResultStore(tmp_path)
    for lr, wa in ((1e-3, 0.3), (1e-4, 0.6)):
        for seed in (0, 1):
            store.write(_fake_record(replace(BASE, mode="usb", lr=lr, seed=seed), wa + 0.01 * seed))
    store.write(_fake_record(replace(BASE, mode="usb", lr=1e-2, epochs=5), 0.9))  # another cell: ignored
    # FFR: stage 1 chosen first (pre_lr 1e-4 wins there), then stage 2 among its runs
    for pre_lr, wa in ((1e-3, 0.2), (1e-4, 0.5)):
        store.write(_fake_record(replace(BASE, mode="ffr", order="1", lr=pre_lr), wa))
    store.write(_fake_record(replace(BASE, mode="ffr", lr=1e-3, pre_lr=1e-3), 0.9))
    store.write(_fake_record(replace(BASE, mode="ffr", lr=1e-5, pre_lr=1e-4), 0.4))
    configs = study_configs(BASE, modes=("usb", "ffr", "none"), seeds=(0, 1, 2), store=store)
    assert [configs[("usb", s)].lr for s in (0, 1, 2)] == [1e-4, 1e-4, 1e-4]
    assert configs[("usb", 0)].epochs == BASE.epochs
    assert (configs[("ffr", 0)].lr, configs[("ffr", 0)].pre_lr) == (1e-5, 1e-4)
    assert configs[("none", 0)].lr == BASE.lr  # no records: the base


def test_models_are_trained_once_then_loaded(study):
    folder, configs, first, second = study
    ffr = configs[("ffr", 0)]
    assert set(first.trained) == {c.hash for c in configs.values()} | {ffr.prefix().hash}
    assert first.loaded == ()
    assert second.trained == () and set(second.loaded) == {c.hash for c in configs.values()}
    store = ResultStore(folder)
    for key, config in configs.items():
        assert store.checkpoint_path(config.hash).is_file() and store.has(config.hash)
        a, b = first.models[key].state_dict(), second.models[key].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert not second.models[key].training
        assert second.records[key]["hash"] == config.hash


def test_test_sets_and_accuracy_table_match_the_runner_records(study):
    _, configs, _, models = study
    real, synth = real_and_synthetic_test(replace(BASE, seed=0))
    assert real.count_array().tolist() == synth.count_array().tolist() == [[20, 20], [20, 20]]
    assert (real.g == REAL).all() and (synth.g == SYNTHETIC).all() and synth.masks is not None
    table = accuracy_table(models, {0: (real, synth)})
    assert len(table) == 2 * len(MODES) and set(table["test"]) == {"real", "synthetic"}
    for (mode, _), record in models.records.items():
        row = table[(table["mode"] == mode) & (table["test"] == "real")].iloc[0]
        assert (row["wa"], row["ba"]) == (record["test"]["wa"], record["test"]["ba"])
        if mode != "none":  # the runner's synthetic test set is the one real_and_synthetic_test builds
            row = table[(table["mode"] == mode) & (table["test"] == "synthetic")].iloc[0]
            assert (row["wa"], row["ba"]) == (record["test_synthetic"]["wa"], record["test_synthetic"]["ba"])


def test_minority_examples_take_per_group_of_each_minority_group():
    splits = cell_splits(BASE)
    assert majority_of(splits) == (0, 1)
    ex = minority_examples(splits.test, majority_of(splits), per_group=3, seed=0)
    assert ex.count_array().tolist() == [[0, 3], [3, 0]]
    assert ex.masks is not None and ex.masks.shape == (6, 32, 32)
    again = minority_examples(splits.test, (0, 1), per_group=3, seed=0)
    assert torch.equal(ex.images, again.images)
    with pytest.raises(ValueError, match="group y0b1 holds 20 images, per_group asks for 21"):
        minority_examples(splits.test, (0, 1), per_group=21, seed=0)
    with pytest.raises(ValueError, match="per_group"):
        minority_examples(splits.test, (0, 1), per_group=0, seed=0)


def test_saliency_study_scores_every_model_method_and_image(study):
    _, _, _, models = study
    sets = {0: real_and_synthetic_test(replace(BASE, seed=0))}
    examples = study_examples(sets, majority_of(cell_splits(BASE)), per_group=2)
    ex = examples[0]  # 2 minority groups x 2 images, real then synthetic
    assert ex.g.tolist() == [0] * 4 + [1] * 4 and ex.b.tolist() == [1, 1, 0, 0] * 2
    rows = grid_rows(ex, per_group=2)  # the first image of each group, real then synthetic
    assert rows == [0, 4, 2, 6] and ex.subset(rows).y.tolist() == [0, 0, 1, 1]
    assert ex.subset(rows).g.tolist() == [0, 1, 0, 1]
    rise_config = RiseConfig(n_masks=40, batch=20)
    scores, maps = saliency_study(models, examples, rise_config, "backbone.stages.2", progress=False)
    assert len(scores) == len(MODES) * len(METHODS) * 8
    assert set(maps) == {(m, 0, meth) for m in MODES for meth in METHODS}
    assert all(v.shape == (8, 32, 32) for v in maps.values())
    assert scores["mass"].isna().equals(scores["empty"])  # constant maps (Grad-CAM all 0) have no mass
    assert scores.loc[~scores["empty"], "mass"].between(0, 1).all() and not scores.loc[scores["empty"], "hit"].any()
    assert not scores.loc[scores["method"] == "RISE", "empty"].any()
    part = scores[(scores["mode"] == "usb") & (scores["method"] == "RISE")]
    assert np.allclose(part["area"], mask_area(examples[0].masks).numpy())
    assert part["source"].tolist() == ["real"] * 4 + ["synthetic"] * 4
    # maps explain each model's own prediction by default; target='true' explains y
    predicted = models.models[("usb", 0)](examples[0].images).argmax(1)
    assert part["predicted"].tolist() == predicted.tolist()
    assert part["correct"].tolist() == (predicted == examples[0].y).tolist()
    true_scores, true_maps = saliency_study(models, examples, rise_config, "backbone.stages.2", target="true",
                                            progress=False)
    wrong = (predicted != examples[0].y).numpy()
    same = torch.isclose(true_maps[("usb", 0, "RISE")], maps[("usb", 0, "RISE")]).flatten(1).all(1).numpy()
    assert wrong.any() and not wrong.all() and (same == ~wrong).all()  # RISE is seeded: maps differ where classes do
    with pytest.raises(ValueError, match="target must be one of predicted, true"):
        saliency_study(models, examples, rise_config, "backbone.stages.2", target="y", progress=False)
    summary = saliency_summary(scores)
    assert len(summary) == len(MODES) * len(METHODS) * 2
    assert (summary["seeds"] == 1).all() and summary["mass_std"].isna().all()
    usb = summary[(summary["mode"] == "usb") & (summary["method"] == "RISE") & (summary["source"] == "real")].iloc[0]
    assert usb["mass_mean"] == pytest.approx(part["mass"][:4].mean())
    assert usb["empty"] == 0.0 and usb["accuracy"] == pytest.approx(part["correct"][:4].mean())
    assert usb["hit_mean"] == pytest.approx(part["hit"][:4].mean())
    fig = saliency_grid(examples[0], {(m, meth): maps[(m, 0, meth)] for m in MODES for meth in METHODS}, MODES)
    assert len(fig.axes) == 8 * 9 and fig.axes[1].get_title() == "ERM (None)\nRISE"


def test_source_separation_probes_the_synthetic_modes(study):
    _, _, _, models = study
    sets = {0: real_and_synthetic_test(replace(BASE, seed=0))}
    probe, panels = source_separation(models, sets, tsne_per_source=12, progress=False)
    assert probe["mode"].tolist() == ["usb", "asb", "ffr"]
    assert probe["probe"].between(0, 1).all() and (probe["per_source"] == 80).all()
    assert set(panels) == {("usb", 0), ("asb", 0), ("ffr", 0)}
    p = panels[("ffr", 0)]
    assert p["xy"].shape == (24, 2) and p["g"].tolist() == [0] * 12 + [1] * 12 and len(p["y"]) == 24
    fig = tsne_panels({m: panels[(m, 0)] for m in ("usb", "asb", "ffr")},
                      dict(zip(probe["mode"], probe["probe"])), ("circle", "square"))
    assert "probe accuracy" in fig.axes[0].get_title()


def test_one_forward_pass_per_model_and_set_serves_the_table_and_the_probe(study, monkeypatch):
    """The accuracy table and the probe read the same penultimate features; each (model, test set)
    is passed through its model once (notebook 05's paper-scale default view took 40 s more)."""
    import ffr_lib.analysis.saliency_study as S

    _, _, _, models = study
    models = replace(models, features={})
    calls = []
    real_fn = S.penultimate_features
    monkeypatch.setattr(S, "penultimate_features", lambda m, x, fn: calls.append(x) or real_fn(m, x, fn))
    sets = {0: real_and_synthetic_test(replace(BASE, seed=0))}
    accuracy_table(models, sets)
    source_separation(models, sets, tsne_per_source=12, progress=False)
    assert len(calls) == 2 * len(MODES)  # real and synthetic, once each, for every mode
    fresh = {0: tuple(replace(d, images=d.images.clone()) for d in sets[0])}  # other tensors: computed again
    source_separation(models, fresh, tsne_per_source=12, progress=False)
    assert len(calls) == 2 * len(MODES) + 2 * 3


def test_models_trained_by_two_processes_are_the_models_of_one(study, tmp_path):
    """final_models with workers=2 trains the missing runs in two processes first: the same
    weights as one process, reported as trained (not as loaded)."""
    folder, configs, first, _ = study
    two = final_models(configs, tmp_path, progress=False, workers=2)
    assert set(two.trained) == set(first.trained) and two.loaded == ()
    for key, model in first.models.items():
        for (name, a), b in zip(model.state_dict().items(), two.models[key].state_dict().values()):
            assert torch.equal(a, b), (key, name)
