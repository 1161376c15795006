"""Every paper chapter accounts for its paper: it has an inventory, and a refutation quotes the
paper (every ``paper_says=`` in a chapter is found in the paper's text).

``lib.check`` refuses ``outcome="not reproduced"`` without ``paper_says`` (tests/test_checks.py);
this test makes sure the words are the paper's own, not a paraphrase of something it never said.
The quotes are read from the chapters' code (every string constant inside a ``paper_says=``
argument, with names bound to string constants resolved), split at "…" into fragments, and each
fragment must occur, in order and with whitespace collapsed, in the plain-text copy of the paper.
The papers are not part of the repository: they are looked up in ``BOOK_PAPERS`` or
``../shared/papers`` beside the checkout, and the test is skipped (not passed) where neither exists.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAPERS = {  # chapter -> the paper's text file (../shared/papers/README.md)
    "skilling-moments": "000_8fd29ae6c9089190.txt",
    "legendre-asymptotics": "001_1e00279700e758b1.txt",
    "noise-stability": "002_301b8203ba8c0325.txt",
    "path-sum-covariance": "003_b4145c195ac927f1.txt",
    "dilution-theorem": "004_975de0c6b9f88a82.txt",
}


def papers_dir() -> Path | None:
    for d in (os.environ.get("BOOK_PAPERS"), ROOT.parent / "shared" / "papers"):
        if d and Path(d, PAPERS["dilution-theorem"]).exists():
            return Path(d)
    return None


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def chapter_quotes(chapter: str) -> list[str]:
    """Every quoted string passed as ``paper_says`` in the chapter's code cells."""
    nb = jupytext.read(ROOT / "book" / f"{chapter}.md")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and not c.source.lstrip().startswith(("%", "!")))
    tree = ast.parse(code)
    names = {t.id: node.value.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
             and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
             for t in node.targets if isinstance(t, ast.Name)}

    def strings(e: ast.AST) -> list[str]:   # the values an expression can take, not the strings it tests against
        if isinstance(e, ast.Constant):
            return [e.value] if isinstance(e.value, str) and e.value.strip() else []
        if isinstance(e, ast.Name):
            return [names[e.id]] if e.id in names else []
        if isinstance(e, ast.BinOp):
            return strings(e.left) + strings(e.right)
        if isinstance(e, ast.IfExp):
            return strings(e.body) + strings(e.orelse)
        if isinstance(e, (ast.ListComp, ast.GeneratorExp)):
            return strings(e.elt)
        if isinstance(e, (ast.List, ast.Tuple)):
            return [q for x in e.elts for q in strings(x)]
        return []

    return [q for node in ast.walk(tree) if isinstance(node, ast.keyword) and node.arg == "paper_says"
            for q in strings(node.value)]


def test_every_paper_chapter_has_an_inventory():
    """The chapter calls lib.inventory (which, when the chapter runs, fails on an item without a
    claim or reason and on a record no item names; the ledger page fails on a missing inventory)."""
    for chapter in PAPERS:
        assert "lib.inventory(" in (ROOT / "book" / f"{chapter}.md").read_text(), f"{chapter} has no paper inventory"


def test_every_chapter_with_a_refutation_quotes_it():
    """A chapter that records a "not reproduced" passes at least one quote (the ValueError in
    lib.check makes the rest sure at run time)."""
    for chapter in PAPERS:
        text = (ROOT / "book" / f"{chapter}.md").read_text()
        if '"not reproduced"' in text:
            assert chapter_quotes(chapter), f"{chapter} declares 'not reproduced' but quotes no paper_says"


def unmatched(quote: str, paper: str) -> str | None:
    """The first fragment of ``quote`` (split at "…") not found in ``paper`` after the previous one."""
    pos = 0
    for frag in (squash(f) for f in quote.split("…")):
        if not frag:
            continue
        at = paper.find(frag, pos)
        if at < 0:
            return frag
        pos = at + len(frag)
    return None


@pytest.mark.parametrize("chapter", sorted(PAPERS))
def test_quotes_are_the_papers_words(chapter):
    d = papers_dir()
    if d is None:
        pytest.skip("the papers' texts are not here: set BOOK_PAPERS to the folder of ../shared/papers")
    paper = squash((d / PAPERS[chapter]).read_text())
    bad = [f"{miss!r} (from {q!r})" for q in chapter_quotes(chapter) if (miss := unmatched(q, paper))]
    assert not bad, f"{chapter}: quoted words not found in the paper, in order: " + "; ".join(bad)


def test_the_matcher_rejects_paraphrases_and_disorder():
    paper = squash("The  gradient\nexplodes. Then it vanishes.")
    assert unmatched("The gradient … vanishes.", paper) is None
    assert unmatched("gradients explode", paper) == "gradients explode"
    assert unmatched("vanishes … explodes", paper) == "explodes"
