"""The papermill runner end to end, in throw-away build folders (the HTML build is tests/test_book.py)."""

import json
import os
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


def test_injected_parameters_cell_is_removed_from_the_html(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("seed = 3", metadata={"tags": ["injected-parameters"]}),
                                         nbformat.v4.new_code_cell("x = 1")])
    p = tmp_path / "nb.ipynb"
    nbformat.write(nb, p)
    runner._hide_injected_parameters(p)
    cells = nbformat.read(p, as_version=4).cells
    assert cells[0].metadata.tags == ["injected-parameters", "remove-cell"] and "tags" not in cells[1].metadata
