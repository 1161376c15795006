"""The built HTML book in a real browser (headless Chromium driven by Playwright), offline.

:func:`check_site` serves ``_build/html`` on loopback, opens the intro, the ledger, the errata and
every chapter page, and checks what a reader would see:

* every request stays on loopback (MathJax, fonts and figures come from the build, never from a
  CDN); any other request is blocked and reported;
* MathJax has typeset the page (``mjx-container`` elements present, no raw ``$$`` or ``\\(`` left);
* every image has loaded (``complete`` and ``naturalWidth > 0``);
* no execution error is shown (no ``traceback`` output, no ``FAILED`` claim);
* chapter pages show a "Claims at a glance" table with rows, the ledger page a table with a row
  per recorded claim;
* every internal link (including citations and the notebook download) points to an existing file
  and, when it has a ``#fragment``, to an element with that id;
* no JavaScript error is logged.

A full-page screenshot of every page is saved (``_build/screenshots/<page>.png`` by default).
Command line: ``python -m lib check-html [--html DIR] [--screenshots DIR]``.
"""

from __future__ import annotations

import http.server
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

from . import chapters
from .checks import build_dir

#: the smallest display scale of a figure (shown width / drawn width): the book draws at 110 dpi with
#: 11-point tick labels (about 17 px), so below 0.55 they fall under 9 px on screen
MIN_FIGURE_SCALE = 0.55

#: measured in the page: elements of the article whose content is wider than their box (cut off,
#: or scrolled sideways: a table, a code block or an output), and every figure's display scale
LAYOUT_JS = """() => {
  const art = document.querySelector('article') || document.querySelector('main') || document.body;
  const right = art.getBoundingClientRect().right;
  const overflow = [];
  for (const el of art.querySelectorAll('table, pre, img, .cell_output, .pst-scrollable-table-container, .output')) {
    const wide = el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0;
    const out = el.getBoundingClientRect().right > right + 1;
    if (wide || out) {
      const txt = (el.innerText || el.getAttribute('src') || '').trim().split('\\n')[0].slice(0, 60);
      overflow.push(`${el.tagName.toLowerCase()}${el.className ? '.' + String(el.className).split(' ')[0] : ''} `
                    + `(${el.scrollWidth} px in ${el.clientWidth} px): ${txt}`);
    }
  }
  const figures = Array.from(art.querySelectorAll('img')).filter(i => i.naturalWidth > 0)
    .map(i => [i.getAttribute('src'), i.getBoundingClientRect().width / i.naturalWidth]);
  return {overflow, figures, width: art.getBoundingClientRect().width};
}"""

PAGES = ("book/intro.html", "book/ledger.html", "book/robustness.html", "book/errata.html")


def chromium_path() -> str:
    """The system Chromium (Debian's ``chromium`` package); a clear error when it is missing."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    raise FileNotFoundError(
        "no Chromium browser found on PATH: install Debian's package (`apt-get install chromium`), "
        "which .ci/run does on CI; the browser test needs it"
    )


class _Server:
    def __init__(self, root: Path):
        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=str(root), **k)

            def log_message(self, *a):  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _ids(html_file: Path, cache: dict) -> set[str]:
    if html_file not in cache:
        text = html_file.read_text(errors="replace")
        cache[html_file] = set(re.findall(r'\bid="([^"]+)"', text)) | set(re.findall(r'\bname="([^"]+)"', text))
    return cache[html_file]


def _check_links(root: Path, page: str, hrefs: list[str], cache: dict) -> list[str]:
    """Broken internal links of ``page``: missing files or missing ``#fragment`` targets."""
    broken = []
    page_dir = (root / page).parent
    for href in hrefs:
        url = urlparse(href)
        if url.scheme in ("http", "https", "mailto") and not url.netloc.startswith("127.0.0.1"):
            continue                                            # external links are not followed offline
        if url.scheme in ("http", "https"):
            path, frag = urldefrag(url.path + ("#" + url.fragment if url.fragment else ""))
            target = root / unquote(path).lstrip("/")
        else:
            path, frag = urldefrag(href)
            target = (page_dir / unquote(path)) if path else root / page
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            broken.append(f"{href} (no file {target.relative_to(root) if target.is_relative_to(root) else target})")
        elif frag and target.suffix == ".html" and unquote(frag) not in _ids(target, cache):
            broken.append(f"{href} (no element with id {frag!r})")
    return broken


def _loopback_only(base: str, external: list[str]):
    """A Playwright route handler that lets loopback requests through and blocks (and records)
    every other one."""
    def handler(route, request=None):
        url = route.request.url
        if url.startswith(base):
            route.continue_()
        else:
            external.append(url)
            route.abort()
    return handler


def check_site(html_dir: str | Path | None = None, screenshot_dir: str | Path | None = None,
               timeout_ms: int = 60000) -> list[dict]:
    """Open every page in headless Chromium; return one result dict per page (``problems``
    lists what failed, empty when the page is fine)."""
    from playwright.sync_api import sync_playwright

    root = Path(html_dir) if html_dir is not None else build_dir() / "html"
    if not (root / "index.html").exists():
        raise FileNotFoundError(f"no built book at {root}: run `python -m lib build` first")
    shots = Path(screenshot_dir) if screenshot_dir is not None else build_dir() / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    pages = list(PAGES) + [f"book/{slug}.html" for slug in chapters.CHAPTERS]
    results, cache = [], {}
    with _Server(root) as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(),
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            for page_name in pages:
                problems: list[str] = []
                if not (root / page_name).exists():
                    results.append({"page": page_name, "problems": [f"missing page {page_name}"]})
                    continue
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                external, js_errors = [], []

                page.route("**/*", _loopback_only(srv.base, external))
                page.on("pageerror", lambda e, js_errors=js_errors: js_errors.append(str(e)))
                page.goto(srv.base + page_name, wait_until="load", timeout=timeout_ms)
                mathjax = page.evaluate(
                    "() => window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => true) : false")
                n_math = page.locator("mjx-container").count()
                text = page.inner_text("body")
                imgs = page.evaluate("() => Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
                hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))")
                n_rows = page.evaluate("""() => Array.from(document.querySelectorAll('table')).map(t => [
                    t.innerText.toLowerCase().includes('where in the paper') || t.innerText.toLowerCase().includes('tolerance'),
                    t.querySelectorAll('tbody tr').length]).filter(x => x[0]).reduce((s, x) => s + x[1], 0)""")
                tracebacks = page.locator(".output.traceback, .output.error, div.traceback").count()
                if external:
                    problems.append(f"requests leaving loopback (blocked): {sorted(set(external))[:5]}")
                if js_errors:
                    problems.append(f"JavaScript errors: {js_errors[:3]}")
                needs_math = page_name[5:-5] in chapters.CHAPTERS or page_name == "book/errata.html"
                if needs_math and not mathjax:
                    problems.append("MathJax did not load or did not finish")
                if "$$" in text or "\\(" in text:
                    problems.append("raw TeX ($$ or \\() left in the rendered text")
                is_chapter = page_name[5:-5] in chapters.CHAPTERS
                if (is_chapter or page_name == "book/errata.html") and n_math == 0:
                    problems.append("no typeset math on a page that has equations")
                bad_imgs = [src for src, ok, w in imgs if not ok or w == 0]
                if bad_imgs:
                    problems.append(f"images that did not load: {bad_imgs[:5]}")
                if tracebacks or "Traceback (most recent call last)" in text:
                    problems.append("an execution error is shown")
                failed_cells = page.evaluate("() => Array.from(document.querySelectorAll('td')).filter(td => td.innerText.trim() === 'FAILED').length")
                if failed_cells:
                    problems.append(f"{failed_cells} FAILED claim(s) shown")
                if (is_chapter or page_name == "book/ledger.html") and n_rows == 0:
                    problems.append("no claims table rows")
                layout = page.evaluate(LAYOUT_JS)
                for where in layout["overflow"]:
                    problems.append(f"overflows its container: {where}")
                small = [f"{src} shown at {scale:.2f}x" for src, scale in layout["figures"] if scale < MIN_FIGURE_SCALE]
                if small:
                    problems.append(f"figures shrunk below {MIN_FIGURE_SCALE}x (labels unreadable): {small[:5]}")
                broken = _check_links(root, page_name, hrefs, cache)
                if broken:
                    problems.append(f"broken internal links: {broken[:5]}")
                name = page_name.replace("book/", "").replace(".html", "")
                page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
                page.close()
                results.append({"page": page_name, "math_elements": n_math, "images": len(imgs), "layout": layout,
                                "claim_rows": n_rows, "links": len(hrefs), "problems": problems,
                                "screenshot": str(shots / f"{name}.png")})
        finally:
            browser.close()
    return results


def report(results: list[dict]) -> str:
    lines = []
    for r in results:
        status = "ok" if not r["problems"] else "PROBLEMS"
        lines.append(f"{r['page']:<32} {status:<9} math {r.get('math_elements', 0):>4}  images {r.get('images', 0):>3}  "
                     f"claim rows {r.get('claim_rows', 0):>4}  links {r.get('links', 0):>4}")
        lines += [f"    - {p}" for p in r["problems"]]
    return "\n".join(lines)
