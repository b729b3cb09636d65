"""A synthetic set on disk: PNG files, one manifest row per image, and the set's identity.

Folder layout:
  set.json           what the set is: dataset, recipe and its per-group counts, generator and
                     its settings, prompt set, seed, image size, corruption severity (written first)
  images/<index>.png one image per planned index
  manifest.csv       one row per finished image, in index order: index, file, y, class, b, bias,
                     prompt, seed, attempt, generator, settings, recipe, corruption_severity,
                     sha1 (of the PNG's bytes; manifests written before it lack the column)

Crash safety: set.json and every PNG are written atomically (temporary name, then rename); a
chunk's PNGs are written before its rows are appended (and fsync'ed) to the manifest, so the
manifest never names a missing image. Appending keeps a large set linear in time; a row cut
short by a kill (no final line break) is the only damage a kill can do, and `open_set` drops
it. A resumed run re-checks every image it keeps (its sha1, or a full decode where the
manifest records none), drops the rows of missing or damaged ones and regenerates them with
every planned index the manifest lacks (overwriting a PNG written but not yet listed); each
image is a function of its plan row, so the finished folder is the same bytes as an
uninterrupted run's. Damage no kill makes (a row with empty fields, a missing or unreadable
image at load time) is refused with a SetFileError naming the file and line and the
`ffr generate` command that repairs the set.
"""

from __future__ import annotations

import hashlib
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
from .set_command import general_command, generate_command

SPEC_FILE = "set.json"
MANIFEST_FILE = "manifest.csv"
IMAGE_DIR = "images"
MANIFEST_COLUMNS = (
    "index", "file", "y", "class", "b", "bias", "prompt", "seed", "attempt",
    "generator", "settings", "recipe", "corruption_severity", "sha1",
)  # fmt: skip
OPTIONAL_COLUMNS = ("sha1",)  # absent from manifests written before it; their images are checked by decoding
INT_COLUMNS = ("index", "y", "b", "seed", "attempt", "corruption_severity")
UNKNOWN_BIAS = -1  # b of a class-only image whose generator does not report its bias


class SetMismatchError(ValueError):
    """An output folder already holds a different synthetic set."""


class SetFileError(ValueError):
    """A synthetic set on disk is damaged: a manifest row with empty or bad fields, a missing or
    unreadable image. The message (one line) names the file and line and the repair."""


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


def sha1_of(data: bytes) -> str:
    """The hex sha1 of a PNG's bytes, as the manifest records it."""
    return hashlib.sha1(data).hexdigest()


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
    a folder holding another set, or other files, is refused with a SetMismatchError. The
    rows' images are not checked here (`damaged_images` does).
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
    return read_manifest(folder)


def _drop_cut_row(path: Path) -> None:
    """Truncate a manifest after its last complete line (a kill during an append)."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)
            fh.flush()
            os.fsync(fh.fileno())


def repair_hint(folder: str | Path, spec: SetSpec | None = None) -> str:
    """'repair the set with: <the ffr generate command that resumes it>' (one line)."""
    if spec is None:
        try:
            spec = read_spec(folder)
        except (FileNotFoundError, ValueError):
            return f"repair the set with: {general_command(folder)}"
    return f"repair the set with: {generate_command(spec, folder)}"


def _header(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        return fh.readline().rstrip("\r\n").split(",")


def read_manifest(folder: str | Path) -> pd.DataFrame:
    """The manifest rows (empty with the right columns when none is written yet), in file order.

    Every row is checked: a row with an empty field (cut short), a non-integer where an integer
    belongs, a malformed sha1 or (with set.json readable) a file, generator, recipe or severity
    that is not the set's is refused with a SetFileError naming the file and line.
    """
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in MANIFEST_COLUMNS})
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        reason = " ".join(str(err).split())
        raise SetFileError(f"{path} is not a readable manifest ({reason}); {repair_hint(folder)}") from None
    missing = set(MANIFEST_COLUMNS) - set(OPTIONAL_COLUMNS) - set(df.columns)
    unknown = set(df.columns) - set(MANIFEST_COLUMNS)
    if missing or unknown:
        what = f"lacks columns {sorted(missing)}" if missing else f"has unknown columns {sorted(unknown)}"
        raise SetFileError(f"{path} {what}; {repair_hint(folder)}")
    _check_rows(folder, path, df)
    for column in INT_COLUMNS:
        df[column] = df[column].astype(np.int64)
    twice = df["index"].duplicated()
    if twice.any():
        i = int(np.flatnonzero(twice)[0])
        raise SetFileError(f"{path} line {i + 2}: index {int(df['index'][i])} is listed twice; {repair_hint(folder)}")
    return df


def _check_rows(folder: Path, path: Path, df: pd.DataFrame) -> None:
    """Refuse the first bad row of a manifest read as strings (line = row + 2: the header is line 1)."""
    try:
        spec = read_spec(folder)
    except (FileNotFoundError, ValueError):
        spec = None

    def refuse(row: int, what: str, advice: str = "") -> None:
        raise SetFileError(f"{path} line {row + 2}: {what}; {advice}{repair_hint(folder, spec)}")

    required = [c for c in df.columns if c != "bias"]
    empty = (df[required] == "").to_numpy()
    empty_bias = ((df["bias"] == "") & (df["b"] != str(UNKNOWN_BIAS))).to_numpy()  # '' only for an unknown b
    bad = np.flatnonzero(empty.any(axis=1) | empty_bias)
    if len(bad):
        row = int(bad[0])
        fields = [c for c, e in zip(required, empty[row]) if e] + (["bias"] if empty_bias[row] else [])
        refuse(row, f"row cut short (empty {', '.join(fields)})", "delete that line, then ")
    checks = [(c, r"-?[0-9]+", "not an integer") for c in INT_COLUMNS]
    checks += [("sha1", r"[0-9a-f]{40}", "not a sha1 (40 hex digits)")] if "sha1" in df.columns else []
    for column, pattern, what in checks:
        wrong = np.flatnonzero(~df[column].str.fullmatch(pattern).to_numpy())
        if len(wrong):
            row = int(wrong[0])
            refuse(row, f"{column} is {df[column][row]!r}, {what}", "delete that line, then ")
    if spec is None:
        return
    index = df["index"].astype(np.int64).to_numpy()
    outside = np.flatnonzero((index < 0) | (index >= spec.total))
    if len(outside):
        refuse(int(outside[0]), f"index {index[outside[0]]} is outside the set's 0..{spec.total - 1}")
    expected = {
        "file": np.array([image_file(i) for i in index], dtype=object),
        "generator": spec.generator,
        "recipe": spec.recipe["name"],
        "corruption_severity": str(spec.corruption_severity),
    }
    for column, want in expected.items():
        wrong = np.flatnonzero(df[column].to_numpy() != want)
        if len(wrong):
            row = int(wrong[0])
            should = want[row] if isinstance(want, np.ndarray) else want
            refuse(row, f"{column} is {df[column][row]!r}, the set's is {should!r}", "delete that line, then ")


def write_manifest(folder: str | Path, manifest: pd.DataFrame) -> None:
    """Rewrite the whole manifest atomically (its columns as they are): rows dropped or reordered."""
    atomic_write_text(Path(folder) / MANIFEST_FILE, manifest.to_csv(index=False, lineterminator="\n"))


def _decode(data: bytes, verify: bool) -> np.ndarray:
    """uint8 (H, W, 3) from PNG bytes; raises on damage (with `verify`, bad chunk CRCs too)."""
    if verify:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def read_image(path: Path, sha1: str, size: int, decode: bool = True) -> tuple[np.ndarray | None, str | None]:
    """(uint8 (size, size, 3) image or None, what is wrong with it or None).

    A recorded `sha1` must match the file's bytes; without one the file must decode to a
    size x size image. With decode=False a file matching its sha1 is not decoded (None, None).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, "missing"
    if sha1 and sha1_of(data) != sha1:
        return None, "its bytes do not match the sha1 its manifest row records"
    if sha1 and not decode:
        return None, None
    try:
        image = _decode(data, verify=not sha1)  # bytes matching their sha1 are the ones written
    except Exception as err:  # noqa: BLE001 - whatever PIL raises, the file is damaged
        return None, f"not a readable PNG ({' '.join(str(err).split()) or type(err).__name__})"
    if image.shape != (size, size, 3):
        return None, f"{image.shape[1]}x{image.shape[0]} px, the set's size is {size}"
    return image, None


def damaged_images(folder: str | Path, manifest: pd.DataFrame, size: int) -> dict[int, str]:
    """{index: what is wrong} for the manifest rows whose image is missing, does not match its
    recorded sha1, or (no sha1 recorded: manifests written before it) does not decode."""
    folder = Path(folder)
    hashes = manifest["sha1"] if "sha1" in manifest.columns else [""] * len(manifest)
    damaged = {}
    for index, file, sha1 in zip(manifest["index"], manifest["file"], hashes):
        _, problem = read_image(folder / file, sha1, size, decode=False)
        if problem is not None:
            damaged[int(index)] = f"{file}: {problem}"
    return damaged


def write_chunk(folder: str | Path, manifest: pd.DataFrame, rows: pd.DataFrame, images: np.ndarray) -> pd.DataFrame:
    """Write `images` (uint8 (N, H, W, 3)) for manifest `rows`, then append the rows with the
    sha1 of each PNG (unless the manifest predates that column).

    Returns the extended manifest. Rows already listed are refused.
    """
    folder = Path(folder)
    if len(rows) != len(images):
        raise ValueError(f"write_chunk: {len(rows)} rows but {len(images)} images")
    if len(manifest) and np.isin(rows["index"].to_numpy(), manifest["index"].to_numpy()).any():
        raise ValueError("write_chunk: some rows are already in the manifest")
    if rows["prompt"].str.contains("\n").any():
        raise ValueError("write_chunk: a prompt holds a line break; the manifest keeps one line per image")
    pngs = [png_bytes(image) for image in images]
    rows = rows.assign(sha1=[sha1_of(data) for data in pngs])[_header(folder / MANIFEST_FILE)]
    for file, data in zip(rows["file"], pngs):
        atomic_write_bytes(folder / file, data)
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
    them needs `unknown_bias`, the b to give them (or filter them out yourself first). A
    damaged set (bad manifest row, missing, unreadable or altered image) raises SetFileError
    naming the file and the `ffr generate` command that repairs it.
    """
    folder = Path(folder)
    spec = read_spec(folder)
    manifest = read_manifest(folder)
    if len(manifest) < spec.total and not allow_partial:
        raise SetFileError(
            f"{folder} is incomplete: {len(manifest)} of {spec.total} images; resume it with "
            f"{generate_command(spec, folder)} (or load it with allow_partial=True)"
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
    hashes = manifest["sha1"] if "sha1" in manifest.columns else [""] * n
    for i, (file, sha1) in enumerate(zip(manifest["file"], hashes)):
        image, problem = read_image(folder / file, sha1, s)
        if problem is not None:
            raise SetFileError(
                f"{folder / file}: {problem} ({MANIFEST_FILE} line {i + 2}); {repair_hint(folder, spec)}"
            )
        images[i] = image.transpose(2, 0, 1)
    return GroupedImages.from_arrays(
        torch.from_numpy(images),
        np.array(manifest["y"], dtype=np.int64),
        b,
        spec.class_names,
        spec.bias_names,
        g=SYNTHETIC,
        info={"folder": str(folder), **spec.to_dict()},
    )
