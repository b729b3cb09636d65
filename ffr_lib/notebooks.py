"""Run the numbered notebooks headless with papermill, under a profile of parameters.

Notebooks are `notebooks/NN_name.ipynb`. A profile is a YAML file `notebooks/profiles/<name>.yaml`
mapping a notebook's file stem to the parameters it gets; the key "*" gives parameters to every
notebook (each must declare them). `-f params.yaml` takes the same format, and may also hold plain
`name: value` pairs at top level, which behave like `-p name value`. Later sources win:
notebook defaults < profile "*" < profile[stem] < file "*" and plain pairs < file[stem] < -p.

Parameters named in a notebook's section (or in "*") must be declared in that notebook's
`parameters` cell; a `-p` (or plain) parameter goes to every selected notebook that declares it,
and is an error when none does. papermill is never left to inject a name the notebook lacks.
Every value must fit the declaration's type hint and the values its comment allows
(ffr_lib.notebook_parameters), checked before any notebook starts: a wrong one is a
ParameterError (a UsageError: one line naming the parameter, `ffr` exits with 2).

Each notebook runs with its own folder as working directory (as in JupyterLab, and as nbval runs
it), so a relative path like `figures_dir = "../figures"` means the same everywhere. Executed
copies go to `outputs/notebooks/<profile>/`, never over the sources.

Sources are stored without outputs, except the text outputs of cells marked
`# NBVAL_CHECK_OUTPUT`: those are nbval's reference values (`store_references` refreshes them).
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from . import nbstrip
from .errors import UsageError
from .notebook_parameters import HintError, Parameter, read_parameters

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNELSPEC = nbstrip.KERNELSPEC
CHECK_MARK = nbstrip.CHECK_MARK
_STEM = re.compile(r"^\d\d_\w+$")


class NotebookError(RuntimeError):
    """A notebook failed, or its parameters are wrong; the message names the notebook."""


class ParameterError(NotebookError, UsageError):
    """The user's part is wrong (a profile, a notebook name, a parameter or its value): one line."""


@dataclass(frozen=True)
class NotebookRun:
    """One planned papermill execution."""

    source: Path  # the notebook as stored
    output: Path  # where the executed copy goes
    parameters: dict[str, Any] = field(default_factory=dict)  # injected after the parameters cell


def discover(source: str | Path = NOTEBOOKS) -> list[Path]:
    """The numbered notebooks `NN_name.ipynb` of a folder, in order."""
    return sorted(p for p in Path(source).glob("*.ipynb") if _STEM.match(p.stem))


def select(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """The notebooks named by `only` (number 'NN' or full stem); all when `only` is empty."""
    if not only:
        return list(notebooks)
    chosen = []
    for key in only:
        hits = [p for p in notebooks if p.stem == key or p.stem.split("_", 1)[0] == key.zfill(2)]
        if not hits:
            raise ParameterError(f"--only {key}: no such notebook; known: {', '.join(p.stem for p in notebooks)}")
        chosen += [p for p in hits if p not in chosen]
    return sorted(chosen)


def parse_value(text: str, name: str = "") -> Any:
    """A `-p` value as a YAML literal: '3' -> 3, '[0.9, 0.99]' -> list, 'true' -> True, 'abc' -> 'abc'.
    '1e-3' is a float too (YAML 1.1 alone would keep it a string)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise ParameterError(f"-p {name}: cannot parse {text!r} as a YAML value: {problem}") from exc
    if isinstance(value, str):
        try:
            return float(value) if value.strip().lower() not in ("nan", "inf", "-inf", "infinity") else value
        except ValueError:
            return value
    return value


def read_parameter_file(path: str | Path) -> tuple[dict[str, dict], dict[str, Any]]:
    """(sections, plain) of a profile or `-f` file: sections maps a notebook stem or '*' to its
    parameters; plain holds top-level `name: value` pairs."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ParameterError(f"{path}: cannot read parameters: {exc}") from exc
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: expected a mapping of notebook -> parameters, got {type(data).__name__}")
    sections, plain = {}, {}
    for key, value in data.items():
        if key == "*" or _STEM.match(str(key)):
            if not isinstance(value, dict | None):
                raise ParameterError(f"{path}: section {key!r} must be a mapping of parameters")
            sections[str(key)] = dict(value or {})
        else:
            plain[str(key)] = value
    return sections, plain


def declared_parameters(notebook: Path) -> dict[str, Parameter]:
    """name -> Parameter (hint, default, comment, allowed values) from the notebook's `parameters` cell."""
    try:
        return read_parameters(notebook)
    except HintError as exc:
        raise NotebookError(str(exc)) from None


def check_value(notebook: Path, parameter: Parameter, value: Any, where: str) -> None:
    """A ParameterError naming where `value` came from and the parameter, unless the value fits."""
    problem = parameter.problem(value)
    if problem:
        raise ParameterError(f"{where}: {notebook.stem} parameter {parameter.name} is {parameter.expected}; "
                             f"{problem}")


def plan(
    profile: str = "quick",
    only: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    params_file: str | Path | None = None,
    out: str | Path | None = None,
    source: str | Path = NOTEBOOKS,
) -> list[NotebookRun]:
    """Resolve and check every notebook's parameters before anything runs."""
    source = Path(source)
    notebooks = discover(source)
    if not notebooks:
        raise NotebookError(f"no notebooks NN_name.ipynb in {source}")
    profile_path = source / "profiles" / f"{profile}.yaml"
    if not profile_path.exists():
        known = sorted(p.stem for p in (source / "profiles").glob("*.yaml"))
        raise ParameterError(f"--profile: unknown notebook profile {profile!r} (no {profile_path}); "
                             f"known: {', '.join(known) or 'none'}")
    prof_sections, prof_plain = read_parameter_file(profile_path)
    if prof_plain:
        raise ParameterError(f"{profile_path}: {', '.join(prof_plain)} is not a notebook; "
                             f"known: {', '.join(p.stem for p in notebooks)} (or '*' for all)")
    file_sections, file_plain = read_parameter_file(params_file) if params_file else ({}, {})
    stems = {p.stem for p in notebooks}
    for where, sections in ((profile_path, prof_sections), (params_file, file_sections)):
        for key in sections:
            if key != "*" and key not in stems:
                raise ParameterError(f"{where}: no notebook {key!r}; known: {', '.join(sorted(stems))}")
    given = dict(parameters or {})
    out = Path(out) if out is not None else Path("outputs") / "notebooks" / profile
    if out.resolve() == source.resolve():
        raise ParameterError(f"--out {out} is the notebooks' own folder; executed copies must not overwrite sources")
    chosen = select(notebooks, only)
    declared = {nb: declared_parameters(nb) for nb in chosen}
    for where, loose in ((params_file, file_plain), ("-p", given)):
        for name in loose:
            if not any(name in d for d in declared.values()):
                raise ParameterError(f"{f'-p {name}' if where == '-p' else where}: unknown parameter {name!r}: no selected notebook declares it "
                                     f"({'; '.join(f'{nb.stem}: {sorted(d)}' for nb, d in declared.items())})")
    runs = []
    for nb in chosen:
        mine = declared[nb]
        # later layers win: profile "*" < profile[stem] < file "*" and plain pairs < file[stem] < -p
        layers = [(str(profile_path), prof_sections.get("*", {}), True),
                  (str(profile_path), prof_sections.get(nb.stem, {}), True),
                  (str(params_file), file_sections.get("*", {}), True),
                  (str(params_file), {k: v for k, v in file_plain.items() if k in mine}, False),
                  (str(params_file), file_sections.get(nb.stem, {}), True),
                  ("-p", {k: v for k, v in given.items() if k in mine}, False)]
        params: dict[str, Any] = {}
        for where, section, strict in layers:
            unknown = sorted(set(section) - set(mine))
            if strict and unknown:
                raise ParameterError(f"{where}: {nb.name} has no parameter {', '.join(map(repr, unknown))}; "
                                     f"it declares {', '.join(mine) or 'none'}")
            for name, value in section.items():
                check_value(nb, mine[name], value, f"-p {name}" if where == "-p" else where)
            params.update(section)
        runs.append(NotebookRun(nb, out / nb.name, params))
    return runs


def _describe_failure(run: NotebookRun, exc: Exception) -> str:
    """'<notebook>: cell N (`first line`) raised Name: value' with N counted from 1 in the source."""
    import nbformat

    source = getattr(exc, "source", "") or ""
    cells = nbformat.read(run.source, as_version=4).cells
    number = next((i + 1 for i, c in enumerate(cells) if c.source.strip() == source.strip()), None)
    first = next((ln for ln in source.splitlines() if ln.strip() and not ln.startswith("#")), source[:60])
    where = f"cell {number}" if number else f"cell index {getattr(exc, 'cell_index', '?')} of the executed copy"
    return (f"{run.source.name}: {where} (`{first.strip()[:80]}`) raised {exc.ename}: {exc.evalue}; "
            f"executed copy with the traceback: {run.output}")


@functools.cache
def quiet_shutdown_kernel_manager() -> type:
    """jupyter_client's AsyncKernelManager, except that it does not interrupt a kernel it is shutting
    down: it sends SIGINT before every shutdown, and ipykernel answers a SIGINT that arrives while
    it handles a message with a stray 'KeyboardInterrupt caught in kernel' line on the terminal.
    papermill only shuts a kernel down after its last cell, so there is nothing to interrupt."""
    from jupyter_client import AsyncKernelManager

    class QuietShutdownKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return QuietShutdownKernelManager


def execute(runs: Sequence[NotebookRun], stream: TextIO = sys.stdout) -> list[Path]:
    """Run each notebook in order with papermill, one progress line each; stop at the first failure."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    done = []
    for i, run in enumerate(runs, 1):
        shown = ", ".join(f"{k}={v!r}" for k, v in run.parameters.items())
        stream.write(f"[{i}/{len(runs)}] {run.source.stem}" + (f" ({shown})" if shown else "") + " ... ")
        stream.flush()
        run.output.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(str(run.source), str(run.output), parameters=dict(run.parameters),
                                       cwd=str(run.source.parent), progress_bar=False,
                                       kernel_manager_class=quiet_shutdown_kernel_manager(),
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])  # no start-up chatter
        except PapermillExecutionError as exc:
            stream.write("FAILED\n")
            raise NotebookError(_describe_failure(run, exc)) from None
        except Exception as exc:
            stream.write("FAILED\n")
            raise NotebookError(f"{run.source.name}: {type(exc).__name__}: {exc}") from exc
        stream.write(f"ok ({time.perf_counter() - t0:.1f} s) -> {run.output}\n")
        stream.flush()
        done.append(run.output)
    return done


def run_notebooks(
    profile: str = "quick",
    only: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    params_file: str | Path | None = None,
    out: str | Path | None = None,
    source: str | Path = NOTEBOOKS,
    stream: TextIO = sys.stdout,
) -> list[Path]:
    """`ffr notebooks`: plan (all parameters checked first), then execute; returns the executed copies."""
    return execute(plan(profile, only, parameters, params_file, out, source), stream)


def _is_checked(cell) -> bool:
    return nbstrip.is_checked(cell)


def store_references(source: str | Path, executed: str | Path | None = None) -> Path:
    """Rewrite a source notebook in its stored form (ffr_lib.nbstrip), with the reference outputs
    of cells marked `# NBVAL_CHECK_OUTPUT` taken from `executed` (a run with the notebook's own
    defaults): nbval compares those and skips cells never run."""
    import nbformat

    from .io import atomic_write_text

    source = Path(source)
    nb = json.loads(source.read_text())
    ran = {}
    if executed is not None:
        ex = json.loads(Path(executed).read_text())
        ran = {nbstrip.source_of(c): c.get("outputs", []) for c in ex["cells"] if nbstrip.is_checked(c)}
    nb = nbstrip.stored_form(nb, lambda cell: ran.get(nbstrip.source_of(cell)))
    nbformat.validate(nbformat.from_dict(nb))
    atomic_write_text(source, nbstrip.dumps(nb))
    return source


def check_stored(path: str | Path) -> list[str]:
    """What is wrong with a stored notebook (empty when nothing): kernelspec, language, the
    `parameters` cell first, and outputs only on checked cells (text only, with a count)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    problems = []
    if nb.metadata.get("kernelspec") != KERNELSPEC:
        problems.append(f"kernelspec is {nb.metadata.get('kernelspec')}, expected {KERNELSPEC}")
    if nb.metadata.get("language_info", {}).get("name") != "python":
        problems.append("language_info.name is not 'python'")
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or "parameters" not in code[0].metadata.get("tags", []):
        problems.append("the first code cell is not tagged 'parameters'")
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        if _is_checked(cell):
            if cell.execution_count is None or not cell.outputs:
                problems.append(f"cell {i} is marked {CHECK_MARK} but has no stored reference output")
            if any(o.output_type not in ("stream", "execute_result") for o in cell.outputs):
                problems.append(f"cell {i} stores non-text outputs")
        elif cell.outputs or cell.execution_count is not None:
            problems.append(f"cell {i} stores outputs (only {CHECK_MARK} cells may)")
    return problems
