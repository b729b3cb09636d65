"""ffr_lib's import graph: every import between its modules, at module level and inside functions
alike (so a deferred import cannot hide a cycle), its cycles, and the size of each module.
Imports under `if TYPE_CHECKING:` never run; cycles they would close are listed apart.

    python scripts/import_graph.py            # cycles (none expected) and the modules by size
    python scripts/import_graph.py --edges    # and every edge, deferred ones marked

tests/test_structure.py asserts what this prints: no cycle, and no module above MAX_LINES.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "ffr_lib"
MAX_LINES = 400  # STYLE.md: a few hundred lines a module


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, e.g. ffr_lib.sweeps.plan
    target: str  # imported module of ffr_lib
    line: int
    deferred: bool  # inside a function (runs at call time, not import time)
    type_only: bool  # under `if TYPE_CHECKING:` (never runs)


def modules(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package (a package is its __init__)."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest prefix of dotted `name` that is a module of the package."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def _walk(node: ast.AST, deferred: bool = False, type_only: bool = False) -> Iterator[tuple[ast.AST, bool, bool]]:
    """Every import node below `node`, with whether it sits in a function or a TYPE_CHECKING block."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, deferred, type_only
            continue
        inner_deferred = deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        inner_type = type_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
        yield from _walk(child, inner_deferred, inner_type)


def edges(root: Path = ROOT, package: str = PACKAGE) -> list[Edge]:
    """Every import from one module of the package to another."""
    known = modules(root, package)
    out = []
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, deferred, type_only in _walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                # `from X import y`: y is a submodule when X.y is one, else a name in X
                targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
            for t in targets:
                resolved = _resolve(t, known)
                if resolved is not None and resolved != name:
                    out.append(Edge(name, resolved, node.lineno, deferred, type_only))
    return out


def cycles(graph_edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components of more than one module (each holds a cycle), sorted;
    Tarjan's algorithm, iterative."""
    graph: dict[str, set[str]] = {}
    for e in graph_edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def sizes(root: Path = ROOT, package: str = PACKAGE) -> dict[str, int]:
    """Lines of each module, largest first."""
    counted = {name: len(path.read_text().splitlines()) for name, path in modules(root, package).items()}
    return dict(sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", action="store_true", help="print every edge too")
    args = parser.parse_args(argv)
    graph_edges = edges()
    if args.edges:
        for e in sorted(graph_edges, key=lambda e: (e.source, e.target, e.line)):
            flag = " (TYPE_CHECKING)" if e.type_only else " (deferred)" if e.deferred else ""
            print(f"{e.source} -> {e.target}  line {e.line}{flag}")
    runtime = [e for e in graph_edges if not e.type_only]
    found = cycles(runtime)
    typed = [c for c in cycles(graph_edges) if c not in found]
    deferred = sum(e.deferred for e in runtime)
    print(f"{len(modules())} modules, {len(runtime)} imports between them ({deferred} deferred, counted too; "
          f"{len(graph_edges) - len(runtime)} under TYPE_CHECKING); {len(found)} cycle(s)")
    for label, components in (("cycle", found), ("cycle through TYPE_CHECKING imports only", typed)):
        for component in components:
            print(f"{label}: " + ", ".join(component))
            inner = {(e.source, e.target, e.line, e.deferred, e.type_only) for e in graph_edges
                     if e.source in component and e.target in component}
            for source, target, line, is_deferred, type_only in sorted(inner):
                flag = ", TYPE_CHECKING" if type_only else ", deferred" if is_deferred else ""
                print(f"  {source} -> {target} (line {line}{flag})")
    lines = sizes()
    print(f"module sizes (lines; limit {MAX_LINES}):")
    for name, n in lines.items():
        print(f"  {n:5d}  {name}{'  OVER' if n > MAX_LINES else ''}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
