"""The papermill runner on throwaway notebooks (two kernel runs in all), and the stored notebooks."""

import io
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from ffr_lib import notebooks as N

REPO_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _write(folder: Path, stem: str, body: list[str], params: str = 'x: int = 1  # a number\nlabel: str = "a"  # a label'):
    cells = [new_markdown_cell(f"# {stem}"), new_code_cell(params, metadata={"tags": ["parameters"]})]
    cells += [new_code_cell(src) for src in body]
    nb = new_notebook(cells=cells, metadata={"kernelspec": dict(N.KERNELSPEC), "language_info": {"name": "python"}})
    nbformat.write(nb, folder / f"{stem}.ipynb")
    return folder / f"{stem}.ipynb"


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "nb"
    (src / "profiles").mkdir(parents=True)
    _write(src, "01_pass", ["import os, json\nprint(json.dumps({'x2': x * 2, 'label': label, 'cwd': os.getcwd()}))"])
    _write(src, "02_fail", ["y = 1", "raise ValueError(f'boom {x}')"])
    _write(src, "03_after", ["print('should not run')"], params="z: float = 0.5  # other")
    (src / "profiles" / "quick.yaml").write_text("01_pass: {x: 3}\n02_fail: {}\n")
    (src / "profiles" / "paper.yaml").write_text("'*': {x: 10}\n")  # 03_after declares no x
    (src / "notes.ipynb").write_text("{}")  # not numbered: never run
    return src


def test_discover_and_select(folder):
    assert [p.stem for p in N.discover(folder)] == ["01_pass", "02_fail", "03_after"]
    assert [p.stem for p in N.select(N.discover(folder), ["3", "01_pass"])] == ["01_pass", "03_after"]
    with pytest.raises(N.NotebookError, match="--only 7: no such notebook; known: 01_pass, 02_fail, 03_after"):
        N.select(N.discover(folder), ["7"])


def test_parse_value_is_yaml():
    assert N.parse_value("3") == 3
    assert N.parse_value("[0.9, 0.99]") == [0.9, 0.99]
    assert N.parse_value("true") is True
    assert N.parse_value("1e-3") == 0.001
    assert N.parse_value("../figures") == "../figures"


def test_plan_merges_in_order_and_checks_names(folder, tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("label: from-file\n01_pass: {x: 5}\n")
    runs = N.plan("quick", only=["01", "03"], parameters={"z": 0.25}, params_file=params, out=tmp_path / "o",
                  source=folder)
    assert [(r.source.stem, r.parameters) for r in runs] == [
        ("01_pass", {"x": 5, "label": "from-file"}),  # profile x=3 < file section x=5; plain label
        ("03_after", {"z": 0.25}),  # -p z only where declared
    ]
    assert runs[0].output == tmp_path / "o" / "01_pass.ipynb"
    with pytest.raises(N.NotebookError, match="unknown parameter 'xx': no selected notebook declares it"):
        N.plan("quick", parameters={"xx": 1}, source=folder, out=tmp_path / "o")
    with pytest.raises(N.NotebookError, match=r"paper.yaml: 03_after.ipynb has no parameter 'x'"):
        N.plan("paper", source=folder, out=tmp_path / "o")
    with pytest.raises(N.NotebookError, match="unknown notebook profile 'fast'.*known: paper, quick"):
        N.plan("fast", source=folder)
    with pytest.raises(N.NotebookError, match="must not overwrite sources"):
        N.plan("quick", source=folder, out=folder)
    (folder / "profiles" / "typo.yaml").write_text("01_pas: {x: 1}\n")
    with pytest.raises(N.NotebookError, match="typo.yaml: no notebook '01_pas'"):
        N.plan("typo", source=folder)


def test_run_writes_executed_copy_not_source(folder, tmp_path, monkeypatch):
    from jupyter_client.manager import KernelManager

    signals, send = [], KernelManager._async_signal_kernel

    async def spy(self, signum):
        signals.append(signum)
        await send(self, signum)

    monkeypatch.setattr(KernelManager, "_async_signal_kernel", spy)
    stream = io.StringIO()
    out = tmp_path / "out"
    done = N.run_notebooks("quick", only=["01"], parameters={"label": "b"}, out=out, source=folder, stream=stream)
    assert done == [out / "01_pass.ipynb"]
    # jupyter_client's default manager sends SIGINT to the idle kernel before shutting it down, which
    # printed a stray 'KeyboardInterrupt caught in kernel'; the runner's manager sends none
    assert signals == []
    line = stream.getvalue()
    assert line.startswith("[1/1] 01_pass (x=3, label='b') ... ok (") and line.endswith(f"-> {out / '01_pass.ipynb'}\n")
    executed = nbformat.read(done[0], as_version=4)
    printed = json.loads("".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs))
    assert printed == {"x2": 6, "label": "b", "cwd": str(folder)}  # ran in the notebook's own folder
    assert executed.metadata.papermill.parameters == {"x": 3, "label": "b"}
    source = nbformat.read(folder / "01_pass.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in source.cells if c.cell_type == "code")


def test_failure_names_notebook_cell_and_error_and_stops(folder, tmp_path):
    stream = io.StringIO()
    out = tmp_path / "out"
    with pytest.raises(N.NotebookError) as info:
        N.run_notebooks("quick", only=["02", "03"], out=out, source=folder, stream=stream)
    message = str(info.value)
    assert message.startswith("02_fail.ipynb: cell 4 (`raise ValueError(f'boom {x}')`) raised ValueError: boom 1")
    assert str(out / "02_fail.ipynb") in message
    assert stream.getvalue() == "[1/2] 02_fail ... FAILED\n"
    assert not (out / "03_after.ipynb").exists()


def test_store_references_keeps_only_checked_text(tmp_path):
    path = _write(tmp_path, "01_x", ["# NBVAL_CHECK_OUTPUT\nprint(1)", "print(2)"])
    executed = nbformat.read(path, as_version=4)
    for i, cell in enumerate(executed.cells[1:], 1):
        cell.execution_count = i
        cell.outputs = [new_output("stream", name="stdout", text=f"{i}\n"),
                        new_output("display_data", data={"image/png": "AAAA", "text/plain": "<Figure>"})]
    nbformat.write(executed, tmp_path / "executed.ipynb")
    assert any("stores outputs" in p for p in N.check_stored(tmp_path / "executed.ipynb"))
    N.store_references(path, tmp_path / "executed.ipynb")
    stored = nbformat.read(path, as_version=4)
    checked, plain = stored.cells[2], stored.cells[3]
    assert checked.execution_count == 1 and [o.output_type for o in checked.outputs] == ["stream"]
    assert plain.execution_count is None and plain.outputs == []
    assert N.check_stored(path) == []


@pytest.mark.parametrize("path", sorted(REPO_NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_stored_notebooks_are_clean(path):
    assert N.check_stored(path) == []
    declared = N.declared_parameters(path)
    assert {"profile", "figures_dir"} <= set(declared), "every notebook declares profile and figures_dir"
    assert all(p.help for p in declared.values()), "every parameter has a trailing comment"


@pytest.mark.parametrize("profile", ["default", "quick", "paper"])
def test_repo_profiles_resolve(profile, tmp_path):
    runs = N.plan(profile, out=tmp_path, source=REPO_NOTEBOOKS)
    assert [r.source.stem for r in runs] == [p.stem for p in N.discover(REPO_NOTEBOOKS)]


def test_the_default_profile_is_the_notebooks_own_defaults(tmp_path):
    runs = N.plan("default", out=tmp_path, source=REPO_NOTEBOOKS)
    assert runs and all(r.parameters == {} for r in runs)
