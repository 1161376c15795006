"""Execute chapters headless with papermill and build the HTML book (``python -m lib``).

``run``: every chapter (or the ones named) is converted from its jupytext Markdown with
jupytext, executed by papermill with the profile and ``-p`` parameters into
``_build/executed/<slug>.ipynb`` (written to a temporary name and renamed only when complete,
so an interrupted run never leaves a half-written notebook), timed, and recorded in
``_build/executed/timings.json``. A failing chapter is reported and the run goes on; the exit
status is non-zero if any chapter failed. Parameters are validated before any kernel starts.

``build``: ``run``, then the book pages are executed (the ledger page reads every chapter's
ledger), staged under ``_build/src`` with the executed notebooks in place of the Markdown
sources, and Jupyter Book 1.x builds ``_build/html`` from them without re-executing, warnings as
errors.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable
from unittest import mock

from . import chapters, threads
from .checks import ROOT, build_dir
from .spec import resolve
from .runtime import resolve_device

BOOK = ROOT / "book"
PAGES = ("ledger", "robustness", "errata")  # notebook pages that are not chapters, executed after them, without parameters
COMMON = ("profile", "device", "seed")


def executed_dir() -> Path:
    return build_dir() / "executed"


def parse_value(text: str) -> Any:
    """A ``-p`` value: a Python literal (``3``, ``0.5``, ``None``, ``True``, ``'a'``) or a bare string.
    A comma-separated list (``-p depths 8,20``) stays the string the chapters' list knobs take
    (Python would read it as a tuple, which no knob accepts)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return text if isinstance(value, (tuple, list)) else value


def chapter_source(slug: str) -> Path:
    return BOOK / f"{slug}.md"


def parameters_cell_names(path: Path) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters`` (in order)."""
    import jupytext

    nb = jupytext.read(path, fmt="md:myst")
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            names = []
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign):
                    names += [t.id for t in node.targets if isinstance(t, ast.Name)]
            return names
    raise ValueError(f"{path} has no code cell tagged 'parameters'")


#: arguments for every chapter's kernel. ipykernel logs "Kernel is running over TCP without
#: encryption" at WARNING level for every TCP kernel; on the loopback interface papermill uses that
#: is harmless, and it alarmed readers of every run's output, so the kernel application logs errors
#: only. (Switching the kernels to IPC sockets instead made concurrent sweep jobs, which start
#: kernels in the same folder, collide on socket paths: "Invalid Signature".) Warnings raised by a
#: chapter's own code are Python warnings in the cell outputs and are not affected.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


def preflight(slugs: Iterable[str], profile: str, params: dict[str, Any]) -> None:
    """Validate every chapter's parameters before starting any kernel (``ValueError`` otherwise)."""
    for slug in slugs:
        spec = chapters.get(slug)
        if not chapter_source(slug).exists():
            raise ValueError(f"chapter {slug!r} is registered but {chapter_source(slug)} does not exist")
        knobs = {k: v for k, v in params.items() if k not in COMMON}
        resolve(spec, profile, params.get("seed", 0), {k.name: knobs.get(k.name) for k in spec.knobs} | knobs)
        resolve_device(params.get("device", "auto"))


def _execute(src: Path, out: Path, params: dict[str, Any] | None) -> tuple[bool, float, str]:
    """Execute ``src`` (jupytext Markdown) into ``out`` atomically. Returns (ok, seconds, error)."""
    import jupytext
    import papermill as pm

    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.name[: -len(".ipynb")]
    nb_in = out.parent / f".{stem}.input.ipynb"
    partial = out.parent / f".{stem}.partial.ipynb"
    failed = out.parent / f"{stem}.failed.ipynb"
    jupytext.write(jupytext.read(src, fmt="md:myst"), nb_in)
    t0 = time.perf_counter()
    err = ""
    try:
        with mock.patch.dict(os.environ, threads.env(threads.in_process())):   # the kernel inherits the thread rule
            pm.execute_notebook(str(nb_in), str(partial), parameters=params or {}, kernel_name="python3",
                                cwd=str(src.parent), progress_bar=sys.stderr.isatty(), log_output=False,
                                extra_arguments=KERNEL_ARGS)
        ok = True
    except pm.PapermillExecutionError as e:
        ok, err = False, f"{e.ename}: {e.evalue}"
    except Exception as e:  # kernel died, bad notebook, ...: report, do not crash the whole run
        ok, err = False, f"{type(e).__name__}: {e}"
    wall = time.perf_counter() - t0
    nb_in.unlink(missing_ok=True)
    if ok:
        _hide_injected_parameters(partial)
        os.replace(partial, out)
        failed.unlink(missing_ok=True)
    else:
        out.unlink(missing_ok=True)  # never leave a stale success beside a failure
        if partial.exists():
            os.replace(partial, failed)
    return ok, wall, err


def _hide_injected_parameters(path: Path) -> None:
    """Tag papermill's "injected-parameters" cell ``remove-cell`` so the HTML book does not show it:
    the setup cell's header line already prints the parameters the chapter ran with."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell["metadata"]["tags"] = [*tags, "remove-cell"]
            changed = True
    if changed:
        nbformat.write(nb, path)


def _update_timings(entries: dict[str, dict]) -> None:
    path = executed_dir() / "timings.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(entries)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def run(slugs: list[str] | None = None, profile: str = "quick", params: dict[str, Any] | None = None,
        out=sys.stdout) -> bool:
    """Execute chapters; print one line per chapter; return True when all passed."""
    slugs = list(slugs or chapters.CHAPTERS)
    params = dict(params or {})
    for name in params:
        if name == "profile":
            raise ValueError("give the profile with --profile, not -p profile")
    preflight(slugs, profile, params)
    all_ok, timings = True, {}
    for slug in slugs:
        ok, wall, err = _execute(chapter_source(slug), executed_dir() / f"{slug}.ipynb", {"profile": profile, **params})
        all_ok &= ok
        status = "ok" if ok else "FAILED"
        print(f"{slug:<24} {status:<7} {wall:8.1f} s" + (f"   {err.splitlines()[0][:300]}" if err else ""), file=out, flush=True)
        timings[slug] = {"status": status, "wall_s": round(wall, 2), "profile": profile, "params": {k: repr(v) for k, v in params.items()}, "error": err[:2000]}
        _update_timings(timings)
    return all_ok


def build(slugs: list[str] | None = None, profile: str = "quick", params: dict[str, Any] | None = None,
          execute: bool = True, out=sys.stdout) -> bool:
    """Run the chapters (unless ``execute=False``), execute the ledger page, stage and build HTML."""
    if build_dir().name != "_build":
        raise ValueError(f"BOOK_BUILD_DIR={build_dir()} must be a folder named _build "
                         "(Jupyter Book writes <parent>/_build/html)")
    ok = run(slugs, profile, params, out=out) if execute else True
    for page in PAGES:
        page_ok, wall, err = _execute(BOOK / f"{page}.md", executed_dir() / f"{page}.ipynb", None)
        print(f"{page + ' (page)':<24} {'ok' if page_ok else 'FAILED':<7} {wall:8.1f} s {err[:300]}", file=out, flush=True)
        ok &= page_ok
    try:
        src = stage()
    except RuntimeError as e:
        print(f"{'html':<24} FAILED   {e}", file=out, flush=True)
        return False
    # Jupyter Book writes <path-output>/_build/html.
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(src), "--path-output", str(build_dir().parent),
           "--all", "-W", "-n", "--keep-going", "--builder", "html"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=src, capture_output=True, text=True)
    log = build_dir() / "jupyter-book.log"
    log.write_text(res.stdout + res.stderr)
    html = build_dir() / "html" / "index.html"
    built = res.returncode == 0 and html.exists()
    print(f"{'html':<24} {'ok' if built else 'FAILED':<7} {time.perf_counter() - t0:8.1f} s   "
          + (f"open {html}" if built else f"see {log}:\n" + _tail(res.stdout + res.stderr)), file=out, flush=True)
    return ok and built


def _tail(text: str, n: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def stage() -> Path:
    """Copy the book's sources into ``_build/src`` with executed notebooks for chapters and pages.

    Chapters that are in the table of contents but were not executed successfully are an error:
    the HTML book never shows an unexecuted chapter.
    """
    import yaml

    src = build_dir() / "src"
    if src.exists():
        shutil.rmtree(src)
    (src / "book").mkdir(parents=True)
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    cfg.setdefault("execute", {})["execute_notebooks"] = "off"
    (src / "_config.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    shutil.copy(ROOT / "_toc.yml", src / "_toc.yml")
    shutil.copy(ROOT / "references.bib", src / "references.bib")
    shutil.copytree(ROOT / "_static", src / "_static")          # the book's CSS (page layout)
    notebooks = set(chapters.CHAPTERS) | set(PAGES)
    missing = []
    for md in BOOK.glob("*.md"):
        slug = md.stem
        if slug in notebooks:
            nb = executed_dir() / f"{slug}.ipynb"
            if not nb.exists():
                missing.append(slug)
                continue
            shutil.copy(nb, src / "book" / f"{slug}.ipynb")
        else:
            shutil.copy(md, src / "book" / md.name)
    for extra in BOOK.iterdir():
        if extra.is_dir() and not extra.name.startswith((".", "_")):
            shutil.copytree(extra, src / "book" / extra.name)
    if missing:
        raise RuntimeError(f"no successfully executed notebook for {', '.join(sorted(missing))}: "
                           "run `python -m lib run` first (or fix the failing chapters)")
    return src
