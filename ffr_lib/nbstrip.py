"""A notebook's stored form: no outputs except nbval's reference outputs, no run metadata.

Notebooks are stored without outputs, except the text outputs of cells marked
`# NBVAL_CHECK_OUTPUT` (nbval's references, numbered 1..n). `stored_form` gives that form of
any notebook dict; `ffr notebooks --store-references` writes it from an executed copy, and git
applies it as a clean filter (`make setup` runs `git config filter.ffr-nbstrip.clean
"python3 -m ffr_lib.nbstrip"`, `.gitattributes` names `notebooks/*.ipynb`), so outputs never
reach a commit; and JupyterLab started from the venv saves notebooks in that form
(`pre_save_hook`), so a notebook run and saved there (outputs, execution counts, images, widget
state, kernel version) shows no change in `git status` unless its sources changed.

Standard library only: git runs the filter with any `python3`, with or without the venv.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
CELL_METADATA = ("tags",)  # cell metadata kept; JupyterLab's (execution, scrolled, collapsed ...) go
# what an IPython kernel reports, less its Python version: one value, whichever kernel ran last
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                 "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                 "pygments_lexer": "ipython3"}


def source_of(cell: Mapping) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def is_checked(cell: Mapping) -> bool:
    return cell.get("cell_type") == "code" and CHECK_MARK in source_of(cell)


def text_outputs(outputs: list) -> list:
    """The text outputs nbval compares: streams, and execute results without images or
    metadata (their other outputs: displays, errors, images, go)."""
    kept = []
    for o in outputs:
        if o.get("output_type") == "stream":
            kept.append({"name": o.get("name", "stdout"), "output_type": "stream", "text": o.get("text", "")})
        elif o.get("output_type") == "execute_result":
            data = {k: v for k, v in o.get("data", {}).items() if k == "text/plain"}
            if data:
                kept.append({"data": data, "execution_count": None, "metadata": {}, "output_type": "execute_result"})
    return kept


def stored_form(nb: dict, references: Callable[[dict], list | None] | None = None) -> dict:
    """`nb` in its stored form. `references(cell)` gives a checked cell's reference outputs
    (None: none); by default the cell's own outputs."""
    references = references or (lambda cell: cell.get("outputs"))
    count = 0
    for cell in nb.get("cells", []):
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k in CELL_METADATA}
        if cell.get("cell_type") != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        outs = text_outputs(references(cell) or []) if is_checked(cell) else []
        if outs:
            count += 1
            for o in outs:
                if o["output_type"] == "execute_result":
                    o["execution_count"] = count
        cell["outputs"], cell["execution_count"] = outs, (count if outs else None)
    nb["metadata"] = {"kernelspec": dict(KERNELSPEC), "language_info": json.loads(json.dumps(LANGUAGE_INFO))}
    return nb


SPLIT_MIMES = ("application/javascript", "image/svg+xml")  # non-text/* values nbformat stores as lines


def _lines(value: object) -> object:
    return value.splitlines(True) if isinstance(value, str) else value


def dumps(nb: dict) -> str:
    """JSON as nbformat writes it: multi-line strings as lists of lines, indent 1, sorted keys,
    a final newline (so a file nbformat or JupyterLab wrote compares byte for byte)."""
    for cell in nb.get("cells", []):
        cell["source"] = _lines(cell.get("source", ""))
        for o in cell.get("outputs", []):
            if "text" in o:
                o["text"] = _lines(o["text"])
            for key, value in o.get("data", {}).items():
                if key.startswith("text/") or key in SPLIT_MIMES:
                    o["data"][key] = _lines(value)
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def pre_save_hook(model: dict, path: str = "", contents_manager: object = None, **kwargs: object) -> None:
    """jupyter_server's ContentsManager.pre_save_hook: a notebook is saved in its stored form, so a
    run saved in JupyterLab leaves the file as committed (`git status` clean; a clean filter alone
    leaves git reporting a changed size as a change). Outputs stay on screen while the notebook is
    open; executed copies with every output come from `ffr notebooks`. `make setup` installs it
    for the venv's Jupyter (`.venv/etc/jupyter/jupyter_server_config.json`)."""
    if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
        stored_form(model["content"])


def main() -> int:
    """Clean filter: a notebook on stdin, its stored form on stdout (unparsable input unchanged)."""
    text = sys.stdin.read()
    try:
        nb = json.loads(text)
    except ValueError:
        sys.stdout.write(text)
        return 0
    sys.stdout.write(dumps(stored_form(nb)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
