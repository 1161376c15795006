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
