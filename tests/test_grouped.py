import numpy as np
import pytest
import torch

from ffr_lib.data import REAL, SYNTHETIC, GroupedImages


def make(n_per_group, g=REAL, classes=("a", "b"), biases=("x", "y"), size=4):
    y, b = [], []
    for (yi, bi), n in n_per_group.items():
        y += [yi] * n
        b += [bi] * n
    images = torch.arange(len(y) * 3 * size * size, dtype=torch.int64).reshape(len(y), 3, size, size) % 256
    return GroupedImages.from_arrays(images.to(torch.uint8), y, b, classes, biases, g=g)


def test_counts_table_lists_every_group_with_exact_counts():
    data = make({(0, 0): 3, (0, 1): 1, (1, 1): 2})
    table = data.counts()
    assert list(table["count"]) == [3, 1, 0, 2]
    assert list(table["class"]) == ["a", "a", "b", "b"]
    assert list(table["bias"]) == ["x", "y", "x", "y"]
    assert data.count_array().tolist() == [[3, 1], [0, 2]]


def test_subset_by_index_and_mask_keeps_labels_aligned():
    data = make({(0, 0): 2, (1, 1): 2})
    sub = data.subset([3, 0])
    assert sub.y.tolist() == [1, 0] and sub.b.tolist() == [1, 0]
    assert torch.equal(sub.images[0], data.images[3])
    masked = data.subset(data.y == 1)
    assert len(masked) == 2 and masked.y.tolist() == [1, 1]


def test_concat_keeps_source_and_counts_by_source():
    real = make({(0, 0): 3, (1, 1): 3})
    syn = make({(0, 1): 2, (1, 0): 2}, g=SYNTHETIC)
    mixed = GroupedImages.concat([real, syn])
    assert len(mixed) == 10
    assert mixed.g.tolist() == [0] * 6 + [1] * 4
    by_source = mixed.counts(by_source=True)
    assert by_source.set_index(["y", "b", "g"])["count"].to_dict() == {
        (0, 0, 0): 3, (0, 1, 1): 2, (1, 0, 1): 2, (1, 1, 0): 3,
    }
    assert mixed.group_with_source.tolist()[-1] == (1 * 2 + 0) * 2 + 1


def test_concat_refuses_different_names():
    a = make({(0, 0): 1})
    b = make({(0, 0): 1}, biases=("x", "z"))
    with pytest.raises(ValueError, match="bias names"):
        GroupedImages.concat([a, b])
    c = make({(0, 0): 1}, classes=("a", "c"))
    with pytest.raises(ValueError, match="class names"):
        GroupedImages.concat([a, c])


def test_rejects_bad_images_and_labels():
    with pytest.raises(ValueError, match="uint8"):
        GroupedImages.from_arrays(np.zeros((2, 3, 4, 4), np.float32), [0, 0], [0, 0], ["a"], ["x"])
    with pytest.raises(ValueError, match="class names"):
        GroupedImages.from_arrays(np.zeros((2, 3, 4, 4), np.uint8), [0, 1], [0, 0], ["a"], ["x"])
