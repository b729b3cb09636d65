"""The two generation filters of the Stable Diffusion backend: ours (grey and black images) and
the authors' is_grayscale test (red mean within 1,500,000 / 512^2 = 5.72 levels of the mean over
channels), on images built on both sides of the threshold; the regeneration it drives and its
record in the set's settings and manifest."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageStat

from ffr_lib.cli import build_parser
from ffr_lib.generation import Recipe, generate_set, make_source, make_spec, read_manifest
from ffr_lib.generation.stable_diffusion import (
    SDConfig,
    StableDiffusionSource,
    fails_authors_test,
    image_seed,
    rejects,
)


def red_shifted(side: int, k: int, delta: int = 9, level: int = 100) -> np.ndarray:
    """uint8 (side, side, 3) at `level` in every channel except red lowered by `delta` on the
    first k pixels: |sum / 3 - sum of red| = 2 * delta * k / 3."""
    image = np.full((side * side, 3), level, dtype=np.uint8)
    image[:k, 0] = level - delta
    return image.reshape(side, side, 3)


def pil_statistic(image: np.ndarray) -> float:
    """The authors' statistic as they computed it, with PIL's ImageStat channel sums."""
    stat = ImageStat.Stat(Image.fromarray(image))
    return abs(sum(stat.sum) / 3 - stat.sum[0])


def test_authors_threshold_at_512_px_on_both_sides() -> None:
    at = red_shifted(512, 250_000)  # 2 * 9 * 250,000 / 3 = 1,500,000: not below, kept
    below = red_shifted(512, 249_999)  # 1,499,994: rejected
    assert pil_statistic(at) == 1_500_000 and pil_statistic(below) == 1_499_994
    assert not fails_authors_test(at) and fails_authors_test(below)
    assert rejects(below, "authors") and not rejects(at, "authors")


def test_authors_test_agrees_with_pil_on_random_images() -> None:
    rng = np.random.default_rng(0)
    for trial in range(40):
        base = rng.integers(0, 256, size=3)
        image = np.clip(base + rng.normal(0, 3 + trial, size=(512, 512, 3)), 0, 255).astype(np.uint8)
        assert fails_authors_test(image) == (pil_statistic(image) < 1_500_000)


def test_spuco_script_threshold_200000() -> None:
    # their SpuCo Animals script: < 200,000, i.e. 2 * 9 * k / 3 < 200,000 for k <= 33,333
    assert fails_authors_test(red_shifted(512, 33_333), 200_000) and not fails_authors_test(red_shifted(512, 33_334), 200_000)
    assert pil_statistic(red_shifted(512, 33_334)) == 200_004
    assert make_source("sd", "spuco-animals", filter="authors").config.authors_threshold == 200_000
    assert make_source("sd", "utk-face", filter="authors").config.authors_threshold == 1_500_000
    assert "authors_threshold" not in SDConfig().settings()  # recorded only where it applies
    assert SDConfig(filter="authors", authors_threshold=200_000).settings()["authors_threshold"] == 200_000


def test_threshold_scales_with_pixel_count() -> None:
    # 32 px: 1,500,000 * 1024 / 512^2 = 5,859.375 in channel sums; 2 * 9 * k / 3 < that for k <= 976
    assert fails_authors_test(red_shifted(32, 976)) and not fails_authors_test(red_shifted(32, 977))
    assert fails_authors_test(red_shifted(256, 62_499)) and not fails_authors_test(red_shifted(256, 62_500))


def test_colour_image_with_an_average_red_is_dropped_only_by_the_authors_filter() -> None:
    rng = np.random.default_rng(1)
    texture = rng.integers(-40, 41, size=(64, 64, 1))
    colour = np.clip(np.array([120, 60, 180]) + texture, 0, 255).astype(np.uint8)  # red = mean of channels
    red = np.clip(np.array([200, 60, 80]) + texture, 0, 255).astype(np.uint8)
    grey = np.clip(128 + rng.integers(-1, 2, size=(64, 64, 1)).repeat(3, axis=2), 0, 255).astype(np.uint8)
    black = np.zeros((64, 64, 3), dtype=np.uint8)
    assert [rejects(x, "authors") for x in (colour, red, grey, black)] == [True, False, True, True]
    assert [rejects(x, "ours", 4.0) for x in (colour, red, grey, black)] == [False, False, True, True]
    with pytest.raises(ValueError, match="SD filter must be one of ours, authors, got 'both'"):
        rejects(red, "both")
    with pytest.raises(ValueError, match="SDConfig.filter must be one of ours, authors"):
        SDConfig(filter="grey")


class AverageRedFirst:
    """A stand-in pipeline: image 0 of the first call is a textured colour image whose red sits at
    the mean over channels (the authors' filter drops it, ours keeps it); every other image has a
    strong red."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, prompt, generator, **kwargs):
        self.calls += 1
        rng = np.random.default_rng(self.calls)
        n = len(prompt)
        texture = rng.integers(-30, 31, size=(n, 8, 8, 1))
        base = np.array([[200, 60, 80]] * n)
        if self.calls == 1:
            base[0] = (120, 60, 180)
        images = np.clip(base[:, None, None, :] + texture, 0, 255) / 255.0
        return SimpleNamespace(images=images.astype(np.float32), nsfw_content_detected=None)


@pytest.mark.parametrize("rule, attempts", [("authors", [1, 0, 0]), ("ours", [0, 0, 0])])
def test_the_filter_decides_regeneration(rule: str, attempts: list[int]) -> None:
    pipe = AverageRedFirst()
    source = StableDiffusionSource(SDConfig(resolution=8, batch_size=3, filter=rule), pipeline=pipe)
    _, seeds, got = source.render(pd.DataFrame({"index": [4, 5, 6], "prompt": ["a", "b", "c"]}), set_seed=2)
    assert got.tolist() == attempts and pipe.calls == 1 + attempts[0]
    assert seeds.tolist() == [image_seed(2, i, a) for i, a in zip((4, 5, 6), attempts)]


def test_the_filter_is_recorded_in_the_set_and_its_manifest(tmp_path) -> None:
    source = StableDiffusionSource(SDConfig(resolution=8, batch_size=4, filter="authors", device="cpu"),
                                   pipeline=AverageRedFirst())
    spec = make_spec("celeba-hq", np.array([[6, 50], [70, 8]]), Recipe("balanced", total=4), source, 0, size=8,
                     class_names=("not smiling", "smiling"), bias_names=("female", "male"), prompts="official")
    generate_set(tmp_path / "s", spec, source, progress=False)
    manifest = read_manifest(tmp_path / "s")
    assert {(json.loads(s)["filter"], json.loads(s)["authors_threshold"]) for s in manifest["settings"]} == {
        ("authors", 1_500_000)}
    assert manifest["attempt"].tolist() == [1, 0, 0, 0]
    assert json.loads((tmp_path / "s" / "set.json").read_text())["settings"]["filter"] == "authors"
    assert SDConfig().settings()["filter"] == "ours"


def test_ffr_generate_takes_the_filter() -> None:
    args = build_parser().parse_args(["generate", "--dataset", "celeba-hq", "--out", "x", "--filter", "authors"])
    assert args.filter == "authors"
    assert make_source("sd", "celeba-hq", filter=args.filter).config.filter == "authors"
    assert make_source("sd", "celeba-hq", filter=None).config.filter == "ours"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--dataset", "celeba-hq", "--out", "x", "--filter", "grey"])
