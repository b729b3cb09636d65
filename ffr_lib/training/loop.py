"""The training loop of one stage: Adam, no schedule, no augmentation, fixed epochs, and the
best epoch by real-validation WA kept (the authors' early stopping).

The whole set sits on the device as uint8 and a batch is an index tensor (no DataLoader for
in-memory sets). On CUDA: bf16 autocast and channels_last. A non-finite loss ends the stage
with `Diverged`, which the runner records as the run's failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from ..data.grouped import GroupedImages
from ..metrics import Group, evaluate_predictions
from .graphs import StepGraph
from .methods import group_ids, make_method
from .models import Classifier

EVAL_BATCH = 1024


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class StageResult:
    """The outcome of one stage; the model itself holds the best epoch's weights afterwards."""

    best_epoch: int  # 1-based epoch with the best validation WA
    best_val_wa: float
    history: list[dict] = field(default_factory=list)  # per epoch: loss, val WA/BA, seconds
    method_state: dict = field(default_factory=dict)  # e.g. GroupDRO's final group weights
    group_keys: list[tuple[int, ...]] = field(default_factory=list)  # the method's groups


def _autocast(device: torch.device):
    if device.type == "cuda":  # no weight-cast cache: CUDA graphs (graphs.py) cannot capture it
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return torch.autocast("cpu", enabled=False)


def _prepare(images: torch.Tensor) -> torch.Tensor:
    return images.contiguous(memory_format=torch.channels_last) if images.is_cuda else images


@torch.no_grad()
def logits_of(model: Classifier, images: torch.Tensor, batch: int = EVAL_BATCH) -> torch.Tensor:
    """uint8 (N, 3, H, W) on the model's device -> float (N, C) logits, in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    with _autocast(images.device):
        for chunk in images.split(batch):
            out.append(model(_prepare(chunk)).float())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, model.head.out_features)


@torch.no_grad()
def features_of(model: Classifier, images: torch.Tensor, batch: int = EVAL_BATCH) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float (N, D) penultimate features, in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    with _autocast(images.device):
        for chunk in images.split(batch):
            out.append(model.features(_prepare(chunk)).float())
    model.train(was_training)
    return torch.cat(out)


def evaluate(
    model: Classifier,
    data: GroupedImages,
    groups: Sequence[Group],
    weights: Mapping[Group, float] | None = None,
    set_name: str = "evaluated set",
) -> dict:
    """Metrics record (see metrics.evaluate_predictions) of `model` on `data` (any device)."""
    device = next(model.parameters()).device
    pred = logits_of(model, data.images.to(device)).argmax(1)
    return evaluate_predictions(pred, data.y, data.b, groups, weights, set_name=set_name)


def train_stage(
    model: Classifier,
    train: GroupedImages,
    val: GroupedImages,
    groups: Sequence[Group],
    *,
    method: str = "erm",
    lr: float = 1e-3,
    epochs: int = 20,
    batch_size: int = 128,
    weight_decay: float = 1e-5,
    seed: int = 0,
    freeze_bn: bool = False,
    source_groups: bool = False,
    dro_step: float = 0.01,
    on_epoch: Callable[[dict], None] | None = None,
    cuda_graphs: bool = True,
) -> StageResult:
    """Train `model` (in place) on `train` with a fresh Adam; keep the epoch with the best WA on
    `val` over `groups` (ties: the earlier epoch) and load it into the model at the end.

    freeze_bn: the model stays in eval mode (BN running statistics frozen, BN affine weights
    still trained), as the authors' FFR stage 2 option did. cuda_graphs: on CUDA, replay each
    full batch's step as a CUDA graph (graphs.py; the same kernels, launched at once).
    """
    device = next(model.parameters()).device
    train, val = train.to(device), val.to(device)
    gid, keys = group_ids(train, with_source=source_groups)
    rule = make_method(method, gid, len(keys), dro_step)
    cuda = device.type == "cuda"
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=cuda, capturable=cuda)
    generator = torch.Generator(device=device).manual_seed(seed)

    def step(idx: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=not cuda)  # in place on CUDA: a graph keeps the gradients' addresses
        with _autocast(device):
            logits = model(_prepare(train.images[idx]))
        loss = rule.loss(logits, train.y[idx], gid[idx])
        loss.backward()
        optimizer.step()
        return loss.detach()

    graphed = StepGraph(step, device, enabled=cuda_graphs)
    best_wa, best_epoch, best_state = -1.0, 0, None
    history = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train(not freeze_bn)
        total, steps = torch.zeros((), device=device), 0
        for idx in rule.batches(batch_size, generator):
            total += graphed(idx)
            steps += 1
        mean_loss = float(total) / max(steps, 1)  # one sync per epoch
        if not torch.isfinite(torch.tensor(mean_loss)):
            raise Diverged(f"loss is {mean_loss} in epoch {epoch} (lr {lr:g}, method {method})")
        metrics = evaluate(model, val, groups, set_name="validation set")
        row = {
            "epoch": epoch,
            "loss": mean_loss,
            "val_wa": metrics["wa"],
            "val_ba": metrics["ba"],
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if metrics["wa"] > best_wa:
            best_wa, best_epoch = metrics["wa"], epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return StageResult(best_epoch, best_wa, history, rule.state(), keys)
