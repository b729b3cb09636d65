"""Figures and tables are written byte for byte the same when made again from the same data."""

import os
import stat

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ffr_lib.io import atomic_write_text, save_figure  # noqa: E402


def _figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [1, 0, 2], marker="o")
    ax.set_title("same data")
    return fig


def test_the_same_figure_twice_gives_the_same_svg_and_png_bytes(tmp_path):
    for folder in ("a", "b"):
        fig = _figure()
        save_figure(fig, "plot", {"made_by": "test"}, tmp_path / folder)
        plt.close(fig)
    for fmt in ("svg", "png"):
        a, b = (tmp_path / f / f"plot.{fmt}" for f in ("a", "b"))
        assert a.read_bytes() == b.read_bytes(), fmt
    assert b'id="' in (tmp_path / "a" / "plot.svg").read_bytes()  # ids are there, and stable


def test_atomic_writes_get_the_permissions_of_a_new_file(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "table.csv", "a,b\n1,2\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.read_text() == "a,b\n1,2\n"
    assert not list(tmp_path.glob(".table.csv.*"))  # no temporary file left behind


def test_regenerating_unchanged_content_leaves_every_file_as_it_was(tmp_path, monkeypatch):
    """Only the commit would change: the table, the figure and their sidecars keep their bytes
    and their inodes (git status stays clean); a change of content rewrites all of them."""
    import json

    import pandas as pd

    from ffr_lib.io import save_table

    monkeypatch.setenv("FFR_COMMIT", "a" * 40)
    df = pd.DataFrame({"x": [1.0, 2.0]})
    table = save_table(df, "t", {"made_by": "test"}, tmp_path)
    save_figure(_figure(), "plot", {"made_by": "test"}, tmp_path)
    before = {p.name: p.stat().st_ino for p in tmp_path.iterdir()}
    monkeypatch.setenv("FFR_COMMIT", "b" * 40)
    save_table(df, "t", {"made_by": "test"}, tmp_path)
    save_figure(_figure(), "plot", {"made_by": "test"}, tmp_path)
    assert {p.name: p.stat().st_ino for p in tmp_path.iterdir()} == before
    assert json.loads(table.with_suffix(".json").read_text())["commit"] == "a" * 40
    save_table(df.assign(x=[1.0, 3.0]), "t", {"made_by": "test"}, tmp_path)  # new content
    assert json.loads(table.with_suffix(".json").read_text())["commit"] == "b" * 40
    save_table(df.assign(x=[1.0, 3.0]), "t", {"made_by": "other"}, tmp_path)  # new sidecar content
    assert json.loads(table.with_suffix(".json").read_text())["made_by"] == "other"


def test_a_dirty_sidecar_is_replaced_once_a_clean_tree_makes_the_same_content(tmp_path, monkeypatch):
    import json

    import pandas as pd

    from ffr_lib.io import save_table

    df = pd.DataFrame({"x": [1.0]})
    monkeypatch.setenv("FFR_COMMIT", "a" * 40 + "+dirty")
    path = save_table(df, "t", {}, tmp_path)
    monkeypatch.setenv("FFR_COMMIT", "b" * 40)
    save_table(df, "t", {}, tmp_path)
    assert json.loads(path.with_suffix(".json").read_text())["commit"] == "b" * 40
    monkeypatch.setenv("FFR_COMMIT", "c" * 40 + "+dirty")
    save_table(df, "t", {}, tmp_path)  # a dirty tree never replaces a clean sidecar of the same content
    assert json.loads(path.with_suffix(".json").read_text())["commit"] == "b" * 40


def test_changes_to_figures_do_not_make_the_commit_dirty(tmp_path, monkeypatch):
    import subprocess

    from ffr_lib.io import git_commit

    monkeypatch.delenv("FFR_COMMIT", raising=False)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.csv").write_text("1\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    (tmp_path / "figures" / "a.csv").write_text("2\n")
    assert not git_commit(tmp_path / "figures").endswith("+dirty")
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path / "figures").endswith("+dirty")


def test_a_store_is_named_the_same_from_any_folder(tmp_path, monkeypatch):
    """A sidecar names a store relative to the repository: a notebook's '../results/quick' and the
    CLI's 'results/quick' are one path, so the two producers write the same sidecar."""
    from ffr_lib.io import REPO, repo_relative

    assert repo_relative(REPO / "results" / "quick") == "results/quick"
    monkeypatch.chdir(REPO / "notebooks")
    assert repo_relative("../results/quick") == "results/quick"
    assert repo_relative(tmp_path) == str(tmp_path.resolve())
