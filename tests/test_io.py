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
