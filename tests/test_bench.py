"""A tiny run of the benchmark command, so that it cannot rot."""

import json
import os
import subprocess
import sys

from lib.machinery.checks import ROOT


def test_bench_tiny(tmp_path):
    env = dict(os.environ, BOOK_BUILD_DIR=str(tmp_path / "_build"))
    res = subprocess.run([sys.executable, "-m", "lib", "bench", "--size", "tiny", "--device", "cpu"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    rep = json.loads((tmp_path / "_build" / "bench" / "report.json").read_text())
    cpu = rep["devices"]["cpu"]
    assert cpu["ensemble"]["ratio"] > 0 and cpu["ensemble_batch"]["batch"] == 8
    assert cpu["bandwidth"]["bytes_per_s"] > 0 and 0 < cpu["ensemble"]["bandwidth_fraction"]   # the roofline row
    assert [h["label"] for h in cpu["hvp"]] == ["book quick (skilling-moments)", "paper N"]
    for h in cpu["hvp"]:                        # both HVP modes and every chunking, side by side, the book's among them
        # 16 is the CUDA setting (HVP_CHUNKS["cuda"]); it is timed on every device so the table compares like with like
        assert set(h["ratio_to_grad"]) == {"reverse/1", "reverse/2", "reverse/4", "reverse/8", "reverse/16", "reverse/all",
                                           "forward/1", "forward/4", "forward/16", "forward/all"}
        assert h["book"] == "reverse/4" and h["book_ratio"] == h["ratio_to_grad"]["reverse/4"] > 0
    assert cpu["moments"]["ours_hvps"] == 3 * 2 and cpu["moments"]["peer_hvps"] >= 1
    assert cpu["gsc"]["rows"] == 34 and cpu["gsc"]["float64"]["points_per_s"] > 0 and cpu["gsc"]["float32_speedup"] > 0
    assert cpu["memory"]["N"] > 0
    est = cpu["paper_estimates"]                             # every chapter: an estimate from the rates, or why not
    assert set(est) == {"preliminaries", "skilling-moments", "legendre-asymptotics", "path-sum-covariance",
                        "dilution-theorem", "noise-stability"}
    assert est["dilution-theorem"]["estimate_s"] > 0 and est["skilling-moments"]["estimate_s"] > 0
    assert est["noise-stability"]["estimate_s"] is None and "no benchmarked kernel" in est["noise-stability"]["basis"]
    assert rep["book"]["available"] is False                 # nothing was run in this build dir
    md = (tmp_path / "_build" / "bench" / "report.md").read_text()
    assert "HVP / gradient, paper N" in md and "of bandwidth" in md and "paper profile of skilling-moments" in md
    assert md in res.stdout


def test_bench_bad_size_is_a_clear_error():
    res = subprocess.run([sys.executable, "-m", "lib", "bench", "--size", "huge"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and "size 'huge'" in res.stderr
