"""IDX object sets: the reader on tiny fixtures (well-formed and malformed), the folder layouts,
and the composite benchmark built from an IDX folder instead of the package."""

import gzip
import struct

import numpy as np
import pytest
import torch

from ffr_lib.data.idx import (
    IdxError,
    IdxLengthError,
    IdxMagicError,
    IdxTruncatedError,
    load_idx_folder,
    read_idx,
)


def idx_bytes(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    """The IDX encoding of a uint8 array: 00 00 type rank, big-endian dims, data."""
    head = bytes([0, 0, type_byte, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return head + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_folder(folder, n_train=48, n_test=24, side=28, gz=False):
    """torchvision's raw layout; object i (label i % 10) fills its frame with intensity
    128 + 12 * label (so its alpha is >= 0.5 everywhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = np.broadcast_to((128 + 12 * labels)[:, None, None], (n, side, side)).astype(np.uint8)
        for kind, arr in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            data = idx_bytes(arr)
            name = f"{prefix}-{kind}"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return folder


def test_read_idx_round_trip_plain_and_gzip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(arr))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    for name in ("a", "a.gz"):
        out = read_idx(tmp_path / name, rank=3)
        assert out.dtype == np.uint8 and out.shape == (2, 3, 4) and (out == arr).all()


def test_read_idx_big_endian_wider_types(tmp_path):
    """Type 0x0B is big-endian int16: 258 is bytes 01 02."""
    path = tmp_path / "s"
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2]) + bytes([1, 2, 0, 7]))
    assert read_idx(path).tolist() == [258, 7]


@pytest.mark.parametrize("head", [b"\x01\x00\x08\x03", b"\x00\x00\x07\x03", b"\x00\x00", b""])
def test_wrong_magic_is_a_named_error(tmp_path, head):
    path = tmp_path / "bad-images"
    path.write_bytes(head + b"\x00" * 16)
    with pytest.raises(IdxMagicError, match="bad-images"):
        read_idx(path)


def test_wrong_rank_is_a_magic_error(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(IdxMagicError, match="rank 1, expected 3"):
        read_idx(path, rank=3)


def test_truncated_data_and_header_are_named_errors(tmp_path):
    full = idx_bytes(np.ones((4, 5, 5), dtype=np.uint8))
    (tmp_path / "short").write_bytes(full[:-1])
    with pytest.raises(IdxTruncatedError, match=r"short: the header announces shape \(4, 5, 5\) \(100 data bytes\)"):
        read_idx(tmp_path / "short")
    (tmp_path / "head").write_bytes(full[:9])
    with pytest.raises(IdxTruncatedError, match="head"):
        read_idx(tmp_path / "head")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(full)[:-8])
    with pytest.raises(IdxTruncatedError, match="cut.gz"):
        read_idx(tmp_path / "cut.gz")
    assert issubclass(IdxTruncatedError, IdxError) and issubclass(IdxError, ValueError)


def test_images_and_labels_of_different_lengths(tmp_path):
    root = write_idx_folder(tmp_path / "objs")
    (root / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(23, dtype=np.uint8)))
    load_idx_folder.cache_clear()
    with pytest.raises(IdxLengthError, match="t10k-images-idx3-ubyte holds 24 images but .*t10k-labels-idx1-ubyte holds 23"):
        load_idx_folder(str(root))


@pytest.mark.parametrize("where", ["", "raw", "FashionMNIST/raw"])
def test_folder_layouts_and_web_split(tmp_path, where):
    write_idx_folder(tmp_path / where if where else tmp_path, n_train=60, gz=where == "raw")
    load_idx_folder.cache_clear()
    objects = load_idx_folder(str(tmp_path))
    # the last 60 // 6 = 10 training objects form the web split
    assert (len(objects.train.labels), len(objects.web.labels), len(objects.test.labels)) == (50, 10, 24)
    assert objects.web.labels.tolist() == list(range(10))
    assert objects.train.images.shape == (50, 28, 28) and objects.train.images.dtype == np.uint8


def test_missing_folder_and_file(tmp_path):
    load_idx_folder.cache_clear()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_idx_folder(str(tmp_path / "nowhere"))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((1, 2, 2), dtype=np.uint8)))
    with pytest.raises(FileNotFoundError, match=r"no train-labels-idx1-ubyte\[.gz\]"):
        load_idx_folder(str(tmp_path))


def test_composite_from_an_idx_folder(tmp_path):
    """load_dataset(composite-binary, root=IDX folder): exact subgroup counts from tiny pools."""
    from ffr_lib.data import load_dataset

    root = write_idx_folder(tmp_path / "objs", n_train=600, n_test=80)  # 50 training objects a digit, 8 test ones
    load_idx_folder.cache_clear()
    splits = load_dataset("composite-binary", root, train_majority=20, train_minority=10, val_majority=12,
                          val_minority=6, test_per_group=4, size=32, object_size=16)
    assert splits.train.count_array().tolist() == [[20, 10], [10, 20]]
    assert splits.val.count_array().tolist() == [[12, 6], [6, 12]]
    assert splits.test.count_array().tolist() == [[4, 4], [4, 4]]
    assert splits.train.images.shape == (60, 3, 32, 32)
    assert splits.train.info["objects"] == str(root)
    # each object fills its frame: its mask is a d x d square, d = round(16 * [0.85, 1.15]) = 14..18
    masks = torch.cat([splits.train.masks, splits.test.masks])
    rows, cols = masks.any(2).sum(1), masks.any(1).sum(1)
    assert (rows == cols).all() and (masks.sum((1, 2)) == rows * cols).all()
    assert rows.min() >= 14 and rows.max() <= 18 and len(set(rows.tolist())) > 1
    # class '3' has 50 training objects: pools needing 58 of them are refused, naming the class
    with pytest.raises(ValueError, match=r"class '3' \(labels \(3,\)\) has 50 objects.*need 58"):
        load_dataset("composite-binary", root, train_majority=25, train_minority=15, val_majority=12,
                     val_minority=6, test_per_group=4, size=32, object_size=16)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['colour'\]"):
        load_dataset("composite-binary", root, colour=3)


def test_report_script_refuses_a_malformed_folder_in_one_line(tmp_path, capsys):
    """scripts/composite_report.py --root <bad IDX folder>: exit code 2, one line naming the file."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "composite_report.py"
    spec = importlib.util.spec_from_file_location("composite_report", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    root = write_idx_folder(tmp_path / "objs")
    (root / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 5)
    load_idx_folder.cache_clear()
    assert script.main(["--root", str(root), "--layout", "binary", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train-images-idx3-ubyte" in err[0] and "header announces 3 dimensions" in err[0]
