"""The authors' split pickles (ffr_lib.data.official_splits): pickles built here in their exact
structure (a dict of filenames with absolute paths of their cluster, targets, biases, real_gen)
over the tiny fixture folders of tests/real_fixtures.py, the errors, the counts OFFICIAL_CODE.md
gives for the shipped splits, and a run composed from them."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from real_fixtures import celeba_labels, make_celeba, make_spuco, make_utk, utk_name

from ffr_lib.data import biased_counts, load_dataset
from ffr_lib.data.loaders import DataLayoutError
from ffr_lib.data.official_splits import official_counts, pickle_name, read_split

FAST = {"size": 4, "progress": False, "workers": 1}
AUTHORS = "/usr4/cs505/mqraitem/ivc-ml/datasets"  # their datasets_dirs.txt
CELEBA_COUNTS = {(0, 0): 12, (0, 1): 8, (1, 0): 14, (1, 1): 6}


def write_pickle(folder: Path, name: str, paths, y, b, real_gen=None, protocol: int = 4) -> Path:
    """One pickle as the authors wrote them: a dict of the four keys (protocol 4: Python 3.8's)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(paths)
    data = {"filenames": paths, "targets": np.asarray(y, dtype=np.int64), "biases": np.asarray(b, dtype=np.int64),
            "real_gen": np.zeros(n, dtype=np.int64) if real_gen is None else np.asarray(real_gen)}
    with open(folder / name, "wb") as fh:
        pickle.dump(data, fh, protocol=protocol)
    return folder / name


def colour_labels(images: torch.Tensor) -> tuple[list[int], list[int], list[int]]:
    """(y, b, serial) from the fixtures' colour code (red 30 + 50y, green 30 + 50b, blue 6 serial)."""
    px = images[:, :, 1, 1].numpy().astype(float)
    return ([int(v) for v in np.rint((px[:, 0] - 30) / 50)], [int(v) for v in np.rint((px[:, 1] - 30) / 50)],
            [int(v) for v in np.rint(px[:, 2] / 6)])


# -- CelebA-HQ: the authors' slices of 40 images, nested 0.9 and 0.99 train splits -------------------
LABELS = celeba_labels(CELEBA_COUNTS)  # (smiling, male) of <i>.jpg
TRAIN_90 = [i for i in range(32) if not (LABELS[i] == (0, 0) and i % 3)]  # not smiling female thinned
TRAIN_99 = [i for i in TRAIN_90 if LABELS[i] != (0, 0) or i == TRAIN_90[0]]
VAL, TEST = list(range(32, 36)), list(range(36, 40))


def celeba_paths(indices) -> list[str]:
    return [f"{AUTHORS}/CelebAMask-HQ/CelebA-HQ-img/{i}.jpg" for i in indices]


@pytest.fixture
def celeba(tmp_path: Path) -> tuple[Path, Path]:
    root = make_celeba(tmp_path / "CelebAMask-HQ", LABELS)
    splits = tmp_path / "data"
    for name, idx in (("train_0.9", TRAIN_90), ("train_0.99", TRAIN_99), ("valid_0.9", VAL), ("valid_0.99", VAL),
                      ("test_0.9", TEST), ("test_0.99", TEST)):
        rows = [LABELS[i] for i in idx]
        write_pickle(splits, f"celeba_Smiling_{name}.pkl", celeba_paths(idx), [r[0] for r in rows], [r[1] for r in rows])
    return root, splits


def official(name: str, root: Path, splits: Path, tmp_path: Path, **kw):
    return load_dataset(name, root=root, splits="official", splits_dir=splits, cache_dir=tmp_path / "cache",
                        **{**FAST, **kw})


def test_celeba_official_splits_are_the_pickles(celeba, tmp_path: Path) -> None:
    root, splits = celeba
    got = official("celeba-hq", root, splits, tmp_path, ratio=0.99)
    for part, idx in (("train", TRAIN_99), ("val", VAL), ("test", TEST)):
        data = getattr(got, part)
        y, b, serial = colour_labels(data.images)
        assert serial == idx  # the pickle's files, in its order
        assert y == data.y.tolist() == [LABELS[i][0] for i in idx]
        assert b == data.b.tolist() == [LABELS[i][1] for i in idx]
        assert data.info["split"] == part and data.info["splits"] == "official" and data.info["ratio"] == 0.99
    assert got.train.info["authors_root"] == [f"{AUTHORS}/CelebAMask-HQ"]
    assert got.train.info["pickles"]["train"] == ["celeba_Smiling_train_0.99.pkl"]
    ours = load_dataset("celeba-hq", root=root, cache_dir=tmp_path / "cache", **FAST)
    assert (got.name, got.majority) == (ours.name, ours.majority) == ("celeba-hq", (1, 0))
    assert got.train.class_names == ours.train.class_names and got.train.bias_names == ours.train.bias_names
    pixels = by_serial(ours)
    assert torch.equal(got.train.images, torch.stack([pixels[i] for i in TRAIN_99]))  # our loader's pixels
    # root may be the folder the archive unpacked into, as for our loader
    parent = official("celeba-hq", root.parent, splits, tmp_path, ratio=0.9)
    assert colour_labels(parent.train.images)[2] == TRAIN_90


def by_serial(splits) -> dict[int, torch.Tensor]:
    """Images of our loader's three splits by file serial (the fixture's <i>.jpg)."""
    images = torch.cat([splits.train.images, splits.val.images, splits.test.images])
    return {s: images[k] for k, s in enumerate(colour_labels(images)[2])}


def test_ratio_none_is_every_image_of_each_split(celeba, tmp_path: Path) -> None:
    root, splits = celeba
    pool = official("celeba-hq", root, splits, tmp_path)
    assert sorted(colour_labels(pool.train.images)[2]) == TRAIN_90  # the union of the nested trains
    assert colour_labels(pool.test.images)[2] == TEST and pool.train.info["ratio"] is None


def test_missing_images_are_counted_and_named(celeba, tmp_path: Path) -> None:
    root, splits = celeba
    for i in (TRAIN_99[-1], TEST[0]):
        (root / "CelebA-HQ-img" / f"{i}.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=rf"2 of 3\d images named .* missing under {root}: CelebA-HQ-img/"):
        official("celeba-hq", root, splits, tmp_path, ratio=0.99)


def test_paths_outside_the_layout_are_refused(celeba, tmp_path: Path) -> None:
    root, splits = celeba
    bad = [f"{AUTHORS}/celeba/img_align_celeba/{i}.jpg" for i in (0, 1)] + celeba_paths([2])
    write_pickle(splits, "celeba_Smiling_train_0.99.pkl", bad, [0, 0, 1], [0, 1, 0])
    with pytest.raises(DataLayoutError, match=r"train_0.99.pkl: 2 of 3 paths do not end in celeba-hq's layout "
                                              r"\(expected .*/\{CelebA-HQ-img\}/<...>\): .*img_align_celeba/0.jpg"):
        official("celeba-hq", root, splits, tmp_path, ratio=0.99)


def test_a_missing_ratio_names_the_ones_there(celeba, tmp_path: Path) -> None:
    root, splits = celeba
    with pytest.raises(FileNotFoundError, match=r"no celeba_Smiling_train_0.97.pkl \(its train ratios: \[0.9, 0.99\]\)"):
        official("celeba-hq", root, splits, tmp_path, ratio=0.97)


def test_the_splits_folder_comes_from_the_argument_or_the_environment(celeba, tmp_path, monkeypatch) -> None:
    root, splits = celeba
    monkeypatch.delenv("FFR_SPLITS_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="pass splits_dir=... or set FFR_SPLITS_DIR"):
        load_dataset("celeba-hq", root=root, splits="official", ratio=0.9, **FAST)
    monkeypatch.setenv("FFR_SPLITS_DIR", str(splits))
    got = load_dataset("celeba-hq", root=root, splits="official", ratio=0.9, cache_dir=tmp_path / "c", **FAST)
    assert len(got.train) == len(TRAIN_90)
    with pytest.raises(ValueError, match="authors ship splits for celeba-hq, utk-face, spuco-animals only"):
        load_dataset("shapes-binary", splits="official", ratio=0.9)
    with pytest.raises(ValueError, match="splits must be 'ours' or 'official'"):
        load_dataset("celeba-hq", root=root, splits="theirs")


def test_an_image_in_two_splits_is_refused(celeba, tmp_path: Path) -> None:
    root, splits = celeba
    rows = [LABELS[i] for i in TEST + [0]]
    write_pickle(splits, "celeba_Smiling_test_0.99.pkl", celeba_paths(TEST + [0]), [r[0] for r in rows],
                 [r[1] for r in rows])
    with pytest.raises(DataLayoutError, match=r"1 images are in both the train and the test split .*: CelebA-HQ-img/0.jpg"):
        official("celeba-hq", root, splits, tmp_path, ratio=0.99)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("real_gen"), r"expected a dict with keys \['filenames', 'targets', 'biases', 'real_gen'\]"),
        (lambda d: d.update(targets=d["targets"][:-1]), r"'targets' has 2 entries, 'filenames' has 3"),
        (lambda d: d.update(biases=np.array([0, 2, 1])), r"'biases' holds 2 at entry 1; expected 0..1"),
        (lambda d: d.update(real_gen=np.array([0, 1, 0])), r"'real_gen' holds 1 .* marks a synthetic image"),
        (lambda d: d.update(targets=np.array([0.0, 0.5, 1.0])), r"'targets' must hold integers"),
        (lambda d: d.update(filenames=d["filenames"][:2] + d["filenames"][:1]), r"lists 1 files twice"),
    ],
)
def test_malformed_pickles_name_the_fault(tmp_path: Path, change, message) -> None:
    data = {"filenames": celeba_paths([0, 1, 2]), "targets": np.array([0, 1, 1]), "biases": np.array([1, 0, 1]),
            "real_gen": np.zeros(3)}
    change(data)
    path = tmp_path / "celeba_Smiling_train_0.9.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    with pytest.raises(DataLayoutError, match=message):
        read_split(path, "celeba-hq")


def test_a_numpy_1_pickle_loads_under_numpy_2(tmp_path: Path) -> None:
    data = {"filenames": celeba_paths([0, 1]), "targets": np.array([0, 1]), "biases": np.array([1, 0]),
            "real_gen": np.zeros(2, dtype=np.int64)}
    raw = pickle.dumps(data, protocol=2)  # text GLOBAL opcodes: the module names can be rewritten
    if b"numpy._core" in raw:
        raw = raw.replace(b"numpy._core", b"numpy.core")  # as numpy 1.x, which the authors used, names them
    assert b"numpy.core.multiarray" in raw
    path = tmp_path / "celeba_Smiling_train_0.9.pkl"
    path.write_bytes(raw)
    split = read_split(path, "celeba-hq")
    assert split.files == ("CelebA-HQ-img/0.jpg", "CelebA-HQ-img/1.jpg") and split.y.tolist() == [0, 1]


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path("PWNED"),))


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "celeba_Smiling_train_0.9.pkl"
    path.write_bytes(pickle.dumps({"filenames": [_Payload()], "targets": [0], "biases": [0], "real_gen": [0]}))
    with pytest.raises(DataLayoutError, match=r"refusing to load pathlib.*touch"):
        read_split(path, "celeba-hq")
    assert not (tmp_path / "PWNED").exists()


# -- UTK-Face and SpuCo Animals ---------------------------------------------------------------------
PEOPLE = [(30, 0), (2, 0), (25, 1), (4, 1), (40, 0), (1, 0), (33, 1), (3, 1), (45, 0), (48, 1)]  # (age, gender)


def utk_rows(indices):
    names = [utk_name(PEOPLE[i][0], PEOPLE[i][1], i % 5, i) for i in indices]
    return ([f"{AUTHORS}/utk_face/images/{n}" for n in names], [PEOPLE[i][1] for i in indices],
            [1 if PEOPLE[i][0] <= 5 else 0 for i in indices])


def test_utk_face_official_splits_map_file_names(tmp_path: Path) -> None:
    root = make_utk(tmp_path / "UTKFace", PEOPLE)
    splits = tmp_path / "data"
    for name, idx in (("train_0.95", [0, 1, 2, 3, 4, 5]), ("valid_0.95", [6, 7]), ("test_0.95", [8, 9])):
        write_pickle(splits, f"utk_face_{name}.pkl", *utk_rows(idx))
    got = official("utk-face", tmp_path, splits, tmp_path, ratio=0.95)  # root: the archive's parent
    y, b, serial = colour_labels(got.train.images)
    assert serial == [0, 1, 2, 3, 4, 5] and y == got.train.y.tolist() and b == got.train.b.tolist()
    assert got.train.bias_names == ("old", "young") and got.majority == (1, 0)
    paths, ys, bs = utk_rows([6, 7])
    write_pickle(splits, "utk_face_valid_0.95.pkl", paths, ys, [1 - v for v in bs])  # old and young swapped
    with pytest.raises(DataLayoutError, match=r"2 of 2 labels disagree with their paths: 33_1_1_.* \(pickle y=1, b=1; "
                                              r"path y=1, b=0\)"):
        official("utk-face", root, splits, tmp_path, ratio=0.95)
    write_pickle(splits, "utk_face_valid_0.95.pkl", [p.replace("33_1_1_", "33_1_") for p in paths], ys, bs)
    with pytest.raises(DataLayoutError, match="1 of 2 paths do not end in utk-face's layout"):
        official("utk-face", root, splits, tmp_path, ratio=0.95)


SPUCO_SIZES = {"train": {y: (6, 2) for y in range(4)}, "val": {y: (3, 1) for y in range(4)},
               "test": {y: (2, 2) for y in range(4)}}
SPUCO_DIRS = {0: ("spuco_birds", "landbirds", ("land", "water")), 1: ("spuco_birds", "waterbirds", ("land", "water")),
              2: ("spuco_dogs", "small_dogs", ("indoor", "outdoor")), 3: ("spuco_dogs", "big_dogs", ("indoor", "outdoor"))}


def spuco_rows(split: str, keep_minority: int):
    """Every majority image of a split and the first `keep_minority` of each minority group."""
    paths, ys, bs = [], [], []
    for y, (family, class_dir, bias_dirs) in SPUCO_DIRS.items():
        for k, bias_dir in enumerate(bias_dirs):
            b = 2 * (y // 2) + k
            n = SPUCO_SIZES[split][y][0] if b == y else min(keep_minority, SPUCO_SIZES[split][y][1])
            paths += [f"{AUTHORS}/{family}/{split}/{class_dir}/{bias_dir}/{i}.png" for i in range(n)]
            ys += [y] * n
            bs += [b] * n
    return np.array(paths), ys, bs  # SpuCo's filenames are a numpy array in their pickles


def test_spuco_official_splits_with_the_test_at_zero(tmp_path: Path) -> None:
    root = make_spuco(tmp_path / "spuco", SPUCO_SIZES)
    splits = tmp_path / "data"
    write_pickle(splits, "spuco_animals_train_0.99.pkl", *spuco_rows("train", 1))
    write_pickle(splits, "spuco_animals_val_0.99.pkl", *spuco_rows("val", 1))
    write_pickle(splits, "spuco_animals_val_0.0.pkl", *spuco_rows("val", 9))
    write_pickle(splits, "spuco_animals_test_0.0.pkl", *spuco_rows("test", 9), protocol=5)
    got = official("spuco-animals", root, splits, tmp_path, ratio=0.99)
    assert got.train.count_array()[np.arange(4), np.arange(4)].tolist() == [6, 6, 6, 6]
    assert int(got.train.count_array().sum()) == 4 * 7 and int(got.val.count_array().sum()) == 4 * 4
    assert got.test.count_array().sum() == 16 and got.test.info["pickles"]["test"] == ["spuco_animals_test_0.0.pkl"]
    y, b, _ = colour_labels(got.train.images)
    assert y == got.train.y.tolist() and b == got.train.b.tolist()
    paths, ys, bs = spuco_rows("val", 1)
    write_pickle(splits, "spuco_animals_val_0.99.pkl", paths, [(v + 1) % 4 for v in ys], bs)
    with pytest.raises(DataLayoutError, match=r"16 of 16 labels disagree with their paths: spuco_birds/val/landbirds/"
                                              r"land/0.png \(pickle y=1, b=0; path y=0, b=0\)"):
        official("spuco-animals", root, splits, tmp_path, ratio=0.99)


# -- the shipped split sizes (OFFICIAL_CODE.md) on a count-only fixture ---------------------------------
SHIPPED = {  # (dataset, split, ratio) -> (y, b) counts in (0,0), (0,1), (1,0), (1,1) order
    ("celeba-hq", "train", 0.9): (592, 5335, 7797, 866),
    ("celeba-hq", "train", 0.999): (6, 5335, 7797, 8),
    ("celeba-hq", "test", 0.9): (914, 693, 943, 450),
    ("utk-face", "train", 0.9): (103, 934, 5731, 636),
    ("utk-face", "train", 0.999): (1, 934, 5731, 6),
    ("utk-face", "test", 0.9): (723, 103, 710, 121),
}


def count_only_pickle(folder: Path, dataset: str, split: str, ratio: float, counts) -> None:
    """A pickle of the shipped size whose files need not exist: labels by group, shuffled, each
    path in the dataset's layout on the authors' cluster (a UTK-Face name matching its labels)."""
    groups = [(y, b) for y in (0, 1) for b in (0, 1)]
    labels = [g for g, n in zip(groups, counts) for _ in range(n)]
    order = np.random.default_rng(0).permutation(len(labels))
    labels = [labels[i] for i in order]
    if dataset == "celeba-hq":
        paths = [f"{AUTHORS}/CelebAMask-HQ/CelebA-HQ-img/{i}.jpg" for i in range(len(labels))]
    else:
        paths = [f"{AUTHORS}/utk_face/images/{utk_name(30 if b == 0 else 3, y, 0, i)}" for i, (y, b) in enumerate(labels)]
    write_pickle(folder, pickle_name(dataset, split, ratio), paths, [g[0] for g in labels], [g[1] for g in labels])


def test_shipped_split_sizes_from_a_count_only_fixture(tmp_path: Path) -> None:
    for (dataset, split, ratio), counts in SHIPPED.items():
        count_only_pickle(tmp_path, dataset, split, ratio, counts)
    for (dataset, split, ratio), counts in SHIPPED.items():
        got = official_counts(dataset, split, ratio, splits_dir=tmp_path)
        assert got.ravel().tolist() == list(counts), (dataset, split, ratio)
    assert pickle_name("celeba-hq", "val", 0.9) == "celeba_Smiling_valid_0.9.pkl"
    assert pickle_name("spuco-animals", "test", 0.0) == "spuco_animals_test_0.0.pkl"
    # our splitter's rule, on their 90 % training split as the pool, gives their 99.9 % counts
    for dataset, majority in (("celeba-hq", (1, 0)), ("utk-face", (1, 0))):
        pool = official_counts(dataset, "train", 0.9, splits_dir=tmp_path)
        ours = biased_counts(pool, 0.999, majority=majority)
        assert ours.ravel().tolist() == list(SHIPPED[(dataset, "train", 0.999)])


# -- a run composed on the authors' splits (the paper-real-official profile's data option) -------------
def test_a_run_trains_on_the_authors_split_for_every_seed(celeba, tmp_path: Path, monkeypatch) -> None:
    from ffr_lib.sweeps.profiles import get_profile
    from ffr_lib.training import modes
    from ffr_lib.training.config import RunConfig

    root, splits = celeba
    data_root = tmp_path / "roots"
    data_root.mkdir()
    (data_root / "celeba-hq").symlink_to(root)
    monkeypatch.setenv("FFR_DATA_ROOT", str(data_root))
    monkeypatch.setenv("FFR_SPLITS_DIR", str(splits))
    modes.dataset_splits.cache_clear()
    modes.biased_split.cache_clear()
    data = (("size", 4), ("splits", "official"), ("progress", False), ("workers", 1), ("cache_dir", str(tmp_path / "c")))
    try:
        for seed in (0, 1):
            run = modes.compose(RunConfig(dataset="celeba-hq", data=data, ratio=0.99, mode="none", seed=seed))
            assert colour_labels(run.stages[0].images)[2] == TRAIN_99
            assert colour_labels(run.val.images)[2] == VAL and colour_labels(run.test.images)[2] == TEST
            assert run.groups == ((0, 0), (0, 1), (1, 0), (1, 1))
    finally:
        modes.dataset_splits.cache_clear()
        modes.biased_split.cache_clear()
    profile = get_profile("paper-real-official").configs()
    assert {dict(c.data).get("splits") for c in profile} == {"official"}
    assert len(profile) == len(get_profile("paper-real").configs())
