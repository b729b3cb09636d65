"""The conditional diffusion generator: training, checkpoints, seeded sampling, scene readout."""

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ffr_lib.data.grouped import SYNTHETIC, GroupedImages
from ffr_lib.data.world import WorldConfig, world_split
from ffr_lib.generation.diffusion import (
    CONFIG_FILE,
    LOG_FILE,
    ConditionalDiffusion,
    DiffusionConfig,
    DiffusionGenerator,
    TrainConfig,
    noise_for,
)
from ffr_lib.generation.diffusion_scenes import classify_background, majority_share
from ffr_lib.generation.diffusion_train import train

TINY = DiffusionConfig(block_out_channels=(8, 16), attention_levels=(False, True), norm_num_groups=8, attention_head_dim=8)
WORLD = WorldConfig(layout="binary", web_per_class=40)
Y = np.array([0, 1, 0, 1, 1, 0, 1])
B = np.array([0, 0, 1, 1, 0, 1, 1])
QUICK = dict(steps=2, batch=4)  # DDIM steps and images per pass in these tests


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[ConditionalDiffusion, Path]:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("diffusion")
    run = TrainConfig(steps=4, batch=8, log_every=2, save_every=3, seed=0)
    return train(WORLD, TINY, run, out, device="cpu", progress=False), out


def test_training_writes_log_and_checkpoint_recording_the_layout(trained):
    model, out = trained
    rows = (out / LOG_FILE).read_text().splitlines()
    assert rows[0] == "step,loss,lr,images_per_s,elapsed_s"
    assert [int(r.split(",")[0]) for r in rows[1:]] == [2, 4]
    assert all(np.isfinite(float(r.split(",")[1])) for r in rows[1:])
    doc = json.loads((out / CONFIG_FILE).read_text())
    assert doc["layout"] == "binary"
    assert doc["class_names"] == ["circle", "square"] and doc["bias_names"] == ["lake", "forest"]
    assert doc["world"]["web_per_class"] == 40
    assert doc["model"]["block_out_channels"] == [8, 16]
    assert doc["meta"]["steps_done"] == 4 and doc["meta"]["stopped"] == "steps"
    assert doc["meta"]["train"]["batch"] == 8
    assert doc["meta"]["web_counts"] == [[28, 12], [12, 28]]  # 70 / 30 within each class
    assert doc["unet"]["num_class_embeds"] == 2 * (2 + 1)
    assert [p.name for p in out.glob("model-*.safetensors")] == [doc["weights"]]  # stale step-3 weights removed


def test_training_changes_the_weights_and_stops_on_a_time_budget(tmp_path):
    torch.set_num_threads(1)
    run = TrainConfig(steps=50, batch=4, log_every=1, lr=1e-3, warmup=1, ema_decay=0.5, max_minutes=0.0)
    model = train(WORLD, TINY, run, tmp_path, progress=False)
    assert model.meta["steps_done"] == 1 and model.meta["stopped"] == "max_minutes=0.0"
    torch.manual_seed(0)
    fresh = ConditionalDiffusion(WORLD, TINY)  # train() seeds torch with run.seed = 0 before building
    diff = [(a - b).abs().max().item() for a, b in zip(model.unet.parameters(), fresh.unet.parameters())]
    assert max(diff) > 0


def test_save_load_round_trip_gives_identical_samples(tmp_path):
    model = ConditionalDiffusion(WORLD, TINY)
    model.save(tmp_path)
    again = ConditionalDiffusion.load(tmp_path)
    for (k, a), (_, b) in zip(model.unet.state_dict().items(), again.unet.state_dict().items()):
        assert torch.equal(a, b), k
    assert again.world == WORLD and again.config == TINY
    assert torch.equal(model.sample(Y, B, seed=3, **QUICK).images, again.sample(Y, B, seed=3, **QUICK).images)


def test_sampling_is_seeded_shaped_and_labelled(trained):
    model, _ = trained
    a = model.sample(Y, B, seed=1, **QUICK)
    assert isinstance(a, GroupedImages)
    assert a.images.dtype == torch.uint8 and a.images.shape == (7, 3, 32, 32)
    assert a.y.tolist() == Y.tolist() and a.b.tolist() == B.tolist()  # requested scenes
    assert a.g.tolist() == [SYNTHETIC] * 7 and a.info["bias"] == "requested"
    assert torch.equal(a.images, model.sample(Y, B, seed=1, **QUICK).images)
    assert not torch.equal(a.images, model.sample(Y, B, seed=2, **QUICK).images)
    assert a.images.float().std() > 0


def test_a_set_made_in_pieces_equals_one_made_at_once():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ConditionalDiffusion(WORLD)  # the default size: unpadded passes of other sizes differ here
    kw = dict(steps=5, batch=4)
    whole = model.sample(Y, B, seed=5, **kw)
    first = model.sample(Y[:3], B[:3], seed=5, start=0, **kw)
    rest = model.sample(Y[3:], B[3:], seed=5, start=3, **kw)
    assert torch.equal(whole.images, torch.cat([first.images, rest.images]))
    alone = model.sample(Y[4:5], B[4:5], seed=5, start=4, **kw)
    assert torch.equal(alone.images[0], whole.images[4])


def test_noise_of_an_image_depends_on_seed_and_index_only():
    assert torch.equal(noise_for(7, np.array([5]), 32)[0], noise_for(7, np.array([3, 5]), 32)[1])
    assert not torch.equal(noise_for(7, np.array([5]), 32), noise_for(8, np.array([5]), 32))


def test_class_only_sampling_uses_the_no_bias_token_and_reads_the_scene(trained):
    model, _ = trained
    labels = model.labels(torch.tensor([0, 1]), None)
    assert labels.tolist() == [0 * 3 + 2, 1 * 3 + 2]  # y * (n_biases + 1) + n_biases
    assert model.labels(torch.tensor([1, 0]), torch.tensor([0, 1])).tolist() == [3, 1]
    assert model.labels(torch.tensor([1, 0]), torch.tensor([-1, 1])).tolist() == [5, 1]  # -1: no bias in that row
    out = model.sample(Y, None, seed=1, **QUICK)
    assert out.info["bias"] == "classified"
    assert torch.equal(out.b, torch.as_tensor(classify_background(out.images, WORLD, Y)))
    assert not torch.equal(out.images, model.sample(Y, B, seed=1, **QUICK).images)  # other token


def test_guidance_changes_scene_requests_only(trained):
    model, _ = trained
    plain = model.sample(Y, B, seed=1, **QUICK)
    guided = model.sample(Y, B, seed=1, guidance=3.0, **QUICK)
    assert not torch.equal(plain.images, guided.images)
    assert torch.equal(model.sample(Y, None, seed=1, **QUICK).images, model.sample(Y, None, seed=1, guidance=3.0, **QUICK).images)


def test_bad_labels_and_bad_folders_are_named(tmp_path):
    model = ConditionalDiffusion(WORLD, TINY)
    with pytest.raises(ValueError, match="y must be in"):
        model.labels(torch.tensor([2]), None)
    with pytest.raises(ValueError, match="b must be in"):
        model.labels(torch.tensor([0]), torch.tensor([2]))
    with pytest.raises(ValueError, match="b must be in"):
        model.labels(torch.tensor([0]), torch.tensor([-2]))
    with pytest.raises(FileNotFoundError, match="config.json"):
        ConditionalDiffusion.load(tmp_path)
    model.save(tmp_path)
    doc = json.loads((tmp_path / CONFIG_FILE).read_text())
    (tmp_path / CONFIG_FILE).write_text(json.dumps({**doc, "format": "other"}))
    with pytest.raises(ValueError, match="'format'"):
        ConditionalDiffusion.load(tmp_path)
    with pytest.raises(ValueError, match="attention_levels"):
        DiffusionConfig(block_out_channels=(8, 16), attention_levels=(True,))


def test_animals_layout_has_one_token_per_pair_plus_no_bias(tmp_path):
    world = WorldConfig(layout="animals")
    model = ConditionalDiffusion(world, TINY)
    assert model.unet.config.num_class_embeds == 4 * (4 + 1)
    assert model.labels(torch.tensor([3]), None).tolist() == [19]
    out = model.sample(np.array([0, 3]), np.array([1, 2]), seed=0, **QUICK)
    assert out.images.shape == (2, 3, 32, 32) and out.bias_names == ("sand", "lake", "indoor", "forest")
    model.save(tmp_path)
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["layout"] == "animals"


def test_generator_interface_matches_the_model(trained):
    model, out = trained
    gen = DiffusionGenerator(out, steps=2, batch=4)
    assert gen.world == WORLD
    a = gen.generate(Y, B, seed=4, start=2)
    assert torch.equal(a.images, model.sample(Y, B, seed=4, start=2, **QUICK).images)
    assert a.info["model"] == str(out) and a.info["generator"] == "diffusion"
    assert gen.generate(Y[:2], None, seed=4).info["bias"] == "classified"


@pytest.mark.parametrize("layout", ["binary", "animals"])
def test_background_classifier_reads_real_scenes(layout):
    world = WorldConfig(layout=layout, test_per_group=100, seed=3)
    real = world_split(world, "test")
    with_y = classify_background(real.images, world, real.y.numpy())
    assert (with_y == real.b.numpy()).mean() >= 0.995
    free = classify_background(real.images, world)
    assert (free == real.b.numpy()).mean() >= 0.95


def test_majority_share_by_hand():
    data = GroupedImages.from_arrays(torch.zeros(4, 3, 2, 2, dtype=torch.uint8), [0, 0, 1, 1], [0, 1, 1, 1], ("a", "b"), ("p", "q"))
    assert majority_share(data) == 0.75


def test_training_script_runs_on_cpu(tmp_path):
    path = Path(__file__).resolve().parents[1] / "scripts" / "train_diffusion.py"
    spec = importlib.util.spec_from_file_location("train_diffusion", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = ["--layout", "animals", "--steps", "2", "--batch", "4", "--web-per-class", "20", "--channels", "16", "32",
            "--log-every", "1", "--out", str(tmp_path / "m"), "--threads", "1", "--eval-per-group", "1", "--eval-steps", "1"]
    assert script.main(argv) == 0
    model = ConditionalDiffusion.load(tmp_path / "m")
    assert model.world.layout == "animals" and model.world.web_per_class == 20
    assert model.config.block_out_channels == (16, 32) and model.meta["steps_done"] == 2
    report = json.loads((tmp_path / "m" / "eval.json").read_text())
    assert set(report["scene_agreement_per_group"]) == {
        "triangle/sand", "triangle/lake", "circle/sand", "circle/lake",
        "square/indoor", "square/forest", "cross/indoor", "cross/forest",
    }  # fmt: skip
    assert report["per_class"] == 4 and 0 <= report["class_only_majority_share"] <= 1
    from PIL import Image

    with Image.open(tmp_path / "m" / "samples.png") as grid:  # 8 groups x (real, sampled) + 4 class-only rows
        assert grid.size == (8 * 34, (8 * 2 + 4) * 34)
    # continued (--init): the checkpoint's web corpus, its steps counted before this run's
    argv = ["--layout", "animals", "--steps", "1", "--batch", "4", "--init", str(tmp_path / "m"), "--channels", "16",
            "32", "--out", str(tmp_path / "m2"), "--threads", "1", "--eval-per-group", "0"]
    assert script.main(argv) == 0
    more = ConditionalDiffusion.load(tmp_path / "m2")
    assert more.world.web_per_class == 20 and more.meta["steps_before"] == 2 and more.meta["steps_done"] == 1


def test_mixed_requests_equal_their_separate_parts(trained):
    model, _ = trained
    b = np.where(np.arange(7) % 2 == 0, -1, B)
    mixed = model.sample(Y, b, seed=6, **QUICK)
    assert mixed.info["bias"] == "mixed"
    only = model.sample(Y, None, seed=6, **QUICK)
    scene = model.sample(Y, B, seed=6, **QUICK)
    even = np.arange(7) % 2 == 0
    assert torch.equal(mixed.images[even], only.images[even]) and torch.equal(mixed.images[~even], scene.images[~even])
    assert torch.equal(mixed.b[~even], torch.as_tensor(B[~even]))



@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_sampler_with_the_exact_noise_predictor_of_a_one_image_world_returns_that_image(prediction):
    """DDIM (trailing spacing, eta 0) with the optimal prediction for data = one image x*:
    eps(x_t, t) = (x_t - sqrt(abar_t) x*) / sqrt(1 - abar_t), or v = sqrt(abar_t) eps -
    sqrt(1 - abar_t) x*, on the training schedule."""
    from types import SimpleNamespace

    model = ConditionalDiffusion(WORLD, replace(TINY, prediction_type=prediction))
    target = torch.linspace(-0.9, 0.9, 3 * 32 * 32).reshape(3, 32, 32)
    abar = model.scheduler("ddpm").alphas_cumprod

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, t, class_labels=None):
            a = abar[int(t)]
            eps = (x - a.sqrt() * target) / (1 - a).sqrt()
            return SimpleNamespace(sample=eps if prediction == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * target)

    model.unet = Oracle()
    out = model.sample(np.array([0, 1]), np.array([1, 0]), seed=0, steps=5, batch=2)
    want = ((target + 1) * 127.5).round().to(torch.uint8)
    assert torch.equal(out.images[0], want) and torch.equal(out.images[1], want)


def _training_script():
    path = Path(__file__).resolve().parents[1] / "scripts" / "train_diffusion.py"
    spec = importlib.util.spec_from_file_location("train_diffusion", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_web_corpus_defaults_follow_the_benchmark_and_a_continued_run_keeps_its_own(tmp_path, capsys):
    """Session 16's composite generators were trained on the world's 2,000 web images a class (the
    default was the world's for both benchmarks); a run continued with --init keeps its corpus."""
    script = _training_script()

    def world(*argv):
        return script.world_of(script.parser().parse_args([*argv, "--out", "x"]))

    assert world("--benchmark", "composite").web_per_class == 10_000
    assert world("--benchmark", "shapes").web_per_class == 2_000
    assert world("--benchmark", "composite", "--web-per-class", "30").web_per_class == 30
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({"world": {"web_per_class": 2000}}))
    assert world("--benchmark", "composite", "--init", str(tmp_path / "m")).web_per_class == 2_000
    assert world("--benchmark", "composite", "--init", str(tmp_path / "m"), "--web-per-class", "5").web_per_class == 5
    (tmp_path / "m" / "config.json").write_text("{}")
    with pytest.raises(SystemExit) as stop:
        world("--benchmark", "composite", "--init", str(tmp_path / "m"))
    assert stop.value.code == 2
    assert capsys.readouterr().err == (f"train_diffusion: --init {tmp_path / 'm'}: no world.web_per_class in "
                                       f"{tmp_path / 'm' / 'config.json'} (KeyError)\n")
