"""Puts bench/ on sys.path, so that a study run as `python bench/studies/<name>.py` imports the
benchmarks' helpers (`_common`, `grid_breakdown`) as they do: `import _bench` comes first."""

import sys
from pathlib import Path

BENCH = str(Path(__file__).resolve().parents[1])
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)
