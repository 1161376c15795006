"""lib.machinery.plotting.panels: multi-panel figures that fit the book's text column."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from lib.machinery import plotting


def test_panels_wrap_into_rows_no_wider_than_the_column():
    fig, axes = plotting.panels(3)
    w, h = fig.get_size_inches()
    assert len(axes) == 3 and len(fig.axes) == 3            # the fourth place of the 2 x 2 grid is removed
    assert w <= plotting.MAX_WIDTH and h == pytest.approx(2 * 3.8)
    plt.close(fig)
    fig, axes = plotting.panels(6, panel=(3.5, 3.2))
    assert fig.get_size_inches()[0] == pytest.approx(10.5) and len(axes) == 6
    plt.close(fig)


def test_panels_refuse_a_figure_wider_than_the_column():
    with pytest.raises(ValueError, match="MAX_WIDTH"):
        plotting.panels(3, ncols=3)


def test_table_is_markdown_with_escaped_cells():
    from lib.machinery import plotting

    md = plotting.table([{"a": 1.234567, "b": "x|y"}, {"a": 2, "b": "z"}], note="n").data
    assert md.splitlines()[:4] == ["| a | b |", "|---|---|", "| 1.235 | x\\|y |", "| 2 | z |"] and md.endswith("\n\nn")
    with pytest.raises(ValueError):
        plotting.table([])


def test_beside_draws_mean_band_and_prediction():
    import numpy as np
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lib.machinery.plotting import beside

    fig, ax = plt.subplots()
    s = np.array([[1.0, 2.0, 4.0], [1.2, 2.2, 4.4], [0.8, 1.8, 3.6]])
    c = beside(ax, [0, 1, 2], s, [1.0, 2.0, 4.0], label="m")
    lines = ax.get_lines()
    assert len(lines) == 2 and np.allclose(lines[0].get_ydata(), s.mean(0)) and np.allclose(lines[1].get_ydata(), [1, 2, 4])
    assert lines[1].get_linestyle() == "--" and lines[1].get_color() == c and len(ax.collections) == 1   # the band
    fig2, ax2 = plt.subplots()
    beside(ax2, [0, 1, 2], s, [1.0, 2.0, 4.0], label="m", ratio=True, k=0)
    assert np.allclose(ax2.get_lines()[0].get_ydata(), 1.0) and not ax2.collections
    with pytest.raises(ValueError, match="prediction"):
        beside(ax2, [0, 1, 2], s, label="m", ratio=True)
    plt.close("all")


def test_curves_draws_each_curve_with_its_prediction_in_its_colour():
    import numpy as np
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lib.machinery.plotting import curves

    fig, ax = plt.subplots()
    x = np.arange(4.0)
    curves(ax, x, {"a": x, "b": 2 * x}, ref={"a": 1.5, "b": 3 * x}, xscale="linear", title="t")
    lines = ax.get_lines()
    # a, its horizontal prediction, b, its curve prediction
    assert len(lines) == 4 and np.allclose(lines[0].get_ydata(), x) and np.allclose(lines[1].get_ydata(), 1.5)
    assert lines[1].get_color() == lines[0].get_color() and lines[3].get_color() == lines[2].get_color() != lines[0].get_color()
    assert np.allclose(lines[3].get_ydata(), 3 * x) and lines[3].get_linestyle() == "--"
    assert ax.get_title() == "t" and [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    with pytest.raises(ValueError, match="not drawn"):
        curves(ax, x, {"a": x}, ref={"c": 1.0})
    plt.close("all")
