"""The book's one rule for CPU threads per process.

torch (OpenMP) and the BLAS libraries start one thread per core in every process, and GNU
OpenMP's idle threads spin, waiting for the next parallel region, for about 300,000 iterations
before they sleep. Two such processes on the same cores ask for twice as many threads as there
are cores, and the spinning threads burn the time slices the working ones need. Measured on the
2-core machine (2026-12-03, eight rows of Philipp et al.'s Table 1, depth 50, two threads): 14.5 s
alone, **66 s** beside one other busy torch process (4.4x, where sharing the cores explains 2x).

The rule: a process that is one of ``jobs`` concurrent jobs gets ``cores // jobs`` threads (at
least one), where ``cores`` are the cores this process may run on; the environment variable
``BOOK_THREADS`` overrides it. Idle OpenMP threads spin only briefly (``GOMP_SPINCOUNT=3000``, GNU
OpenMP, which torch's Linux wheels use) and then sleep. Same benchmark: 14.2 s alone (no cost),
**23 s** beside the busy process (1.6x). Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) gave 24 s
contended but cost 15-25% alone; one thread gave 28 s contended.

The runner applies the rule to every chapter kernel it starts (one job at a time), the sweep to
its jobs (``jobs`` = workers), the test suite to its nbval kernels, and :func:`lib.setup` inside
the chapter (where ``BOOK_THREADS`` or the launcher's ``OMP_NUM_THREADS`` decides). The spin
count is read when a process starts, so it reaches the kernels these start, not a notebook opened
by hand: there, start Jupyter with ``GOMP_SPINCOUNT=3000`` in the environment.
"""

from __future__ import annotations

import os

#: variables read by torch's OpenMP pool and the BLAS libraries at start-up
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
OVERRIDE = "BOOK_THREADS"
#: GNU OpenMP's spin-wait iterations before an idle thread sleeps (its default is 300,000)
SPINCOUNT = "3000"


def cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container may restrict)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _override() -> int | None:
    text = os.environ.get(OVERRIDE, "").strip()
    if not text:
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{OVERRIDE}={text!r}: give a positive number of threads per process, e.g. {OVERRIDE}=1, or unset it")
    return n


def threads_per_job(jobs: int = 1) -> int:
    """Threads for each of ``jobs`` concurrent processes: ``BOOK_THREADS`` if set, else
    ``cores() // jobs`` (at least 1)."""
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: need at least one job")
    return _override() or max(1, cores() // jobs)


def env(threads: int) -> dict[str, str]:
    """Environment for a child process that should use ``threads`` threads."""
    return {**{v: str(threads) for v in THREAD_VARS}, "GOMP_SPINCOUNT": SPINCOUNT}


def in_process() -> int:
    """Threads for the current process (a chapter kernel): ``BOOK_THREADS`` if set, else the
    ``OMP_NUM_THREADS`` its launcher chose, else all cores (a single job)."""
    given = _override()
    if given:
        return given
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return cores()


def apply(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (default :func:`in_process`); returns it."""
    import torch

    n = threads or in_process()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
