"""lib.machinery.sweep: seeds x chapters on dask.distributed, resume, and the robustness ledger."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.machinery import chapters, sweep

ROOT = Path(__file__).resolve().parent.parent


def test_parse_seeds():
    assert sweep.parse_seeds("0-3") == [0, 1, 2, 3]
    assert sweep.parse_seeds("1,3,101-103") == [1, 3, 101, 102, 103]
    for bad in ("", "a", "3-1", "-1", "1,,x"):
        with pytest.raises(ValueError, match="--seeds"):
            sweep.parse_seeds(bad)


def _fake_job(profile, slug, seed, statuses, measured):
    sweep._store({"chapter": slug, "seed": seed, "profile": profile, "params": {}, "ok": True, "error": "", "wall_s": 1.0,
                  "job_wall_s": 1.0, "notebook": "{}",
                  "ledger": [{"claim": c, "source": "s", "statement": "x", "kind": "statistical", "status": st,
                              "measured": measured, "expected": 0.0, "paper_value": None}
                             for c, st in statuses.items()]})


def test_robustness_flags_a_verdict_that_differs(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_BUILD_DIR", str(tmp_path / "_build"))
    _fake_job("quick", "preliminaries", 1, {"a": "confirmed", "b": "confirmed"}, 1.0)
    _fake_job("quick", "preliminaries", 2, {"a": "confirmed", "b": "FAILED"}, 3.0)
    rob = sweep.robustness("quick", ["preliminaries"], [1, 2])
    assert rob["inconsistent"] == ["preliminaries:b"] and not rob["ok"]
    a = next(c for c in rob["claims"] if c["claim"] == "a")
    assert a["consistent"] and a["measured"]["mean"] == 2.0 and a["measured"]["min"] == 1.0 and a["measured"]["max"] == 3.0
    assert json.loads((tmp_path / "_build" / "sweep" / "quick" / "robustness.json").read_text())["inconsistent"] == ["preliminaries:b"]
    # a seed whose job never ran is a failed job, and its claims are missing there
    rob = sweep.robustness("quick", ["preliminaries"], [1, 2, 3])
    assert "preliminaries seed 3" in rob["failed_jobs"] and "preliminaries:a" in rob["inconsistent"]


def test_bad_sweep_arguments_fail_fast(tmp_path):
    env = dict(os.environ, BOOK_BUILD_DIR=str(tmp_path / "_build"))
    for args, match in ((["--seeds", "x"], "--seeds"), (["-p", "depth", "-1"], "depth"), (["-p", "seed", "3"], "--seeds")):
        res = subprocess.run([sys.executable, "-m", "lib", "sweep", "preliminaries", *args], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and match in res.stderr and "Traceback" not in res.stderr


def test_from_sweep_needs_a_finished_seed(tmp_path):
    env = dict(os.environ, BOOK_BUILD_DIR=str(tmp_path / "_build"))
    res = subprocess.run([sys.executable, "-m", "lib", "build", "--from-sweep", "7"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--from-sweep 7" in res.stderr and "python -m lib sweep --seeds 7" in res.stderr


def test_robustness_page_pieces(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_BUILD_DIR", str(tmp_path / "_build"))
    assert sweep.latest() is None and "No seed sweep has been run" in sweep.headline(None)
    _fake_job("quick", "preliminaries", 1, {"a": "confirmed"}, 1.0)
    _fake_job("quick", "preliminaries", 2, {"a": "not reproduced"}, 2.0)
    sweep.robustness("quick", ["preliminaries"], [1, 2])
    rob = sweep.latest()
    assert "0 of 1 claims" in sweep.headline(rob) and "(chapters preliminaries only)" in sweep.headline(rob)
    assert "only)" not in sweep.headline(dict(rob, chapters=list(chapters.CHAPTERS)))
    assert "| preliminaries | `a` | confirmed ×1, not reproduced ×1 | **no** |" in sweep.markdown_table(rob)
    fig = sweep.heatmap(rob)
    assert fig.axes[0].collections[0].get_array().size == 2


def test_heatmap_collapses_table_cells(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_BUILD_DIR", str(tmp_path / "_build"))
    for seed, last in ((1, "not reproduced"), (2, "FAILED")):
        _fake_job("quick", "preliminaries", seed, {"a": "confirmed", "t:x": "confirmed", "t:y": "not reproduced", "u:z": last}, 1.0)
    rob = sweep.robustness("quick", ["preliminaries"], [1, 2])
    labels, rows = sweep.heat_rows(rob)
    assert labels == ["preliminaries: a", "preliminaries: t (2 cells)", "preliminaries: u (1 cells)"]
    assert rows == [["confirmed", "confirmed"], [sweep.MIXED, sweep.MIXED], ["not reproduced", "FAILED"]]
    assert sweep.heatmap(rob).axes[0].collections[0].get_array().size == 6


def test_a_resumed_sweep_keeps_the_timing_of_the_run_that_did_the_jobs(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_BUILD_DIR", str(tmp_path / "_build"))
    for seed in (1, 2):
        _fake_job("quick", "preliminaries", seed, {"a": "confirmed"}, 1.0)
    sweep.robustness("quick", ["preliminaries"], [1, 2], sweep_wall_s=5.0, workers=2)
    rob = sweep.run(["preliminaries"], [1, 2], progress=False, out=open(os.devnull, "w"))   # every job done: nothing runs
    assert rob["ok"] and rob["sweep_wall_s"] == 5.0 and rob["workers"] == 2
    rob = sweep.run(["preliminaries"], [1], progress=False, out=open(os.devnull, "w"))      # another sweep: no timing
    assert rob["sweep_wall_s"] is None


def test_job_environment_drops_the_dask_worker_malloc_setting(monkeypatch, tmp_path):
    from lib.machinery import sweep as SW

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.setenv("SOME_USER_SETTING", "kept")
    env = SW.job_environment(tmp_path / "_build", 2, {"BOOK_MUTATION": "m"})
    assert "MALLOC_TRIM_THRESHOLD_" not in env and env["SOME_USER_SETTING"] == "kept"
    assert env["OMP_NUM_THREADS"] == "2" and env["BOOK_MUTATION"] == "m" and env["BOOK_BUILD_DIR"].endswith("_build")
