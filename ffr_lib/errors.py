"""How errors reach a user: a UsageError is a mistake in what they typed (one line, exit code 2,
no traceback), and `error_cause` keeps what a failed run's traceback says went wrong.

Imports nothing heavy: the CLI raises UsageError before torch or pandas are loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class UsageError(Exception):
    """A user's mistake (an unknown name, a missing data folder, a bad value): the message is one
    line saying what was wrong and what is expected; `ffr` prints it and exits with 2."""

    def __str__(self) -> str:
        return " ".join(str(part) for part in self.args).replace("\n", " ")


def error_cause(text: object) -> str:
    """The exception line(s) of a formatted traceback, whole and on one line ('ValueError: ...');
    text that is not a traceback (a diverged run's note) comes back stripped. For chained
    exceptions it is the last one, the one that ended the run."""
    lines = str(text).strip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith('  File "')]
    if not frames:
        return " ".join(line.strip() for line in lines)
    i = frames[-1] + 1
    while i < len(lines) and lines[i].startswith("    "):  # the frame's source line and its carets
        i += 1
    return " ".join(line.strip() for line in lines[i:] if line.strip())


def errors_by_cause(outcomes: Iterable[Mapping]) -> list[tuple[str, list[Mapping]]]:
    """Failed runs' outcomes ({'label', 'hash', 'error'}) grouped by error_cause, most frequent first."""
    groups: dict[str, list[Mapping]] = {}
    for outcome in outcomes:
        groups.setdefault(error_cause(outcome.get("error") or ""), []).append(outcome)
    return sorted(groups.items(), key=lambda item: -len(item[1]))
