"""Synthetic sets: exact counts, byte reproducibility, resume after a real SIGKILL, refusals,
loading, the knobs-at-0 distribution, prompts, and `ffr generate`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ks_2samp

from ffr_lib.cli import main
from ffr_lib.data.grouped import SYNTHETIC
from ffr_lib.data.world import WorldConfig, world_split
from ffr_lib.generation import (
    ProceduralGenerator,
    Recipe,
    SetMismatchError,
    generate_dataset_set,
    generate_in_memory,
    generate_set,
    load_prompts,
    load_synthetic_set,
    make_source,
    make_spec,
    read_manifest,
    synthetic_counts,
)
from ffr_lib.generation.prompts import PROMPT_SETS

BINARY = WorldConfig(layout="binary")
REAL = np.array([[40, 2], [3, 40]])  # a small biased (y, b) table: USB adds 38 + 37 = 75
NAMES = (BINARY.spec.class_names, BINARY.spec.bias_names)


def spec_for(recipe: Recipe, seed: int = 0, severity: int = 0, fingerprint: float = 0.0, prompts: str = "paper"):
    source = make_source("procedural", "shapes-binary", fingerprint=fingerprint)
    spec = make_spec(
        "shapes-binary", REAL, recipe, source, seed, size=32, class_names=NAMES[0], bias_names=NAMES[1],
        prompts=prompts, corruption_severity=severity,
    )  # fmt: skip
    return spec, source


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- counts ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "recipe, expected",
    [
        (Recipe("balanced"), [[18, 18], [18, 18]]),  # 75 // 4
        (Recipe("usb"), [[0, 38], [37, 0]]),
        (Recipe("biased"), [[35, 1], [2, 35]]),  # floor(share * 75), at least 1
        (Recipe("scaled", scale=0.5), [[10, 10], [10, 10]]),  # round(0.5 * 85) = 42 -> 10 each
    ],
)
def test_manifest_counts_equal_the_recipe(tmp_path, recipe, expected):
    assert synthetic_counts(REAL, recipe).tolist() == expected
    spec, source = spec_for(recipe)
    generate_set(tmp_path / "set", spec, source, chunk=16, progress=False)
    manifest = read_manifest(tmp_path / "set")
    table = np.zeros((2, 2), dtype=int)
    np.add.at(table, (manifest["y"].to_numpy(), manifest["b"].to_numpy()), 1)
    assert table.tolist() == expected
    assert manifest["index"].tolist() == list(range(int(np.sum(expected))))
    data = load_synthetic_set(tmp_path / "set")
    assert data.count_array().tolist() == expected
    assert (data.g == SYNTHETIC).all() and data.images.shape[1:] == (3, 32, 32)


def test_agnostic_recipe_fixes_classes_and_draws_scenes(tmp_path):
    real = np.array([[400, 20], [20, 400]])
    data = generate_in_memory(real, Recipe("agnostic"), ProceduralGenerator(BINARY), seed=2)
    counts = data.count_array()
    assert counts.sum(axis=1).tolist() == [380, 380]  # 760 // 4 per group, two groups per class
    share = counts[[0, 1], [0, 1]].sum() / counts.sum()
    assert 0.62 < share < 0.78  # drawn with the generator's prior (0.7 on the majority scene)
    assert set(data.info["prompt"]) == {"A photo of a circle", "A photo of a square"}


def test_manifest_records_prompts_seed_generator_settings(tmp_path):
    spec, source = spec_for(Recipe("balanced", total=8), seed=5, fingerprint=0.25, prompts="official")
    generate_set(tmp_path / "s", spec, source, progress=False)
    m = read_manifest(tmp_path / "s")
    assert m["generator"].unique().tolist() == ["procedural"] and m["recipe"].unique().tolist() == ["balanced"]
    assert json.loads(m["settings"][0])["fingerprint"] == 0.25
    assert (m["seed"] == 5).all() and (m["attempt"] == 0).all()
    row = m.iloc[-1]  # a square on forest
    assert (row["class"], row["bias"]) == ("square", "forest")
    assert row["prompt"].startswith("a ") and "square" in row["prompt"] and " in front of " in row["prompt"]
    stored = json.loads((tmp_path / "s" / "set.json").read_text())
    assert stored["recipe"] == {"name": "balanced", "total": 8, "scale": 1.0} and stored["counts"] == [[2, 2], [2, 2]]


# -- reproducibility and resume -------------------------------------------------------------------
def test_same_arguments_same_bytes(tmp_path):
    spec, source = spec_for(Recipe("balanced", total=24), severity=2)
    generate_set(tmp_path / "a", spec, source, chunk=5, progress=False)
    generate_set(tmp_path / "b", spec, source, chunk=24, progress=False)
    assert folder_bytes(tmp_path / "a") == folder_bytes(tmp_path / "b")
    other, _ = spec_for(Recipe("balanced", total=24), seed=1, severity=2)
    generate_set(tmp_path / "c", other, source, progress=False)
    assert folder_bytes(tmp_path / "a")["images/0000000.png"] != folder_bytes(tmp_path / "c")["images/0000000.png"]


def test_in_memory_equals_on_disk(tmp_path):
    spec, source = spec_for(Recipe("balanced", total=20), severity=3, fingerprint=0.5)
    generate_set(tmp_path / "s", spec, source, chunk=7, progress=False)
    disk = load_synthetic_set(tmp_path / "s")
    mem = generate_in_memory(
        REAL, Recipe("balanced", total=20), ProceduralGenerator(BINARY, fingerprint=0.5), seed=0,
        corruption_severity=3, chunk=3,
    )  # fmt: skip
    assert (disk.images == mem.images).all() and (disk.y == mem.y).all() and (disk.b == mem.b).all()
    clean = generate_in_memory(REAL, Recipe("balanced", total=20), ProceduralGenerator(BINARY, fingerprint=0.5), 0)
    assert not (clean.images == mem.images).all()  # the corruption did something


CHILD = """
import sys, time
from ffr_lib.generation import generate as G
from ffr_lib.generation.recipes import Recipe
render = G.ProceduralSource.render
def slow(self, rows, seed):  # slow enough to be killed mid-way
    time.sleep(0.05)
    return render(self, rows, seed)
G.ProceduralSource.render = slow
G.generate_dataset_set("shapes-binary", Recipe("balanced", total=int(sys.argv[2])), sys.argv[1], ratio=0.95,
                       seed=3, corruption_severity=1, chunk=8, progress=False, echo=lambda s: None)
"""


def _run(out: Path, total: int):
    return generate_dataset_set(
        "shapes-binary", Recipe("balanced", total=total), out, ratio=0.95, seed=3, corruption_severity=1,
        chunk=8, progress=False, echo=lambda s: None,
    )  # fmt: skip


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    total, out = 320, tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(total)], env=env)
    manifest = out / "manifest.csv"
    deadline = time.time() + 120
    try:
        while time.time() < deadline and child.poll() is None:
            if manifest.exists() and manifest.read_text().count("\n") > 80:
                break
            time.sleep(0.02)
        assert child.poll() is None, "the child finished before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    done = len(read_manifest(out))
    assert 0 < done < total
    with pytest.raises(ValueError, match=f"incomplete: {done} of {total}"):
        load_synthetic_set(out)

    _run(out, total)  # resume
    _run(tmp_path / "whole", total)  # uninterrupted
    resumed, whole = folder_bytes(out), folder_bytes(tmp_path / "whole")
    assert sorted(resumed) == sorted(whole)  # same files: nothing lost, nothing extra
    assert resumed == whole  # same bytes
    m = read_manifest(out)
    assert m["index"].tolist() == list(range(total))  # no duplicate, no gap


def test_resume_after_a_cut_manifest_row(tmp_path):
    """A kill during an append leaves a partial last row; it is dropped and its image redone."""
    spec, source = spec_for(Recipe("balanced", total=16))
    generate_set(tmp_path / "whole", spec, source, chunk=4, progress=False)
    generate_set(tmp_path / "cut", spec, source, chunk=4, progress=False)
    path = tmp_path / "cut" / "manifest.csv"
    text = path.read_text()
    path.write_text(text[: len(text) - 25])  # cut inside the last row
    (tmp_path / "cut" / "images" / ".0000015.png.abc.tmp").write_bytes(b"half")  # a killed atomic write
    generate_set(tmp_path / "cut", spec, source, chunk=4, progress=False)
    assert folder_bytes(tmp_path / "cut") == folder_bytes(tmp_path / "whole")


# -- refusals -------------------------------------------------------------------------------------
def test_folder_with_another_recipe_or_generator_is_refused(tmp_path):
    spec, source = spec_for(Recipe("balanced", total=8))
    generate_set(tmp_path / "s", spec, source, progress=False)
    biased, _ = spec_for(Recipe("biased", total=8))
    with pytest.raises(SetMismatchError, match="recipe: the folder has .*'balanced'.* asks for .*'biased'"):
        generate_set(tmp_path / "s", biased, source, progress=False)
    other, other_source = spec_for(Recipe("balanced", total=8), fingerprint=0.5)
    with pytest.raises(SetMismatchError, match="settings"):
        generate_set(tmp_path / "s", other, other_source, progress=False)
    with pytest.raises(ValueError, match="names the class only, so recipe 'balanced'"):
        spec_for(Recipe("balanced", total=8), prompts="agnostic")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(SetMismatchError, match="not empty"):
        generate_set(tmp_path / "foreign", spec, source, progress=False)


def test_unknown_bias_needs_a_choice_to_load(tmp_path):
    spec, source = spec_for(Recipe("balanced", total=4))
    generate_set(tmp_path / "s", spec, source, progress=False)
    path = tmp_path / "s" / "manifest.csv"
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")
    fields[4], fields[5] = "-1", ""  # as a class-only Stable Diffusion image is stored
    path.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match="unknown bias.*unknown_bias"):
        load_synthetic_set(tmp_path / "s")
    assert load_synthetic_set(tmp_path / "s", unknown_bias=1).b.tolist()[0] == 1


# -- the knobs at 0 reproduce the real distribution -----------------------------------------------
def _statistics(images) -> dict[str, np.ndarray]:
    x = images.float().numpy() / 255  # (N, 3, H, W)
    lap = np.abs(4 * x[:, :, 1:-1, 1:-1] - x[:, :, :-2, 1:-1] - x[:, :, 2:, 1:-1] - x[:, :, 1:-1, :-2] - x[:, :, 1:-1, 2:])
    return {
        "red": x[:, 0].mean((1, 2)),
        "green": x[:, 1].mean((1, 2)),
        "blue": x[:, 2].mean((1, 2)),
        "contrast": x.std((1, 2, 3)),
        "red-blue": (x[:, 0] - x[:, 2]).mean((1, 2)),
        "high-frequency": lap.mean((1, 2, 3)),
    }


@pytest.mark.slow
def test_knobs_at_zero_match_real_images_and_fingerprint_does_not():
    world = WorldConfig(test_per_group=200)
    real = _statistics(world_split(world, "test").images)  # 200 per (y, b) group

    def pvalues(fingerprint: float, fidelity: float) -> dict[str, float]:
        gen = ProceduralGenerator(world, fingerprint=fingerprint, fidelity=fidelity)
        syn = generate_in_memory(np.full((2, 2), 200), Recipe("balanced", total=800), gen, seed=1)
        stats = _statistics(syn.images)
        return {k: ks_2samp(real[k], stats[k]).pvalue for k in real}

    same = pvalues(0.0, 0.0)
    assert min(same.values()) > 0.01, same  # two-sample KS on six statistics: indistinguishable
    marked = pvalues(1.0, 0.0)
    assert marked["high-frequency"] < 1e-6 and marked["red-blue"] < 1e-6, marked  # grid pattern, colour cast
    unfaithful = pvalues(0.0, 1.0)
    assert unfaithful["high-frequency"] < 1e-6, unfaithful  # smoothed background texture


# -- prompts ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["celeba-hq", "utk-face", "spuco-animals", "shapes-binary", "shapes-animals"])
def test_every_dataset_has_the_three_prompt_sets(dataset):
    entry = load_prompts(dataset)
    assert set(entry.sets) == set(PROMPT_SETS)
    n, m = len(entry.class_names), len(entry.bias_names)
    y, b = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
    paper = entry.get("paper").prompts(y, b, seed=0)
    assert paper[0] == entry.get("paper").template.format(**{"class": entry.get("paper").class_words[0][0],
                                                              "bias": entry.get("paper").bias_words[0][0]})  # fmt: skip
    assert all(p.startswith("A photo of ") for p in paper)
    assert entry.get("agnostic").prompts(np.arange(n), None, seed=0) == entry.get("paper").prompts(
        np.arange(n), None, seed=0
    )
    with pytest.raises(ValueError, match="never names the bias"):
        entry.get("agnostic").prompts(y, b, seed=0)
    official = entry.get("official").prompts(np.repeat(y, 20), np.repeat(b, 20), seed=1)
    assert len(set(official)) > n * m  # varied phrasings
    assert official == entry.get("official").prompts(np.repeat(y, 20), np.repeat(b, 20), seed=1)


def test_celeba_and_animals_prompts_by_hand():
    assert load_prompts("celeba-hq").get("paper").prompts([1, 0], [0, 1], 0) == [
        "A photo of a woman smiling",
        "A photo of a man not smiling",
    ]
    animals = load_prompts("spuco-animals").get("official").prompts([3] * 50, [1] * 50, 0)
    assert all(p.startswith("a photo of a") and " in " for p in animals)
    words = load_prompts("spuco-animals").get("official")
    assert any(p.endswith(" in a lake") for p in animals) and len(words.class_words[3]) >= 20


def test_prompt_file_is_checked(tmp_path):
    bad = tmp_path / "prompts.yaml"
    bad.write_text(
        "toy:\n  class_names: [a, b]\n  bias_names: [x, y]\n  sets:\n"
        "    paper:\n      template: 'A photo of {bias} {klass}'\n      class: [[a], [b]]\n      bias: [[x], [y]]\n"
    )
    with pytest.raises(ValueError, match=r"toy.sets.paper.template must use the fields"):
        load_prompts("toy", bad)
    with pytest.raises(ValueError, match="bias_names .*'young', 'old'.* edit the file"):
        load_prompts("utk-face").check_names(("male", "female"), ("young", "old"))


# -- the command -----------------------------------------------------------------------------------
def test_ffr_generate_command(tmp_path, capsys):
    out = tmp_path / "set"
    args = ["generate", "--dataset", "shapes-animals", "--recipe", "balanced", "--total", "16", "--out", str(out),
            "--fingerprint", "0.2", "--ratio", "0.99"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "16 synthetic images (procedural)" in printed and "triangle" in printed
    data = load_synthetic_set(out)
    assert len(data) == 16 and data.count_array()[data.count_array() > 0].tolist() == [2] * 8
    assert main(args) == 0  # the same command again: nothing to do
    capsys.readouterr()
    assert main([*args[:4], "biased", *args[5:]]) == 2  # --out holds another set: the user's mistake, one line
    err = capsys.readouterr().err
    assert err.startswith(f"ffr generate: {out}") and "recipe" in err and len(err.splitlines()) == 1
    assert main(["generate", "--dataset", "shapes-binary", "--out", str(tmp_path / "dry"), "--dry-run"]) == 0
    printed = capsys.readouterr().out  # 0.99: 5000 and 51 per class, USB adds 2 x 4949, 9898 // 4 = 2474 per group
    assert "9896 synthetic images" in printed and "2474" in printed and not (tmp_path / "dry").exists()


def test_ffr_generate_reports_a_ratio_the_counts_cannot_meet(tmp_path, capsys):
    """The world's pool holds 2500 minority images per 5000 majority: 0.662 is within the 0.005
    tolerance of its own 2/3, so the pool is taken whole and the split sits at 0.667."""
    assert main(["generate", "--dataset", "shapes-binary", "--ratio", "0.662", "--out", str(tmp_path / "d"),
                 "--dry-run"]) == 0  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    assert printed[1] == (
        "warning: bias ratio 0.662 cannot be met with whole images: the counts give 0.667 for classes "
        "'circle', 'square' (the pool holds no more minority images)"
    )
    assert printed[4].split() == ["0", "circle", "1", "forest", "2500", "1250", "3750"]  # the pool, unchanged
    for ratio in ("0.9", "0.95", "0.97", "0.99", "0.999"):
        assert main(["generate", "--dataset", "shapes-binary", "--ratio", ratio, "--out", str(tmp_path / "d"),
                     "--dry-run"]) == 0  # fmt: skip
        assert "warning" not in capsys.readouterr().out


# -- the small diffusion model as a source -------------------------------------------------------
@pytest.mark.slow
def test_diffusion_checkpoint_generates_a_resumable_set(tmp_path):
    diffusion = pytest.importorskip("ffr_lib.generation.diffusion")
    tiny = diffusion.DiffusionConfig(
        block_out_channels=(8, 16), attention_levels=(False, True), norm_num_groups=8, attention_head_dim=8
    )
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    diffusion.ConditionalDiffusion(BINARY, tiny).save(tmp_path / "ckpt")  # untrained: the plumbing is tested
    args = dict(generator="diffusion", ratio=0.95, seed=1, chunk=4, progress=False, echo=lambda s: None,
                source_options={"model": str(tmp_path / "ckpt"), "steps": 2, "batch_size": 4})  # fmt: skip
    generate_dataset_set("shapes-binary", Recipe("balanced", total=8), tmp_path / "bal", **args)
    m = read_manifest(tmp_path / "bal")
    assert np.bincount(m["y"] * 2 + m["b"]).tolist() == [2, 2, 2, 2] and (m["generator"] == "diffusion").all()
    assert json.loads(m["settings"][0])["steps"] == 2
    # class-only: the scene comes from the model's background classifier, recorded per image
    generate_dataset_set("shapes-binary", Recipe("agnostic", total=8), tmp_path / "agn", **args)
    m = read_manifest(tmp_path / "agn")
    assert np.bincount(m["y"]).tolist() == [4, 4] and set(m["b"]) <= {0, 1}
    assert (m["bias"] == [NAMES[1][b] for b in m["b"]]).all()
    # resume after losing the last rows: the same set again
    path = tmp_path / "agn" / "manifest.csv"
    whole = path.read_bytes()
    path.write_bytes(b"".join(whole.splitlines(keepends=True)[:4]))
    generate_dataset_set("shapes-binary", Recipe("agnostic", total=8), tmp_path / "agn", **args)
    assert path.read_bytes() == whole
    with pytest.raises(ValueError, match="needs --model"):
        make_source("diffusion", "shapes-binary")
