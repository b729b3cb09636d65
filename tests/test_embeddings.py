"""Penultimate features through hooks or callables, t-SNE determinism, the real-vs-synthetic probe."""

import numpy as np
import pytest
import torch

from ffr_lib.analysis import layer_features, penultimate_features, source_probe, tsne_2d


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 6), torch.nn.ReLU())
        self.drop = torch.nn.Dropout(0.5)
        self.fc = torch.nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255 if x.dtype == torch.uint8 else x
        return self.fc(self.drop(self.body(x)))


def test_features_by_name_module_input_and_callable_agree():
    torch.manual_seed(0)
    model = Net().train()
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    expected = model.body(images.float() / 255).detach()  # (10, 6)
    by_name = penultimate_features(model, images, "body", batch=3)
    assert by_name.shape == (10, 6) and by_name.dtype == torch.float32
    assert torch.allclose(by_name, expected, atol=1e-6)
    # eval mode: dropout off, so the head's input equals the body's output
    assert torch.allclose(penultimate_features(model, images, layer_features("fc", which="input")), expected, atol=1e-6)
    assert torch.allclose(penultimate_features(model, images, model.body), expected, atol=1e-6)
    fn = lambda m, x: m.body(x.float() / 255)  # noqa: E731
    assert torch.allclose(penultimate_features(model, images, fn, batch=4), expected, atol=1e-6)
    assert model.training


def test_features_unknown_layer_lists_known_ones():
    with pytest.raises(ValueError, match=r"layer 'avgpool' not in the model; its layers: body"):
        penultimate_features(Net(), torch.rand(2, 3, 4, 4), "avgpool")
    with pytest.raises(ValueError, match="which must be"):
        layer_features("fc", which="middle")


def test_tsne_shape_and_determinism():
    rng = np.random.default_rng(0)
    feats = np.concatenate([rng.normal(0, 1, (30, 60)), rng.normal(6, 1, (30, 60))])  # > 50 dims: PCA first
    a = tsne_2d(feats, seed=3)
    assert a.shape == (60, 2) and a.dtype == np.float32
    assert np.array_equal(a, tsne_2d(torch.from_numpy(feats), seed=3))
    # the two clusters stay apart: every point's nearest neighbour is from its own cluster
    d = ((a[:, None] - a[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (d.argmin(1) // 30 == np.arange(60) // 30).all()
    with pytest.raises(ValueError, match="at least 4 points"):
        tsne_2d(feats[:3], seed=0)


def test_probe_separates_separable_sources():
    rng = np.random.default_rng(1)
    real = rng.normal(0, 1, (300, 16))
    synth = rng.normal(0, 1, (500, 16))
    synth[:, 0] += 8.0  # one direction splits them
    assert source_probe(real, synth, seed=0) == 1.0


def test_probe_is_at_chance_on_identical_sources():
    rng = np.random.default_rng(2)
    real = rng.normal(0, 1, (1500, 16))
    synth = rng.normal(0, 1, (1000, 16))  # subsampled to 1000 + 1000; 600 held out
    accs = [source_probe(real, synth, seed=s) for s in range(3)]
    assert all(abs(a - 0.5) < 0.07 for a in accs), accs
    assert source_probe(real, synth, seed=1) == accs[1]  # seeded


def test_probe_errors_name_the_culprit():
    with pytest.raises(ValueError, match="feature widths differ: real 4, synthetic 5"):
        source_probe(np.zeros((10, 4)), np.zeros((10, 5)), seed=0)
    with pytest.raises(ValueError, match="at least 4 samples per source"):
        source_probe(np.zeros((3, 4)), np.zeros((10, 4)), seed=0)
    with pytest.raises(ValueError, match="test_size"):
        source_probe(np.zeros((10, 4)), np.zeros((10, 4)), seed=0, test_size=1.0)
