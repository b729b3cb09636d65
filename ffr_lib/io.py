"""Atomic writes and the one helper through which every figure and table is saved.

A file is written to a temporary name beside its target and renamed, so a killed process
leaves either the old file or the new one, never half of one. Every figure and table gets a
sidecar `<name>.json` naming what produced it (parameters, config hashes, commit).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

FIGURES = Path("figures")
REPO = Path(__file__).resolve().parents[1]


def repo_relative(path: str | Path) -> str:
    """`path` relative to the repository's root when inside it (`results/quick`, whichever folder
    the caller runs in: a notebook's `../results/quick` is the same store), else absolute."""
    full = Path(path).resolve()
    try:
        return full.relative_to(REPO).as_posix()
    except ValueError:
        return str(full)


def _file_mode() -> int:
    """The mode open() gives a new file under this process's umask (mkstemp's is 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename, so a
    reader never sees half a file; the file gets the usual permissions for a new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


# generated outputs: changes there do not make the code that writes them "dirty" (a figure
# regenerated beside another would otherwise name a dirty tree because of its neighbour)
OUTPUT_PATHS = ("figures", "README.md")


def git_commit(cwd: str | Path | None = None) -> str:
    """The checkout's commit (with '+dirty' when tracked files outside OUTPUT_PATHS have
    changes), or 'unknown'.

    $FFR_COMMIT overrides it: a copy of the tree without .git (a remote GPU job) says which
    commit it was made from.
    """
    if os.environ.get("FFR_COMMIT"):
        return os.environ["FFR_COMMIT"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
             *(f":(exclude){p}" for p in OUTPUT_PATHS)],
            cwd=top, capture_output=True, text=True,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def _sidecar_text(meta: dict, commit: str) -> str:
    return json.dumps({"commit": commit, **meta}, indent=2, sort_keys=True, default=_jsonable) + "\n"


def write_outputs(files: dict[Path, bytes], meta: dict) -> list[Path]:
    """Write an artifact's `files` and its sidecar (beside the first file) atomically, unless
    nothing but the commit would change: then every file is left as it is, so regenerating an
    unchanged figure leaves `git status` clean and its sidecar names the commit that made it.
    A sidecar naming a dirty tree is replaced once a clean tree regenerates the same content."""
    paths = list(files)
    sidecar = paths[0].with_suffix(".json")
    commit = git_commit()
    same = all(p.is_file() and p.read_bytes() == data for p, data in files.items())
    if same and sidecar.is_file():
        try:
            old = json.loads(sidecar.read_text())
        except ValueError:
            old = {}
        old_commit = str(old.pop("commit", ""))
        if _sidecar_text(meta, "") == _sidecar_text(old, "") and not (
                old_commit.endswith("+dirty") and not commit.endswith("+dirty")):
            return paths
    for p, data in files.items():
        atomic_write_bytes(p, data)
    atomic_write_text(sidecar, _sidecar_text(meta, commit))
    return paths


def write_sidecar(path: Path, meta: dict) -> Path:
    return atomic_write_text(path.with_suffix(".json"), _sidecar_text(meta, git_commit()))


def output_folder(folder: str | Path) -> Path:
    """`folder`, or $FFR_FIGURES_DIR when set: `make test` runs the notebooks with it pointing to
    a temporary folder, so checking the notebooks never rewrites the committed figures."""
    return Path(os.environ.get("FFR_FIGURES_DIR") or folder)


def save_table(df: pd.DataFrame, name: str, meta: dict, folder: str | Path = FIGURES) -> Path:
    """Write `df` as `<folder>/<name>.csv` (byte-stable: fixed float format) plus its sidecar."""
    path = output_folder(folder) / f"{name}.csv"
    write_outputs({path: df.to_csv(index=False, float_format="%.6g", lineterminator="\n").encode()}, meta)
    return path


def save_figure(fig: Any, name: str, meta: dict, folder: str | Path = FIGURES, formats=("png", "svg")) -> list[Path]:
    """Write a matplotlib figure as PNG and SVG plus its sidecar; returns the paths. The SVG's
    element ids are salted with `name` (matplotlib draws them at random otherwise), so the same
    figure gives the same bytes."""
    import matplotlib

    files = {}
    for fmt in formats:
        buf = io.BytesIO()
        kwargs = {"dpi": 150} if fmt == "png" else {"metadata": {"Date": None}}
        with matplotlib.rc_context({"svg.hashsalt": name}):
            fig.savefig(buf, format=fmt, bbox_inches="tight", **kwargs)
        files[output_folder(folder) / f"{name}.{fmt}"] = buf.getvalue()
    return write_outputs(files, meta)
