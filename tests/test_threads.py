"""lib.machinery.threads: the one rule for torch/BLAS threads per process, and the sweep's job order."""

import pytest

from lib.machinery import chapters
from lib.machinery import sweep
from lib.machinery import threads


def test_threads_per_job_divides_the_cores(monkeypatch):
    monkeypatch.delenv("BOOK_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 8)
    assert [threads.threads_per_job(j) for j in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    with pytest.raises(ValueError, match="at least one job"):
        threads.threads_per_job(0)


def test_book_threads_overrides_and_a_bad_value_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 8)
    monkeypatch.setenv("BOOK_THREADS", "3")
    assert threads.threads_per_job(1) == threads.threads_per_job(4) == threads.in_process() == 3
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv("BOOK_THREADS", bad)
        with pytest.raises(ValueError, match="BOOK_THREADS"):
            threads.threads_per_job(1)


def test_in_process_takes_the_launchers_choice_else_all_cores(monkeypatch):
    monkeypatch.delenv("BOOK_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 6)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.in_process() == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert threads.in_process() == 6


def test_child_environment_sets_every_pool_and_a_short_spin():
    env = threads.env(3)
    assert all(env[v] == "3" for v in threads.THREAD_VARS) and int(env["GOMP_SPINCOUNT"]) <= 10_000


def test_apply_sets_torch_threads():
    import torch

    before = torch.get_num_threads()
    try:
        assert threads.apply(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_sweep_starts_the_longest_chapters_first():
    """Dask runs higher priorities first: the priority is the recorded quick time, so the ordering
    is by cost, and a registry without recorded times (all zero) would fail here."""
    prio = {s: sweep.job_priority(s) for s in chapters.CHAPTERS}
    assert len(set(prio.values())) == len(prio)
    assert max(prio, key=prio.get) == max(chapters.CHAPTERS, key=lambda s: chapters.get(s).quick_s)
    assert min(prio, key=prio.get) == min(chapters.CHAPTERS, key=lambda s: chapters.get(s).quick_s)
