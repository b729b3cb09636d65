"""The authors' own biased splits (the pickles in their repository's `data/`), on local folders.

Each pickle, `<stem>_<split>_<ratio>.pkl` (e.g. `celeba_Smiling_train_0.99.pkl`,
`utk_face_valid_0.9.pkl`, `spuco_animals_test_0.0.pkl`), holds a dict of four equal-length
sequences: `filenames` (absolute paths on the authors' cluster), `targets`, `biases` and
`real_gen` (0 for a real image). Their label codes are ours (read from their
`datasets/*.py`): CelebA-HQ y Smiling, b Male (0 female); UTK-Face y gender (0 male), b 0 old,
1 young; SpuCo Animals y and b 0..3 in our order.

A path is mapped onto the user's root by its part after the dataset folder: CelebA-HQ
`CelebA-HQ-img/<n>.jpg`, UTK-Face the file name, SpuCo `spuco_{birds,dogs}/<split>/<class>/<bias>/<n>.png`.
UTK-Face and SpuCo labels are checked against what their paths say. Every image named by any
of a dataset's pickles in the folder is decoded once (one cache entry for all ratios); a split
indexes it. The splits were drawn once, so they are the same for every seed.

Only arrays and plain values are unpickled (any other global is refused): a pickle can run code.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from . import celeba, spuco, utk
from .grouped import DatasetSplits
from .loaders import DataLayoutError, build_splits, decode_options, descend, require_root

SPLITS_ENV = "FFR_SPLITS_DIR"  # default folder of the pickles (the authors' data/)
KEYS = ("filenames", "targets", "biases", "real_gen")
SPLIT_NAMES = ("train", "val", "test")
SHOWN = 3  # paths named in an error
ARCHIVE_FOLDERS = {"celeba-hq": "CelebAMask-HQ", "utk-face": "UTKFace"}  # as the loaders accept them


@dataclass(frozen=True)
class OfficialLayout:
    """How one dataset's pickles are named and how their paths map onto a root."""

    stem: str  # pickle name prefix
    split_files: tuple[str, str, str]  # the authors' names of train, val, test
    depth: int  # path components from the dataset folder to the file, the file included
    anchors: tuple[str, ...]  # allowed first component of that part (empty: any)
    class_names: tuple[str, ...]
    bias_names: tuple[str, ...]
    majority: tuple[int, ...]
    source: str
    layout: str


LAYOUTS = {
    "celeba-hq": OfficialLayout(
        "celeba_Smiling", ("train", "valid", "test"), 2, (celeba.IMAGE_DIR,), celeba.value_names("Smiling"),
        celeba.value_names("Male"), celeba.PAPER_MAJORITY[("Smiling", "Male")], celeba.SOURCE, celeba.LAYOUT,
    ),
    "utk-face": OfficialLayout(
        "utk_face", ("train", "valid", "test"), 1, (), utk.CLASS_NAMES, utk.BIAS_NAMES, utk.PAPER_MAJORITY,
        utk.SOURCE, utk.LAYOUT,
    ),
    "spuco-animals": OfficialLayout(
        "spuco_animals", ("train", "val", "test"), 5, tuple(f for f, _, _ in spuco.FAMILIES), spuco.CLASS_NAMES,
        spuco.BIAS_NAMES, spuco.MAJORITY, spuco.SOURCE, spuco.LAYOUT,
    ),
}  # fmt: skip

# the globals a pickle of numpy arrays, lists and strings needs (numpy 1.x and 2.x names)
_ALLOWED = {
    (m, n)
    for core in ("numpy.core", "numpy._core")
    for m, n in ((f"{core}.multiarray", "_reconstruct"), (f"{core}.multiarray", "scalar"), (f"{core}.numeric", "_frombuffer"))
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # _codecs: bytes in protocol 2


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays and plain values)")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module.removeprefix("numpy.core")  # numpy 1.x pickles under numpy 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


@dataclass(frozen=True)
class OfficialSplit:
    """One pickle: files relative to the dataset folder, y and b int64 (N,), the authors' roots."""

    path: Path
    files: tuple[str, ...]
    y: np.ndarray
    b: np.ndarray
    prefixes: tuple[str, ...]  # the distinct folders the paths were under on the authors' machines


def layout_of(dataset: str) -> OfficialLayout:
    if dataset not in LAYOUTS:
        raise ValueError(f"splits='official': the authors ship splits for {', '.join(LAYOUTS)} only, not {dataset!r}")
    return LAYOUTS[dataset]


def pickle_name(dataset: str, split: str, ratio: float) -> str:
    """The authors' file name, ratio as Python prints the float: celeba_Smiling_valid_0.9.pkl."""
    layout = layout_of(dataset)
    return f"{layout.stem}_{layout.split_files[SPLIT_NAMES.index(split)]}_{float(ratio)}.pkl"


def splits_folder(splits_dir: str | Path | None) -> Path:
    """`splits_dir`, else $FFR_SPLITS_DIR; an error when neither names a folder."""
    given = splits_dir if splits_dir is not None else os.environ.get(SPLITS_ENV)
    if given is None:
        raise FileNotFoundError(
            f"splits='official' needs the folder of the authors' pickles (their repository's data/): "
            f"pass splits_dir=... or set {SPLITS_ENV}"
        )
    folder = Path(given).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"splits_dir {folder} is not a folder (the authors' data/ with *.pkl)")
    return folder


def available(folder: Path, dataset: str) -> dict[tuple[str, float], Path]:
    """(split, ratio) -> pickle path for every pickle of `dataset` in `folder`."""
    layout = layout_of(dataset)
    names = "|".join(re.escape(s) for s in layout.split_files)
    pattern = re.compile(rf"{re.escape(layout.stem)}_({names})_(\d+(?:\.\d+)?)\.pkl")
    out = {}
    for p in folder.iterdir():
        m = pattern.fullmatch(p.name)
        if m:
            out[(SPLIT_NAMES[layout.split_files.index(m.group(1))], float(m.group(2)))] = p
    return out


def relative_path(dataset: str, path: str) -> tuple[str, str] | None:
    """(the authors' folder, the path below it) of one pickle entry, or None when the path does
    not end in the dataset's layout."""
    layout = layout_of(dataset)
    parts = PurePosixPath(str(path)).parts
    if len(parts) < layout.depth:
        return None
    rel = parts[len(parts) - layout.depth :]
    if layout.anchors and rel[0] not in layout.anchors:
        return None
    if dataset == "utk-face" and utk.parse_name(rel[0]) is None:
        return None
    return str(PurePosixPath(*parts[: len(parts) - layout.depth])), "/".join(rel)


def labels_from_path(dataset: str, rel: str) -> tuple[int, int] | None:
    """(y, b) that a UTK-Face name or a SpuCo folder implies (None: CelebA-HQ's paths say nothing)."""
    if dataset == "utk-face":
        age, gender, _ = utk.parse_name(rel)
        b = utk.age_bias(age)
        return gender, -1 if b is None else b
    if dataset == "spuco-animals":
        family, _, class_dir, bias_dir, _ = rel.split("/")
        _, classes, biases = next(f for f in spuco.FAMILIES if f[0] == family)
        return dict(classes).get(class_dir, -1), dict(biases).get(bias_dir, -1)
    return None


def _listing(items: Sequence[str]) -> str:
    return ", ".join(items[:SHOWN]) + (", ..." if len(items) > SHOWN else "")


def read_split(path: str | Path, dataset: str) -> OfficialSplit:
    """One of the authors' pickles, checked: a dict of the four keys, equal lengths, labels in
    range, real images only, paths in the dataset's layout, labels that agree with the paths."""
    path = Path(path)
    layout = layout_of(dataset)
    try:
        with open(path, "rb") as fh:
            data = _ArraysOnly(fh).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise DataLayoutError(f"{path}: not one of the authors' split pickles ({err})") from None
    if not isinstance(data, dict) or set(KEYS) - set(data):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataLayoutError(f"{path}: expected a dict with keys {list(KEYS)}, found {found}")
    n = len(data["filenames"])
    for key in KEYS[1:]:
        if len(data[key]) != n:
            raise DataLayoutError(f"{path}: '{key}' has {len(data[key])} entries, 'filenames' has {n}")
    arrays = {}
    for key, names in (("targets", layout.class_names), ("biases", layout.bias_names), ("real_gen", ("real",))):
        values = np.asarray(data[key])
        if n and (values.dtype.kind not in "iuf" or (values != np.round(values)).any()):
            raise DataLayoutError(f"{path}: '{key}' must hold integers, found {values.dtype} values")
        values = values.astype(np.int64).reshape(n)
        bad = (values < 0) | (values >= len(names))
        if bad.any():
            raise DataLayoutError(
                f"{path}: '{key}' holds {int(values[bad][0])} at entry {int(np.flatnonzero(bad)[0])}; "
                f"expected 0..{len(names) - 1}" + (" (real_gen 1 marks a synthetic image)" if key == "real_gen" else "")
            )
        arrays[key] = values
    mapped = [relative_path(dataset, p) for p in data["filenames"]]
    unmapped = [str(p) for p, m in zip(data["filenames"], mapped) if m is None]
    if unmapped:
        raise DataLayoutError(
            f"{path}: {len(unmapped)} of {n} paths do not end in {dataset}'s layout "
            f"(expected .../{_expected(layout)}): {_listing(unmapped)}"
        )
    files = tuple(m[1] for m in mapped)
    if len(set(files)) != n:
        raise DataLayoutError(f"{path}: lists {n - len(set(files))} files twice")
    disagree = []
    for rel, y, b in zip(files, arrays["targets"], arrays["biases"]):
        implied = labels_from_path(dataset, rel)
        if implied is not None and implied != (y, b):
            disagree.append(f"{rel} (pickle y={y}, b={b}; path y={implied[0]}, b={implied[1]})")
    if disagree:
        raise DataLayoutError(f"{path}: {len(disagree)} of {n} labels disagree with their paths: {_listing(disagree)}")
    return OfficialSplit(path, files, arrays["targets"], arrays["biases"], tuple(sorted({m[0] for m in mapped})))


def _expected(layout: OfficialLayout) -> str:
    first = "{" + ",".join(layout.anchors) + "}" if layout.anchors else "<file>"
    return "/".join([first] + ["<...>"] * (layout.depth - 1)) if layout.depth > 1 else first


def official_counts(dataset: str, split: str, ratio: float, splits_dir: str | Path | None = None) -> np.ndarray:
    """int64 (n_classes, n_biases): the (y, b) counts of one of the authors' splits, from its
    pickle alone (no image is opened)."""
    layout = layout_of(dataset)
    part = read_split(splits_folder(splits_dir) / pickle_name(dataset, split, ratio), dataset)
    out = np.zeros((len(layout.class_names), len(layout.bias_names)), dtype=np.int64)
    np.add.at(out, (part.y, part.b), 1)
    return out


def _chosen(dataset: str, found: dict, ratio: float | None, folder: Path) -> dict[str, list[tuple[str, float]]]:
    """The pickles (split, ratio) behind each split: at `ratio` (the test at 0.0 when the folder
    has no test at `ratio`, as SpuCo's), or, with ratio None, every pickle of that split."""
    if ratio is None:
        chosen = {s: sorted(k for k in found if k[0] == s) for s in SPLIT_NAMES}
    else:
        ratio = float(ratio)
        chosen = {s: [(s, ratio)] for s in SPLIT_NAMES}
        if ("test", ratio) not in found and ("test", 0.0) in found:
            chosen["test"] = [("test", 0.0)]
    for split, keys in chosen.items():
        if not keys or any(k not in found for k in keys):
            have = sorted({r for s, r in found if s == split})
            want = pickle_name(dataset, split, ratio) if ratio is not None else f"any {split} pickle"
            raise FileNotFoundError(f"{dataset}: {folder} has no {want} (its {split} ratios: {have or 'none'})")
    return chosen


def load_official_splits(
    name: str,
    root: str | Path | None,
    *,
    splits_dir: str | Path | None = None,
    ratio: float | None = None,
    **decode,
) -> DatasetSplits:
    """The authors' train, validation and test splits of `name` at `ratio` (images uint8
    (N, 3, size, size), in each pickle's order), read from `splits_dir` (default $FFR_SPLITS_DIR).

    ratio None: every image of each split over all the folder's ratios (train: the union of the
    training pickles), the view a sweep uses for the dataset's groups. Errors name the pickle and
    the entries at fault: a path outside the layout, labels out of range or against the path,
    files missing under `root` (how many, the first few), a file in two splits.
    `decode`: DecodeOptions fields (size=224, cache, cache_dir, ...).
    """
    layout = layout_of(name)
    options = decode_options(name, decode, own=("splits", "splits_dir", "ratio"))
    folder = splits_folder(splits_dir)
    found = available(folder, name)
    if not found:
        raise FileNotFoundError(f"{name}: {folder} holds no {layout.stem}_*.pkl (the authors' data/ folder?)")
    chosen = _chosen(name, found, ratio, folder)
    tables = {key: read_split(path, name) for key, path in sorted(found.items())}
    label: dict[str, tuple[int, int]] = {}
    for part in tables.values():
        for rel, y, b in zip(part.files, part.y.tolist(), part.b.tolist()):
            if label.setdefault(rel, (y, b)) != (y, b):
                raise DataLayoutError(f"{part.path}: {rel} is (y={y}, b={b}) here but {label[rel]} in another pickle")
    files = sorted(label)
    root = require_root(root, name, layout.source, layout.layout)
    if name in ARCHIVE_FOLDERS:  # root may be the folder the archive unpacked into
        root = descend(root, ARCHIVE_FOLDERS[name], files[0])
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{name}: {len(missing)} of {len(files)} images named by the authors' splits in {folder} are missing "
            f"under {root}: {_listing(missing)}. Expected layout: {layout.layout}"
        )
    where = {f: i for i, f in enumerate(files)}
    parts = {}
    for split, keys in chosen.items():
        rels = [f for k in keys for f in tables[k].files]
        parts[split] = np.array([where[f] for f in dict.fromkeys(rels)], dtype=np.int64)
    if ratio is not None:
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = np.intersect1d(parts[a], parts[b])
            if len(shared):
                raise DataLayoutError(
                    f"{name}: {len(shared)} images are in both the {a} and the {b} split at ratio {ratio}: "
                    f"{_listing([files[i] for i in shared])}"
                )
    y = np.array([label[f][0] for f in files], dtype=np.int64)
    b = np.array([label[f][1] for f in files], dtype=np.int64)
    info = {
        "splits": "official",
        "splits_dir": str(folder),
        "ratio": ratio,
        "pickles": {s: [tables[k].path.name for k in keys] for s, keys in chosen.items()},
        "authors_root": sorted({p for t in tables.values() for p in t.prefixes}),
    }
    return build_splits(name, root, files, y, b, parts, layout.class_names, layout.bias_names, layout.majority,
                        options, info)
