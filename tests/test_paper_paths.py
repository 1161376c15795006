"""Every chapter's ``paper`` profile through its real code paths, at tiny sizes, on the CPU.

A GPU run of the paper profile is rare and short, so it must not be the first to execute a code
path. Here each chapter runs with ``profile="paper"`` (every branch the profile selects, the CIFAR
datasets read from tiny files in the official python layout, Table 1's batch-norm rows at the paper's
10,000 points) with its size knobs overridden down to seconds. No claim is meant to hold at these
sizes, so the run is *paths only* (``BOOK_PATHS_ONLY=1``): a failing check is recorded, not raised,
and the test asserts that the notebook ran to its end and wrote a ledger of paper-profile records.
What it cannot catch: an error that only appears at the paper's sizes (memory, time).
"""

import json
import os
import subprocess
import sys

import pytest

from lib.machinery import chapters
from lib.nets import data
from lib.machinery.checks import PATHS_ONLY_ENV, ROOT

#: the knobs that shrink each chapter's paper profile to seconds (everything else: the paper's values)
TINY = {
    "preliminaries": dict(depth=2, width=4, n_nets=10, n_probes=10),
    "skilling-moments": dict(depth=3, width=8, n_probes=2, epochs=2, n_seeds=2, hessian_batch=20, exact_width=4, exact_nets=2,
                             fig4_nets=16, deep_nets=2),
    "legendre-asymptotics": dict(p_max=100, epochs=1, n_samples=100, n_nets=10),
    "path-sum-covariance": dict(width=8, depths="1,2", betas="0.1,0.5", n_networks=20, grid_size=16),
    "dilution-theorem": dict(depth=4, width=32, n_datasets=8, n_points=10_000, epochs=1),
    "noise-stability": dict(depths="5,8", n_seeds=2, epochs=1, twin_steps=1, n_experiments=100),
}


def test_every_chapter_has_tiny_paper_sizes():
    assert set(TINY) == set(chapters.CHAPTERS)
    for slug, knobs in TINY.items():
        spec = chapters.get(slug)
        for name, value in knobs.items():
            spec.knob(name).validate(value)                  # each override is a value the chapter accepts


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    # 300 training images: more than the paper's batch of 128 (Yu & Tomasi) and the 250 Hessian examples
    return data.write_tiny_cifar(tmp_path_factory.mktemp("data"), n_train=300, n_test=50)


@pytest.mark.parametrize("slug", sorted(TINY))
def test_paper_profile_runs_through_its_code_paths(slug, tiny_data, tmp_path):
    build = tmp_path / "_build"
    env = dict(os.environ, BOOK_BUILD_DIR=str(build), BOOK_DATA=str(tiny_data), **{PATHS_ONLY_ENV: "1"})
    args = [sys.executable, "-m", "lib", "run", slug, "--profile", "paper", "-p", "device", "cpu"]
    for name, value in TINY[slug].items():
        args += ["-p", name, str(value)]
    res = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    timing = json.loads((build / "executed" / "timings.json").read_text())[slug]
    assert res.returncode == 0 and timing["status"] == "ok", (timing.get("error"), res.stdout[-3000:], res.stderr[-3000:])
    assert timing["profile"] == "paper"
    records = json.loads((build / "ledger" / f"{slug}.json").read_text())
    assert records and all(r["profile"] == "paper" and r["paths_only"] for r in records)
    header = next(line for line in (build / "executed" / f"{slug}.ipynb").read_text().split("\\n") if f"[{slug}] profile=paper" in line)
    if "dataset" in chapters.get(slug).knob_names:                  # the paper's dataset, CIFAR, read from the tiny files
        assert " dataset=cifar" in header, header
