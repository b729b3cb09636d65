"""What every executor's workers share: the progress bar and its notes, pinning a worker process
to its device, and the visible GPUs."""

from __future__ import annotations

import multiprocessing as mp
import os

from tqdm.auto import tqdm

from ..errors import error_cause
from .plan import Plan


def progress_bar(plan: Plan, progress: bool) -> tqdm:
    return tqdm(total=plan.pending, desc="runs", unit="run", disable=not progress, dynamic_ncols=True)


def note(bar: tqdm, outcome: dict) -> None:
    bar.update(1)
    if outcome["status"] != "ok":
        bar.write(f"{outcome['status']}: {outcome['label']} ({outcome['hash']}): {error_cause(outcome['error'])}")


def pin(devices: mp.Queue, threads: int | None) -> None:
    """Worker initializer: take one device for the worker's life."""
    device = devices.get()
    os.environ["FFR_WORKER_DEVICE"] = device
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(device)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def visible_devices() -> list[str]:
    import torch

    return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
