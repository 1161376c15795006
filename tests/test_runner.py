"""The papermill runner and the HTML build, end to end, in throw-away build folders."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from lib.machinery import chapters
from lib.machinery import runner

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, build_dir=None, timeout=1800, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    if build_dir is not None:
        env["BOOK_BUILD_DIR"] = str(build_dir)
    return subprocess.run([sys.executable, "-m", "lib", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("slug", list(chapters.CHAPTERS))
def test_parameters_cell_matches_registry(slug):
    names = runner.parameters_cell_names(runner.chapter_source(slug))
    assert names[:3] == ["profile", "device", "seed"]
    assert tuple(names[3:]) == chapters.get(slug).knob_names


def test_parse_value():
    assert runner.parse_value("3") == 3 and runner.parse_value("0.5") == 0.5
    assert runner.parse_value("None") is None and runner.parse_value("True") is True
    assert runner.parse_value("cuda") == "cuda"
    assert runner.parse_value("8,20") == "8,20" and runner.parse_value("0.1,0.5") == "0.1,0.5"   # list knobs are strings


def test_list_shows_every_knob():
    res = cli("list")
    assert res.returncode == 0
    for spec in chapters.CHAPTERS.values():
        assert spec.slug in res.stdout
        for k in spec.knobs:
            assert k.name in res.stdout


@pytest.mark.parametrize("args,match", [
    (["-p", "depth", "-1"], "depth"),
    (["-p", "depht", "3"], "unknown parameter"),
    (["--profile", "huge"], "profile"),
    (["-p", "device", "tpu"], "device"),
])
def test_bad_parameters_fail_before_any_kernel(tmp_path, args, match):
    t0 = time.perf_counter()
    res = cli("run", "preliminaries", *args, build_dir=tmp_path / "_build")
    assert res.returncode == 2
    assert match in res.stderr and "Traceback" not in res.stderr
    assert time.perf_counter() - t0 < 30
    assert not (tmp_path / "_build" / "executed" / "preliminaries.ipynb").exists()


def test_failing_notebook_leaves_no_half_written_output(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_BUILD_DIR", str(tmp_path / "_build"))
    src = tmp_path / "broken.md"
    src.write_text("---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n  name: python3\n"
                   "  display_name: Python 3\n---\n\n```{code-cell} ipython3\nx = 1\n```\n\n"
                   "```{code-cell} ipython3\nraise RuntimeError('boom')\n```\n")
    out = tmp_path / "_build" / "executed" / "broken.ipynb"
    out.parent.mkdir(parents=True)
    out.write_text("stale")
    ok, wall, err = runner._execute(src, out, None)
    assert not ok and "boom" in err
    assert not out.exists()
    failed = nbformat.read(out.parent / "broken.failed.ipynb", as_version=4)  # complete, valid notebook
    assert any("boom" in str(o) for c in failed.cells for o in c.get("outputs", []))
    assert not list(out.parent.glob(".*"))  # no temporary files left


def test_rerun_with_other_seed_and_knobs(tmp_path):
    """Papermill reruns the preliminaries with -p seed 3 and changed knobs; its checks still pass.
    BOOK_THREADS reaches the kernel (lib.machinery.threads), and its header says so."""
    b = tmp_path / "_build"
    res = cli("run", "preliminaries", "-p", "seed", "3", "-p", "depth", "8", "-p", "n_nets", "500", build_dir=b,
              env_extra={"BOOK_THREADS": "1"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "preliminaries" in res.stdout and "ok" in res.stdout
    recs = json.loads((b / "ledger" / "preliminaries.json").read_text())
    assert len(recs) >= 8 and all(r["passed"] and r["seed"] == 3 for r in recs)
    timings = json.loads((b / "executed" / "timings.json").read_text())
    assert timings["preliminaries"]["status"] == "ok" and timings["preliminaries"]["wall_s"] > 0
    nb = nbformat.read(b / "executed" / "preliminaries.ipynb", as_version=4)
    text = "".join(str(o) for c in nb.cells for o in c.get("outputs", []))
    assert "depth=8" in text and "seed=3" in text and "threads=1 " in text


@pytest.fixture(scope="module")
def built_book(swept_build):
    """The HTML book built from the chapters the seed sweep executed at seed 1 (`python -m lib build
    --from-sweep 1`: every chapter was executed through `python -m lib run` inside the sweep, and is
    not executed again), shared by the build and browser tests. The robustness page shows that sweep."""
    b, res, _, _ = swept_build
    assert res.returncode == 0, "the sweep failed: " + res.stdout[-4000:]
    built = cli("build", "--from-sweep", "1", build_dir=b)
    assert built.returncode == 0, built.stdout + built.stderr + (b / "jupyter-book.log").read_text()
    return b


def test_build_html_book(built_book):
    """`python -m lib build`: executes, builds the HTML without warnings, every page present."""
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
    assert "at seed 1 only" in robust and "No seed sweep has been run" not in robust   # the page shows the sweep
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


def test_injected_parameters_cell_is_removed_from_the_html(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("seed = 3", metadata={"tags": ["injected-parameters"]}),
                                         nbformat.v4.new_code_cell("x = 1")])
    p = tmp_path / "nb.ipynb"
    nbformat.write(nb, p)
    runner._hide_injected_parameters(p)
    cells = nbformat.read(p, as_version=4).cells
    assert cells[0].metadata.tags == ["injected-parameters", "remove-cell"] and "tags" not in cells[1].metadata
