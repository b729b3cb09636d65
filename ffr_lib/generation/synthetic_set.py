"""A synthetic set on disk: PNG files, one manifest row per image, and the set's identity.

Folder layout:
  set.json           what the set is: dataset, recipe and its per-group counts, generator and
                     its settings, prompt set, seed, image size, corruption severity (written first)
  images/<index>.png one image per planned index
  manifest.csv       one row per finished image: index, file, y, class, b, bias, prompt, seed,
                     attempt, generator, settings, recipe, corruption_severity

Crash safety: set.json and every PNG are written atomically (temporary name, then rename); a
chunk's PNGs are written before its rows are appended (and fsync'ed) to the manifest, so the
manifest never names a missing image. Appending keeps a large set linear in time; a row cut
short by a kill is the only possible damage, and `open_set` drops it. A resumed run
regenerates every planned index the manifest lacks (overwriting a PNG written but not yet
listed); each image is a function of its plan row, so the finished folder is the same bytes
as an uninterrupted run's.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..data.grouped import SYNTHETIC, GroupedImages
from ..io import atomic_write_bytes, atomic_write_text

SPEC_FILE = "set.json"
MANIFEST_FILE = "manifest.csv"
IMAGE_DIR = "images"
MANIFEST_COLUMNS = (
    "index", "file", "y", "class", "b", "bias", "prompt", "seed", "attempt",
    "generator", "settings", "recipe", "corruption_severity",
)  # fmt: skip
UNKNOWN_BIAS = -1  # b of a class-only image whose generator does not report its bias


class SetMismatchError(ValueError):
    """An output folder already holds a different synthetic set."""


@dataclass(frozen=True)
class SetSpec:
    """What identifies a synthetic set; a folder holds exactly one."""

    dataset: str  # prompt and naming source ('celeba-hq', 'shapes-binary', ...)
    recipe: dict  # the Recipe's fields: name, total, scale
    ratio: float | None  # bias ratio of the real split the recipe was sized on (None = not given)
    real_counts: list  # (n_classes, n_biases) real counts the recipe was sized on
    counts: list  # (n_classes, n_biases) planned synthetic counts (class-only: per class budget)
    class_only: bool  # prompts name the class only (recipe 'agnostic')
    generator: str  # 'procedural', 'sd', 'diffusion'
    settings: dict  # the generator's settings (knobs, model, steps, ...)
    prompts: str  # prompt set name
    seed: int  # set seed: every per-image seed derives from it
    size: int  # image side on disk in px
    corruption_severity: int  # 0..5 (0 = none)
    class_names: list
    bias_names: list

    @property
    def total(self) -> int:
        return int(np.asarray(self.counts).sum())

    def to_dict(self) -> dict:
        """Plain JSON types, as stored in set.json (so that stored and asked specs compare)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> SetSpec:
        return cls(**data)


def image_file(index: int) -> str:
    return f"{IMAGE_DIR}/{int(index):07d}.png"


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless, deterministic PNG of a uint8 (H, W, 3) image (no metadata)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def read_spec(folder: str | Path) -> SetSpec:
    path = Path(folder) / SPEC_FILE
    try:
        return SetSpec.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder} holds no synthetic set ({SPEC_FILE} missing)") from None
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{path} is not a synthetic set description: {err}") from None


def _differences(stored: dict, asked: dict) -> list[str]:
    lines = []
    for key in asked:
        if stored.get(key) != asked[key]:
            lines.append(f"  {key}: the folder has {stored.get(key)!r}, this run asks for {asked[key]!r}")
    return lines


def open_set(folder: str | Path, spec: SetSpec) -> pd.DataFrame:
    """Prepare `folder` for `spec` and return the manifest rows already finished.

    A new folder (or an empty one) gets set.json; a folder holding the same set is resumed;
    a folder holding another set, or other files, is refused with a SetMismatchError.
    """
    folder = Path(folder)
    spec_path = folder / SPEC_FILE
    if spec_path.exists():
        stored = read_spec(folder).to_dict()
        diff = _differences(stored, spec.to_dict())
        if diff:
            raise SetMismatchError(
                f"{folder} already holds a different synthetic set (recipe {stored['recipe']['name']!r}, "
                f"generator {stored['generator']!r}):\n" + "\n".join(diff) + "\n"
                "Use another output folder, or delete this one to start over."
            )
    else:
        if folder.exists() and any(folder.iterdir()):
            raise SetMismatchError(f"{folder} is not empty and holds no {SPEC_FILE}: refusing to write a set into it")
        atomic_write_text(spec_path, json.dumps(spec.to_dict(), indent=2, sort_keys=True) + "\n")
    (folder / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    for tmp in (folder / IMAGE_DIR).glob(".*.tmp"):  # a killed atomic write's leftovers
        tmp.unlink()
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink()
    path = folder / MANIFEST_FILE
    if not path.exists():
        atomic_write_text(path, ",".join(MANIFEST_COLUMNS) + "\n")
    _drop_cut_row(path)
    manifest = read_manifest(folder)
    missing = [f for f in manifest["file"] if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder / MANIFEST_FILE} lists {len(missing)} missing images, e.g. {missing[0]}")
    return manifest


def _drop_cut_row(path: Path) -> None:
    """Truncate a manifest after its last complete line (a kill during an append)."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)
            fh.flush()
            os.fsync(fh.fileno())


def read_manifest(folder: str | Path) -> pd.DataFrame:
    """The manifest rows (empty with the right columns when none is written yet)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in MANIFEST_COLUMNS})
    df = pd.read_csv(path, keep_default_na=False, dtype={"prompt": str, "bias": str, "class": str, "settings": str})
    missing = set(MANIFEST_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    if df["index"].duplicated().any():
        raise ValueError(f"{path} lists index {int(df['index'][df['index'].duplicated()].iloc[0])} twice")
    return df


def write_chunk(folder: str | Path, manifest: pd.DataFrame, rows: pd.DataFrame, images: np.ndarray) -> pd.DataFrame:
    """Write `images` (uint8 (N, H, W, 3)) for manifest `rows`, then append the rows.

    Returns the extended manifest. Rows already listed are refused.
    """
    folder = Path(folder)
    if len(rows) != len(images):
        raise ValueError(f"write_chunk: {len(rows)} rows but {len(images)} images")
    if len(manifest) and np.isin(rows["index"].to_numpy(), manifest["index"].to_numpy()).any():
        raise ValueError("write_chunk: some rows are already in the manifest")
    rows = rows[list(MANIFEST_COLUMNS)]
    if rows["prompt"].str.contains("\n").any():
        raise ValueError("write_chunk: a prompt holds a line break; the manifest keeps one line per image")
    for file, image in zip(rows["file"], images):
        atomic_write_bytes(folder / file, png_bytes(image))
    with open(folder / MANIFEST_FILE, "ab") as fh:  # whole rows, after their images exist
        fh.write(rows.to_csv(index=False, header=False, lineterminator="\n").encode())
        fh.flush()
        os.fsync(fh.fileno())
    parts = [m for m in (manifest, rows) if len(m)]
    return pd.concat(parts, ignore_index=True)


def load_synthetic_set(
    folder: str | Path, allow_partial: bool = False, unknown_bias: int | None = None
) -> GroupedImages:
    """The set in `folder` as GroupedImages with g = synthetic (images uint8 (N, 3, S, S)).

    A set whose manifest is shorter than planned is refused unless `allow_partial`. Images of
    class-only prompts whose generator does not report the bias have b = -1 on disk: loading
    them needs `unknown_bias`, the b to give them (or filter them out yourself first).
    """
    folder = Path(folder)
    spec = read_spec(folder)
    manifest = read_manifest(folder)
    if len(manifest) < spec.total and not allow_partial:
        raise ValueError(
            f"{folder} is incomplete: {len(manifest)} of {spec.total} images; run the same `ffr generate` "
            "command again to resume it, or pass allow_partial=True"
        )
    b = np.array(manifest["b"], dtype=np.int64)
    if (b == UNKNOWN_BIAS).any():
        if unknown_bias is None:
            raise ValueError(
                f"{folder}: {int((b == UNKNOWN_BIAS).sum())} images have an unknown bias (class-only prompts); "
                "pass unknown_bias=<b> to load them"
            )
        b = np.where(b == UNKNOWN_BIAS, unknown_bias, b)
    n, s = len(manifest), spec.size
    images = np.empty((n, 3, s, s), dtype=np.uint8)
    for i, file in enumerate(manifest["file"]):
        with Image.open(folder / file) as im:
            arr = np.asarray(im.convert("RGB"))
        if arr.shape != (s, s, 3):
            raise ValueError(f"{folder / file} is {arr.shape[1]}x{arr.shape[0]}, the set's size is {s}")
        images[i] = arr.transpose(2, 0, 1)
    return GroupedImages.from_arrays(
        torch.from_numpy(images),
        np.array(manifest["y"], dtype=np.int64),
        b,
        spec.class_names,
        spec.bias_names,
        g=SYNTHETIC,
        info={"folder": str(folder), **spec.to_dict()},
    )
