"""One figure style for the whole book, and saving figures next to the executed notebooks."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
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
