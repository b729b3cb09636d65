"""Shared test fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Torch on one CPU thread for the test (fixed numbers, no oversubscription), restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def bench_script(monkeypatch):
    """bench_script(name): a bench/ or bench/studies/ script imported as a module (both on
    sys.path, as when run as `python bench/<name>.py`); the bench modules are forgotten after the
    test."""
    import importlib
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "bench"
    monkeypatch.syspath_prepend(str(bench))
    monkeypatch.syspath_prepend(str(bench / "studies"))
    before = set(sys.modules)
    yield importlib.import_module
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", "") and "/bench/" in sys.modules[name].__file__:
            sys.modules.pop(name, None)
