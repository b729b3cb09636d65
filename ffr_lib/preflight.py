"""Checks of what a job reads from disk, made once before anything trains or renders: the real
datasets' root folders, the synthetic sets of generator 'disk' and a diffusion checkpoint. Each
failure is a UsageError (one line: the folder, what is wrong, the layout expected), never one
error per run.

Imports nothing heavy; the layouts are ffr_lib.names.REAL_LAYOUTS (the README's "Real datasets").
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import UsageError
from .names import DATA_ROOT_ENV, REAL_LAYOUTS, SYNTHETIC_MANIFEST, SYNTHETIC_ROOT_ENV


def _non_empty_folder(folder: Path, what: str, expected: str) -> Path:
    if not folder.is_dir():
        raise UsageError(f"{what}: {folder} {'is not a folder' if folder.exists() else 'does not exist'}; "
                         f"expected {expected}")
    if next(folder.iterdir(), None) is None:
        raise UsageError(f"{what}: {folder} is empty; expected {expected}")
    return folder


def real_data_root(dataset: str, root: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The root folder of real dataset `dataset`: `root` when given, else $FFR_DATA_ROOT/<dataset>;
    a UsageError when it is unset, missing or empty (the loaders check the layout inside)."""
    env = os.environ if env is None else env
    layout = REAL_LAYOUTS[dataset]
    if root is not None:
        return _non_empty_folder(Path(root).expanduser(), f"{dataset} root", layout)
    if not env.get(DATA_ROOT_ENV):
        raise UsageError(f"{dataset} is read from ${DATA_ROOT_ENV}/{dataset}, and {DATA_ROOT_ENV} is not set; "
                         f"expected {layout} (README: Real datasets)")
    return _non_empty_folder(Path(env[DATA_ROOT_ENV]).expanduser() / dataset, f"${DATA_ROOT_ENV}/{dataset}", layout)


def check_data_roots(datasets: Iterable[str], env: Mapping[str, str] | None = None) -> None:
    """Every real dataset among `datasets` has a non-empty $FFR_DATA_ROOT/<dataset> (the world needs none)."""
    env = os.environ if env is None else env
    real = sorted(set(datasets) & set(REAL_LAYOUTS))
    if len(real) > 1 and not env.get(DATA_ROOT_ENV):
        raise UsageError(f"{', '.join(real)} are read from ${DATA_ROOT_ENV}/<dataset>, and {DATA_ROOT_ENV} is not "
                         f"set; expected {real[0]}: {REAL_LAYOUTS[real[0]]} (README: Real datasets)")
    for dataset in real:
        real_data_root(dataset, env=env)


def check_synthetic_sets(sets: Iterable[tuple[str, str]], runs: int, env: Mapping[str, str] | None = None) -> None:
    """Every (dataset, 'balanced' | 'agnostic') set that `runs` runs of generator 'disk' read is a set
    made by `ffr generate` in $FFR_SYNTHETIC_ROOT/<dataset>/<kind> (it holds the manifest)."""
    env = os.environ if env is None else env
    sets = sorted(set(sets))
    if not sets:
        return
    if not env.get(SYNTHETIC_ROOT_ENV):
        dataset, kind = sets[0]
        raise UsageError(f"{runs} run(s) read synthetic sets made by `ffr generate` from "
                         f"${SYNTHETIC_ROOT_ENV}/<dataset>/<balanced|agnostic>, and {SYNTHETIC_ROOT_ENV} is not set "
                         f"(first: {dataset}/{kind})")
    for dataset, kind in sets:
        folder = Path(env[SYNTHETIC_ROOT_ENV]).expanduser() / dataset / kind
        if not (folder / SYNTHETIC_MANIFEST).is_file():
            raise UsageError(f"${SYNTHETIC_ROOT_ENV}/{dataset}/{kind}: {folder} holds no set made by `ffr generate` "
                             f"(no {SYNTHETIC_MANIFEST}); make it with `ffr generate --dataset {dataset} "
                             f"--recipe {kind} --out {folder}`")


def diffusion_checkpoint(model: str | None) -> None:
    """`ffr generate --generator diffusion --model FOLDER`: a checkpoint folder of
    scripts/train_diffusion.py (its config.json), checked before the generator's imports."""
    if not model:
        raise UsageError("--generator diffusion needs --model: a checkpoint folder (scripts/train_diffusion.py)")
    if not (Path(model) / "config.json").is_file():
        raise UsageError(f"--model {model}: not a diffusion checkpoint folder (no config.json; "
                         "scripts/train_diffusion.py makes one)")
