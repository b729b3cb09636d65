"""Corruptions (ECCV table 4): identity at 0, monotone distortion, and the package's formulas."""

from __future__ import annotations

import importlib
import sys
import types
import warnings

import numpy as np
import pytest

from ffr_lib.data.world import WorldConfig
from ffr_lib.generation import corruptions as C
from ffr_lib.generation.procedural import ProceduralGenerator


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """uint8 (6, 64, 64, 3) images of the world (64 px: the package needs >= 32 px)."""
    gen = ProceduralGenerator(WorldConfig(size=64))
    out = gen.generate(np.array([0, 1, 0, 1, 0, 1]), np.array([0, 1, 1, 0, 0, 1]), seed=3)
    return out.images.permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def package():
    """imagecorruptions 1.1.2's own corruption functions, imported with a stand-in for the
    `pkg_resources` module it needs only to locate its frost images."""
    stub = types.ModuleType("pkg_resources")
    stub.resource_filename = lambda *a: ""
    saved = sys.modules.get("pkg_resources")
    sys.modules["pkg_resources"] = stub
    try:
        with warnings.catch_warnings():  # its scipy.ndimage.interpolation import is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module("imagecorruptions.corruptions")
    except ImportError as err:  # e.g. an environment without the package
        pytest.skip(f"imagecorruptions cannot be imported: {err}")
    finally:
        if saved is None:
            sys.modules.pop("pkg_resources", None)
        else:
            sys.modules["pkg_resources"] = saved


def test_severity_zero_is_identity(images):
    for img in images:
        assert np.array_equal(C.corrupt(img, 0, seed=1), img)


def test_distortion_grows_with_severity(images):
    mse = []
    for s in range(6):
        err = [np.mean((C.corrupt(img, s, seed=i).astype(float) - img.astype(float)) ** 2) for i, img in enumerate(images)]
        mse.append(float(np.mean(err)))
    assert mse[0] == 0.0
    assert all(a < b for a, b in zip(mse, mse[1:])), mse
    # each corruption on its own also grows with severity
    for fn in (C.pixelate, C.defocus_blur):
        e = [np.mean((fn(images[0], s).astype(float) - images[0]) ** 2) for s in range(1, 6)]
        assert all(a < b for a, b in zip(e, e[1:])), (fn.__name__, e)


def test_same_seed_same_image(images):
    a = C.corrupt(images[0], 3, seed=7)
    assert np.array_equal(a, C.corrupt(images[0], 3, seed=7))
    assert not np.array_equal(a, C.corrupt(images[0], 3, seed=8))
    assert a.dtype == np.uint8 and a.shape == images[0].shape


def test_bad_severity_is_refused(images):
    with pytest.raises(ValueError, match="severity"):
        C.corrupt(images[0], 6)
    with pytest.raises(ValueError, match="uint8"):
        C.corrupt(images[0].astype(np.float32), 2)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_pixelate_matches_package(package, images, severity):
    from PIL import Image

    for img in images[:2]:
        theirs = np.uint8(package.pixelate(Image.fromarray(img), severity))
        assert np.array_equal(C.pixelate(img, severity), theirs)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_defocus_blur_matches_package(package, images, severity):
    radius, alias = C.DEFOCUS[severity - 1]
    np.testing.assert_allclose(C.disk(radius, alias), package.disk(radius, alias), atol=1e-7)
    for img in images[:2]:
        theirs = package.defocus_blur(img, severity)
        np.testing.assert_allclose(C.defocus_blur_float(img, severity), theirs, atol=1e-6)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_gaussian_noise_matches_package(package, images, severity):
    np.random.seed(11)
    theirs = package.gaussian_noise(images[0], severity)
    ours = C.gaussian_noise_float(images[0], severity, np.random.RandomState(11))
    np.testing.assert_array_equal(ours, theirs)


def test_chain_matches_package_corrupt(package, images):
    """The whole chain through the package's `corrupt` (its uint8 casts between steps)."""
    corrupt = sys.modules["imagecorruptions"].corrupt
    for severity in (2, 5):
        theirs = corrupt(images[1], severity, "pixelate")
        theirs = corrupt(theirs, severity, "defocus_blur")
        np.random.seed(5)
        theirs = corrupt(theirs, severity, "gaussian_noise")
        ours = C.gaussian_noise(C.defocus_blur(C.pixelate(images[1], severity), severity), severity, np.random.RandomState(5))
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        # FFT vs cv2 filtering may flip a truncation by one level on a handful of pixels
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01
