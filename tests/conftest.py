"""Shared fixtures: one seed sweep of every chapter, used by the sweep tests and the book build.

The sweep starts in the background as soon as collection finds a test that needs it, so that it
runs while nbval executes the chapters (``testpaths`` puts ``book`` first). Both then share the two
cores: the sweep's two Dask workers run one thread each, and so do the nbval kernels (lib.machinery.threads'
rule with three jobs, applied to the kernels this process starts and to torch here): three
single-threaded processes pack two cores better than one-after-another runs at two threads, which
scale poorly (README, "Tests"). When the sweep has finished, the kernels started after it get all
cores again."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A seed other than 0 (nbval runs seed 0). Every check asserts its declared outcome, and a status is
# decided by sample sizes, never by the data's luck, so "same verdict at every seed" is "every check
# passes at every seed": seed 0 (nbval) and seed 1 (this sweep) are two seeds in every CI run. One
# sweep seed keeps the test command near 20 minutes; the ten-seed sweeps are run by hand (README).
SWEEP_SEEDS = (1,)
_SWEEP: dict = {}


def _start_sweep() -> None:
    import tempfile

    build = Path(tempfile.mkdtemp(prefix="book-sweep-")) / "_build"
    build.mkdir(parents=True)
    env = dict(os.environ, BOOK_BUILD_DIR=str(build))
    cmd = [sys.executable, "-m", "lib", "sweep", "--seeds", ",".join(map(str, SWEEP_SEEDS)), "--workers", "2", "--no-progress"]
    log = open(build / "sweep-test.log", "w")
    _SWEEP.update(build=build, log=log, t0=time.perf_counter(),
                  proc=subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True))


def _use_threads(n: int) -> None:
    """Threads for this process and for the kernels it starts from now on (lib.machinery.threads' variables)."""
    from lib.machinery import threads

    os.environ.update(threads.env(n))
    threads.apply(n)
    _SWEEP["threads"] = n


def pytest_collection_finish(session):
    """Start the sweep in the background when some selected test needs it; while it runs, this
    process and the kernels it starts are one of three jobs (lib.machinery.threads' rule: cores // 3, i.e.
    one thread on two cores)."""
    if _SWEEP or not any("swept_build" in getattr(it, "fixturenames", ()) for it in session.items):
        return
    from lib.machinery import threads

    _start_sweep()
    _use_threads(threads.threads_per_job(3))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Once the background sweep has finished, the next nbval kernel (started when its file is set
    up, after this hook) and the tests in this process are the only job again: all cores."""
    if _SWEEP and _SWEEP["proc"].poll() is not None:
        from lib.machinery import threads

        if _SWEEP.get("threads") != (n := threads.threads_per_job(1)):
            _use_threads(n)


def pytest_sessionfinish(session):
    if not _SWEEP:
        return
    import shutil

    if _SWEEP["proc"].poll() is None:          # interrupted or deselected: do not leave it running
        _SWEEP["proc"].kill()
        _SWEEP["proc"].wait()
    shutil.rmtree(_SWEEP["build"].parent, ignore_errors=True)


@pytest.fixture(scope="session")
def swept_build():
    """``python -m lib sweep --seeds 1 --workers 2`` over every chapter (quick profile) on a local
    Dask cluster, in a throw-away ``_build`` (started at collection, awaited here). Returns
    ``(build dir, completed process, wall time, seeds)``; the process's output is in
    ``<build>/sweep-test.log``."""
    if not _SWEEP:
        _start_sweep()
    proc = _SWEEP["proc"]
    proc.wait(timeout=3600)
    wall = time.perf_counter() - _SWEEP["t0"]
    _SWEEP["log"].close()
    out = (_SWEEP["build"] / "sweep-test.log").read_text()
    res = subprocess.CompletedProcess(proc.args, proc.returncode, stdout=out, stderr="")
    return _SWEEP["build"], res, wall, SWEEP_SEEDS
