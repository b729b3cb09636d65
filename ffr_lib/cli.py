"""The `ffr` command: one subcommand per job, each a thin map onto ffr_lib functions."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register `fn(args) -> exit code` as subcommand `name`; `arguments(parser)` adds its flags."""

    def add(fn):
        COMMANDS[name] = (help, arguments, fn)
        return fn

    return add


def _world_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", nargs="+", default=["binary", "animals"], help="world layouts")
    p.add_argument("--size", type=int, default=32, help="image side in px (32 or 64)")
    p.add_argument("--seed", type=int, default=0, help="world seed")
    p.add_argument("--out", type=Path, default=Path("figures"), help="output folder")


@command("world", "build the embedded world; write its subgroup table and sample grid", _world_arguments)
def world(args: argparse.Namespace) -> int:
    from .data.world import WorldConfig
    from .reports import world_report

    for layout in args.layout:
        t0 = time.perf_counter()
        paths = world_report(WorldConfig(layout=layout, size=args.size, seed=args.seed), args.out)
        print(f"shapes-{layout}: {', '.join(map(str, paths))} ({time.perf_counter() - t0:.1f} s)")
    return 0



def _reproduce_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="quick", choices=["quick", "paper"], help="experiment profile")
    p.add_argument("--out", type=Path, default=Path("figures"), help="figure folder")


@command("reproduce", "the project's main job: every figure and table of the profile", _reproduce_arguments)
def reproduce(args: argparse.Namespace) -> int:
    return world(argparse.Namespace(layout=["binary", "animals"], size=32, seed=0, out=args.out))



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ffr", description="From Fake to Real: reproducible companion")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return COMMANDS[args.command][2](args)


if __name__ == "__main__":
    sys.exit(main())
