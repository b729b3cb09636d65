"""Loaders of CelebA-HQ, UTK-Face and SpuCo Animals on tiny fixture folders in their exact
published layouts (built by tests/real_fixtures.py), their errors, the image cache, and the
biased-split machinery on them."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from real_fixtures import (
    CELEBA_ATTRIBUTES,
    celeba_labels,
    colour,
    make_celeba,
    make_spuco,
    make_utk,
    utk_name,
    write_image,
)

from ffr_lib.data import RatioError, load_dataset, make_biased
from ffr_lib.data import image_cache as ic
from ffr_lib.data.image_cache import ImageReadError
from ffr_lib.data.loaders import DataLayoutError, seeded_split

FAST = {"size": 4, "progress": False, "workers": 1}
CELEBA_COUNTS = {(0, 0): 12, (0, 1): 8, (1, 0): 14, (1, 1): 6}  # (smiling, male): not smiling is mostly female
# SpuCo train per class (majority, minority), each at the release's 95.2 % (10,000 / 500)
SPUCO_TRAIN = {0: (120, 6), 1: (100, 5), 2: (60, 3), 3: (40, 2)}
SPUCO_SIZES = {"train": SPUCO_TRAIN, "val": {y: (4, 1) for y in range(4)}, "test": {y: (2, 2) for y in range(4)}}


@pytest.fixture
def celeba(tmp_path: Path) -> Path:
    return make_celeba(tmp_path / "CelebAMask-HQ", celeba_labels(CELEBA_COUNTS))


@pytest.fixture
def spuco(tmp_path: Path) -> Path:
    return make_spuco(tmp_path / "spuco", SPUCO_SIZES)


def load(name: str, root: Path, tmp_path: Path, **kw):
    return load_dataset(name, root=root, cache_dir=tmp_path / "cache", **{**FAST, **kw})


def decoded_labels(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, b, serial) read back from the fixture's colour code (JPEG errors are a few levels)."""
    px = images[:, :, 1, 1].numpy().astype(float)
    return (np.rint((px[:, 0] - 30) / 50), np.rint((px[:, 1] - 30) / 50), np.rint(px[:, 2] / 6))


# -- CelebA-HQ ---------------------------------------------------------------------------------
def test_celeba_counts_labels_split_sizes(celeba: Path, tmp_path: Path) -> None:
    s = load("celeba-hq", celeba, tmp_path)
    assert (len(s.train), len(s.val), len(s.test)) == (32, 4, 4)  # 80/10/10 of 40
    total = s.train.count_array() + s.val.count_array() + s.test.count_array()
    assert total.tolist() == [[12, 8], [14, 6]]
    assert s.train.class_names == ("not smiling", "smiling") and s.train.bias_names == ("female", "male")
    assert s.majority == (1, 0)  # not smiling with male, smiling with female (the paper's direction)
    assert s.name == "celeba-hq" and s.train.images.shape == (32, 3, 4, 4) and s.train.images.dtype == torch.uint8
    serials = []
    for part in (s.train, s.val, s.test):
        assert int(part.g.sum()) == 0
        y, b, serial = decoded_labels(part.images)
        assert (y == part.y.numpy()).all() and (b == part.b.numpy()).all()  # images stay with their labels
        serials += serial.tolist()
    assert sorted(serials) == list(range(40))  # a partition of the 40 files


def test_celeba_split_is_seeded(celeba: Path, tmp_path: Path) -> None:
    a = load("celeba-hq", celeba, tmp_path, seed=0)
    b = load("celeba-hq", celeba, tmp_path, seed=0)
    c = load("celeba-hq", celeba, tmp_path, seed=1)
    for x, z in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        assert torch.equal(x.images, z.images) and torch.equal(x.y, z.y) and torch.equal(x.b, z.b)
    assert not torch.equal(a.test.images, c.test.images)
    parts = seeded_split(30_000, seed=0)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [24_000, 3_000, 3_000]
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(30_000))
    assert np.array_equal(parts["val"], seeded_split(30_000, seed=0)["val"])
    assert not np.array_equal(parts["val"], seeded_split(30_000, seed=1)["val"])


def test_celeba_target_and_bias_are_parameters(celeba: Path, tmp_path: Path) -> None:
    s = load("celeba-hq", celeba, tmp_path, bias="Young")  # fixture: Young = 1 for even file numbers
    assert s.train.bias_names == ("not young", "young") and s.majority is None
    for part in (s.train, s.val, s.test):
        _, _, serial = decoded_labels(part.images)
        assert (part.b.numpy() == (serial % 2 == 0)).all()


def test_celeba_biased_split_keeps_the_paper_direction(celeba: Path, tmp_path: Path) -> None:
    s = load("celeba-hq", celeba, tmp_path)
    pool = s.train.count_array()
    for ratio in (0.99, 0.999):  # ceil(M * (1 - r) / r) = 1 for every M <= 14
        kept = make_biased(s.train, ratio, seed=0, majority=s.majority).count_array()
        assert kept.tolist() == [[1, pool[0, 1]], [pool[1, 0], 1]]


def test_celeba_missing_attribute_column(tmp_path: Path) -> None:
    root = make_celeba(tmp_path / "c", celeba_labels(CELEBA_COUNTS), columns=[c for c in CELEBA_ATTRIBUTES if c != "Smiling"])
    with pytest.raises(DataLayoutError, match=r"CelebAMask-HQ-attribute-anno\.txt: no attribute column 'Smiling'"):
        load("celeba-hq", root, tmp_path)


def test_celeba_row_with_wrong_number_of_values(celeba: Path, tmp_path: Path) -> None:
    path = celeba / "CelebAMask-HQ-attribute-anno.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0]  # line 5 loses its last value
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataLayoutError, match=r"anno\.txt line 5: expected a file name and 40 values, got 39"):
        load("celeba-hq", celeba, tmp_path)


def test_celeba_bad_value_and_bad_count(celeba: Path, tmp_path: Path) -> None:
    path = celeba / "CelebAMask-HQ-attribute-anno.txt"
    good = path.read_text().splitlines()
    lines = list(good)
    fields = lines[6].split()
    fields[1 + CELEBA_ATTRIBUTES.index("Male")] = "0"
    lines[6] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataLayoutError, match=r"line 7: column 'Male' holds '0', not 1 or -1"):
        load("celeba-hq", celeba, tmp_path)
    path.write_text("\n".join(["41", *good[1:]]) + "\n")
    with pytest.raises(DataLayoutError, match=r"line 1: says 41 images but the file lists 40"):
        load("celeba-hq", celeba, tmp_path)


def test_celeba_unreadable_image(celeba: Path, tmp_path: Path) -> None:
    (celeba / "CelebA-HQ-img" / "7.jpg").write_bytes(b"this is not a JPEG")
    with pytest.raises(ImageReadError, match=r"CelebA-HQ-img/7\.jpg"):
        load("celeba-hq", celeba, tmp_path)


def test_celeba_listed_image_missing(celeba: Path, tmp_path: Path) -> None:
    (celeba / "CelebA-HQ-img" / "3.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"CelebA-HQ-img/3\.jpg is listed but missing"):
        load("celeba-hq", celeba, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"CelebA-HQ-img/3\.jpg is listed but missing"):
        load("celeba-hq", celeba, tmp_path, cache=False)


def test_celeba_empty_image_folder(tmp_path: Path) -> None:
    root = make_celeba(tmp_path / "c", celeba_labels(CELEBA_COUNTS), images=False)
    (root / "CelebA-HQ-img").mkdir()
    with pytest.raises(DataLayoutError, match=rf"image folder {root / 'CelebA-HQ-img'} is empty"):
        load("celeba-hq", root, tmp_path)


def test_celeba_root_may_be_the_archive_parent(celeba: Path, tmp_path: Path) -> None:
    assert len(load("celeba-hq", celeba.parent, tmp_path).train) == 32  # root/CelebAMask-HQ/...


# -- UTK-Face ----------------------------------------------------------------------------------
# (age, gender): male young 10, male old 4, female young 3, female old 9, and 6 dropped ages
UTK_PEOPLE = (
    [(a, 0) for a in (0, 1, 2, 3, 4, 5, 1, 2, 3, 5)]
    + [(a, 0) for a in (20, 33, 47, 50)]
    + [(a, 1) for a in (1, 4, 5)]
    + [(a, 1) for a in (20, 21, 25, 30, 35, 40, 45, 49, 50)]
    + [(6, 0), (19, 1), (51, 0), (70, 1), (12, 0), (90, 1)]
)
UTK_BAD = ("39_1_20170116174525125.jpg.chip.jpg", "1_0_0_2_20170116174525125.jpg.chip.jpg", "x_0_0_2017.jpg.chip.jpg")


def test_utk_counts_labels_and_one_warning(tmp_path: Path) -> None:
    root = make_utk(tmp_path / "UTKFace", UTK_PEOPLE, UTK_BAD)
    (root / "README.txt").write_text("not an image, not counted")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = load("utk-face", root, tmp_path)
    ours = [w for w in caught if "utk-face" in str(w.message)]
    assert len(ours) == 1
    assert "skipped 3 of 35 files" in str(ours[0].message) and UTK_BAD[0] in str(ours[0].message)
    assert (len(s.train), len(s.val), len(s.test)) == (22, 2, 2)  # 26 kept: val = test = floor(2.6)
    total = s.train.count_array() + s.val.count_array() + s.test.count_array()
    assert total.tolist() == [[4, 10], [9, 3]]  # (male, female) x (old, young)
    assert s.train.class_names == ("male", "female") and s.train.bias_names == ("old", "young")
    assert s.majority == (1, 0)  # male with young, female with old
    assert s.train.info["skipped_names"] == 3 and s.train.info["dropped_ages"] == 6
    for part in (s.train, s.val, s.test):
        y, b, _ = decoded_labels(part.images)
        assert (y == part.y.numpy()).all() and (b == part.b.numpy()).all()


def test_utk_thresholds_are_parameters(tmp_path: Path) -> None:
    root = make_utk(tmp_path / "u", UTK_PEOPLE)
    s = load("utk-face", root, tmp_path, young_max=6, old_min=19, old_max=51)  # 6 young, 19 and 51 old
    total = s.train.count_array() + s.val.count_array() + s.test.count_array()
    assert total.tolist() == [[5, 11], [10, 3]]
    with pytest.raises(ValueError, match="young_max < old_min"):
        load("utk-face", root, tmp_path, young_max=20)


def test_utk_split_is_seeded(tmp_path: Path) -> None:
    root = make_utk(tmp_path / "u", UTK_PEOPLE)
    a, b, c = (load("utk-face", root, tmp_path, seed=s) for s in (3, 3, 4))
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.images, c.train.images)


def test_utk_empty_folder_and_nothing_in_range(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataLayoutError, match=rf"folder {tmp_path / 'empty'} holds no \.jpg/\.png images"):
        load("utk-face", tmp_path / "empty", tmp_path)
    root = make_utk(tmp_path / "old", [(70, 0), (80, 1)])
    with pytest.raises(DataLayoutError, match=r"no image in .*old has an age <= 5 or in \[20, 50\]"):
        load("utk-face", root, tmp_path)


def test_utk_unreadable_image(tmp_path: Path) -> None:
    root = make_utk(tmp_path / "u", UTK_PEOPLE)
    bad = root / utk_name(*UTK_PEOPLE[2], race=2, serial=2)
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ImageReadError, match=bad.name):
        load("utk-face", root, tmp_path)


# -- SpuCo Animals -----------------------------------------------------------------------------
def test_spuco_counts_and_labels(spuco: Path, tmp_path: Path) -> None:
    s = load("spuco-animals", spuco, tmp_path)
    assert s.train.count_array().tolist() == [[120, 6, 0, 0], [5, 100, 0, 0], [0, 0, 60, 3], [0, 0, 2, 40]]
    assert s.val.count_array().tolist() == [[4, 1, 0, 0], [1, 4, 0, 0], [0, 0, 4, 1], [0, 0, 1, 4]]
    assert s.test.count_array().tolist() == [[2, 2, 0, 0], [2, 2, 0, 0], [0, 0, 2, 2], [0, 0, 2, 2]]
    assert s.train.class_names == ("landbird", "waterbird", "small dog", "big dog")
    assert s.train.bias_names == ("land", "water", "indoor", "outdoor")
    assert s.majority == (0, 1, 2, 3)
    for part in (s.train, s.val, s.test):  # PNG is lossless: exact colours
        assert torch.equal(part.images[:, 0, 2, 2].long(), 30 + 50 * part.y)
        assert torch.equal(part.images[:, 1, 2, 2].long(), 30 + 50 * part.b)


def test_spuco_biased_splits_by_hand(spuco: Path, tmp_path: Path) -> None:
    s = load("spuco-animals", spuco, tmp_path)
    biased = {r: make_biased(s.train, r, seed=0, majority=s.majority).count_array() for r in (0.95, 0.97, 0.99, 0.999)}
    # 0.95: the pool's own 120/126 = 0.952 is within tolerance: taken whole
    assert np.array_equal(biased[0.95], s.train.count_array())
    # 0.97: ceil(120*3/97) = 4, ceil(100*3/97) = 4, ceil(60*3/97) = 2, ceil(40*3/97) = 2
    assert biased[0.97].tolist() == [[120, 4, 0, 0], [4, 100, 0, 0], [0, 0, 60, 2], [0, 0, 2, 40]]
    # 0.99: ceil(120/99) = 2, ceil(100/99) = 2, ceil(60/99) = 1, ceil(40/99) = 1
    assert biased[0.99].tolist() == [[120, 2, 0, 0], [2, 100, 0, 0], [0, 0, 60, 1], [0, 0, 1, 40]]
    # 0.999: ceil(M/999) = 1 for every class
    assert biased[0.999].tolist() == [[120, 1, 0, 0], [1, 100, 0, 0], [0, 0, 60, 1], [0, 0, 1, 40]]
    with pytest.raises(RatioError, match=r"class 'landbird'.*own ratio is 0\.9524.*ratio 0\.9 needs 14"):
        make_biased(s.train, 0.90, seed=0, majority=s.majority)


def test_spuco_missing_or_empty_group_folder(spuco: Path, tmp_path: Path) -> None:
    group = spuco / "spuco_dogs" / "val" / "big_dogs" / "outdoor"
    for f in group.iterdir():
        f.unlink()
    with pytest.raises(DataLayoutError, match=rf"folder {group} holds no \.png images"):
        load("spuco-animals", spuco, tmp_path)
    group.rmdir()
    with pytest.raises(FileNotFoundError, match=rf"folder {group} is missing"):
        load("spuco-animals", spuco, tmp_path)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataLayoutError, match=rf"folder {tmp_path / 'nothing'} holds neither spuco_birds nor spuco_dogs"):
        load("spuco-animals", tmp_path / "nothing", tmp_path)


# -- registry, roots, options --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("celeba-hq", ["CelebAMask-HQ", "CelebA-HQ-img/<n>.jpg", "CelebAMask-HQ-attribute-anno.txt"]),
        ("utk-face", ["UTKFace", "<age>_<gender>_<race>_<datetime>.jpg.chip.jpg"]),
        ("spuco-animals", ["pip install spuco", "spuco_birds/{train,val,test}/{landbirds,waterbirds}"]),
    ],
)
def test_missing_root_says_where_the_data_comes_from(name: str, words: list[str], tmp_path: Path) -> None:
    for root, first in ((None, "no root folder given"), (tmp_path / "absent", f"root folder {tmp_path / 'absent'} does not exist")):
        with pytest.raises(FileNotFoundError) as err:
            load_dataset(name, root=root)
        assert first in str(err.value) and "comes from" in str(err.value)
        for word in words:
            assert word in str(err.value)


def test_unknown_dataset_and_option(spuco: Path) -> None:
    with pytest.raises(KeyError, match="known: celeba-hq, composite-animals, composite-binary, shapes-animals, shapes-binary, spuco-animals, utk-face"):
        load_dataset("celeba")
    with pytest.raises(TypeError, match=r"spuco-animals: unknown option\(s\) \['colour'\]"):
        load_dataset("spuco-animals", root=spuco, colour=1)


# -- the image cache ----------------------------------------------------------------------------
def counting_decoder(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = ic.decode_image

    def decode(path: Path, size: int) -> np.ndarray:
        calls.append(path)
        return real(path, size)

    monkeypatch.setattr(ic, "decode_image", decode)
    return calls


def failing_decoder(path: Path, size: int) -> np.ndarray:
    raise AssertionError(f"decoded {path} although it should come from the cache")


def test_second_load_comes_from_the_cache(spuco: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_decoder(monkeypatch)
    first = load("spuco-animals", spuco, tmp_path)
    assert len(calls) == 372  # 336 train + 20 val + 16 test, decoded once
    assert len(list((tmp_path / "cache" / "images").glob("spuco-animals-4px-*.u8"))) == 1
    monkeypatch.setattr(ic, "decode_image", failing_decoder)
    second = load("spuco-animals", spuco, tmp_path)
    for a, b in ((first.train, second.train), (first.val, second.val), (first.test, second.test)):
        assert torch.equal(a.images, b.images) and torch.equal(a.y, b.y) and torch.equal(a.b, b.b)
    assert second.train.images.numpy().flags.writeable  # a copy, not the read-only cache file
    with pytest.raises(AssertionError, match="should come from the cache"):
        load("spuco-animals", spuco, tmp_path, size=5)  # another size is another entry


def test_changed_file_invalidates_the_cache(celeba: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load("celeba-hq", celeba, tmp_path)
    path = celeba / "CelebA-HQ-img" / "0.jpg"  # file 0 is (not smiling, female): red 30
    st = path.stat()
    write_image(path, (250, 250, 250))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    calls = counting_decoder(monkeypatch)
    s = load("celeba-hq", celeba, tmp_path)
    assert len(calls) == 40
    every = torch.cat([s.train.images, s.val.images, s.test.images])
    assert int((every[:, 0, 1, 1] > 240).sum()) == 1


def test_content_hash_bytes_sees_a_same_size_same_mtime_change(spuco: Path, tmp_path: Path, monkeypatch) -> None:
    path = spuco / "spuco_birds" / "test" / "landbirds" / "land" / "0.png"
    Image.new("RGB", (8, 8), colour(0, 0, 0)).save(path, compress_level=0)  # stored: size fixed by the pixels' count
    before = path.stat()
    for mode in ("stat", "bytes"):
        load("spuco-animals", spuco, tmp_path, content_hash=mode)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path, compress_level=0)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    monkeypatch.setattr(ic, "decode_image", failing_decoder)
    stale = load("spuco-animals", spuco, tmp_path, content_hash="stat")  # the documented blind spot of "stat"
    assert stale.test.images[0, :, 0, 0].tolist() == list(colour(0, 0, 0))
    with pytest.raises(AssertionError, match="should come from the cache"):
        load("spuco-animals", spuco, tmp_path, content_hash="bytes")


def test_broken_entry_is_rebuilt_and_cache_can_be_off(spuco: Path, tmp_path: Path, monkeypatch) -> None:
    first = load("spuco-animals", spuco, tmp_path)
    (entry,) = (tmp_path / "cache" / "images").glob("*.u8")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated
    calls = counting_decoder(monkeypatch)
    again = load("spuco-animals", spuco, tmp_path)
    assert len(calls) == 372 and torch.equal(first.train.images, again.train.images)
    load("spuco-animals", spuco, tmp_path, cache=False)
    assert len(calls) == 744


def test_cache_folder_from_environment(spuco: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FFR_CACHE", str(tmp_path / "env-cache"))
    s = load_dataset("spuco-animals", root=spuco, **FAST)
    assert len(list((tmp_path / "env-cache" / "images").glob("spuco-animals-4px-*.json"))) == 1
    threaded = load_dataset("spuco-animals", root=spuco, cache=False, **{**FAST, "workers": 3})
    assert torch.equal(s.train.images, threaded.train.images)  # threads keep file order


def test_default_size_is_224_bilinear_no_crop(tmp_path: Path) -> None:
    root = tmp_path / "spuco"
    make_spuco(root, {k: {y: (1, 1) for y in range(4)} for k in ("train", "val", "test")})
    shutil.rmtree(root / "spuco_birds" / "train" / "landbirds" / "land")
    img = Image.new("RGB", (16, 8), (0, 0, 0))
    img.paste((255, 255, 255), (8, 0, 16, 8))  # left half black, right half white: a crop would lose one
    (root / "spuco_birds" / "train" / "landbirds" / "land").mkdir()
    img.save(root / "spuco_birds" / "train" / "landbirds" / "land" / "0.png")
    s = load_dataset("spuco-animals", root=root, cache=False, progress=False)
    x = s.train.images[0]
    assert x.shape == (3, 224, 224)
    assert int(x[0, 100, 0]) == 0 and int(x[0, 100, 223]) == 255 and 0 < int(x[0, 100, 112]) < 255
