"""The code's structure: ffr_lib's import graph has no cycle (deferred imports counted), and no
module is above the size limit (scripts/import_graph.py prints both)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["import_graph"]


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_ffr_lib_has_no_import_cycle(graph):
    runtime = [e for e in graph.edges() if not e.type_only]
    assert graph.cycles(runtime) == []
    # the two cycles issue #24 found are gone, deferred imports included
    pairs = {(e.source, e.target) for e in runtime}
    assert ("ffr_lib.training.modes", "ffr_lib.training.data_cache") in pairs
    assert not any(t == "ffr_lib.training.modes" for s, t in pairs if s == "ffr_lib.training.data_cache")
    assert not any(s.startswith("ffr_lib.training.") and t.startswith("ffr_lib.sweeps.") for s, t in pairs)


def test_modules_stay_small(graph):
    sizes = graph.sizes()
    assert {name: n for name, n in sizes.items() if n > graph.MAX_LINES} == {}
    assert len(sizes) > 90 and sizes["ffr_lib.training.loop"] > 100  # the walk found the package


def test_a_cycle_hidden_in_a_deferred_import_is_found(graph, tmp_path):
    """a -> b at module level, b -> a inside a function: one cycle; under TYPE_CHECKING: none that runs."""
    root = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    from .a import x\n    return x\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import y\n",
        "d.py": "from .c import z\n",
        "sub/__init__.py": "",
        "sub/e.py": "from ..a import q\nfrom pkg.sub import f\n",
        "sub/f.py": "from .e import g\n",
    })
    edges = graph.edges(root, "pkg")
    by_pair = {(e.source, e.target): e for e in edges}
    assert by_pair[("pkg.b", "pkg.a")].deferred and not by_pair[("pkg.a", "pkg.b")].deferred
    assert by_pair[("pkg.c", "pkg.d")].type_only
    runtime = [e for e in edges if not e.type_only]
    assert graph.cycles(runtime) == [["pkg.a", "pkg.b"], ["pkg.sub.e", "pkg.sub.f"]]
    assert graph.cycles(edges) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.d"], ["pkg.sub.e", "pkg.sub.f"]]
    assert graph.sizes(root, "pkg")["pkg.b"] == 3
