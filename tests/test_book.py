"""The test command's end-to-end book: the sweep path on a local Dask cluster, and the HTML book
built from the chapters nbval executed in this same session.

``tests/conftest.py`` hands this file out last: every chapter's nbval run has been handed out
before it, so the build waits only for the chapters still running on the other xdist worker.
Each chapter is executed once in the test command (by nbval, at seed 0), and the book is built
from those notebooks (``book/conftest.py`` saves them with their outputs). The sweep runs the two
cheapest chapters at two unseen seeds, which exercises the sweep path (Dask workers, resume, the
robustness ledger and page) and the "same verdict at every seed" comparison in minutes; the
ten-seed sweeps of every chapter are run by hand (README, "Seed sweeps")."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbval.plugin import IPyNbCell

from lib.machinery import chapters, sweep
from lib.machinery.checks import build_dir

ROOT = Path(__file__).resolve().parent.parent
#: what the test command sweeps: the two cheapest chapters (about a minute of work each), at two
#: seeds other than nbval's 0
SWEEP_CHAPTERS = ("preliminaries", "legendre-asymptotics")
SWEEP_SEEDS = (1, 2)
#: how long the book build waits for nbval's chapters on the other worker
NBVAL_WAIT_S = 3600


def cli(*args, build_dir=None, timeout=1800):
    env = dict(os.environ)
    if build_dir is not None:
        env["BOOK_BUILD_DIR"] = str(build_dir)
    return subprocess.run([sys.executable, "-m", "lib", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def swept_build(tmp_path_factory):
    """``python -m lib sweep preliminaries legendre-asymptotics --seeds 1,2 --workers 2`` (quick
    profile, a LocalCluster) in a throw-away ``_build``. Returns ``(build dir, completed process,
    wall time, seeds)``."""
    b = tmp_path_factory.mktemp("book") / "_build"
    b.mkdir()
    t0 = time.perf_counter()
    res = cli("sweep", *SWEEP_CHAPTERS, "--seeds", ",".join(map(str, SWEEP_SEEDS)), "--workers", "2", "--no-progress", build_dir=b)
    return b, res, time.perf_counter() - t0, SWEEP_SEEDS


def _await_nbval(slugs: list[str]) -> Path:
    """Wait until nbval has saved each of ``slugs`` executed (``book/conftest.py``); fail at once
    when one of them failed under nbval."""
    d = build_dir() / "nbval" / "executed"
    t0 = time.perf_counter()
    while True:
        failed = [s for s in slugs if (d / f"{s}.failed").exists()]
        if failed:
            pytest.fail(f"the book is built from nbval's executed chapters, and {', '.join(failed)} failed under nbval "
                        f"({'; '.join((d / f'{s}.failed').read_text().strip() for s in failed)})")
        missing = [s for s in slugs if not (d / f"{s}.ipynb").exists()]
        if not missing:
            return d
        if time.perf_counter() - t0 > NBVAL_WAIT_S:
            pytest.fail(f"nbval had not finished {', '.join(missing)} after {NBVAL_WAIT_S} s")
        time.sleep(5)


@pytest.fixture(scope="module")
def built_book(request, swept_build):
    """The HTML book (``python -m lib build --no-execute``) from the chapters nbval executed in this
    session at seed 0, with their ledgers; the robustness page shows the sweep above. A chapter
    whose nbval cells are not part of this session (``pytest tests/test_book.py`` alone) is
    executed here with ``python -m lib run``."""
    b, res, _, _ = swept_build
    assert res.returncode == 0, "the sweep failed: " + res.stdout[-4000:] + res.stderr[-2000:]
    in_session = {Path(str(it.path)).stem for it in request.session.items if isinstance(it, IPyNbCell)}
    by_nbval = [s for s in chapters.CHAPTERS if s in in_session]
    if others := [s for s in chapters.CHAPTERS if s not in in_session]:
        ran = cli("run", *others, build_dir=b, timeout=3600)
        assert ran.returncode == 0, ran.stdout + ran.stderr
    src = _await_nbval(by_nbval)
    for d in ("executed", "ledger"):
        (b / d).mkdir(exist_ok=True)
    for s in by_nbval:
        shutil.copy(src / f"{s}.ipynb", b / "executed" / f"{s}.ipynb")
        for led in (build_dir() / "ledger").glob(f"{s}.*json"):
            if led.name in (f"{s}.json", f"{s}.inventory.json"):
                shutil.copy(led, b / "ledger" / led.name)
    built = cli("build", "--no-execute", build_dir=b)
    assert built.returncode == 0, built.stdout + built.stderr + (b / "jupyter-book.log").read_text()
    return b


def test_the_sweep_gives_every_claim_one_verdict_at_two_unseen_seeds(swept_build):
    """The sweep path itself, on a LocalCluster of two workers: the swept chapters at seeds 1 and 2
    (nbval runs seed 0). Fails when a job fails, a check fails, or the robustness ledger finds a
    claim whose verdict differs between the seeds."""
    b, res, wall, seeds = swept_build
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
    assert "LocalCluster, 2 worker(s) x 1 torch thread(s)" in res.stdout
    rob = json.loads((b / "sweep" / "quick" / "robustness.json").read_text())
    assert rob["ok"] and rob["seeds"] == list(seeds) and rob["chapters"] == list(SWEEP_CHAPTERS)
    assert not rob["failed_jobs"] and not rob["inconsistent"]
    n_records = 0
    for seed in seeds:
        for slug in SWEEP_CHAPTERS:
            d = b / "sweep" / "quick" / f"seed-{seed}"
            assert (d / f"{slug}.ipynb").exists()
            recs = json.loads((d / "ledger" / f"{slug}.json").read_text())
            assert recs and all(r["seed"] == seed and r["passed"] for r in recs)
            n_records += len(recs)
    # one status per (claim, seed): every record of every job is in the robustness ledger
    assert sum(len(c["status"]) for c in rob["claims"]) == n_records
    assert all(set(c["status"].values()) <= set(sweep.VERDICTS) - {"FAILED", "missing"} for c in rob["claims"])
    print(f"sweep of {len(SWEEP_CHAPTERS)} chapters x {len(seeds)} seeds: {wall:.0f} s wall, "
          f"jobs' own time {rob['sum_job_wall_s']:.0f} s")


def test_sweep_resumes_without_rerunning(swept_build):
    """A second call finds every job done with the same parameters and runs nothing."""
    b, res, _, seeds = swept_build
    assert res.returncode == 0
    again = cli("sweep", *SWEEP_CHAPTERS, "--seeds", ",".join(map(str, seeds)), "--workers", "2", "--no-progress",
                build_dir=b, timeout=300)
    n = len(SWEEP_CHAPTERS) * len(seeds)
    assert again.returncode == 0 and f"{n} already done, 0 to run" in again.stdout


def test_build_html_book(built_book):
    """`python -m lib build --no-execute` on nbval's chapters: the HTML without warnings, every page present."""
    b = built_book
    html = b / "html"
    pages = ["index.html", "book/intro.html", "book/ledger.html", "book/errata.html", "book/bibliography.html"]
    for page in pages + [f"book/{slug}.html" for slug in chapters.CHAPTERS]:
        assert (html / page).exists(), page
    for slug in chapters.CHAPTERS:                                       # each chapter offers its notebook
        page = (html / "book" / f"{slug}.html").read_text()
        assert f'href="../_sources/book/{slug}.ipynb"' in page
        assert (html / "_sources" / "book" / f"{slug}.ipynb").exists()
        assert "thebe" not in page                                       # no live-code CDN script
    prelim = (html / "book" / "preliminaries.html").read_text()
    assert prelim.count("<img") >= 2                                     # both figures
    assert "Traceback" not in prelim and "output traceback" not in prelim  # no execution error shown
    assert "confirmed" in prelim                                         # the glued claims table
    assert "prelim-plain-variance" in prelim                             # prf directives rendered
    ledger = (html / "book" / "ledger.html").read_text()
    assert ledger.count("<tr") > len(json.loads((b / "ledger" / "preliminaries.json").read_text()))
    robust = (html / "book" / "robustness.html").read_text()
    assert "seeds 1, 2" in robust and "No seed sweep has been run" not in robust       # the page shows the sweep
    assert "chapters preliminaries, legendre-asymptotics" in robust
    assert "delving deep into rectifiers" in (html / "book" / "bibliography.html").read_text().lower()
    # math is typeset by MathJax served from the build itself, never from a CDN
    assert (html / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert 'src="../_static/mathjax/tex-chtml.js"' in prelim
    assert "cdn.jsdelivr.net/npm/mathjax" not in prelim and "mathjax@" not in prelim


def test_browser_renders_every_page_offline(built_book):
    """Headless Chromium on the built book: math typeset, figures loaded, tables filled, links
    resolve, nothing fetched from outside loopback; a screenshot per page in _build/screenshots/."""
    from lib.machinery import browser

    shots = ROOT / "_build" / "screenshots"
    results = browser.check_site(built_book / "html", shots)
    assert [r["page"] for r in results][:len(browser.PAGES)] == list(browser.PAGES)
    assert len(results) == len(browser.PAGES) + len(chapters.CHAPTERS)
    problems = {r["page"]: r["problems"] for r in results if r["problems"]}
    assert not problems, browser.report(results)
    for r in results:
        assert Path(r["screenshot"]).stat().st_size > 10_000
        if r["page"].startswith("book/") and r["page"][5:-5] in chapters.CHAPTERS:
            assert r["math_elements"] > 10 and r["images"] >= 2 and r["claim_rows"] > 0


def test_browser_check_catches_a_missing_figure_and_a_cdn(built_book, tmp_path):
    """The browser check must be able to fail: remove a figure, point MathJax at a CDN."""
    import shutil

    from lib.machinery import browser

    site = tmp_path / "html"
    shutil.copytree(built_book / "html", site)
    page = site / "book" / "preliminaries.html"
    text = page.read_text()
    img = re.search(r'<img[^>]+src="([^"]+)"', text).group(1)
    (page.parent / img).unlink()
    page.write_text(text.replace('src="../_static/mathjax/tex-chtml.js', 'src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js'))
    res = {r["page"]: r["problems"] for r in browser.check_site(site, tmp_path / "shots")}
    probs = " ".join(res["book/preliminaries.html"])
    assert "images that did not load" in probs
    assert "requests leaving loopback" in probs and "cdn.jsdelivr.net" in probs
    assert "MathJax did not load" in probs
    assert not res["book/skilling-moments.html"]


