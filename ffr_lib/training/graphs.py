"""One training step captured as a CUDA graph and replayed.

A 32 px run of the small ResNet launches hundreds of tiny kernels a step (forward, backward, fused
Adam); on an H100 the launches, not the arithmetic, set its speed. A CUDA graph records the
step's kernels once and replays them with one launch, so the step costs what its kernels cost.
The step is the same computation as the eager one (same kernels, same order); what a graph
needs from it:

- every tensor the step reads or writes keeps its address: the batch's index tensor is copied
  into a static one, optimiser state lives on the device (`torch.optim.Adam(...,
  capturable=True)`), method state is updated in place (GroupDRO's q); gradients are set to
  None inside the step, so the captured backward allocates them from the graph's own pool and
  every replay writes them there (PyTorch's whole-network capture recipe);
- no host synchronisation inside the step (no `.item()`, no data-dependent shapes);
- autocast without its weight cache (`_autocast` on CUDA).

An epoch's smaller last batch has its own shape, the same every epoch: it gets a second graph,
captured after one eager warm-up (it reads and writes the same parameter and gradient tensors,
so the two graphs and eager steps mix freely). Before, it ran eagerly every epoch: hundreds of
kernel launches from Python per run, one run after another at the end of each epoch of a pack,
while the GPU waited. Shapes other than the first (the full batch) run, and are captured,
without cuDNN's autotuning (`no_autotune`): with `cudnn.benchmark` on, every new shape is timed
against every algorithm, about 3 s for the small ResNet's forward and backward, once per set
size in a sweep, for a batch that runs once an epoch. On CPU, or when a capture fails, every
step runs eagerly.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

WARMUP_STEPS = 3  # eager steps (on a side stream) before the capture: lazy init, cuDNN autotuning
LATER_WARMUP_STEPS = 1  # the same for other shapes (no autotuning): lazy init only
MAX_GRAPHS = 2  # the full batch and the epoch's last batch; other shapes run eagerly


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    idx: torch.Tensor  # static input: each call's batch is copied in
    out: torch.Tensor  # static output, overwritten by the next replay


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


def return_pools(device: torch.device, cuda_graphs: bool = True) -> None:
    """Give the memory of finished runs' graph pools back to the driver (torch.cuda.empty_cache),
    between packs, when no stream is capturing.

    A destroyed graph's private pool keeps its free blocks cached, and only emptying the cache
    frees them; the allocator does not empty it while any capture is under way (cudaFree is
    illegal then), so a capture that needs memory cannot take it from them. Seen on an H100
    (session 13, commit 93f4334, where runs already dropped their graphs and gradients; docs/
    performance.md): the card's memory in use climbed pack after pack to its 80 GB, the capture
    out-of-memory error counted 66 GiB of free blocks cached in private pools, and CUDA graph
    capture fell back to eager steps ~12 packs into a stage-2 phase."""
    if cuda_graphs and device.type == "cuda":
        torch.cuda.empty_cache()


class StepGraph:
    """Calls `step(idx)` (idx int64 (..., B) on the device; returns a tensor such as the loss),
    replaying a CUDA graph of it for every batch of a captured shape: the first shape it sees
    (the full batch) after `warmup` eager calls, and one more (the last batch) after
    `later_warmup`; at most `max_graphs` shapes are captured, others always run eagerly.

    The returned tensor is static when replayed: read it (e.g. `total += out`) before the next
    call. `enabled=False` (or a CPU device) runs every step eagerly."""

    def __init__(self, step: Callable[[torch.Tensor], torch.Tensor], device: torch.device, enabled: bool = True,
                 warmup: int = WARMUP_STEPS, later_warmup: int = LATER_WARMUP_STEPS,
                 max_graphs: int = MAX_GRAPHS) -> None:
        self.step = step
        self.enabled = enabled and device.type == "cuda"
        self.warmup, self.later_warmup, self.max_graphs = warmup, later_warmup, max_graphs
        self.calls = 0
        self.replays = 0
        self.captured: dict[torch.Size, _Captured] = {}
        self.seen: dict[torch.Size, int] = {}  # eager calls per shape not (yet) captured
        self.first_shape: torch.Size | None = None

    @property
    def graph(self) -> torch.cuda.CUDAGraph | None:
        """The graph of the first (full-batch) shape, once captured."""
        hit = self.captured.get(self.first_shape)
        return None if hit is None else hit.graph

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if not self.enabled:
            return self.step(idx)
        hit = self.captured.get(idx.shape)
        if hit is not None:
            hit.idx.copy_(idx)
            hit.graph.replay()
            self.replays += 1
            return hit.out
        if self.first_shape is None:
            self.first_shape = idx.shape
        first = idx.shape == self.first_shape
        seen = self.seen[idx.shape] = self.seen.get(idx.shape, 0) + 1
        with contextlib.nullcontext() if first else no_autotune():
            if len(self.captured) >= self.max_graphs:
                return self.step(idx)
            if seen <= (self.warmup if first else self.later_warmup):
                return self._side_stream(idx)
            return self._capture(idx)

    def release(self) -> None:
        """Drop the captured graphs and their static tensors; later calls run eagerly. A graph's
        private memory pool goes back to the allocator only once the graph and every tensor
        allocated from the pool (its static output, and the gradients a captured backward
        wrote) are gone: see StageTrainer.release."""
        self.captured.clear()
        self.enabled = False

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
        static_idx = idx.clone()
        graph = torch.cuda.CUDAGraph()
        capture = torch.cuda.Stream(idx.device)
        capture.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(capture):
                graph.capture_begin()
                try:
                    out = self.step(static_idx)
                finally:
                    graph.capture_end()
        except Exception as err:  # noqa: BLE001 - a step that cannot be captured still trains eagerly
            warnings.warn(f"CUDA graph capture failed ({type(err).__name__}: {err}); training eagerly",
                          RuntimeWarning, stacklevel=3)
            torch.cuda.current_stream().wait_stream(capture)
            if idx.shape == self.first_shape:
                self.enabled = False
                self.captured.clear()
            else:  # keep the full batch's graph; capture no other shape
                self.max_graphs = len(self.captured)
            return self.step(idx)
        torch.cuda.current_stream().wait_stream(capture)
        self.captured[idx.shape] = _Captured(graph, static_idx, out)
        graph.replay()
        self.replays += 1
        return out
