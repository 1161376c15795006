"""Chapters read as prose first (issue 16, DESIGN.md "lib conventions"): code is at most 35% of a
chapter's lines, no code cell is longer than 15 lines, the median cell is under 8.

Lines are the non-blank lines of the chapter's MyST source after its front matter; code lines
are the non-blank lines inside ``{code-cell}`` blocks (cell options such as ``:tags:`` not
counted; folded cells counted like any other, since a reader of the source still reads them).

Every chapter is held to the targets (the last one reached them on 2026-12-05), and
``test_report`` prints where each chapter stands."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
MAX_CODE_FRACTION, MAX_CELL, MAX_MEDIAN = 0.35, 15, 8   # median strictly under MAX_MEDIAN

#: chapters at the targets: all of them (a new chapter is added here when it meets them)
AT_TARGET = ("dilution-theorem", "legendre-asymptotics", "noise-stability", "path-sum-covariance", "preliminaries",
             "skilling-moments")


def shape(text: str) -> dict:
    """Lines, code lines, code fraction, number of cells, longest and median cell of a MyST
    notebook's source."""
    lines = text.splitlines()
    start = lines.index("---", 1) + 1 if lines and lines[0].strip() == "---" else 0
    total = code = 0
    cells: list[int] = []
    cur: int | None = None
    for line in lines[start:]:
        s = line.strip()
        if cur is None:
            if s.startswith("```{code-cell}"):
                cur = 0
            elif s:
                total += 1
            continue
        if s == "```":
            cells.append(cur)
            cur = None
        elif s and not (cur == 0 and re.match(r"^:\w[\w-]*:", s)):
            cur += 1
            code += 1
            total += 1
    if not cells:
        raise ValueError("no code cells")
    return {"lines": total, "code": code, "fraction": code / total, "cells": len(cells), "longest": max(cells),
            "median": statistics.median(cells)}


def chapter_shape(slug: str) -> dict:
    return shape((BOOK / f"{slug}.md").read_text())


def test_every_chapter_is_classified():
    from lib.machinery import chapters

    assert set(AT_TARGET) == set(chapters.CHAPTERS)


@pytest.mark.parametrize("slug", AT_TARGET)
def test_chapter_at_target(slug):
    s = chapter_shape(slug)
    assert s["fraction"] <= MAX_CODE_FRACTION, f"{slug}: code is {s['fraction']:.0%} of its lines (at most 35%)"
    assert s["longest"] <= MAX_CELL, f"{slug}: a code cell of {s['longest']} lines (at most {MAX_CELL})"
    assert s["median"] < MAX_MEDIAN, f"{slug}: median cell {s['median']} lines (under {MAX_MEDIAN})"


def test_shape_counts_what_it_says():
    src = "---\nfront: matter\n---\n# T\n\ntext\n\n```{code-cell} ipython3\n:tags: [parameters]\n\na = 1\n```\n" \
          "more text\n```{code-cell} ipython3\nb = 2\n\nc = 3\nd = 4\n```\n"
    s = shape(src)
    assert s == {"lines": 7, "code": 4, "fraction": 4 / 7, "cells": 2, "longest": 3, "median": 2.0}
    # a long cell is seen as long
    long = "```{code-cell} ipython3\n" + "x = 1\n" * 16 + "```\n"
    assert shape("prose\n" + long)["longest"] == 16


def test_report(capsys):
    from lib.machinery import chapters

    rows = [(slug, chapter_shape(slug)) for slug in chapters.CHAPTERS]
    with capsys.disabled():
        print("\nchapter shape (targets: code <= 35%, longest cell <= 15, median < 8)")
        for slug, s in rows:
            mark = "at target" if slug in AT_TARGET else "not yet"
            print(f"  {slug:22s} code {s['fraction']:4.0%} ({s['code']}/{s['lines']} lines), {s['cells']} cells, "
                  f"longest {s['longest']}, median {s['median']:g}  [{mark}]")
    assert all(s["cells"] > 0 for _, s in rows)


@pytest.mark.parametrize("path", sorted(BOOK.glob("*.md")), ids=lambda p: p.name)
def test_no_control_characters(path):
    """A LaTeX command written into a Python string without a raw prefix loses its backslash to an
    escape ("\\to" -> tab + "o", "\\beta" -> backspace + "eta"): no page may contain such characters."""
    bad = [(i + 1, repr(ch)) for i, line in enumerate(path.read_text().splitlines())
           for ch in line if ch == "\t" or (ord(ch) < 32 and ch not in "\n")]
    assert not bad, f"{path.name}: control characters at (line, char) {bad[:5]}"
