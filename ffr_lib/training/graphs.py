"""One training step captured as a CUDA graph and replayed.

A 32 px run of the small ResNet launches hundreds of tiny kernels a step (forward, backward, fused
Adam); on an H100 the launches, not the arithmetic, set its speed. A CUDA graph records the
step's kernels once and replays them with one launch, so the step costs what its kernels cost.
The step is the same computation as the eager one (same kernels, same order); what a graph
needs from it:

- every tensor the step reads or writes keeps its address: the batch's index tensor is copied
  into a static one, gradients are zeroed in place (not set to None), optimiser state lives on
  the device (`torch.optim.Adam(..., capturable=True)`), method state is updated in place
  (GroupDRO's q);
- no host synchronisation inside the step (no `.item()`, no data-dependent shapes);
- autocast without its weight cache (`_autocast` on CUDA).

Batches of another shape (an epoch's smaller last batch) run eagerly: they read and write the
same parameter and gradient tensors, so eager and replayed steps mix freely. They run without
cuDNN's autotuning (`no_autotune`): with `cudnn.benchmark` on, every new shape is timed against
every algorithm, about 3 s for the small ResNet's forward and backward, once per set size in a
sweep, for a batch that runs once an epoch. On CPU, or when the capture fails, every step runs
eagerly.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import torch

WARMUP_STEPS = 3  # eager steps (on a side stream) before the capture: lazy init, cuDNN autotuning


@contextlib.contextmanager
def no_autotune() -> Iterator[None]:
    """cuDNN picks its kernels by heuristics (no timing of every algorithm) inside this block:
    for shapes met once or twice (a last batch, evaluation chunks), autotuning costs more than
    it saves."""
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = old


class StepGraph:
    """Calls `step(idx)` (idx int64 (..., B) on the device; returns a tensor such as the loss),
    replaying a CUDA graph of it for every batch of the captured shape.

    The returned tensor is static when replayed: read it (e.g. `total += out`) before the next
    call. `enabled=False` (or a CPU device) runs every step eagerly."""

    def __init__(self, step: Callable[[torch.Tensor], torch.Tensor], device: torch.device, enabled: bool = True,
                 warmup: int = WARMUP_STEPS) -> None:
        self.step = step
        self.enabled = enabled and device.type == "cuda"
        self.warmup = warmup
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_idx: torch.Tensor | None = None
        self.static_out: torch.Tensor | None = None
        self.replays = 0

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if not self.enabled:
            return self.step(idx)
        if self.graph is not None:
            if idx.shape != self.static_idx.shape:
                with no_autotune():
                    return self.step(idx)  # e.g. the epoch's last, smaller batch
            self.static_idx.copy_(idx)
            self.graph.replay()
            self.replays += 1
            return self.static_out
        if self.calls <= self.warmup:
            return self._side_stream(idx)
        return self._capture(idx)

    def _side_stream(self, idx: torch.Tensor) -> torch.Tensor:
        """An eager step on a side stream, as PyTorch's CUDA-graph recipe warms up."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self.step(idx)
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _capture(self, idx: torch.Tensor) -> torch.Tensor:
        """Record the step on `idx`'s shape, then replay it once (capturing does not run it).
        Captured on a side stream with the graph's own memory pool, as torch.cuda.graph does,
        but without its device-wide synchronisation and cache flush: in a pack the other runs'
        streams keep working while one run captures."""
        self.static_idx = idx.clone()
        graph = torch.cuda.CUDAGraph()
        capture = torch.cuda.Stream(idx.device)
        capture.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(capture):
                graph.capture_begin()
                try:
                    self.static_out = self.step(self.static_idx)
                finally:
                    graph.capture_end()
        except Exception as err:  # noqa: BLE001 - a step that cannot be captured still trains eagerly
            warnings.warn(f"CUDA graph capture failed ({type(err).__name__}: {err}); training eagerly",
                          RuntimeWarning, stacklevel=3)
            torch.cuda.current_stream().wait_stream(capture)
            self.enabled = False
            self.static_idx = self.static_out = None
            return self.step(idx)
        torch.cuda.current_stream().wait_stream(capture)
        self.graph = graph
        self.graph.replay()
        self.replays += 1
        return self.static_out
