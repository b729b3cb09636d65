"""The Stable Diffusion backend on a tiny random pipeline built here (CPU, 32 px, 2 steps):
plumbing, per-image seeds, blank regeneration, manifest and resume."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from real_fixtures import make_celeba

from ffr_lib.cli import main
from ffr_lib.generation import (
    Recipe,
    generate_set,
    load_prompts,
    load_synthetic_set,
    make_source,
    make_spec,
    read_manifest,
)
from ffr_lib.generation.generate import finish
from ffr_lib.generation.stable_diffusion import SDConfig, StableDiffusionSource, image_seed, is_blank

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

REAL = np.array([[6, 50], [70, 8]])  # CelebA-HQ-like (y, b) table
NAMES = (("not smiling", "smiling"), ("female", "male"))
TINY = dict(steps=2, resolution=32, batch_size=3, blank_std=0.5)


def tiny_tokenizer(folder: Path):
    """A CLIP tokenizer over single letters, from files written here (transformers 5 ignores
    vocab_file/merges_file given to the constructor, so it is loaded from a folder)."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for ch in "abcdefghijklmnopqrstuvwxyz":
            vocab[ch + suffix] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77}))
    return transformers.CLIPTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory) -> Path:
    """A randomly initialised StableDiffusionPipeline saved to a local folder."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-sd")
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4,
    )  # fmt: skip
    vae = diffusers.AutoencoderKL(
        block_out_channels=[8, 16], in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4, norm_num_groups=4,
    )  # fmt: skip
    text = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(
            bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=16, intermediate_size=32,
            num_attention_heads=2, num_hidden_layers=2, vocab_size=64, max_position_embeddings=77,
        )
    )  # fmt: skip
    scheduler = diffusers.PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1
    )
    pipe = diffusers.StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text, tokenizer=tiny_tokenizer(root / "tok"), scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.save_pretrained(root / "pipe")
    return root / "pipe"


@pytest.fixture()
def source(pipeline_dir) -> StableDiffusionSource:
    return make_source("sd", "celeba-hq", model=str(pipeline_dir), **TINY)


def spec_for(source, total: int = 8, recipe: str = "balanced", size: int = 16, seed: int = 0):
    return make_spec(
        "celeba-hq", REAL, Recipe(recipe, total=total), source, seed, size=size, class_names=NAMES[0],
        bias_names=NAMES[1], prompts="official",
    )  # fmt: skip


def test_config_defaults_and_settings(pipeline_dir):
    assert SDConfig().model == "CompVis/stable-diffusion-v1-4" and SDConfig().guidance == 7.5
    assert SDConfig().resolution == 512 and SDConfig().batch_size == 10 and SDConfig().scheduler is None
    assert make_source("sd", "celeba-hq").config.steps == 25  # faces
    assert make_source("sd", "spuco-animals").config.steps == 50  # animals
    settings = SDConfig(device="cpu").settings()
    assert settings["dtype"] == "float32" and "batch_size" not in settings and "device" not in settings
    assert SDConfig(device="cuda").settings()["dtype"] == "float16"


def test_image_seed_is_stable_and_distinct():
    seeds = {image_seed(0, i, a) for i in range(50) for a in range(3)}
    assert len(seeds) == 150 and all(0 <= s < 2**63 for s in seeds)
    assert image_seed(0, 7, 1) == image_seed(0, 7, 1) != image_seed(1, 7, 1)


def test_end_to_end_set_with_manifest(tmp_path, source):
    spec = spec_for(source)
    generate_set(tmp_path / "s", spec, source, chunk=5, progress=False)
    m = read_manifest(tmp_path / "s")
    assert len(m) == 8 and m["generator"].unique().tolist() == ["sd"]
    assert np.bincount(m["y"] * 2 + m["b"]).tolist() == [2, 2, 2, 2]
    assert m["seed"].tolist() == [image_seed(0, i, 0) for i in range(8)] and (m["attempt"] == 0).all()
    settings = json.loads(m["settings"][0])
    assert settings["steps"] == 2 and settings["guidance"] == 7.5 and settings["dtype"] == "float32"
    official = load_prompts("celeba-hq").get("official")  # image 0: not smiling, female
    assert m["prompt"][0] in {f"a headshot of a {b} {c}" for b in official.bias_words[0] for c in official.class_words[0]}
    data = load_synthetic_set(tmp_path / "s")
    assert data.images.shape == (8, 3, 16, 16)  # 32 px generated, resized to the set's 16 px
    assert not all(is_blank(img.permute(1, 2, 0).numpy(), 2.0) for img in data.images)


def test_any_image_regenerates_alone_from_its_seed(tmp_path, source):
    generate_set(tmp_path / "s", spec_for(source), source, chunk=8, progress=False)
    m = read_manifest(tmp_path / "s")
    data = load_synthetic_set(tmp_path / "s")
    for k in (1, 6):
        alone = source.regenerate(m["prompt"][k], int(m["seed"][k]))
        alone = finish(alone[None], [m["seed"][k]], [k], 0, 16)[0]
        diff = np.abs(alone.astype(int) - data.images[k].permute(1, 2, 0).numpy().astype(int))
        assert diff.max() <= 2  # batched vs alone: float noise ~1e-6, at most a level or two after rounding
    other = source.regenerate(m["prompt"][1], image_seed(0, 1, 5))
    assert np.abs(other.astype(int) - source.regenerate(m["prompt"][1], int(m["seed"][1])).astype(int)).max() > 10


def test_grey_image_is_regenerated_with_a_new_recorded_seed(tmp_path, source, monkeypatch):
    run = source.run
    calls = []

    def first_one_grey(prompts, seeds):
        images, nsfw = run(prompts, seeds)
        if not calls:
            images[1] = 128  # a flat grey image, once
        calls.append(list(seeds))
        return images, nsfw

    monkeypatch.setattr(source, "run", first_one_grey)
    generate_set(tmp_path / "s", spec_for(source), source, chunk=8, progress=False)
    m = read_manifest(tmp_path / "s")
    assert m["attempt"].tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    assert m["seed"][1] == image_seed(0, 1, 1) and calls[-1] == [image_seed(0, 1, 1)]
    kept = load_synthetic_set(tmp_path / "s").images[1].permute(1, 2, 0).numpy()
    assert not is_blank(kept, 2.0)
    again = finish(run([m["prompt"][1]], [int(m["seed"][1])])[0], [m["seed"][1]], [1], 0, 16)[0]
    assert np.abs(again.astype(int) - kept.astype(int)).max() <= 2


def test_safety_checker_flags_cause_regeneration():
    class FlaggingPipe:
        def __init__(self):
            self.calls = 0

        def __call__(self, prompt, generator, **kwargs):
            self.calls += 1
            n = len(prompt)
            images = np.random.default_rng(self.calls).random((n, 8, 8, 3)).astype(np.float32)
            flags = [self.calls == 1 and i == 0 for i in range(n)]  # the first image of the first call
            return SimpleNamespace(images=images, nsfw_content_detected=flags)

    pipe = FlaggingPipe()
    src = StableDiffusionSource(SDConfig(resolution=8, batch_size=4), pipeline=pipe)
    images, seeds, attempts = src.render(pd.DataFrame({"index": [10, 11], "prompt": ["a", "b"]}), set_seed=4)
    assert pipe.calls == 2 and attempts.tolist() == [1, 0]
    assert seeds.tolist() == [image_seed(4, 10, 1), image_seed(4, 11, 0)]

    always = StableDiffusionSource(SDConfig(resolution=8, max_attempts=2), pipeline=lambda **kw: SimpleNamespace(
        images=np.full((len(kw["prompt"]), 8, 8, 3), 0.0, np.float32), nsfw_content_detected=None))  # fmt: skip
    with pytest.raises(RuntimeError, match="image 3 .* blank or flagged 2 times"):
        always.render(pd.DataFrame({"index": [3], "prompt": ["x"]}), set_seed=0)


def test_resume_keeps_done_images_and_matches_a_whole_run(tmp_path, source, monkeypatch):
    spec = spec_for(source, total=12)
    generate_set(tmp_path / "whole", spec, source, chunk=4, progress=False)
    render = source.render
    done = []

    def crash_after_two_chunks(rows, set_seed):
        if len(done) == 2:
            raise KeyboardInterrupt
        done.append(len(rows))
        return render(rows, set_seed)

    monkeypatch.setattr(source, "render", crash_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        generate_set(tmp_path / "part", spec, source, chunk=4, progress=False)
    assert len(read_manifest(tmp_path / "part")) == 8
    before = {p.name: p.read_bytes() for p in (tmp_path / "part" / "images").iterdir()}
    monkeypatch.setattr(source, "render", render)
    generate_set(tmp_path / "part", spec, source, chunk=4, progress=False)
    part, whole = read_manifest(tmp_path / "part"), read_manifest(tmp_path / "whole")
    assert part.equals(whole)  # same rows: prompts, seeds, attempts
    for name, data in before.items():  # images made before the interruption are kept untouched
        assert (tmp_path / "part" / "images" / name).read_bytes() == data
    a = load_synthetic_set(tmp_path / "part").images.int()
    b = load_synthetic_set(tmp_path / "whole").images.int()
    assert (a - b).abs().max() <= 2


def test_class_only_prompts_store_an_unknown_bias(tmp_path, source):
    spec = spec_for(source, total=8, recipe="agnostic")
    generate_set(tmp_path / "s", spec, source, progress=False)
    m = read_manifest(tmp_path / "s")
    assert (m["b"] == -1).all() and (m["bias"] == "").all()
    assert m["prompt"].str.startswith("a headshot of a celebrity").all()
    assert np.bincount(m["y"]).tolist() == [4, 4]
    assert len(load_synthetic_set(tmp_path / "s", unknown_bias=0)) == 8


def test_ffr_generate_on_a_celeba_folder(tmp_path, pipeline_dir, monkeypatch, capsys):
    """`ffr generate` on a tiny CelebA-HQ folder in its published layout, with a local pipeline."""
    monkeypatch.setenv("FFR_CACHE", str(tmp_path / "cache"))
    labels = [(0, 1)] * 30 + [(0, 0)] * 10 + [(1, 0)] * 30 + [(1, 1)] * 10  # (smiling, male)
    root = make_celeba(tmp_path / "celeba", labels)
    out = tmp_path / "set"
    args = ["generate", "--dataset", "celeba-hq", "--root", str(root), "--recipe", "balanced", "--total", "8",
            "--ratio", "0.9", "--model", str(pipeline_dir), "--steps", "2", "--resolution", "32", "--size", "16",
            "--batch-size", "4", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "8 synthetic images (sd)" in printed and "not smiling" in printed
    m = read_manifest(out)
    assert m["prompt"].tolist()[:2] == ["A photo of a woman not smiling"] * 2
    assert m["prompt"].tolist()[-1] == "A photo of a man smiling"
    data = load_synthetic_set(out)
    assert data.class_names == NAMES[0] and data.bias_names == NAMES[1] and data.images.shape == (8, 3, 16, 16)


def test_scheduler_alias_dpm_pp_picks_dpm_solver_pp(tmp_path, pipeline_dir, monkeypatch):
    """SDConfig.scheduler='dpm++' (and `ffr generate --scheduler dpm++`) = multistep DPM-Solver++
    built from the model's scheduler config; class names still work; bad names are refused."""
    from ffr_lib.generation.stable_diffusion import load_pipeline, make_scheduler

    pipe = load_pipeline(SDConfig(model=str(pipeline_dir), scheduler="dpm++", device="cpu"))
    c = pipe.scheduler.config
    assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler" and c.algorithm_type == "dpmsolver++"
    assert (c.beta_start, c.beta_end, c.beta_schedule, c.steps_offset) == (0.00085, 0.012, "scaled_linear", 1)
    assert type(load_pipeline(SDConfig(model=str(pipeline_dir), device="cpu")).scheduler).__name__ == "PNDMScheduler"
    assert type(make_scheduler("EulerDiscreteScheduler", c)).__name__ == "EulerDiscreteScheduler"
    for bad in ("dpm", "UNet2DConditionModel"):
        with pytest.raises(ValueError, match=rf"no scheduler '{bad}'.*'dpm\+\+'"):
            make_scheduler(bad, c)

    dpm = make_source("sd", "celeba-hq", model=str(pipeline_dir), scheduler="dpm++", **TINY)
    pndm = make_source("sd", "celeba-hq", model=str(pipeline_dir), **TINY)
    a, b = dpm.run(["a b"], [3])[0], pndm.run(["a b"], [3])[0]
    assert a.shape == b.shape == (1, 32, 32, 3) and np.abs(a.astype(int) - b.astype(int)).max() > 0

    monkeypatch.setenv("FFR_CACHE", str(tmp_path / "cache"))
    labels = [(0, 1)] * 30 + [(0, 0)] * 10 + [(1, 0)] * 30 + [(1, 1)] * 10
    root = make_celeba(tmp_path / "celeba", labels)
    args = ["generate", "--dataset", "celeba-hq", "--root", str(root), "--total", "4", "--ratio", "0.9",
            "--model", str(pipeline_dir), "--steps", "2", "--resolution", "32", "--size", "16",
            "--scheduler", "dpm++", "--out", str(tmp_path / "set")]  # fmt: skip
    assert main(args) == 0
    assert json.loads(read_manifest(tmp_path / "set")["settings"][0])["scheduler"] == "dpm++"
