"""Run packing: K small runs trained at once as one K-times-wider network.

One 32 px run of the small ResNet cannot fill a GPU: its kernels are tiny and the step is bound
by kernel launches. Packing turns K models of one architecture into one network whose every
convolution has K groups (run k owns channel block k), whose batch norms are K times wider (each
channel still normalises over its own run's batch) and whose head is K independent linear maps.
Each run keeps its own images, batches (its method's sampler with its own seeded generator),
loss rule, Adam state and learning rate, and its own best epoch by validation WA. A packed run
is the same computation as the run trained alone, up to floating-point order (tests check it).

Input of the packed network: float/uint8 (B, K*3, H, W), run k's images in channels 3k..3k+2;
output logits (B, K, C).

Adam with one lr per run: Adam's update is elementwise, so one fused Adam over the packed
parameters is K independent Adams; it steps with lr 1 and each run's block is then moved
back towards its old value, p = p_old + lr_k * (p_adam - p_old), which is the lr-k step exactly.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet as tv_resnet

from ..data.grouped import GroupedImages
from ..metrics import Group, evaluate_predictions
from .graphs import StepGraph
from .loop import EVAL_BATCH, Diverged, StageResult, _autocast
from .methods import Method, group_ids, make_method
from .models import BasicBlock, Classifier, SmallResNet

# modules whose forward acts per channel or elementwise, so K channel blocks stay independent
_CHANNELWISE = (nn.ReLU, nn.Identity, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Sequential, BasicBlock, SmallResNet,
                tv_resnet.BasicBlock, tv_resnet.Bottleneck, tv_resnet.ResNet)


class PackedLinear(nn.Module):
    """K independent linear maps: (N, K*D) -> (N, K, C); weight (K, C, D), bias (K, C)."""

    def __init__(self, k: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.k = k
        self.weight = nn.Parameter(torch.zeros(k, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(k, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nkd,kcd->nkc", x.view(x.shape[0], self.k, -1), self.weight) + self.bias


def packable(model: Classifier) -> bool:
    """Whether `model` is made only of modules that packing can widen."""
    if model.input_size is not None:
        return False
    for module in model.backbone.modules():
        if not isinstance(module, (nn.Conv2d, nn.BatchNorm2d, *_CHANNELWISE)):
            return False
    return isinstance(model.head, nn.Linear)


def packed_like(model: Classifier, k: int) -> Classifier:
    """A K-run version of `model`'s architecture (weights not copied; see pack_state)."""
    if not packable(model):
        raise ValueError(f"model {type(model.backbone).__name__} holds modules packing cannot widen "
                         "(only convolutions, batch norms and channel-wise modules; no attention)")
    packed = copy.deepcopy(model)
    for module in list(packed.backbone.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.Conv2d):
                setattr(module, name, nn.Conv2d(
                    k * child.in_channels, k * child.out_channels, child.kernel_size, child.stride, child.padding,
                    child.dilation, groups=k * child.groups, bias=child.bias is not None,
                    padding_mode=child.padding_mode))
            elif isinstance(child, nn.BatchNorm2d):
                setattr(module, name, nn.BatchNorm2d(k * child.num_features, child.eps, child.momentum, child.affine,
                                                     child.track_running_stats))
    packed.head = PackedLinear(k, model.head.in_features, model.head.out_features)
    packed.mean = model.mean.repeat(1, k, 1, 1)
    packed.std = model.std.repeat(1, k, 1, 1)
    return packed.to(model.mean.device)


def _kind(key: str) -> str:
    if key.endswith("num_batches_tracked"):
        return "shared"
    if key.startswith("head."):
        return "stacked"
    return "concatenated"  # conv weights, batch-norm vectors, the mean/std buffers (dim 1)


def pack_state(states: Sequence[dict]) -> dict:
    """K single-run state dicts -> the packed network's state dict."""
    out = {}
    for key, first in states[0].items():
        kind = _kind(key)
        if kind == "shared":
            out[key] = first.clone()
        elif kind == "stacked":
            out[key] = torch.stack([s[key] for s in states])
        else:
            out[key] = torch.cat([s[key] for s in states], dim=1 if key in ("mean", "std") else 0)
    return out


def unpack_state(state: dict, k: int) -> list[dict]:
    """The packed state dict -> K single-run state dicts."""
    runs: list[dict] = [{} for _ in range(k)]
    for key, value in state.items():
        kind = _kind(key)
        parts = ([value] * k if kind == "shared" else value.unbind(0) if kind == "stacked"
                 else value.chunk(k, dim=1 if key in ("mean", "std") else 0))
        for run, part in zip(runs, parts):
            run[key] = part.clone()
    return runs


def run_blocks(tensor: torch.Tensor, key: str, k: int) -> torch.Tensor | None:
    """A (K, -1) view of a packed tensor, row k = run k's block (None for shared counters)."""
    if _kind(key) == "shared":
        return None
    return tensor.reshape(k, -1)


@dataclass(frozen=True, eq=False)
class PackMember:
    """One run of a pack: its own training and validation sets, method, lr and seed."""

    train: GroupedImages
    val: GroupedImages
    method: str
    lr: float
    seed: int


def _stack_inputs(images: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """uint8 (K, B, 3, H, W) -> (B, K*3, H, W), channels_last on CUDA unless told otherwise."""
    k, b, c, h, w = images.shape
    x = images.transpose(0, 1).reshape(b, k * c, h, w)
    return x.contiguous(memory_format=torch.channels_last) if x.is_cuda and channels_last else x.contiguous()


@torch.no_grad()
def packed_predictions(packed: Classifier, images: torch.Tensor, batch: int = EVAL_BATCH,
                       channels_last: bool = True) -> torch.Tensor:
    """uint8 (K, N, 3, H, W) -> int64 (K, N) predicted classes, in eval mode."""
    was_training = packed.training
    packed.eval()
    out = []
    with _autocast(images.device):
        for chunk in images.split(batch, dim=1):
            out.append(packed(_stack_inputs(chunk, channels_last)).argmax(-1).T)
    packed.train(was_training)
    return torch.cat(out, dim=1)


def _same_sizes(members: Sequence[PackMember]) -> None:
    for what in ("train", "val"):
        sizes = {len(getattr(m, what)) for m in members}
        if len(sizes) > 1:
            raise ValueError(f"train_packed: every member's {what} set must have one size, got {sorted(sizes)}")


def _lr_blocks(params: Sequence[torch.Tensor], lr: torch.Tensor, k: int) -> list[torch.Tensor]:
    """Per parameter, a tensor of its shape holding lr[k] over run k's block."""
    return [lr.repeat_interleave(p.numel() // k).view_as(p) for p in params]


def train_packed(
    models: Sequence[Classifier],
    members: Sequence[PackMember],
    groups: Sequence[Group],
    *,
    epochs: int = 20,
    batch_size: int = 128,
    weight_decay: float = 1e-5,
    freeze_bn: bool = False,
    source_groups: bool = False,
    dro_step: float = 0.01,
    on_epoch: Callable[[int, float], None] | None = None,
    cuda_graphs: bool = True,
    channels_last: bool = True,
) -> list[StageResult | Diverged]:
    """Train the K `models` (in place) on their members' sets, all at once; each keeps its best
    epoch by validation WA, as train_stage does. Returns per run its StageResult, or Diverged
    for a run whose loss became non-finite (the others go on). cuda_graphs: on CUDA, replay each
    full batch's step as a CUDA graph (graphs.py)."""
    k = len(models)
    if k != len(members) or k == 0:
        raise ValueError(f"train_packed: {k} models for {len(members)} members")
    _same_sizes(members)
    device = next(models[0].parameters()).device
    packed = packed_like(models[0], k)
    packed.load_state_dict(pack_state([m.state_dict() for m in models]))
    if device.type == "cuda" and channels_last:
        packed = packed.to(memory_format=torch.channels_last)
    images = torch.stack([m.train.images for m in members]).to(device)  # uint8 (K, N, 3, H, W)
    labels = torch.stack([m.train.y for m in members]).to(device)  # (K, N)
    ids, rules, keys = [], [], []
    for m in members:
        gid, key = group_ids(m.train.to(device), with_source=source_groups)
        ids.append(gid)
        keys.append(key)
        rules.append(make_method(m.method, gid, len(key), dro_step))
    ids = torch.stack(ids)
    plain = [type(r).reduce is Method.reduce for r in rules]  # mean losses: vectorised below
    val_images = torch.stack([m.val.images for m in members]).to(device)
    generators = [torch.Generator(device=device).manual_seed(m.seed) for m in members]

    params = list(packed.parameters())
    lr = torch.tensor([m.lr for m in members], device=device)
    lr_blocks = _lr_blocks(params, lr, k)
    cuda = device.type == "cuda"
    optimizer = torch.optim.Adam(params, lr=1.0, weight_decay=weight_decay, fused=cuda, capturable=cuda)
    weights = [p.detach() for p in params]  # views of the parameters (same storage) for the lr rescale
    old = [w.clone() for w in weights]
    alive = torch.ones(k, dtype=torch.bool, device=device)
    rows = torch.arange(k, device=device)[:, None]

    def step(idx: torch.Tensor) -> torch.Tensor:
        """One step of every run on its batch idx[k] (int64 (K, B)); returns the K losses."""
        optimizer.zero_grad(set_to_none=not cuda)  # in place on CUDA: a graph keeps the gradients' addresses
        with _autocast(device):
            logits = packed(_stack_inputs(images[rows, idx], channels_last))  # (B, K, C)
        y, gid = labels[rows, idx], ids[rows, idx]
        losses = F.cross_entropy(logits.float().transpose(0, 1).reshape(-1, logits.shape[-1]), y.reshape(-1),
                                 reduction="none").view(k, -1)
        run_loss = losses.mean(1)
        if not all(plain):
            run_loss = torch.stack([run_loss[i] if plain[i] else rules[i].reduce(losses[i], gid[i])
                                    for i in range(k)])
        torch.where(alive, run_loss, torch.zeros_like(run_loss)).sum().backward()
        torch._foreach_copy_(old, weights)
        optimizer.step()
        with torch.no_grad():  # p = old + lr_k * (p_adam - old)
            torch._foreach_lerp_(old, weights, lr_blocks)
            torch._foreach_copy_(weights, old)
        return run_loss.detach()

    graphed = StepGraph(step, device, enabled=cuda_graphs)
    best_wa = [-1.0] * k
    best_epoch = [0] * k
    best_state = {key: v.detach().clone() for key, v in packed.state_dict().items()}
    best_counters = {key: [v.clone()] * k for key, v in best_state.items() if run_blocks(v, key, k) is None}
    history: list[list[dict]] = [[] for _ in range(k)]
    failed: list[Diverged | None] = [None] * k
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        packed.train(not freeze_bn)
        order = torch.stack([r.epoch_indices(g) for r, g in zip(rules, generators)])  # (K, N)
        total, steps = torch.zeros(k, device=device), 0
        for idx in order.split(batch_size, dim=1):  # (K, B)
            total += graphed(idx)
            steps += 1
        mean_loss = (total / max(steps, 1)).tolist()  # one sync per epoch
        pred = packed_predictions(packed, val_images, channels_last=channels_last).cpu()
        seconds = time.perf_counter() - t0
        improved = torch.zeros(k, dtype=torch.bool)
        for i, m in enumerate(members):
            if failed[i] is not None:
                continue
            if not torch.isfinite(torch.tensor(mean_loss[i])):
                failed[i] = Diverged(f"loss is {mean_loss[i]} in epoch {epoch} (lr {m.lr:g}, method {m.method})")
                alive[i] = False
                lr[i] = 0.0
                torch._foreach_copy_(lr_blocks, _lr_blocks(params, lr, k))  # in place: a graph reads these
                continue
            metrics = evaluate_predictions(pred[i], m.val.y, m.val.b, groups, set_name="validation set")
            history[i].append({"epoch": epoch, "loss": mean_loss[i], "val_wa": metrics["wa"],
                               "val_ba": metrics["ba"], "seconds": seconds, "pack": k})
            if metrics["wa"] > best_wa[i]:
                best_wa[i], best_epoch[i] = metrics["wa"], epoch
                improved[i] = True
        if improved.any():
            mask = improved.to(device)[:, None]
            for key, value in packed.state_dict().items():
                blocks = run_blocks(value, key, k)
                if blocks is None:  # batch norm's step counter, one per run
                    for i in improved.nonzero().flatten().tolist():
                        best_counters[key][i] = value.detach().clone()
                else:
                    best_state[key] = torch.where(mask, blocks, run_blocks(best_state[key], key, k)).view_as(value)
        if on_epoch is not None:
            on_epoch(epoch, seconds)
    for i, (model, state) in enumerate(zip(models, unpack_state(best_state, k))):
        state.update({key: values[i] for key, values in best_counters.items()})
        model.load_state_dict({key: v.to(device) for key, v in state.items()})
    return [failed[i] if failed[i] is not None else
            StageResult(best_epoch[i], best_wa[i], history[i], rules[i].state(), keys[i]) for i in range(k)]
