"""Collect every chapter (jupytext Markdown) for nbval: each is converted to a notebook under
``_build/nbval/`` and executed cell by cell in the quick profile (``--nbval-lax``: a cell fails
the test when it raises, e.g. a failed ``lib.check``)."""

import jupytext
from nbval.plugin import IPyNbFile

from lib.machinery import chapters
from lib.machinery.checks import build_dir


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".md" and file_path.stem in chapters.CHAPTERS:
        out = build_dir() / "nbval" / f"{file_path.stem}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(jupytext.read(file_path, fmt="md:myst"), out)
        return IPyNbFile.from_parent(parent, path=out)
    return None
