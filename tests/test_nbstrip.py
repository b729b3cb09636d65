"""Notebooks stay clean in git: the stored form keeps nbval's reference outputs and nothing a
run or a JupyterLab save adds (outputs, images, counts, widget state, kernel version)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ffr_lib import nbstrip

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _cell(source, outputs=(), count=None, tags=None, **meta):
    return {"cell_type": "code", "execution_count": count, "id": f"c{abs(hash(source)) % 10**6}",
            "metadata": {**({"tags": tags} if tags else {}), **meta}, "outputs": list(outputs), "source": source}


def _stored():
    return {"cells": [_cell("x = 1", tags=["parameters"]),
                      _cell("# NBVAL_CHECK_OUTPUT\nprint(x)",
                            [{"name": "stdout", "output_type": "stream", "text": "1\n"}], count=1),
                      {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": "# title"}],
            "metadata": {"kernelspec": dict(nbstrip.KERNELSPEC), "language_info": dict(nbstrip.LANGUAGE_INFO)},
            "nbformat": 4, "nbformat_minor": 5}


def _as_saved_after_run_all(nb):
    """What JupyterLab writes after Run All: outputs everywhere, an image, a progress-bar widget,
    counts, timing and widget metadata, the kernel's Python version."""
    nb = json.loads(json.dumps(nb))
    png = {"data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}, "metadata": {}, "output_type": "display_data"}
    nb["cells"][0].update(execution_count=7, outputs=[png])
    nb["cells"][0]["metadata"]["execution"] = {"iopub.status.busy": "2026-12-07T00:00:00"}
    nb["cells"][1].update(execution_count=8)
    nb["cells"][1]["metadata"]["scrolled"] = True
    nb["cells"][1]["outputs"].append({"data": {"application/vnd.jupyter.widget-view+json": {"model_id": "ab12"},
                                               "text/plain": "100%"}, "metadata": {}, "output_type": "display_data"})
    nb["metadata"]["language_info"]["version"] = "3.11.9"
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_a_saved_run_has_the_stored_form_of_its_source():
    stored = _stored()
    assert nbstrip.stored_form(_as_saved_after_run_all(stored)) == _stored()


def test_every_committed_notebook_is_in_its_stored_form():
    for path in NOTEBOOKS:
        text = path.read_text()
        assert nbstrip.dumps(nbstrip.stored_form(json.loads(text))) == text, path.name


def _repo(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitattributes").write_text((ROOT / ".gitattributes").read_text())
    (tmp_path / ".gitignore").write_text(".ipynb_checkpoints/\n")  # as the project's
    (tmp_path / "notebooks").mkdir()
    # the filter as `make setup` installs it, with this interpreter and this checkout's ffr_lib
    subprocess.run([*git, "config", "filter.ffr-nbstrip.clean",
                    f"PYTHONPATH={ROOT} {sys.executable} -m ffr_lib.nbstrip"], check=True)
    return git


def _status(git):
    return subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout


def test_the_clean_filter_keeps_a_saved_run_out_of_commits(tmp_path):
    """Outputs written over a stored notebook never reach git's content: `git diff` is empty and
    `git add` stages nothing (git status alone may still name the file: a clean filter cannot
    hide a changed file size from it; the pre-save hook below keeps the file itself clean)."""
    git = _repo(tmp_path)
    path = tmp_path / "notebooks" / "n.ipynb"
    path.write_text(nbstrip.dumps(_stored()))
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    path.write_text(json.dumps(_as_saved_after_run_all(_stored()), indent=2))
    assert subprocess.run([*git, "diff", "--stat"], capture_output=True, text=True).stdout == ""
    subprocess.run([*git, "add", "-A"], check=True)
    assert _status(git) == ""
    changed = _as_saved_after_run_all(_stored())
    changed["cells"][0]["source"] = "x = 2"  # a change of source still shows
    path.write_text(json.dumps(changed))
    assert "notebooks/n.ipynb" in _status(git)


def _installed_hook() -> str:
    """The pre-save hook `make setup` configures for the venv's Jupyter."""
    config = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.json"
    if not config.is_file():
        pytest.skip(f"no {config}: not the project's venv (make setup writes it)")
    return json.loads(config.read_text())["ContentsManager"]["pre_save_hook"]


@pytest.mark.slow
def test_jupyterlab_run_all_and_save_leaves_git_status_clean(tmp_path):
    """The JupyterLab path: a kernel runs every cell (nbclient, the protocol JupyterLab's
    frontend speaks: outputs, an image, stderr), then jupyter_server's contents manager saves
    the notebook model (the code JupyterLab's save calls) with the venv's configured pre-save
    hook; `git status` shows nothing."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    contents = pytest.importorskip("jupyter_server.services.contents.filemanager")
    hook = _installed_hook()
    assert hook == "ffr_lib.nbstrip.pre_save_hook"
    git = _repo(tmp_path)
    source = _stored()
    source["cells"].append(_cell("import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
                                 "from IPython.display import display\nimport sys; print('busy', file=sys.stderr)\n"
                                 "fig = plt.figure(); plt.plot([1, 2]); display(fig)"))
    path = tmp_path / "notebooks" / "n.ipynb"
    path.write_text(nbstrip.dumps(nbstrip.stored_form(json.loads(json.dumps(source)))))
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    nb = nbformat.reads(path.read_text(), as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    assert any(o["output_type"] == "display_data" for o in nb.cells[-1].outputs)  # an image was made
    manager = contents.FileContentsManager(root_dir=str(tmp_path), pre_save_hook=hook)
    manager.save({"type": "notebook", "format": "json", "content": json.loads(json.dumps(nb))}, "notebooks/n.ipynb")
    assert b"image/png" not in path.read_bytes()
    assert _status(git) == ""
    nb.cells[0].source = "x = 3"  # an edited source is saved as edited
    manager.save({"type": "notebook", "format": "json", "content": json.loads(json.dumps(nb))}, "notebooks/n.ipynb")
    assert "x = 3" in path.read_text() and "notebooks/n.ipynb" in _status(git)
