"""Collect every chapter (jupytext Markdown) for nbval: each is converted to a notebook under
``_build/nbval/`` and executed cell by cell in the quick profile (``--nbval-lax``: a cell fails
the test when it raises, e.g. a failed ``lib.check``).

nbval keeps each cell's outputs (``IPyNbCell.test_outputs``); this file writes them back into the
notebook, and when a chapter's last cell has run, saves the executed chapter as
``_build/nbval/executed/<slug>.ipynb`` — or ``<slug>.failed`` (naming the failed cells) when any
cell failed. The book-build test (``tests/test_book.py``) builds the HTML from these, so that
every chapter is executed once in the test command, not once for nbval and again for the book."""

import os
import shutil

import jupytext
import nbformat
from nbval.plugin import IPyNbCell, IPyNbFile

from lib.machinery import chapters
from lib.machinery.checks import build_dir


def executed_dir():
    """Where nbval's executed chapters are written (read by ``tests/test_book.py``)."""
    return build_dir() / "nbval" / "executed"


def pytest_configure(config):
    """Once per test command (not in each xdist worker): clear the chapters an earlier session saved,
    so that the book build never takes one of them for this session's."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(executed_dir(), ignore_errors=True)


class ChapterCell(IPyNbCell):
    """nbval's cell, which keeps what it printed and displayed in the notebook nbval read."""

    def runtest(self):
        try:
            super().runtest()
        except BaseException:           # a skipped cell counts too: the saved chapter would lack its outputs
            self.parent.failed_cells.append(self.cell_num)
            raise
        finally:
            self.cell.outputs = [nbformat.from_dict(o) for o in (self.test_outputs or [])]
            self.cell.execution_count = self.cell_num + 1
            for o in self.cell.outputs:
                if o.get("output_type") == "execute_result":
                    o["execution_count"] = self.cell.execution_count


class ChapterNotebook(IPyNbFile):
    """nbval's notebook file, which also saves the notebook it executed."""

    def collect(self):
        for cell in super().collect():
            yield ChapterCell.from_parent(self, name=cell.name, cell_num=cell.cell_num, cell=cell.cell, options=cell.options)

    def setup(self):
        self.failed_cells = []
        for p in (executed_dir() / f"{self.path.stem}.ipynb", executed_dir() / f"{self.path.stem}.failed"):
            p.unlink(missing_ok=True)
        super().setup()

    def teardown(self):
        super().teardown()
        out = executed_dir()
        out.mkdir(parents=True, exist_ok=True)
        slug = self.path.stem
        if self.failed_cells or not hasattr(self, "nb"):
            (out / f"{slug}.failed").write_text("nbval: failed cells " + ", ".join(map(str, self.failed_cells)) + "\n")
            return
        nbformat.validate(self.nb)
        tmp = out / f"{slug}.ipynb.tmp"
        nbformat.write(self.nb, tmp)
        tmp.replace(out / f"{slug}.ipynb")


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".md" and file_path.stem in chapters.CHAPTERS:
        out = build_dir() / "nbval" / f"{file_path.stem}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        # Each xdist worker collects every chapter: write a temporary file and rename it, so that
        # no worker ever reads a half-written notebook, and leave an identical one alone.
        text = jupytext.writes(jupytext.read(file_path, fmt="md:myst"), fmt="ipynb")
        if not out.exists() or out.read_text() != text:
            tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
            tmp.write_text(text)
            tmp.replace(out)
        return ChapterNotebook.from_parent(parent, path=out)
    return None
