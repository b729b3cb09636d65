"""Penultimate-layer embeddings, their t-SNE, and a real-vs-synthetic linear probe.

ECCV figure 5 shows t-SNE pictures of real and synthetic embeddings and claims USB and ASB
separate the two sources more than FFR. A picture is no measurement: `source_probe` gives the
number behind it, the held-out accuracy of a linear classifier telling real from synthetic on
the same features (0.5 = the sources are indistinguishable to a linear read-out).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

FeatureFn = Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]  # (model, images (B,3,H,W)) -> (B, D)


def _device_of(model: torch.nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    return torch.device("cpu")


def layer_features(layer: str | torch.nn.Module, which: str = "output") -> FeatureFn:
    """A feature function reading one layer of the model through a forward hook.

    layer: the module or its dotted name in the model (e.g. 'avgpool', or 'fc' with
    which='input' for what the classifier head sees). Features are flattened to (B, D).
    """
    if which not in ("output", "input"):
        raise ValueError(f"which must be 'output' or 'input', got {which!r}")

    def features(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        if isinstance(layer, torch.nn.Module):
            module = layer
        else:
            try:
                module = model.get_submodule(layer)
            except AttributeError as err:
                names = [name for name, _ in model.named_modules() if name]
                raise ValueError(f"layer {layer!r} not in the model; its layers: {', '.join(names)}") from err
        seen: list[torch.Tensor] = []

        def hook(_module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            seen.append(inputs[0] if which == "input" else output)

        handle = module.register_forward_hook(hook)
        try:
            model(images)
        finally:
            handle.remove()
        if not seen:
            raise RuntimeError(f"layer {layer!r} was not called in the model's forward pass")
        return seen[-1].flatten(1)

    return features


@torch.no_grad()
def penultimate_features(
    model: torch.nn.Module,
    images: torch.Tensor,
    layer_or_fn: str | torch.nn.Module | FeatureFn,
    batch: int = 512,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """float32 features (N, D) on the CPU of images (N, 3, H, W), in eval mode, batch by batch.

    layer_or_fn: a layer (module or dotted name) whose output is read by a forward hook, or a
    callable (model, images) -> (B, D). The model's training flag is restored afterwards.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, 3, H, W), got shape {tuple(images.shape)}")
    if isinstance(layer_or_fn, torch.nn.Module | str):
        fn = layer_features(layer_or_fn)
    elif callable(layer_or_fn):
        fn = layer_or_fn
    else:
        raise TypeError(f"layer_or_fn must be a layer, a layer name or a callable, got {type(layer_or_fn)}")
    device = torch.device(device) if device is not None else _device_of(model)
    was_training = model.training
    model.eval()
    parts = []
    try:
        for start in tqdm(range(0, len(images), batch), desc="features", disable=not progress, leave=False):
            out = fn(model, images[start : start + batch].to(device))
            parts.append(out.flatten(1).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, 0)


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {a.shape}")
    return a.astype(np.float64)


def tsne_2d(
    features: torch.Tensor | np.ndarray, seed: int, perplexity: float = 30.0, pca_dims: int = 50
) -> np.ndarray:
    """t-SNE coordinates (N, 2) of features (N, D), deterministic for a seed.

    Features of more than `pca_dims` dimensions are first reduced by PCA (the usual practice;
    it also removes noise dimensions). Perplexity is capped at (N - 1) / 3 so small sets run.
    """
    x = _numpy(features)
    n = len(x)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {n}")
    if x.shape[1] > pca_dims:
        x = PCA(n_components=min(pca_dims, n), random_state=seed).fit_transform(x)
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, (n - 1) / 3),
        init="pca",
        random_state=seed,
    )
    return tsne.fit_transform(x).astype(np.float32)


def source_probe(
    features_real: torch.Tensor | np.ndarray,
    features_synthetic: torch.Tensor | np.ndarray,
    seed: int,
    test_size: float = 0.3,
    C: float = 1.0,
) -> float:
    """Held-out accuracy of a linear probe telling real (0) from synthetic (1) features.

    The larger source is subsampled (seeded) to the smaller's size, so chance is exactly 0.5;
    the split is stratified and seeded; the probe is standardisation + logistic regression
    (inverse regularisation strength C), fitted on the training part only.
    """
    real, synth = _numpy(features_real), _numpy(features_synthetic)
    if real.shape[1] != synth.shape[1]:
        raise ValueError(f"feature widths differ: real {real.shape[1]}, synthetic {synth.shape[1]}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    n = min(len(real), len(synth))
    if n < 4:
        raise ValueError(f"source_probe needs at least 4 samples per source, got {len(real)} real and {len(synth)} synthetic")
    rng = np.random.default_rng(seed)
    real = real[np.sort(rng.choice(len(real), n, replace=False))]
    synth = synth[np.sort(rng.choice(len(synth), n, replace=False))]
    x = np.concatenate([real, synth])
    g = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    x_tr, x_te, g_tr, g_te = train_test_split(x, g, test_size=test_size, stratify=g, random_state=seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))
    probe.fit(x_tr, g_tr)
    return float(probe.score(x_te, g_te))
