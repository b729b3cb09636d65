"""Figures and tables are written byte for byte the same when made again from the same data."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ffr_lib.io import save_figure  # noqa: E402


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
