"""The embedded world's renderer: shapes (the core feature) on textured scenes (the bias).

Every image is a pure function of (world seed, stream, index, y, b, style, artifacts): the
per-sample random draws come from a generator seeded by (seed, stream, index) alone, so any
image can be rebuilt without storing it, and batching never changes a pixel.

Two families of departures from the real images, both zero by default (= real):
- `Style` (fidelity): how faithfully the content is drawn: rounded or wobbly outlines, a shifted
  scale or rotation distribution, a missed shape sub-mode, smoothed background texture.
- `Artifacts` (fingerprint): content-preserving traces a detector can find: a fixed-phase
  up-sampling pattern, a different noise spectrum, a colour cast.
Real images pass through the camera model (exposure, mild blur, sensor noise, uint8).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross")
SCENES = ("sand", "lake", "indoor", "forest")
AREA_FRACTION = 0.12  # default mean shape area as a share of the image (WorldConfig.shape_area)
SCALE_RANGE = (0.75, 1.25)  # area factor, uniform
EXTENT = 0.877  # largest centre-to-corner distance of the shapes per sqrt(area) (the triangle's)


def margin_px(size: int, area_fraction: float) -> float:
    """Centres stay this far from the border: the largest shape's extent plus 1 px."""
    return EXTENT * np.sqrt(area_fraction * SCALE_RANGE[1]) * size + 1.0

# base colours of the scenes (RGB in [0, 1])
SCENE_COLOURS = {
    "sand": (0.80, 0.70, 0.48),
    "lake": (0.18, 0.38, 0.66),
    "indoor": (0.62, 0.56, 0.50),
    "forest": (0.16, 0.40, 0.18),
}


@dataclass(frozen=True)
class Style:
    """Fidelity departures of a generator (all 0 = the real renderer)."""

    corner_rounding: float = 0.0  # 0..1: corners rounded by this share of the half-size
    wobble: float = 0.0  # px amplitude of an outline wobble
    scale_shift: float = 0.0  # added to the log area factor
    rotation_bias: float = 0.0  # 0..1: rotations pulled toward the upright pose
    drop_submode: float = 0.0  # 0..1: probability that sub-mode 1 (two-tone) is drawn as 0
    texture_smoothing: float = 0.0  # 0..1: background texture amplitude removed


@dataclass(frozen=True)
class Artifacts:
    """Fingerprint departures of a generator (all 0 = the real camera)."""

    grid: float = 0.0  # amplitude of a fixed-phase 2-px up-sampling pattern (in [0, 1] units)
    noise_colour: float = 0.0  # 0..1: share of the sensor noise that is low-pass (same power)
    cast: float = 0.0  # warm colour cast: R up and B down by this factor


@dataclass(frozen=True)
class Camera:
    """The real camera every image passes through."""

    exposure: float = 0.15  # gain uniform in [1 - e, 1 + e]
    blur_sigma: float = 0.6  # px, gaussian
    noise_std: float = 0.025  # sensor noise, in [0, 1] units


def stream_id(name: str) -> int:
    """A stable 32-bit id for a stream name ('train', 'val', 'synthetic/...')."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


@dataclass
class Draws:
    """Per-sample random draws of a batch; arrays of length N (fields) or N x H x W."""

    cx: np.ndarray
    cy: np.ndarray
    scale: np.ndarray
    angle: np.ndarray
    submode: np.ndarray
    hue: np.ndarray
    sat: np.ndarray
    val: np.ndarray
    scene_jitter: np.ndarray  # (N, 3)
    tex: np.ndarray  # (N, 4) texture parameters in [0, 1)
    tex_noise: np.ndarray  # (N, H, W)
    gain: np.ndarray
    sensor: np.ndarray  # (N, 3, H, W)
    wobble_phase: np.ndarray
    u_submode: np.ndarray  # uniform used by Style.drop_submode


def draw(seed: int, stream: str, index: np.ndarray, size: int) -> Draws:
    """The random draws of samples `index` of `stream`; each from its own seeded generator."""
    sid = stream_id(stream)
    n = len(index)
    out = {k: np.empty(n) for k in ("cx", "cy", "scale", "angle", "hue", "sat", "val", "gain", "wobble_phase", "u_submode")}
    submode = np.empty(n, dtype=np.int64)
    jitter = np.empty((n, 3))
    tex = np.empty((n, 4))
    tex_noise = np.empty((n, size, size), dtype=np.float32)
    sensor = np.empty((n, 3, size, size), dtype=np.float32)
    for k, i in enumerate(np.asarray(index, dtype=np.int64)):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, sid, int(i)])))
        u = rng.random(13)
        out["cx"][k], out["cy"][k] = u[0], u[1]
        out["scale"][k] = u[2]
        out["angle"][k] = u[3]
        submode[k] = int(u[4] < 0.5)
        out["hue"][k], out["sat"][k], out["val"][k] = u[5], u[6], u[7]
        out["gain"][k] = u[8]
        out["wobble_phase"][k] = u[9]
        out["u_submode"][k] = u[10]
        jitter[k] = rng.normal(0.0, 0.04, 3)
        tex[k] = rng.random(4)
        tex_noise[k] = rng.standard_normal((size, size), dtype=np.float32)
        sensor[k] = rng.standard_normal((3, size, size), dtype=np.float32)
    return Draws(submode=submode, scene_jitter=jitter, tex=tex, tex_noise=tex_noise, sensor=sensor, **out)


# -- scenes ------------------------------------------------------------------------------------
def _box_blur(x: np.ndarray, k: int) -> np.ndarray:
    """Separable box blur over the last two axes with wrap-around (textures tile)."""
    out = x.copy()
    for axis in (-1, -2):
        acc = np.zeros_like(out)
        for s in range(-(k // 2), k // 2 + 1):
            acc += np.roll(out, s, axis=axis)
        out = acc / k
    return out


def scene(kind: str, d: Draws, sel: np.ndarray, size: int, style: Style) -> np.ndarray:
    """float32 (n, 3, H, W) backgrounds of scene `kind` for the samples `sel` of `d`."""
    v, u = np.meshgrid((np.arange(size) + 0.5) / size, (np.arange(size) + 0.5) / size, indexing="ij")
    p = d.tex[sel][:, :, None, None]  # (n, 4, 1, 1)
    noise = d.tex_noise[sel]
    smooth = _box_blur(noise, 5) * 2.0  # blobs, roughly unit variance
    if kind == "sand":
        a = p[:, 0] * np.pi
        ripples = np.sin(2 * np.pi * (3 + 2 * p[:, 1]) * (u * np.cos(a) + v * np.sin(a)) + 2 * np.pi * p[:, 2])
        texture = 0.07 * ripples + 0.09 * noise
    elif kind == "lake":
        waves = np.sin(2 * np.pi * (4 + 3 * p[:, 0]) * v + 2 * np.pi * p[:, 1] + 0.6 * np.sin(2 * np.pi * 2 * u))
        texture = 0.12 * waves + 0.04 * smooth
    elif kind == "indoor":
        k = 3 + 2 * p[:, 0]
        lines = (np.mod(u * k + p[:, 1], 1.0) < 0.1) | (np.mod(v * k + p[:, 2], 1.0) < 0.1)
        texture = -0.22 * lines + 0.03 * noise
    elif kind == "forest":
        trunks = np.sin(2 * np.pi * (3 + 3 * p[:, 0]) * u + 2 * np.pi * p[:, 1]) > 0.55
        texture = -0.25 * trunks + 0.12 * smooth
    else:
        raise KeyError(f"unknown scene {kind!r}; known: {', '.join(SCENES)}")
    texture = (1.0 - style.texture_smoothing) * texture
    base = np.asarray(SCENE_COLOURS[kind])[None, :] + d.scene_jitter[sel]  # (n, 3)
    return (base[:, :, None, None] * (1.0 + texture[:, None])).astype(np.float32)


# -- shapes ------------------------------------------------------------------------------------
def _box_sdf(px: np.ndarray, py: np.ndarray, hx: np.ndarray, hy: np.ndarray) -> np.ndarray:
    qx, qy = np.abs(px) - hx, np.abs(py) - hy
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0)


def _triangle_sdf(px: np.ndarray, py: np.ndarray, half_side: np.ndarray) -> np.ndarray:
    """Equilateral triangle centred on its centroid, pointing up (iq's formulation)."""
    k = np.sqrt(3.0)
    x = np.abs(px) - half_side
    y = -py + half_side / k
    fold = x + k * y > 0
    x, y = np.where(fold, (x - k * y) / 2, x), np.where(fold, (-k * x - y) / 2, y)
    x = x - np.clip(x, -2 * half_side, 0)
    return -np.hypot(x, y) * np.sign(y)


def shape_sdf(name: str, px: np.ndarray, py: np.ndarray, area: np.ndarray, rounding: float) -> np.ndarray:
    """Signed distance (px) to a shape of the given area; negative inside."""
    root = np.sqrt(area)
    if name == "circle":
        return np.hypot(px, py) - root / np.sqrt(np.pi)
    if name == "square":
        h = root / 2
        r = rounding * h
        return _box_sdf(px, py, h - r, h - r) - r
    if name == "triangle":
        half = root * np.sqrt(4 / np.sqrt(3.0)) / 2
        r = rounding * half * 0.5
        return _triangle_sdf(px, py, half - r) - r
    if name == "cross":
        w = root / np.sqrt(5.0)
        r = rounding * 0.5 * w
        arm_long, arm_short = 1.5 * w - r, 0.5 * w - r
        return np.minimum(_box_sdf(px, py, arm_long, arm_short), _box_sdf(px, py, arm_short, arm_long)) - r
    raise KeyError(f"unknown shape {name!r}; known: {', '.join(SHAPES)}")


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(n,) each -> (n, 3)."""
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack([np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    return table[i, np.arange(len(h))]


def shapes(
    names: list[str], d: Draws, size: int, style: Style, area_fraction: float = AREA_FRACTION
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage (n, H, W) in [0, 1], inner two-tone coverage (n, H, W) and colour (n, 3)."""
    n = len(names)
    coords = np.arange(size) + 0.5
    gy, gx = np.meshgrid(coords, coords, indexing="ij")
    margin = margin_px(size, area_fraction)
    cx = margin + d.cx * (size - 2 * margin)
    cy = margin + d.cy * (size - 2 * margin)
    lo, hi = SCALE_RANGE
    area = area_fraction * size * size * (lo + d.scale * (hi - lo)) * np.exp(style.scale_shift)
    angle = 2 * np.pi * d.angle * (1.0 - style.rotation_bias)
    submode = np.where(d.u_submode < style.drop_submode, 0, d.submode)
    dx, dy = gx[None] - cx[:, None, None], gy[None] - cy[:, None, None]
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    px, py = c * dx + s * dy, -s * dx + c * dy
    a3 = area[:, None, None]
    sdf = np.empty((n, size, size))
    for name in set(names):
        sel = np.array([nm == name for nm in names])
        sdf[sel] = shape_sdf(name, px[sel], py[sel], a3[sel], style.corner_rounding)
    if style.wobble:
        theta = np.arctan2(py, px)
        sdf = sdf + style.wobble * np.sin(5 * theta + 2 * np.pi * d.wobble_phase[:, None, None])
    coverage = np.clip(0.5 - sdf, 0.0, 1.0)
    inner_depth = 0.28 * np.sqrt(area)[:, None, None]
    inner = np.clip(0.5 - (sdf + inner_depth), 0.0, 1.0) * submode[:, None, None]
    colour = _hsv_to_rgb(d.hue, 0.55 + 0.45 * d.sat, 0.7 + 0.3 * d.val)
    return coverage.astype(np.float32), inner.astype(np.float32), colour.astype(np.float32)


# -- camera and fingerprint ------------------------------------------------------------------------
def _gauss_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """3-tap separable gaussian over the last two axes (edge-replicated)."""
    if sigma <= 0:
        return x
    w = np.exp(-0.5 * (np.arange(-1, 2) / sigma) ** 2)
    w = w / w.sum()
    pad = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    h = w[0] * pad[..., :, :-2] + w[1] * pad[..., :, 1:-1] + w[2] * pad[..., :, 2:]
    return w[0] * h[..., :-2, :] + w[1] * h[..., 1:-1, :] + w[2] * h[..., 2:, :]


def develop(
    scene_rgb: np.ndarray, d: Draws, camera: Camera, artifacts: Artifacts
) -> np.ndarray:
    """Light (n, 3, H, W) in [0, 1] -> uint8 image, through the camera and any fingerprint."""
    size = scene_rgb.shape[-1]
    gain = 1.0 + camera.exposure * (2 * d.gain - 1)
    x = _gauss_blur(scene_rgb, camera.blur_sigma) * gain[:, None, None, None]
    noise = d.sensor
    if artifacts.noise_colour:
        low = _box_blur(noise, 3) * 3.0  # a 3x3 box mean has std 1/3: back to unit power
        m = artifacts.noise_colour
        noise = np.sqrt(1 - m) * noise + np.sqrt(m) * low
    x = x + camera.noise_std * noise
    if artifacts.cast:
        x = x * (1.0 + artifacts.cast * np.array([1.0, 0.0, -1.0]))[None, :, None, None]
    if artifacts.grid:
        ii, jj = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        x = x + artifacts.grid * np.where((ii + jj) % 2 == 0, 1.0, -1.0)[None, None]
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def render(
    seed: int,
    stream: str,
    index: np.ndarray,
    shape_names: list[str],
    scene_names: list[str],
    size: int,
    style: Style = Style(),
    artifacts: Artifacts = Artifacts(),
    camera: Camera = Camera(),
    area_fraction: float = AREA_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, 3, H, W) and bool shape masks (n, H, W) of one batch.

    shape_names[k] and scene_names[k] are sample k's class shape and bias scene.
    """
    index = np.asarray(index, dtype=np.int64)
    d = draw(seed, stream, index, size)
    light = np.empty((len(index), 3, size, size), dtype=np.float32)
    scenes_arr = np.asarray(scene_names)
    for kind in set(scene_names):
        sel = np.flatnonzero(scenes_arr == kind)
        light[sel] = scene(kind, d, sel, size, style)
    cover, inner, colour = shapes(list(shape_names), d, size, style, area_fraction)
    tint = 0.55 * colour + 0.45  # the two-tone core: the colour mixed with white
    fill = colour[:, :, None, None] * (1 - inner[:, None]) + tint[:, :, None, None] * inner[:, None]
    light = light * (1 - cover[:, None]) + fill * cover[:, None]
    return develop(light, d, camera, artifacts), cover >= 0.5
