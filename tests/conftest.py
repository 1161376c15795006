"""How the test command shares the two cores: pytest-xdist, one file per worker, one thread each.

``pyproject.toml`` runs ``pytest -n 2 --dist loadfile``: two worker processes, each taking a whole
file at a time (an nbval chapter's cells must run in order in one kernel, so a chapter is one
unit). Every worker, and every nbval kernel it starts, is one of two concurrent jobs and gets
``cores // 2`` threads (lib.machinery.threads' rule: one thread on two cores). Two one-thread
processes pack two cores better than one process at two threads, which scales poorly (README,
"Tests").

The order in which files are handed out (xdist's ``--no-loadscope-reorder`` keeps the collection
order): the chapters first, longest recorded quick time first, so that the two workers finish
them at about the same time; then the test files, the paper-path runs first; and
``tests/test_book.py`` last, because its book build reads the chapters nbval has executed (it
waits for them, and everything handed out before it is either done or running on the other worker,
so the wait is bounded by the chapters' own run)."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_TESTS = ("tests/test_paper_paths.py", "tests/test_mutations.py")
LAST_TESTS = ("tests/test_book.py",)


def pytest_configure(config):
    """In an xdist worker: this process and the kernels it starts get the thread rule's share."""
    n_workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if n_workers:
        from lib.machinery import threads

        n = threads.threads_per_job(int(n_workers))
        os.environ.update(threads.env(n))
        threads.apply(n)


def _rank(item) -> tuple:
    from lib.machinery import chapters

    path = Path(str(item.path)).resolve()
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    if path.suffix == ".ipynb" and path.stem in chapters.CHAPTERS:
        return (0, -chapters.CHAPTERS[path.stem].quick_s)
    if rel in FIRST_TESTS:
        return (1, FIRST_TESTS.index(rel))
    if rel in LAST_TESTS:
        return (3, LAST_TESTS.index(rel))
    return (2, 0)


def pytest_collection_modifyitems(session, config, items):
    """Chapters longest first, then the long tests, the book build last (stable within a rank)."""
    items[:] = sorted(items, key=_rank)
