"""The training loop of one stage: Adam, no schedule, no augmentation, fixed epochs, and the
best epoch by real-validation WA kept (the authors' early stopping), ties broken by validation
BA, then the group-balanced validation loss, then the earlier epoch (EPOCH_KEYS).

The whole set sits on the device as uint8 and a batch is an index tensor (no DataLoader for
in-memory sets). Precision is a decision, recorded in every run record (`numerics`):
- CUDA: bf16 autocast and channels_last, for training and evaluation alike;
- CPU training: bf16 autocast and channels_last where oneDNN has native bf16 kernels (2.1x on
  this project's EPYC), unless FFR_CPU_BF16=0; fp32 NCHW elsewhere;
- CPU evaluation (validation each epoch, test sets, features for DFR and analysis): always
  fp32 NCHW, whatever the CPU, so every number computed from a stored model is the same on a
  CPU with or without bf16 kernels (up to fp32 rounding of the oneDNN kernel chosen).
A non-finite loss ends the stage with `Diverged`, which the runner records as the run's failure.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..data.grouped import GroupedImages
from ..metrics import Group, evaluate_predictions
from .graphs import StepGraph, no_autotune, return_pools
from .methods import METHODS, group_ids, make_method
from .models import Classifier

EVAL_BATCH = 1024
# the best epoch of a stage: the highest validation WA; among equal WA the highest validation BA;
# then the lowest group-balanced validation loss; then the earlier epoch. A run whose validation
# WA is 0 at every epoch (a minority group never right) thus keeps a trained epoch, not epoch 1.
EPOCH_KEYS = ("val_wa", "val_ba", "-val_loss")


def epoch_key(row: Mapping[str, float]) -> tuple[float, ...]:
    """The comparable key of one epoch's history row under EPOCH_KEYS (larger is better); NaN
    losses rank last."""
    loss = row.get("val_loss", float("nan"))
    return (row["val_wa"], row["val_ba"], -loss if loss == loss else float("-inf"))


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class StageResult:
    """The outcome of one stage; the model itself holds the best epoch's weights afterwards."""

    best_epoch: int  # 1-based epoch first best by EPOCH_KEYS (validation WA, then BA, then loss)
    best_val_wa: float
    history: list[dict] = field(default_factory=list)  # per epoch: loss, val WA/BA, seconds
    method_state: dict = field(default_factory=dict)  # e.g. GroupDRO's final group weights
    group_keys: list[tuple[int, ...]] = field(default_factory=list)  # the method's groups


def _cpu_bf16() -> bool:
    """Whether CPU training uses bf16 autocast and channels_last: where oneDNN has native bf16
    kernels (AVX512-BF16 or AMX), unless FFR_CPU_BF16=0. On this project's 2-core AMD EPYC it
    trains the width-16 small ResNet 2.1x faster than fp32 NCHW (docs/performance.md); without
    native bf16 the emulation would be slower, so fp32 stays."""
    if os.environ.get("FFR_CPU_BF16", "1") == "0" or not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


CPU_BF16 = _cpu_bf16()


def precision(device: torch.device) -> str:
    """What a run on `device` trains its convolutions and matmuls in (kept in run records)."""
    return "bf16-autocast" if device.type == "cuda" or CPU_BF16 else "fp32"


def eval_precision(device: torch.device) -> str:
    """What evaluation on `device` computes in: fp32 NCHW on every CPU, bf16 autocast on CUDA."""
    return "bf16-autocast" if device.type == "cuda" else "fp32"


def _autocast(device: torch.device, training: bool = True):
    if device.type == "cuda":  # no weight-cast cache: CUDA graphs (graphs.py) cannot capture it
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=CPU_BF16 and training)


def channels_last(device: torch.device, training: bool = True) -> bool:
    """Whether models and batches on `device` use the channels_last memory format (CPU: only
    to train in bf16; CPU evaluation is NCHW)."""
    return device.type == "cuda" or (CPU_BF16 and training)


def _prepare(images: torch.Tensor, training: bool = True) -> torch.Tensor:
    return images.contiguous(memory_format=torch.channels_last) if channels_last(images.device, training) else images


def _eval_model(model: Classifier, device: torch.device) -> Classifier:
    """The model to evaluate with: itself, or on a CPU a contiguous (NCHW) copy of a model
    trained channels_last, so CPU evaluation takes one kernel path whatever the CPU."""
    if device.type == "cuda" or all(p.is_contiguous() for p in model.parameters()):
        return model
    return copy.deepcopy(model).to(memory_format=torch.contiguous_format)


@torch.no_grad()
def logits_of(model: Classifier, images: torch.Tensor, batch: int = EVAL_BATCH) -> torch.Tensor:
    """uint8 (N, 3, H, W) on the model's device -> float (N, C) logits, in eval mode (CPU: fp32
    NCHW)."""
    was_training = model.training
    model.eval()
    net = _eval_model(model, images.device)
    out = []
    with _autocast(images.device, training=False), no_autotune():  # shapes vary: no cuDNN timing runs
        for chunk in images.split(batch):
            out.append(net(_prepare(chunk, training=False)).float())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, model.head.out_features)


@torch.no_grad()
def features_of(model: Classifier, images: torch.Tensor, batch: int = EVAL_BATCH) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float (N, D) penultimate features, in eval mode (CPU: fp32 NCHW)."""
    was_training = model.training
    model.eval()
    net = _eval_model(model, images.device)
    out = []
    with _autocast(images.device, training=False), no_autotune():
        for chunk in images.split(batch):
            out.append(net.features(_prepare(chunk, training=False)).float())
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


class StageTrainer:
    """One stage's training, an epoch and a step at a time: Adam (fused and capturable on CUDA),
    the method's batches and loss, each full batch's step replayed as a CUDA graph, the best
    epoch by validation WA. `train_stage` drives one; `packing.train_packed` drives several
    at once, side by side on CUDA streams. `stream` (CUDA) is where this run's work is launched.

    Per epoch: `batches()` -> `step(idx)` for each -> `predict_val()` -> `close_epoch(pred)`;
    at the end `finish()` loads the best epoch's weights and returns the StageResult."""

    def __init__(self, model: Classifier, train: GroupedImages, val: GroupedImages, groups: Sequence[Group], *,
                 method: str = "erm", lr: float = 1e-3, batch_size: int = 128, weight_decay: float = 1e-5,
                 seed: int = 0, freeze_bn: bool = False, source_groups: bool = False,
                 hparams: Mapping[str, Any] | None = None, reference: torch.Tensor | None = None,
                 cuda_graphs: bool = True, stream: torch.cuda.Stream | None = None,
                 compile_backend: str | None = None) -> None:
        self.model, self.groups, self.lr, self.method = model, groups, lr, method
        # the full batches' forward through torch.compile (fused batch norm, ReLU and residual
        # kernels); every run of one architecture shares the compiled code (dynamo guards on
        # the module's structure, not its identity). Other shapes (the last batch) run the
        # uncompiled model (in their own CUDA graph), so they never trigger a recompilation.
        self.forward = model if compile_backend is None else torch.compile(model, backend=compile_backend,
                                                                             dynamic=False)
        self.device = device = next(model.parameters()).device
        if channels_last(device):  # CPU bf16 training: channels_last while training, NCHW after finish()
            model.to(memory_format=torch.channels_last)
        self.stream = stream
        with self.launching():
            self.train, self.val = train.to(device), val.to(device)
            if METHODS[method].uses_groups:
                self.gid, self.keys = group_ids(self.train, with_source=source_groups)
            else:  # a method without group labels gets one group: it cannot read b (or g)
                self.gid, self.keys = torch.zeros(len(self.train), dtype=torch.int64, device=device), [()]
            ref = None if reference is None else reference.to(device)
            self.rule = make_method(method, self.gid, len(self.keys), hparams, y=self.train.y, reference=ref)
            self.generator = torch.Generator(device=device).manual_seed(seed)
        self.cuda = cuda = device.type == "cuda"
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=cuda,
                                          capturable=cuda)
        self.batch_size, self.freeze_bn = batch_size, freeze_bn
        self.graph = StepGraph(self._step, device, enabled=cuda_graphs)
        # validation every epoch: the same images and shapes each time, so it is a graph too
        # (after one eager epoch), rather than a chain of eager launches per run at every
        # epoch's end, when a pack's GPU waits for them
        self.val_graph = StepGraph(self._predict_val, device, enabled=cuda_graphs, warmup=1)
        self._no_idx = torch.zeros(0, dtype=torch.long, device=device)
        self.epoch, self.steps, self.t0 = 0, 0, 0.0
        self.total = torch.zeros((), device=device)
        self.best_wa, self.best_epoch, self.best_state = -1.0, 0, None
        self.best_key: tuple[float, ...] | None = None
        with self.launching():  # each validation image's (y, b) group, for the group-balanced loss
            keys = torch.tensor([list(g) for g in groups], device=device)
            vyb = torch.stack([self.val.y, self.val.b], 1)
            self.val_group = (vyb[:, None, :] == keys[None]).all(-1).float()  # (N, G) one-hot
        self.history: list[dict] = []

    def launching(self) -> contextlib.AbstractContextManager:
        """Context in which this run's kernels are launched (its stream, if it has one)."""
        return torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()

    def _step(self, idx: torch.Tensor) -> torch.Tensor:
        # set to None, also inside a CUDA graph: backward then writes each gradient (from the
        # graph's own memory pool when captured) instead of adding it to zeros, one add kernel
        # less per parameter (41 of a small-ResNet step's ~260 kernels), with the same values
        self.optimizer.zero_grad(set_to_none=True)
        net = self.forward if idx.shape[-1] == self.batch_size else self.model
        with _autocast(self.device):
            logits = net(_prepare(self.train.images[idx]))
        loss = self.rule.loss(logits, self.train.y[idx], self.gid[idx])
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def batches(self) -> list[torch.Tensor]:
        """Start the next epoch: the model in training mode (BN frozen if asked) and this
        epoch's index batches (int64 (B,) each, on the device)."""
        self.epoch += 1
        self.t0 = time.perf_counter()
        self.model.train(not self.freeze_bn)
        self.steps = 0
        with self.launching():
            self.total.zero_()
            return list(self.rule.batches(self.batch_size, self.generator))

    def step(self, idx: torch.Tensor) -> None:
        """One training step on batch `idx` (launched, not waited for)."""
        with self.launching():
            self.total += self.graph(idx)
        self.steps += 1

    def _predict_val(self, _: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model, self.val.images)

    def predict_val(self) -> torch.Tensor:
        """Logits on the validation set, float (N, C) on the device (launched; on CUDA a graph's
        static output: read it before the next call)."""
        with self.launching():
            return self.val_graph(self._no_idx)

    def _val_loss(self, logits: torch.Tensor) -> float:
        """Cross-entropy on validation, averaged within each (y, b) group, then over groups."""
        ce = torch.nn.functional.cross_entropy(logits.float(), self.val.y, reduction="none")
        per_group = (ce[:, None] * self.val_group).sum(0) / self.val_group.sum(0).clamp_min(1)
        return float(per_group.mean())

    def close_epoch(self, logits: torch.Tensor) -> dict:
        """The epoch's row (loss, validation WA/BA/loss, seconds); keeps the best epoch's weights
        by EPOCH_KEYS (ties on all three: the earlier epoch). Raises Diverged if the training
        loss is not finite."""
        mean_loss = float(self.total) / max(self.steps, 1)  # one sync per epoch
        if not torch.isfinite(torch.tensor(mean_loss)):
            raise Diverged(f"loss is {mean_loss} in epoch {self.epoch} (lr {self.lr:g}, method {self.method})")
        metrics = evaluate_predictions(logits.argmax(1), self.val.y, self.val.b, self.groups, set_name="validation set")
        val_loss = self._val_loss(logits)
        row = {"epoch": self.epoch, "loss": mean_loss, "val_wa": metrics["wa"], "val_ba": metrics["ba"],
               "val_loss": val_loss, "seconds": time.perf_counter() - self.t0}
        self.history.append(row)
        key = epoch_key(row)
        if self.best_key is None or key > self.best_key:
            self.best_key, self.best_wa, self.best_epoch = key, metrics["wa"], self.epoch
            with self.launching():
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return row

    def finish(self) -> StageResult:
        """Load the best epoch's weights into the model; the stage's result."""
        if self.stream is not None:
            torch.cuda.current_stream().wait_stream(self.stream)
        self.model.load_state_dict(self.best_state)
        if self.device.type == "cpu":
            self.model.to(memory_format=torch.contiguous_format)
        result = StageResult(self.best_epoch, self.best_wa, self.history, self.rule.state(), self.keys)
        self.release()
        return result

    def release(self) -> None:
        """Free what only training needed, as soon as the stage ends: the step's CUDA graphs, the
        gradients (on CUDA allocated from a graph's private pool, which cannot be given back
        while any of its tensors lives, and a model may outlive its stage in torch.compile's caches)
        and the best-epoch copy. The pools' memory itself goes back in `graphs.return_pools`."""
        self.graph.release()
        self.val_graph.release()
        self.model.zero_grad(set_to_none=True)
        self.best_state = None


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
    hparams: Mapping[str, Any] | None = None,
    reference: torch.Tensor | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    cuda_graphs: bool = True,
    compile_backend: str | None = None,
) -> StageResult:
    """Train `model` (in place) on `train` with a fresh Adam; keep the epoch with the best WA on
    `val` over `groups` (ties: the earlier epoch) and load it into the model at the end.

    freeze_bn: the model stays in eval mode (BN running statistics frozen, BN affine weights
    still trained), as the authors' FFR stage 2 option did. hparams: the method's hyperparameters
    (methods.base.resolve fills the defaults); reference: float (N, C) logits of the method's
    reference model on `train` (JTT's identification model). cuda_graphs: on CUDA, replay each
    full batch's step as a CUDA graph (graphs.py; the same kernels, launched at once).
    compile_backend: torch.compile the full batches' forward with this backend ('inductor';
    None: eager). Off by default: it changes the kernels, so results match eager ones only
    up to rounding, and it costs a compilation per architecture and process.
    """
    trainer = StageTrainer(model, train, val, groups, method=method, lr=lr, batch_size=batch_size,
                           weight_decay=weight_decay, seed=seed, freeze_bn=freeze_bn, source_groups=source_groups,
                           hparams=hparams, reference=reference, cuda_graphs=cuda_graphs,
                           compile_backend=compile_backend)
    for _ in range(epochs):
        for idx in trainer.batches():
            trainer.step(idx)
        row = trainer.close_epoch(trainer.predict_val())
        if on_epoch is not None:
            on_epoch(row)
    result = trainer.finish()
    return_pools(trainer.device, cuda_graphs)
    return result
