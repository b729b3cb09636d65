"""Image corruptions of ECCV table 4: pixelate, then defocus blur, then gaussian noise.

The semantics and parameters are those of `imagecorruptions` 1.1.2 (the version the authors
pinned), re-implemented here because that package no longer imports (it needs
`pkg_resources`, which current setuptools dropped). Each corruption works as the package's
`corrupt(image, severity, corruption_name)` does: uint8 (H, W, 3) in, uint8 out, the float
result truncated by `np.uint8` as the package does. tests/test_corruptions.py checks these
functions against the package's own code.

One deliberate difference: gaussian noise draws from a `rng` argument (seeded per image by the
caller) instead of numpy's global state, so a corrupted set is reproducible.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import correlate1d
from scipy.signal import fftconvolve

SEVERITIES = (0, 1, 2, 3, 4, 5)  # 0 = no corruption
# imagecorruptions 1.1.2 parameters, severity 1..5
PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)  # down-scaling factor (BOX down, NEAREST up)
DEFOCUS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))  # (disk radius px, alias blur sigma)
GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)  # noise std in [0, 1] units
CHAIN = ("pixelate", "defocus_blur", "gaussian_noise")  # the authors' order


def _check(image: np.ndarray, severity: int) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"corruptions need uint8 (H, W, 3) images, got {image.dtype} {image.shape}")
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"corruption severity must be an integer in 1..5 here, got {severity!r}")


def _gaussian_kernel_1d(ksize: int, sigma: float) -> np.ndarray:
    """cv2.getGaussianKernel(ksize, sigma) in float32."""
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).astype(np.float32)


def disk(radius: int, alias_blur: float = 0.1) -> np.ndarray:
    """The package's defocus kernel: a normalised disk (17x17 up to radius 8, else
    (2r+1)^2), anti-aliased by a small gaussian (cv2.GaussianBlur, reflect-101 border)."""
    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), 3
    else:
        grid, ksize = np.arange(-radius, radius + 1), 5
    xx, yy = np.meshgrid(grid, grid)
    aliased = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    aliased /= np.sum(aliased)
    k = _gaussian_kernel_1d(ksize, alias_blur)
    out = correlate1d(aliased, k, axis=0, mode="mirror")  # scipy 'mirror' = cv2 BORDER_REFLECT_101
    return correlate1d(out, k, axis=1, mode="mirror").astype(np.float32)


def pixelate(image: np.ndarray, severity: int) -> np.ndarray:
    """uint8 (H, W, 3): BOX down-scaling by the severity's factor, NEAREST back up."""
    _check(image, severity)
    c = PIXELATE[severity - 1]
    h, w = image.shape[:2]
    pil = Image.fromarray(image).resize((int(w * c), int(h * c)), Image.BOX)
    return np.asarray(pil.resize((w, h), Image.NEAREST), dtype=np.uint8)


def defocus_blur_float(image: np.ndarray, severity: int) -> np.ndarray:
    """float64 (H, W, 3) in [0, 255]: the package's defocus blur before its uint8 cast
    (cv2.filter2D with reflect-101 borders, done here by padding and an FFT convolution;
    the kernel is symmetric, so correlation and convolution agree)."""
    _check(image, severity)
    radius, alias = DEFOCUS[severity - 1]
    kernel = disk(radius, alias).astype(np.float64)
    r = kernel.shape[0] // 2
    x = image.astype(np.float64) / 255.0
    padded = np.pad(x, ((r, r), (r, r), (0, 0)), mode="reflect")  # numpy 'reflect' = reflect-101
    out = np.stack([fftconvolve(padded[:, :, c], kernel, mode="valid") for c in range(3)], axis=-1)
    return np.clip(out, 0, 1) * 255


def defocus_blur(image: np.ndarray, severity: int) -> np.ndarray:
    """uint8 (H, W, 3): defocus (disk) blur of the severity's radius."""
    return np.uint8(defocus_blur_float(image, severity))


def gaussian_noise_float(image: np.ndarray, severity: int, rng) -> np.ndarray:
    """float64 (H, W, 3) in [0, 255]: additive gaussian noise before the uint8 cast.
    `rng` is anything with numpy's `normal(size=, scale=)` (a Generator or a RandomState)."""
    _check(image, severity)
    x = np.array(image) / 255.0
    return np.clip(x + rng.normal(size=x.shape, scale=GAUSSIAN_NOISE[severity - 1]), 0, 1) * 255


def gaussian_noise(image: np.ndarray, severity: int, rng) -> np.ndarray:
    """uint8 (H, W, 3): additive gaussian noise of the severity's std."""
    return np.uint8(gaussian_noise_float(image, severity, rng))


def corrupt(image: np.ndarray, severity: int, seed: int | np.random.SeedSequence | None = None) -> np.ndarray:
    """uint8 (H, W, 3): pixelate, then defocus blur, then gaussian noise, all at `severity`
    (0 = the image unchanged). `seed` seeds the noise: the same seed, the same image."""
    if severity not in SEVERITIES:
        raise ValueError(f"corruption severity must be an integer in 0..5, got {severity!r}")
    if severity == 0:
        return image
    rng = np.random.default_rng(seed)
    out = pixelate(image, severity)
    out = defocus_blur(out, severity)
    return gaussian_noise(out, severity, rng)
