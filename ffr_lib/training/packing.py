"""Run packing: K small runs trained at once, each on its own CUDA stream.

One 32 px run of the small ResNet cannot fill a GPU: even replayed as a CUDA graph its step is a
chain of tiny kernels, each using a few of the GPU's 132 streaming multiprocessors. A pack
interleaves K runs step by step; each run launches its step (its graph replay) on its own CUDA
stream, so the GPU runs the K chains side by side. Every run is exactly a `loop.StageTrainer`,
the object `train_stage` drives: its own model, images, batches (its method's sampler with its
own seeded generator), loss, Adam and lr, and its own best epoch by validation WA. So a packed
run is the computation of the run alone (on CPU bit for bit; on CUDA up to cuDNN's choice of
kernels), for any architecture, and the members' sets may differ in size (a run with fewer
batches simply stops launching earlier in the epoch).

An earlier version widened K copies of the network into one K-group convolutional network; on
an H100 it was slower (`bench/studies/pack_streams.py`: 294,000 images/s for 32 runs against 325,000 on
32 streams, and 345,000 with 8 runs on 8 streams), cost a cuDNN autotuning pass for every new
pack size, and could not pack attention models. Sharing 8 streams among the runs (CUDA's
default number of hardware queues) was slower again: a stream carrying 2 of 9 runs makes every
round twice as long (docs/performance.md has the numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..data.grouped import GroupedImages
from ..metrics import Group
from .graphs import return_pools
from .loop import Diverged, StageResult, StageTrainer
from .models import Classifier


@dataclass(frozen=True, eq=False)
class PackMember:
    """One run of a pack: its own training and validation sets, method (with its hyperparameters
    and its reference model's logits on `train`, if it has one), lr and seed."""

    train: GroupedImages
    val: GroupedImages
    method: str
    lr: float
    seed: int
    hparams: Mapping[str, Any] = field(default_factory=dict)
    reference: torch.Tensor | None = None  # float (N, C)


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
    on_epoch: Callable[[int, float], None] | None = None,
    cuda_graphs: bool = True,
    compile_backend: str | None = None,
) -> list[StageResult | Diverged]:
    """Train the K `models` (in place) on their members' sets, all at once; each keeps its best
    epoch by validation WA, as train_stage does. Returns per run its StageResult, or Diverged
    for a run whose loss became non-finite (the others go on). On CUDA each run launches on its
    own stream and, with cuda_graphs, replays each full batch's step as a CUDA graph;
    compile_backend: as train_stage's (the runs share one compiled forward)."""
    k = len(models)
    if k != len(members) or k == 0:
        raise ValueError(f"train_packed: {k} models for {len(members)} members")
    device = next(models[0].parameters()).device
    cuda = device.type == "cuda"
    main = torch.cuda.current_stream(device) if cuda else None
    trainers = []
    for model, m in zip(models, members):
        stream = torch.cuda.Stream(device) if cuda else None
        if stream is not None:
            stream.wait_stream(main)  # the models were made on the main stream
        trainers.append(StageTrainer(
            model, m.train, m.val, groups, method=m.method, lr=m.lr, batch_size=batch_size,
            weight_decay=weight_decay, seed=m.seed, freeze_bn=freeze_bn, source_groups=source_groups,
            hparams=m.hparams, reference=m.reference, cuda_graphs=cuda_graphs, stream=stream,
            compile_backend=compile_backend))
    failed: list[Diverged | None] = [None] * k
    for epoch in range(1, epochs + 1):
        live = [i for i in range(k) if failed[i] is None]
        batches = {i: trainers[i].batches() for i in live}
        for t in range(max((len(b) for b in batches.values()), default=0)):
            for i in live:  # step t of every run, each on its stream
                if t < len(batches[i]):
                    trainers[i].step(batches[i][t])
        preds = {i: trainers[i].predict_val() for i in live}
        if main is not None:
            for i in live:
                main.wait_stream(trainers[i].stream)
        for i in live:
            try:
                row = trainers[i].close_epoch(preds[i])
            except Diverged as err:
                failed[i] = err
                trainers[i].release()
                continue
            row["pack"] = k
        if on_epoch is not None:
            on_epoch(epoch, max((trainers[i].history[-1]["seconds"] for i in live if failed[i] is None), default=0.0))
    results = [failed[i] if failed[i] is not None else trainers[i].finish() for i in range(k)]
    return_pools(device, cuda_graphs)
    return results
