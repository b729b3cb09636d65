"""Which backbone and input size pay on the composite benchmark: a frozen linear probe and speed.

For EfficientNet-Lite0 with ImageNet weights and with random weights (PyTorch's default
initialisation), at the data's 64 px and upsampled inside the model to larger sides: the
real-test accuracy, WA and BA of a logistic regression on frozen pooled features, trained on a
balanced subset of the real training pool (`--per-group` per (y, b) group); the same for the
small ResNet from scratch (random weights) as a reference. Then training throughput (Adam,
batch 64, forward + backward, images/s) of each backbone and input size on this device.

    OMP_NUM_THREADS=1 python bench/composite_backbones.py --threads 1 --per-group 250 \
        --out bench/results/composite_backbones_cpu.json
    OMP_NUM_THREADS=1 python bench/composite_backbones.py --threads 1 --speed-only --speed-steps 10 \
        --out bench/results/composite_backbones_speed_cpu.json   # on a quiet machine: rates are load-sensitive
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import RESULTS, machine_info, table, write_json

from ffr_lib.analysis.world_checks import balanced_subset
from ffr_lib.data.composite import CompositeConfig, composite_split
from ffr_lib.metrics import evaluate_predictions, present_groups
from ffr_lib.training.models import Classifier, build_model


def resized(model: Classifier, side: int) -> Classifier:
    """The model reading its inputs bilinearly resized to `side` (64 = the data's own size)."""
    model.input_size = None if side == 64 else side
    return model


@torch.no_grad()
def features(model: Classifier, images: torch.Tensor, batch: int = 100) -> np.ndarray:
    model.eval()
    return torch.cat([model.features(images[i : i + batch]) for i in range(0, len(images), batch)]).numpy()


def probe(model: Classifier, train, test) -> dict:
    """Logistic regression on standardised frozen features; real-test metrics."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    f_train, f_test = features(model, train.images), features(model, test.images)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.1))
    clf.fit(f_train, train.y.numpy())
    m = evaluate_predictions(clf.predict(f_test), test.y, test.b, present_groups(test.y, test.b))
    return {"test_acc": m["acc"], "test_wa": m["wa"], "test_ba": m["ba"], "seconds": time.perf_counter() - t0}


def throughput(model: Classifier, side: int, n_classes: int, steps: int, batch: int = 64) -> float:
    """Training images/s (uint8 64 px inputs, Adam), after one warm-up step."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8)
    y = torch.randint(0, n_classes, (batch,))
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layouts", nargs="+", default=["binary", "animals"])
    p.add_argument("--sides", type=int, nargs="+", default=[64, 128, 224])
    p.add_argument("--per-group", type=int, default=250, help="probe training images per (y, b) group")
    p.add_argument("--test-per-group", type=int, default=250)
    p.add_argument("--speed-steps", type=int, default=3)
    p.add_argument("--speed-only", action="store_true", help="no probes: throughput alone (written to --out)")
    p.add_argument("--threads", type=int)
    p.add_argument("--out", default=str(RESULTS / "composite_backbones_cpu.json"))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    candidates = [("efficientnet-lite0", True, s) for s in args.sides] + [
        ("efficientnet-lite0", False, s) for s in args.sides] + [("resnet-small", False, 64)]
    for layout in [] if args.speed_only else args.layouts:
        config = CompositeConfig(layout=layout, test_per_group=args.test_per_group)
        train = balanced_subset(composite_split(config, "train"), args.per_group, seed=0)
        test = composite_split(config, "test")
        n = len(config.spec.class_names)
        for name, pretrained, side in candidates:
            torch.manual_seed(0)
            model = resized(build_model(name, n, pretrained=pretrained), side)
            rows.append({"layout": layout, "model": name, "pretrained": pretrained, "side": side,
                         "probe_train": len(train), "probe_test": len(test), **probe(model, train, test)})
            print(rows[-1], flush=True)
    speed = []
    for name, pretrained, side in candidates:
        if not pretrained and name != "resnet-small":
            continue  # the same network as the pretrained one
        torch.manual_seed(0)
        model = resized(build_model(name, 2, pretrained=pretrained), side)
        speed.append({"model": name, "side": side, "train_images_per_s": throughput(model, side, 2, args.speed_steps)})
        print(speed[-1], flush=True)
    if rows:
        table(rows, ["layout", "model", "pretrained", "side", "test_acc", "test_wa", "test_ba"])
    table(speed, ["model", "side", "train_images_per_s"])
    write_json(args.out, {"machine": machine_info("cpu"), "probe": rows, "speed": speed,
                          "settings": vars(args)})


if __name__ == "__main__":
    main()
