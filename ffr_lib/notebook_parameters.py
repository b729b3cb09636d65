"""A notebook's parameters as its `parameters` cell declares them, and the check of a value.

The cell (the first code cell, tagged `parameters`) holds one `name: hint = literal  # comment`
line per parameter. The hint is the type (int, float, bool, str, list, dict, tuple, Any, None,
`X | Y`, `list[X]`, `dict[K, V]`, `tuple[X, ...]`, `Optional[X]`); the comment may state the
allowed values:
- choices: a comment that starts `a | b | c` (`# quick | paper: ...`) for a str (or list[str] items);
- a range: `in [lo, hi]`, `in [lo, hi)`, `in (lo, hi]`, `in (lo, hi)`, `>= lo`, `> lo`, `<= hi`,
  `< hi` for a number (or the items of a list of numbers).
A value (a YAML literal from `-p`, a profile or `-f` file) fits when it has the hint's type (an
int is a float too; a bool is never an int or a float; lists and dicts item by item) and the
stated choices and range. Read with ast and tokenize: no kernel, no papermill.
"""

from __future__ import annotations

import ast
import io
import json
import math
import operator
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_INTERVAL = re.compile(rf"\bin\s*([\[(])\s*({_NUMBER})\s*,\s*({_NUMBER})\s*([\])])")
_BOUND = re.compile(rf"(?<![<>=!\-])(>=|<=|>|<)\s*({_NUMBER})(?![\w.])")
_CHOICES = re.compile(r"^\s*([\w.+-]+(?:\s*\|\s*[\w.+-]+)+)\s*(?=:|\(|,|;|$)")
_WORDS = re.compile(rf"\bat (least|most)\s+({_NUMBER})(?![\w.])")  # `at least 1`: no '=', which papermill
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_SIMPLE = {"int", "float", "bool", "str", "list", "dict", "tuple", "Any", "object", "None"}
# a hint as nested tuples: ("int",), ("list", item), ("dict", key, value), ("tuple", item), ("union", a, b, ...)
Hint = tuple


class HintError(ValueError):
    """A parameters cell that cannot be read: a hint this module cannot check, a default that is not a literal."""


def _parse_hint(node: ast.expr | None) -> Hint:
    if node is None:
        return ("Any",)
    if isinstance(node, ast.Constant) and node.value is None:
        return ("None",)
    if isinstance(node, ast.Name) and node.id in _SIMPLE:
        return (node.id,)
    if isinstance(node, ast.Attribute) and node.attr == "Any":  # typing.Any
        return ("Any",)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return ("union", _parse_hint(node.left), _parse_hint(node.right))
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        kind = node.value.id
        if kind == "list" and len(args) == 1:
            return ("list", _parse_hint(args[0]))
        if kind == "dict" and len(args) == 2:
            return ("dict", _parse_hint(args[0]), _parse_hint(args[1]))
        if kind == "tuple" and len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
            return ("tuple", _parse_hint(args[0]))
        if kind == "Optional" and len(args) == 1:
            return ("union", _parse_hint(args[0]), ("None",))
    raise HintError(f"type hint `{ast.unparse(node)}` cannot be checked (use int, float, bool, str, list[X], "
                    "dict[K, V], X | None)")


def hint_text(hint: Hint) -> str:
    kind = hint[0]
    if kind == "union":
        return " | ".join(hint_text(h) for h in hint[1:])
    if len(hint) == 1:
        return kind
    if kind == "list":
        return f"list[{hint_text(hint[1])}]"
    if kind == "tuple":
        return f"tuple[{hint_text(hint[1])}, ...]"
    if kind == "dict":
        return f"dict[{hint_text(hint[1])}, {hint_text(hint[2])}]"
    return kind


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _type_problem(hint: Hint, value: Any) -> str | None:
    """Why `value` does not have type `hint` ("got 'abc' (str)", "item 1: got 'a' (str)"), or None."""
    kind = hint[0]
    if kind in ("Any", "object"):
        return None
    if kind == "union":
        problems = [_type_problem(h, value) for h in hint[1:]]
        return None if None in problems else f"got {value!r} ({_type_name(value)})"
    fits = {
        "None": value is None,
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "list": isinstance(value, list),
        "tuple": isinstance(value, list | tuple),
        "dict": isinstance(value, dict),
    }[kind]
    if not fits:
        return f"got {value!r} ({_type_name(value)})"
    if kind in ("list", "tuple") and len(hint) > 1:
        for i, item in enumerate(value):
            problem = _type_problem(hint[1], item)
            if problem:
                return f"item {i}: {problem}"
    if kind == "dict" and len(hint) > 1:
        for key, item in value.items():
            problem = _type_problem(hint[1], key) or _type_problem(hint[2], item)
            if problem:
                return f"entry {key!r}: {problem}"
    return None


@dataclass(frozen=True)
class Parameter:
    """One declared parameter: its hint, literal default, comment, and the values the comment allows."""

    name: str
    hint: Hint
    default: Any
    help: str
    choices: tuple[str, ...] = ()  # allowed strings (from a leading 'a | b | c' in the comment)
    bounds: tuple[tuple[str, float], ...] = ()  # (operator, number) pairs every number must satisfy

    @property
    def expected(self) -> str:
        """The hint and the allowed values, as a reader would write them."""
        extra = [" | ".join(self.choices)] if self.choices else []
        extra += [" and ".join(f"{op} {num:g}" for op, num in self.bounds)] if self.bounds else []
        return hint_text(self.hint) + (f" ({'; '.join(extra)})" if extra else "")

    def problem(self, value: Any) -> str | None:
        """Why `value` cannot be this parameter (one phrase), or None when it can."""
        mismatch = _type_problem(self.hint, value)
        if mismatch:
            return mismatch
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            where = f"item {item!r}" if item is not value else f"got {item!r}, which"
            if self.choices and isinstance(item, str) and item not in self.choices:
                return f"{where} is not one of them"
            if self.bounds and isinstance(item, int | float) and not isinstance(item, bool):
                if isinstance(item, float) and math.isnan(item):
                    return f"{where} is not a number"
                broken = [f"{op} {num:g}" for op, num in self.bounds if not _OPS[op](item, num)]
                if broken:
                    return f"{where} is not {' and '.join(broken)}"
        return None


def parse_comment(comment: str) -> tuple[tuple[str, ...], tuple[tuple[str, float], ...]]:
    """(choices, bounds) a parameter's comment states: `quick | paper: ...` -> ('quick', 'paper');
    `... in [0.5, 1)` -> (('>=', 0.5), ('<', 1.0)); `(>= 1)` or `at least 1` -> (('>=', 1.0),).
    Notebooks write `at least` / `at most`: papermill cannot parse a parameter line with a second
    '=' (it warns and leaves the parameter out of `--help-notebook`)."""
    choices = ()
    match = _CHOICES.match(comment)
    if match:
        choices = tuple(part.strip() for part in match.group(1).split("|"))
    bounds = []
    for lo_bracket, lo, hi, hi_bracket in _INTERVAL.findall(comment):
        bounds += [(">=" if lo_bracket == "[" else ">", float(lo)), ("<=" if hi_bracket == "]" else "<", float(hi))]
    rest = _INTERVAL.sub("", comment)
    bounds += [(op, float(num)) for op, num in _BOUND.findall(rest)]
    bounds += [(">=" if word == "least" else "<=", float(num)) for word, num in _WORDS.findall(rest)]
    return choices, tuple(bounds)


def parameters_source(notebook: str | Path) -> str:
    """The source of the notebook's parameters cell ('' when its first code cell is not tagged `parameters`)."""
    nb = json.loads(Path(notebook).read_text())
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if not code or "parameters" not in code[0].get("metadata", {}).get("tags", []):
        return ""
    source = code[0].get("source", "")
    return "".join(source) if isinstance(source, list) else source


def read_parameters(notebook: str | Path) -> dict[str, Parameter]:
    """name -> Parameter for every assignment of the notebook's parameters cell, in order."""
    source = parameters_source(notebook)
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, hint_node = node.target.id, node.annotation
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, hint_node = node.targets[0].id, None
        else:
            continue
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            raise HintError(f"{Path(notebook).name}: parameter {name}: default `{ast.unparse(node.value)}` is not "
                            "a literal") from None
        try:
            hint = _parse_hint(hint_node)
        except HintError as exc:
            raise HintError(f"{Path(notebook).name}: parameter {name}: {exc}") from None
        comment = comments.get(node.end_lineno, "")
        choices, bounds = parse_comment(comment)
        out[name] = Parameter(name, hint, default, comment, choices, bounds)
    return out
