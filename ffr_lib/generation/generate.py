"""Generation: a real split's counts + a recipe + a generator -> a synthetic set.

A set is first *planned*: one row per image (index, y, b, prompt), fixed by the recipe, the
real counts, the prompt set and the set seed. The plan is then rendered chunk by chunk by a
source (the procedural world, Stable Diffusion, the small diffusion model), each image
corrupted (severity 0-5) and resized to the set's size, and written to disk with its manifest
row (`generate_set`, resumable) or kept in memory (`generate_in_memory`, same images).

A source (generation/sources.py: the procedural world, Stable Diffusion, the small diffusion
model) renders the rows of a plan.

Chunks are aligned to multiples of `chunk` in index space, so a resumed set is rendered in the
same pieces as an uninterrupted one (the procedural world is exact under any chunking; neural
generators may differ by float noise between batch compositions).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..data.grouped import SYNTHETIC, GroupedImages
from ..data.world import split_counts
from .corruptions import corrupt
from .procedural import labels_for
from .prompts import load_prompts
from .recipes import Recipe, synthetic_counts
from .sources import (
    PROCEDURAL_DATASETS,
    DiffusionSource,
    ProceduralSource,
    Source,
    as_source,
    benchmark_config,
    make_source,
)
from .synthetic_set import (
    UNKNOWN_BIAS,
    SetMismatchError,
    SetSpec,
    damaged_images,
    image_file,
    open_set,
    write_chunk,
    write_manifest,
)


# -- planning ------------------------------------------------------------------------------------
def make_spec(
    dataset: str,
    real_counts: np.ndarray,
    recipe: Recipe,
    source: Source,
    seed: int,
    *,
    size: int,
    class_names: tuple[str, ...],
    bias_names: tuple[str, ...],
    prompts: str = "paper",
    corruption_severity: int = 0,
    ratio: float | None = None,
) -> SetSpec:
    """The identity of the set that `recipe` makes for `real_counts` with `source`."""
    real = np.asarray(real_counts, dtype=np.int64)
    if real.shape != (len(class_names), len(bias_names)):
        raise ValueError(f"real_counts has shape {real.shape}, names give ({len(class_names)}, {len(bias_names)})")
    entry = load_prompts(dataset)
    entry.check_names(class_names, bias_names)
    chosen = entry.get(prompts)
    if recipe.name != "agnostic" and chosen.template is None:
        raise ValueError(
            f"prompt set {prompts!r} names the class only, so recipe {recipe.name!r} cannot ask for a bias; "
            "use recipe 'agnostic' (or another prompt set)"
        )
    if corruption_severity not in range(6):
        raise ValueError(f"corruption_severity must be 0..5, got {corruption_severity!r}")
    return SetSpec(
        dataset=dataset,
        recipe=asdict(recipe),
        ratio=None if ratio is None else float(ratio),
        real_counts=real.tolist(),
        counts=synthetic_counts(real, recipe).tolist(),
        class_only=recipe.name == "agnostic",
        generator=source.name,
        settings=source.settings(),
        prompts=prompts,
        seed=int(seed),
        size=int(size),
        corruption_severity=int(corruption_severity),
        class_names=list(class_names),
        bias_names=list(bias_names),
    )


def plan(spec: SetSpec, source: Source) -> pd.DataFrame:
    """One row per image: index, file, y, class, b, bias, prompt (group by group)."""
    counts = np.asarray(spec.counts, dtype=np.int64)
    if spec.class_only:
        y = np.repeat(np.arange(counts.shape[0]), counts.sum(axis=1)).astype(np.int64)
        asked = np.full(len(y), UNKNOWN_BIAS, dtype=np.int64)
        b = np.asarray(source.class_only_bias(y, spec.seed), dtype=np.int64)
    else:
        y, b = labels_for(counts)
        asked = b
    prompt = load_prompts(spec.dataset).get(spec.prompts).prompts(y, asked, spec.seed)
    index = np.arange(len(y), dtype=np.int64)
    return pd.DataFrame(
        {
            "index": index,
            "file": [image_file(i) for i in index],
            "y": y,
            "class": [spec.class_names[i] for i in y],
            "b": b,
            "bias": [spec.bias_names[i] if i != UNKNOWN_BIAS else "" for i in b],
            "prompt": prompt,
        }
    )


def finish(images: np.ndarray, seeds: np.ndarray, index: np.ndarray, severity: int, size: int) -> np.ndarray:
    """Corrupt (before the resize, as the authors did), then resize to `size` (PIL bicubic,
    antialiased when shrinking): uint8 (N, H, W, 3) -> uint8 (N, size, size, 3)."""
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for k, (img, s, i) in enumerate(zip(images, seeds, index)):
        img = corrupt(img, severity, np.random.SeedSequence([int(s), int(i), 0xC0]))
        if img.shape[:2] != (size, size):
            img = np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC))
        out[k] = img
    return out


def _rendered_rows(spec: SetSpec, source: Source, rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    images, seeds, attempts, *found = source.render(rows, spec.seed)
    images = finish(images, seeds, rows["index"].to_numpy(), spec.corruption_severity, spec.size)
    if found:  # scenes the source found after rendering (class-only requests)
        b = np.where(rows["b"].to_numpy() == UNKNOWN_BIAS, np.asarray(found[0], dtype=np.int64), rows["b"].to_numpy())
        rows = rows.assign(b=b, bias=[spec.bias_names[i] if i != UNKNOWN_BIAS else "" for i in b])
    rows = rows.assign(
        seed=np.asarray(seeds, dtype=np.int64),
        attempt=np.asarray(attempts, dtype=np.int64),
        generator=spec.generator,
        settings=json.dumps(spec.settings, sort_keys=True, separators=(",", ":")),
        recipe=spec.recipe["name"],
        corruption_severity=spec.corruption_severity,
    )
    return rows, images


def generate_set(
    folder: str | Path, spec: SetSpec, source: Source, chunk: int = 256, progress: bool = True,
    echo: Callable[[str], None] = print,
) -> Path:  # fmt: skip
    """Generate (or resume) the set `spec` into `folder`; returns the folder.

    Refuses a folder that holds another set (SetMismatchError). Indices the manifest already
    lists are kept once their image passes `damaged_images` (sha1, or a decode); missing and
    damaged ones are dropped from the manifest and regenerated, and `echo` says how many. The
    rest are rendered in chunks of `chunk` images, each chunk written (PNGs, then the
    manifest) before the next starts; the manifest ends in index order.
    """
    folder = Path(folder)
    manifest = open_set(folder, spec)
    rows = plan(spec, source)
    if len(manifest):
        done = rows.set_index("index").loc[manifest["index"].to_numpy(dtype=np.int64)]
        for col in ("y", "b", "prompt"):
            same = done[col].astype(str).to_numpy() == manifest[col].astype(str).to_numpy()
            if col == "b":  # b found after rendering
                same |= done["b"].to_numpy() == UNKNOWN_BIAS
            if not same.all():
                i = int(manifest["index"].to_numpy()[~same][0])
                raise SetMismatchError(
                    f"{folder}: manifest row {i} has {col}={manifest[col].to_numpy()[~same][0]!r} but the plan "
                    f"gives {done[col].to_numpy()[~same][0]!r} (was prompts.yaml edited?); use another folder"
                )
    damaged = damaged_images(folder, manifest, spec.size)
    if damaged:  # their rows go first, so that a kill from here on leaves a consistent set
        manifest = manifest[~manifest["index"].isin(list(damaged))].reset_index(drop=True)
        write_manifest(folder, manifest)
        first = "; ".join(list(damaged.values())[:3]) + ("; ..." if len(damaged) > 3 else "")
        echo(f"{folder}: {len(damaged)} of the images kept failed verification ({first}); regenerating them")
    pending = rows[~rows["index"].isin(manifest["index"].to_numpy(dtype=np.int64))]
    with tqdm(total=len(rows), initial=len(rows) - len(pending), desc=f"generate {folder.name}",
              disable=not progress, unit="img") as bar:  # fmt: skip
        for _, piece in pending.groupby(pending["index"] // chunk, sort=True):
            part, images = _rendered_rows(spec, source, piece)
            manifest = write_chunk(folder, manifest, part, images)
            bar.update(len(part))
    if not manifest["index"].is_monotonic_increasing:  # regenerated rows were appended at the end
        write_manifest(folder, manifest.sort_values("index", kind="stable"))
    if damaged:
        echo(f"{folder}: regenerated {len(damaged)} damaged image{'s' if len(damaged) > 1 else ''}")
    return folder


def generate_in_memory(
    real_counts: np.ndarray,
    recipe: Recipe,
    generator: Any,
    seed: int = 0,
    *,
    dataset: str | None = None,
    prompts: str = "paper",
    corruption_severity: int = 0,
    size: int | None = None,
    class_names: tuple[str, ...] | None = None,
    bias_names: tuple[str, ...] | None = None,
    ratio: float | None = None,
    chunk: int = 4096,
    progress: bool = False,
) -> GroupedImages:
    """The set `recipe` makes for `real_counts`, as GroupedImages (g = synthetic), not stored.

    `generator`: a ProceduralGenerator (dataset, size and names then come from its world) or
    any source. The images equal those `generate_set` writes for the same arguments.
    """
    source = as_source(generator)
    if isinstance(source, ProceduralSource | DiffusionSource):
        world = source.generator.world
        dataset = dataset or getattr(world, "dataset", f"shapes-{world.layout}")
        size = size or world.size
        class_names = class_names or world.spec.class_names
        bias_names = bias_names or world.spec.bias_names
    if dataset is None or size is None or class_names is None or bias_names is None:
        raise ValueError("generate_in_memory needs dataset, size, class_names and bias_names for this generator")
    spec = make_spec(
        dataset, real_counts, recipe, source, seed, size=size, class_names=tuple(class_names),
        bias_names=tuple(bias_names), prompts=prompts, corruption_severity=corruption_severity, ratio=ratio,
    )  # fmt: skip
    rows = plan(spec, source)
    parts, images = [], []
    for _, piece in tqdm(rows.groupby(rows["index"] // chunk, sort=True), desc="generate", disable=not progress):
        part, imgs = _rendered_rows(spec, source, piece)
        parts.append(part)
        images.append(imgs)
    table = pd.concat(parts, ignore_index=True) if parts else rows
    stacked = np.concatenate(images) if images else np.zeros((0, size, size, 3), dtype=np.uint8)
    return GroupedImages.from_arrays(
        torch.from_numpy(np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))),
        np.array(table["y"], dtype=np.int64),
        np.array(table["b"], dtype=np.int64),
        spec.class_names,
        spec.bias_names,
        g=SYNTHETIC,
        info={**spec.to_dict(), "prompt": table["prompt"].tolist(), "seed_per_image": table["seed"].tolist()},
    )


# -- the real split a recipe is sized on ----------------------------------------------------------
@dataclass(frozen=True)
class RealSplit:
    """What a recipe needs to know of a real biased training split (no images)."""

    dataset: str
    counts: np.ndarray  # int64 (n_classes, n_biases)
    class_names: tuple[str, ...]
    bias_names: tuple[str, ...]
    size: int  # image side in px
    ratio: float
    ratio_note: str | None = None  # what the counts achieve when they miss `ratio` (splits.ratio_note)


def real_split(dataset: str, ratio: float, root: str | Path | None = None, size: int | None = None,
               world_seed: int = 0, **options: Any) -> RealSplit:  # fmt: skip
    """Counts of `dataset`'s biased training split at `ratio` (the world: without rendering)."""
    from ..data.splits import biased_counts, ratio_note

    if dataset.startswith(PROCEDURAL_DATASETS):
        world = benchmark_config(dataset, size, world_seed)
        pool = np.zeros((len(world.spec.class_names), len(world.spec.bias_names)), dtype=np.int64)
        for y, b, n in split_counts(world, "train"):
            pool[y, b] = n
        names = (world.spec.class_names, world.spec.bias_names)
        majority, size = list(range(pool.shape[0])), world.size
    else:
        from ..data.registry import load_dataset

        splits = load_dataset(dataset, root, **({"size": size} if size else {}), **options)
        pool = splits.train.count_array()
        names = (splits.train.class_names, splits.train.bias_names)
        majority, size = splits.majority, splits.train.image_size
    counts = biased_counts(pool, ratio, majority=majority, class_names=names[0])
    note = ratio_note(counts, ratio, majority=majority, class_names=names[0])
    return RealSplit(dataset, counts, tuple(names[0]), tuple(names[1]), int(size), float(ratio), note)


def generate_dataset_set(
    dataset: str,
    recipe: Recipe,
    out: str | Path,
    *,
    generator: str | None = None,
    ratio: float = 0.99,
    seed: int = 0,
    prompts: str = "paper",
    corruption_severity: int = 0,
    root: str | Path | None = None,
    size: int | None = None,
    world_seed: int = 0,
    source_options: dict | None = None,
    chunk: int | None = None,
    dry_run: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> Path | None:
    """What `ffr generate` does: size the recipe on `dataset`'s biased split at `ratio`, print
    the per-group counts, then generate (or resume) the set into `out` (not with dry_run).

    `generator`: 'procedural' (default for shapes-*), 'sd' (default otherwise) or 'diffusion';
    `source_options`: its options (fingerprint, fidelity / model, steps, batch_size, ...).
    """
    from .recipes import recipe_counts_table

    real = real_split(dataset, ratio, root=root, size=size, world_seed=world_seed)
    generator = generator or ("procedural" if dataset.startswith(PROCEDURAL_DATASETS) else "sd")
    options = dict(source_options or {})
    if generator == "procedural":
        options["world"] = benchmark_config(dataset, real.size, world_seed)
    source = make_source(generator, dataset, **options)
    spec = make_spec(
        dataset, real.counts, recipe, source, seed, size=real.size, class_names=real.class_names,
        bias_names=real.bias_names, prompts=prompts, corruption_severity=corruption_severity, ratio=ratio,
    )  # fmt: skip
    table = recipe_counts_table(real.counts, recipe, real.class_names, real.bias_names)
    echo(f"{dataset} at ratio {ratio}, recipe {recipe.name!r}: {spec.total} synthetic images ({generator})")
    if real.ratio_note is not None:
        echo(f"warning: {real.ratio_note}")
    echo(table.to_string(index=False))
    if dry_run:
        return None
    chunk = chunk or (256 if generator == "procedural" else 50)
    return generate_set(out, spec, source, chunk=chunk, progress=progress, echo=echo)
