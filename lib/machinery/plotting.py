"""One figure style for the whole book, and saving figures next to the executed notebooks."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from .checks import build_dir

PALETTE = "colorblind"


def style() -> None:
    """The book's seaborn style: white grid, colour-blind palette, readable sizes."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE,
                  rc={"figure.dpi": 110, "savefig.dpi": 150, "figure.figsize": (7.0, 4.0),
                      "axes.titleweight": "bold", "legend.frameon": False})


def save(fig: "plt.Figure", chapter: str, name: str) -> Path:
    """Save ``fig`` as ``_build/figures/<chapter>/<name>.png`` and return the path (the figure is
    also shown inline by the notebook, which is what the HTML book displays)."""
    d = build_dir() / "figures" / chapter
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.png"
    fig.savefig(path, bbox_inches="tight")
    return path


def show(fig: "plt.Figure", chapter: str, name: str) -> None:
    """:func:`save` the figure, then show it (the last line of a figure cell: nothing else printed)."""
    save(fig, chapter, name)
    plt.show()


#: the widest figure the book draws (inches). Figures are drawn at 110 dpi and shown in a text
#: column of about 690 px (a 1280-px window), so a figure this wide is shown at about 0.6x and its
#: 11-point tick labels at about 10 px; a wider one is shrunk until they are unreadable (the browser
#: check measures every figure's display scale).
MAX_WIDTH = 10.5


def panels(n: int, *, panel: tuple[float, float] = (5.2, 3.8), ncols: int | None = None, **kw):
    """A figure of ``n`` panels of ``panel`` inches, as many per row as fit in :data:`MAX_WIDTH`
    (or ``ncols``), filled row by row; the unused places of the last row are removed. Returns
    ``(fig, axes)`` with ``axes`` a flat array of the ``n`` panels. ``kw`` go to ``plt.subplots``."""
    import math

    cols = ncols or max(1, min(n, int(MAX_WIDTH // panel[0])))
    if panel[0] * cols > MAX_WIDTH + 1e-9:
        raise ValueError(f"{cols} panels of {panel[0]} in make a figure wider than MAX_WIDTH = {MAX_WIDTH} in")
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel[0] * cols, panel[1] * rows), squeeze=False, **kw)
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def table(rows: list[dict], *, note: str = ""):
    """Rows of measurements (dicts with the same keys, already formatted as text or numbers) as a
    Markdown table, which the book renders as an HTML table that wraps to the page (a printed,
    space-aligned table is cut off or wrapped mid-row on a narrow page). ``note`` goes below it."""
    from IPython.display import Markdown

    if not rows:
        raise ValueError("table() needs at least one row")
    cols = list(rows[0])

    def cell(v) -> str:
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return Markdown("\n".join(lines) + (f"\n\n{note}" if note else ""))


def beside(ax, x, samples, predicted=None, *, label: str, ratio: bool = False, k: float = 2.0, marker: str = "o-",
           color=None, log: bool = False):
    """The book's one way of showing a measurement beside its prediction: the mean of ``samples``
    (``(n_samples, len(x))``, e.g. one row per network) with a band of ``k`` standard errors (none
    for ``k = 0``), and
    the prediction ``predicted`` (``len(x)``) dashed in the same colour. With ``ratio=True`` it
    draws measured / predicted instead, around a black dashed line at 1. ``log`` sets a log y axis;
    integer ``x`` (depths, layers) gets integer ticks.
    Returns the colour used, so a caller can match other marks to it."""
    s = np.asarray(samples, dtype=float)
    s = s[None] if s.ndim == 1 else s
    m = s.mean(0)
    se = s.std(0, ddof=1) / np.sqrt(s.shape[0]) if s.shape[0] > 1 else np.zeros_like(m)
    scale = np.asarray(predicted, dtype=float) if ratio else 1.0
    if ratio and predicted is None:
        raise ValueError("beside(ratio=True) needs the prediction to divide by")
    (line,) = ax.plot(x, m / scale, marker, ms=3, color=color, label=label)
    c = line.get_color()
    if s.shape[0] > 1 and k > 0:
        ax.fill_between(x, (m - k * se) / scale, (m + k * se) / scale, color=c, alpha=0.25, lw=0)
    if ratio:
        ax.axhline(1.0, color="k", lw=1, ls="--")
    elif predicted is not None:
        ax.plot(x, predicted, "--", color=c, lw=1)
    if log:
        ax.set_yscale("log")
    if np.issubdtype(np.asarray(x).dtype, np.integer):   # depths, layers: integer ticks
        ax.xaxis.get_major_locator().set_params(integer=True)
    return c


def curves(ax, x, ys: dict, *, ref: dict | None = None, marker: str = "-", legend: bool = True, **axes):
    """Several curves over the same ``x`` (one per item of ``ys``, labelled by its key), each with
    its prediction ``ref[key]`` dashed in the curve's colour when given (a number: a horizontal
    line; an array of ``len(x)``: a curve). ``axes`` go to ``ax.set`` (``xlabel``, ``xscale``,
    ``title``…). For a measurement with a spread over samples use :func:`beside`. Returns ``ax``."""
    ref = ref or {}
    if unknown := set(ref) - set(ys):
        raise ValueError(f"curves(): predictions for curves that are not drawn: {sorted(map(str, unknown))}")
    for key, y in ys.items():
        (line,) = ax.plot(x, y, marker, ms=3, label=str(key))
        if key in ref:
            r = np.asarray(ref[key], dtype=float)
            if r.ndim == 0:
                ax.axhline(float(r), color=line.get_color(), ls="--", lw=0.8)
            else:
                ax.plot(x, r, "--", color=line.get_color(), lw=0.8)
    ax.set(**axes)
    if legend:
        ax.legend(fontsize=8)
    return ax
