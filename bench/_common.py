"""What every benchmark script shares: the machine it ran on, the JSON it writes, the table it prints.

The scripts in bench/ import this as `from _common import ...` (running `python bench/x.py` puts
bench/ first on sys.path). Results go to bench/results/<name>.json, written atomically, each with
a `machine` block (device, torch, CPU count, GPU name, load, date, command line, commit), so a
number is never quoted without saying where and when it was measured.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a copy without `pip install -e .` (the GPU machine's) still finds ffr_lib
    sys.path.insert(1, str(ROOT))

from ffr_lib.io import atomic_write_text, git_commit  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def default_device() -> str:
    """'cuda' when a GPU is visible, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def machine_info(device: str) -> dict[str, Any]:
    """Where and when a number was measured; `load_average` is the 1/5/15-minute load at the call."""
    import torch

    gpu = None
    if is_cuda(device) and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(torch.device(device))
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {
        "device": str(device),
        "gpu_name": gpu,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": load,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": git_commit(Path(__file__).resolve().parent),
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    return str(obj)


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `payload` as indented JSON, atomically; returns the path."""
    text = json.dumps(payload, indent=2, default=_jsonable) + "\n"
    return atomic_write_text(path, text)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str | tuple[str, str]]) -> str:
    """Print `rows` as an aligned text table and return it.

    `columns` names the keys to show, each either `key` or `(key, header)`; missing values print '-'.
    """
    cols = [(c, c) if isinstance(c, str) else c for c in columns]
    cells = [[header for _, header in cols]] + [[_cell(row.get(key)) for key, _ in cols] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    text = "\n".join(lines)
    print(text)
    return text


# --- timing and memory ---------------------------------------------------------------------------

def synchronize(device: str) -> None:
    """Wait for queued GPU work so a wall-clock time covers it; nothing on CPU."""
    import torch

    if is_cuda(device):
        torch.cuda.synchronize(torch.device(device))


def reset_peak_memory(device: str) -> str:
    """Start a fresh peak-memory window; returns how `peak_memory_bytes` will measure it.

    CUDA: torch.cuda.reset_peak_memory_stats (allocator bytes, this process).
    CPU on Linux: writing 5 to /proc/self/clear_refs resets the peak resident set (VmHWM).
    Elsewhere: resource.getrusage's ru_maxrss, a lifetime high-water mark that cannot be reset.
    DataLoader worker processes are never counted.
    """
    import torch

    if is_cuda(device):
        torch.cuda.reset_peak_memory_stats(torch.device(device))
        return "torch.cuda.max_memory_allocated"
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM (peak RSS of this process, reset before the loop)"
    except OSError:
        return "ru_maxrss (peak RSS of this process since it started)"


def peak_memory_bytes(device: str) -> int:
    """Peak memory since the last `reset_peak_memory` (see there for what is counted)."""
    import torch

    if is_cuda(device):
        return int(torch.cuda.max_memory_allocated(torch.device(device)))
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(kb if sys.platform == "darwin" else kb * 1024)
