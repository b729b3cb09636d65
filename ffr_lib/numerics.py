"""What a run computed in, as one comparable key, so that one store never silently mixes runs
whose numbers differ only because of the machine.

Results depend on more than the config: bf16 autocast or fp32, torch.compile's kernels or the
eager ones, and on a CPU the thread count (oneDNN splits reductions by thread). A record keeps
each of these (`precision`, `eval_precision`, `compiled`, `threads`, `device`); `Numerics` is
their key. A sweep refuses to add runs of one key to a store that holds another
(`check_store`), unless told to (`ffr sweep --allow-mixed-numerics`), and names both. The GPU's
name (`device_name`) is recorded but not part of the key: an H100 and an H200 run the same
kernels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import UsageError


@dataclass(frozen=True, order=True)
class Numerics:
    """The numerics of a run: device type, training and evaluation precision, torch.compile
    backend (None: eager) and, on CPU only, the thread count."""

    device: str  # 'cpu' | 'cuda'
    precision: str  # training: 'bf16-autocast' | 'fp32'
    eval_precision: str  # evaluation: 'fp32' on every CPU, 'bf16-autocast' on CUDA
    compiled: str | None = None
    threads: int | None = None  # CPU only

    def describe(self) -> str:
        parts = [self.device, f"train {self.precision}", f"eval {self.eval_precision}",
                 f"compiled {self.compiled}" if self.compiled else "eager"]
        if self.threads is not None:
            parts.append(f"{self.threads} thread{'s' if self.threads != 1 else ''}")
        return ", ".join(parts)


def of_record(record: Mapping) -> Numerics:
    """The numerics a stored record was computed in. Records written before `eval_precision`
    existed evaluated as they trained (on a CPU with bf16 kernels, in bf16)."""
    device = str(record.get("device", "cpu")).split(":")[0]
    precision = record.get("precision") or ("bf16-autocast" if device == "cuda" else "fp32")
    return Numerics(
        device=device,
        precision=precision,
        eval_precision=record.get("eval_precision") or precision,
        compiled=record.get("compiled"),
        threads=record.get("threads") if device == "cpu" else None,
    )


def expected(device: str, threads: int | None, compile_backend: str | None) -> Numerics:
    """The numerics runs trained now on `device` with `threads` (None: torch's default) get."""
    import torch

    from .training.loop import eval_precision, precision

    dev = torch.device(device)
    return Numerics(
        device=dev.type,
        precision=precision(dev),
        eval_precision=eval_precision(dev),
        compiled=compile_backend,
        threads=(threads or torch.get_num_threads()) if dev.type == "cpu" else None,
    )


class MixedNumerics(UsageError, ValueError):
    """A sweep would add runs computed in other numerics than the store's."""


def check_store(stored: Iterable[Mapping], new: Numerics, folder: str, allow_mixed: bool = False) -> None:
    """Raise MixedNumerics if records `stored` (of the store in `folder`) were computed in other
    numerics than `new`, naming both; nothing when `allow_mixed` or the store is empty."""
    if allow_mixed:
        return
    counts = Counter(of_record(r) for r in stored)
    others = {k: n for k, n in counts.items() if k != new}
    if not others:
        return
    held = "; ".join(f"{n} run(s) in {k.describe()}" for k, n in sorted(others.items()))
    raise MixedNumerics(
        f"{folder} holds {held}; this sweep would train in {new.describe()}. Use another --results "
        "folder, or --allow-mixed-numerics to add them anyway (tables then mix both)"
    )
