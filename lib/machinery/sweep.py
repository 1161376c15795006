"""Seed sweeps on dask.distributed and the robustness ledger (``python -m lib sweep``).

A verdict of the book is only worth something if it does not depend on the seed. A sweep runs
every (chapter, seed) pair as its own job -- one ``python -m lib run`` of that chapter at that
seed, in a private build folder, in a fresh process -- on a dask.distributed cluster: a
:class:`distributed.LocalCluster` on this machine by default (``workers`` processes of one
thread each; every job's torch/OpenMP threads follow :mod:`lib.machinery.threads` -- cores // workers, or
``BOOK_THREADS`` -- so the jobs do not fight over the cores; the longest chapters start first), or an existing cluster reached by its scheduler address. With
``gpu=True`` each job asks the cluster for one unit of the worker resource ``GPU``: start the
workers of an existing cluster with ``--resources GPU=1``, one per GPU, each with its own
``CUDA_VISIBLE_DEVICES`` (on a local cluster the sweep starts one worker per visible GPU and
pins worker ``i`` to GPU ``i`` itself).

The job sends back the executed notebook, the chapter's ledger and its timing; the client writes
them under ``_build/sweep/<profile>/seed-<s>/`` (``<chapter>.ipynb`` or ``<chapter>.failed.ipynb``,
``ledger/<chapter>.json``, ``<chapter>.job.json``), so remote workers need no shared disk -- only
the same repository and packages. A job whose ``.job.json`` says it passed with the same
parameters is not run again (resume); a failing job is recorded and the others go on.

When the jobs are done :func:`robustness` reads every seed's ledgers and writes
``_build/sweep/<profile>/robustness.json``: per claim the verdict at each seed, the spread of the
measured quantity, and whether the verdict is the same at every seed. The sweep fails (exit
status 1) when any job failed or any claim's verdict differs between seeds; the book's
*robustness* page shows the latest sweep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from . import chapters, threads as threads_
from .checks import OUTCOMES, ROOT, build_dir

def job_priority(slug: str) -> int:
    """Dask priority of a chapter's jobs: its recorded quick wall time in seconds (higher runs
    first), so that the longest jobs start first and the short ones fill the gaps at the end."""
    return int(round(chapters.get(slug).quick_s))


def sweep_dir(profile: str) -> Path:
    return build_dir() / "sweep" / profile


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"1,3,5"``, ``"0-2,101-103"`` -> sorted distinct non-negative seeds."""
    seeds: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                seeds.update(range(lo, hi + 1))
            else:
                seeds.add(int(part))
        except ValueError:
            raise ValueError(f"--seeds {text!r}: use seeds and ranges of non-negative integers, e.g. 0-9 or 1,3,101-103") from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds {text!r}: use seeds and ranges of non-negative integers, e.g. 0-9 or 1,3,101-103")
    return sorted(seeds)


def _param_args(params: dict[str, Any]) -> list[str]:
    out = []
    for k, v in sorted(params.items()):
        out += ["-p", k, repr(v)]
    return out


#: variables that Dask's nanny sets for its worker processes (``distributed.nanny.pre-spawn-environ``)
#: and that a chapter's kernel must not inherit: ``MALLOC_TRIM_THRESHOLD_=65536`` makes glibc hand
#: freed memory back to the system at once, so torch's large temporaries are mapped and unmapped on
#: every step. Measured 2026-12-05 on the 2-core machine: 10 epochs of 12 30-layer nets on the digits
#: 3.1 s without it and 7.2 s with it; the skilling chapter 239 s through ``lib run`` and 727 s as a
#: sweep job before it was dropped.
WORKER_ONLY_ENV = ("MALLOC_TRIM_THRESHOLD_",)


def job_environment(build: Path, threads: int, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a job's ``python -m lib run``: this process's, less
    :data:`WORKER_ONLY_ENV`, with the job's build folder, ``PYTHONPATH`` pointing at this checkout's
    ``lib`` (not another installed copy), the thread rule for ``threads`` and ``extra_env``."""
    path = os.pathsep.join([str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    base = {k: v for k, v in os.environ.items() if k not in WORKER_ONLY_ENV}
    return dict(base, BOOK_BUILD_DIR=str(build), PYTHONPATH=path, **threads_.env(threads), **(extra_env or {}))


def run_job(slug: str, seed: int, profile: str, params: dict[str, Any], threads: int,
            pin_gpu: bool = False, extra_env: dict[str, str] | None = None) -> dict:
    """One (chapter, seed) job, run inside a Dask worker: ``python -m lib run`` in a fresh process
    with a private build folder and ``threads`` torch/OpenMP threads (with ``pin_gpu``, on the GPU
    whose index is the name of the local worker running it; ``extra_env`` is added to its
    environment, e.g. a mutation). Returns the executed (or failed) notebook as text, the ledger
    records, the chapter's wall time and the error line."""
    gpu_index = None
    if pin_gpu:
        from distributed import get_worker

        gpu_index = int(get_worker().name)
    with tempfile.TemporaryDirectory(prefix=f"sweep-{slug}-{seed}-") as tmp:
        bdir = Path(tmp) / "_build"
        env = job_environment(bdir, threads, extra_env)
        if gpu_index is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu_index)
        cmd = [sys.executable, "-m", "lib", "run", slug, "--profile", profile, *_param_args({**params, "seed": seed})]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        job_wall = time.perf_counter() - t0
        ex = bdir / "executed"
        nb = ex / f"{slug}.ipynb"
        failed_nb = ex / f"{slug}.failed.ipynb"
        ledger = bdir / "ledger" / f"{slug}.json"
        inventory = bdir / "ledger" / f"{slug}.inventory.json"
        timings = json.loads((ex / "timings.json").read_text()).get(slug, {}) if (ex / "timings.json").exists() else {}
        ok = res.returncode == 0 and nb.exists()
        error = timings.get("error") or ("" if ok else (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1])
        return {
            "chapter": slug, "seed": seed, "profile": profile, "params": {k: repr(v) for k, v in sorted(params.items())},
            "ok": ok, "error": error[:2000],
            "wall_s": round(float(timings.get("wall_s", job_wall)), 2), "job_wall_s": round(job_wall, 2),
            "notebook": (nb if ok else failed_nb).read_text() if (nb if ok else failed_nb).exists() else None,
            "ledger": json.loads(ledger.read_text()) if ledger.exists() else [],
            "inventory": json.loads(inventory.read_text()) if inventory.exists() else None,
            "host": os.uname().nodename, "threads": threads,
        }


def _job_paths(profile: str, slug: str, seed: int) -> dict[str, Path]:
    d = sweep_dir(profile) / f"seed-{seed}"
    return {"dir": d, "meta": d / f"{slug}.job.json", "nb": d / f"{slug}.ipynb", "failed": d / f"{slug}.failed.ipynb",
            "ledger": d / "ledger" / f"{slug}.json", "inventory": d / "ledger" / f"{slug}.inventory.json"}


def stage_seed(profile: str, seed: int, slugs: Iterable[str] | None = None) -> None:
    """Put the notebooks and ledgers that a sweep ran at ``seed`` where the book build reads them
    (``_build/executed/`` and ``_build/ledger/``), so that ``python -m lib build --from-sweep SEED``
    builds the HTML of that seed without executing anything again. Every chapter must have passed."""
    import shutil

    from .checks import ledger_dir
    from .runner import executed_dir

    paths = {s: _job_paths(profile, s, seed) for s in (slugs or chapters.CHAPTERS)}
    missing = [s for s, p in paths.items() if not (p["nb"].exists() and p["ledger"].exists())]
    if missing:
        raise ValueError(f"--from-sweep {seed}: the {profile} sweep has no passed run of {', '.join(missing)} at seed {seed} "
                         f"under {sweep_dir(profile)}; run `python -m lib sweep --seeds {seed} --profile {profile}` first")
    executed_dir().mkdir(parents=True, exist_ok=True)
    ledger_dir().mkdir(parents=True, exist_ok=True)
    for s, p in paths.items():
        shutil.copy(p["nb"], executed_dir() / f"{s}.ipynb")
        shutil.copy(p["ledger"], ledger_dir() / f"{s}.json")
        if p["inventory"].exists():
            shutil.copy(p["inventory"], ledger_dir() / f"{s}.inventory.json")


def _finished(profile: str, slug: str, seed: int, params: dict[str, Any]) -> bool:
    """A job already done: it passed, with the same parameters, and its files are all there."""
    p = _job_paths(profile, slug, seed)
    if not (p["meta"].exists() and p["nb"].exists() and p["ledger"].exists()):
        return False
    meta = json.loads(p["meta"].read_text())
    return bool(meta.get("ok")) and meta.get("params") == {k: repr(v) for k, v in sorted(params.items())}


def _store(result: dict) -> None:
    """Write one job's notebook, ledger and metadata where the sweep keeps them (atomically)."""
    p = _job_paths(result["profile"], result["chapter"], result["seed"])
    p["ledger"].parent.mkdir(parents=True, exist_ok=True)

    def put(path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    keep, drop = (p["nb"], p["failed"]) if result["ok"] else (p["failed"], p["nb"])
    drop.unlink(missing_ok=True)
    if result["notebook"] is not None:
        put(keep, result["notebook"])
    put(p["ledger"], json.dumps(result["ledger"], indent=1))
    if result.get("inventory") is not None:
        put(p["inventory"], json.dumps(result["inventory"], indent=1))
    meta = {k: v for k, v in result.items() if k not in ("notebook", "ledger", "inventory")}
    put(p["meta"], json.dumps(meta, indent=1))


def _client(scheduler: str | None, workers: int, threads: int, gpu: bool):
    """A dask.distributed client: to ``scheduler`` if given, else to a new LocalCluster of
    ``workers`` single-threaded processes (with ``gpu``, one worker per visible GPU, each
    offering the resource ``GPU=1``)."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    resources = {"GPU": 1} if gpu else None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                           dashboard_address=None, resources=resources, silence_logs=40)
    return Client(cluster), cluster


def dispatch(jobs: list[dict[str, Any]], *, scheduler: str | None, workers: int, threads: int, gpu: bool = False,
             desc: str = "jobs", progress: bool = True) -> Iterator[tuple[dict, dict]]:
    """Run chapter jobs on dask.distributed (a LocalCluster of ``workers`` processes, or the cluster
    at ``scheduler``) and yield ``(job, result)`` as each finishes, under a progress bar (print
    above it with ``tqdm.write``). Each job is a dict with ``slug``, ``seed``, ``profile``,
    ``params``, ``key`` and optionally ``env`` (extra environment, e.g. a mutation); it runs
    :func:`run_job` with ``threads`` torch threads, longest chapter first. A job whose worker died
    yields a result with ``ok`` False, no ledger and the exception as its error. The sweep and the
    mutation run both go through here; the cluster is closed when the iteration ends."""
    from distributed import as_completed
    from tqdm import tqdm

    jobs = sorted(jobs, key=lambda j: -job_priority(j["slug"]))   # submitted longest first: a free worker takes the first
    client, cluster = _client(scheduler, workers, threads, gpu)
    try:
        local_gpus = gpu and not scheduler
        kw: dict[str, Any] = {"resources": {"GPU": 1}} if gpu else {}
        futures = {client.submit(run_job, j["slug"], j["seed"], j["profile"], j["params"], threads, local_gpus,
                                 j.get("env"), priority=job_priority(j["slug"]), key=j["key"], pure=False, **kw): j
                   for j in jobs}
        with tqdm(total=len(futures), desc=desc, unit="job", disable=not progress, file=sys.stderr) as bar:
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    res = fut.result()
                except Exception as e:  # the worker died, ...: a failed job that reached nothing
                    res = {"chapter": job["slug"], "seed": job["seed"], "profile": job["profile"], "ok": False,
                           "notebook": None, "ledger": [], "inventory": None, "error": f"{type(e).__name__}: {e}",
                           "params": {k: repr(v) for k, v in sorted(job["params"].items())}, "wall_s": None,
                           "job_wall_s": None}
                yield job, res
                bar.update(1)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run(slugs: Iterable[str] | None = None, seeds: Iterable[int] = (0,), profile: str = "quick",
        params: dict[str, Any] | None = None, *, workers: int | None = None, scheduler: str | None = None,
        gpu: bool = False, progress: bool = True, out=sys.stdout) -> dict:
    """Run every (chapter, seed) not already finished on Dask, store the results, write and
    return the robustness ledger. ``robustness['ok']`` is False when a job failed or a verdict
    differs between seeds."""
    from . import runner

    slugs = list(slugs or chapters.CHAPTERS)
    seeds = sorted(set(int(s) for s in seeds))
    params = dict(params or {})
    if "seed" in params or "profile" in params:
        raise ValueError("give seeds with --seeds and the profile with --profile, not with -p")
    runner.preflight(slugs, profile, params)  # bad parameters fail before any worker starts
    cores = threads_.cores()
    gpu_count = 0
    if gpu:
        import torch

        gpu_count = torch.cuda.device_count()
        if not scheduler and gpu_count == 0:
            raise ValueError("--gpu was given, but torch sees no CUDA GPU on this machine; "
                             "leave --gpu out to sweep on the CPU, or give --scheduler of a cluster with GPU workers")
    if workers is None:
        workers = gpu_count if (gpu and not scheduler) else max(1, min(cores, len(slugs) * len(seeds)))
    if workers < 1:
        raise ValueError(f"--workers {workers}: need at least one worker")
    threads = threads_.threads_per_job(workers)
    todo = [(s, seed) for seed in seeds for s in slugs if not _finished(profile, s, seed, params)]
    done = len(slugs) * len(seeds) - len(todo)
    where = scheduler or f"LocalCluster, {workers} worker(s) x {threads} torch thread(s)"
    print(f"sweep {profile}: {len(slugs)} chapter(s) x {len(seeds)} seed(s); {done} already done, "
          f"{len(todo)} to run on {where}", file=out, flush=True)
    t0 = time.perf_counter()
    if todo:
        from tqdm import tqdm

        jobs = [{"slug": slug, "seed": seed, "profile": profile, "params": params, "key": f"{slug}-seed-{seed}-{profile}"}
                for slug, seed in todo]
        for _, res in dispatch(jobs, scheduler=scheduler, workers=workers, threads=threads, gpu=gpu, desc="sweep jobs",
                               progress=progress):
            _store(res)
            status = "ok" if res["ok"] else "FAILED"
            wall = f"{res['wall_s']:8.1f} s" if res.get("wall_s") is not None else "       - s"
            tqdm.write(f"{res['chapter']:<24} seed {res['seed']:<5} {status:<7} {wall}"
                       + (f"   {res['error'].splitlines()[0][:300]}" if res["error"] else ""), file=out)
    wall = time.perf_counter() - t0
    if todo:
        rob = robustness(profile, slugs, seeds, params, sweep_wall_s=wall, workers=workers)
    else:   # nothing ran: keep the timing of the run that did these jobs, when the ledger is of the same sweep
        old = sweep_dir(profile) / "robustness.json"
        prev = json.loads(old.read_text()) if old.exists() else {}
        same = prev.get("seeds") == seeds and prev.get("chapters") == slugs
        rob = robustness(profile, slugs, seeds, params, sweep_wall_s=prev.get("sweep_wall_s") if same else None,
                         workers=prev.get("workers") if same else workers)
    print(summary(rob), file=out, flush=True)
    return rob


def _verdicts(profile: str, slug: str, seeds: list[int]) -> tuple[dict[int, dict], dict[int, dict]]:
    """Per seed, the job metadata and the ledger records of ``slug`` keyed by claim id."""
    metas, recs = {}, {}
    for seed in seeds:
        p = _job_paths(profile, slug, seed)
        metas[seed] = json.loads(p["meta"].read_text()) if p["meta"].exists() else {"ok": False, "error": "not run"}
        recs[seed] = {r["claim"]: r for r in json.loads(p["ledger"].read_text())} if p["ledger"].exists() else {}
    return metas, recs


def _scalar(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    return None


def robustness(profile: str, slugs: list[str], seeds: list[int], params: dict[str, Any] | None = None,
               *, sweep_wall_s: float | None = None, workers: int | None = None) -> dict:
    """Gather every seed's ledgers into ``_build/sweep/<profile>/robustness.json`` and return it.

    For each claim: its status at every seed (``missing`` where the chapter stopped before it),
    whether that status is the same at all seeds, and -- for a scalar measured quantity -- its
    mean, standard deviation, minimum and maximum over the seeds (with the expected value and
    the paper's value of the first seed's record, for reference)."""
    claims, jobs = [], []
    for slug in slugs:
        metas, recs = _verdicts(profile, slug, seeds)
        for seed in seeds:
            m = metas[seed]
            jobs.append({"chapter": slug, "seed": seed, "ok": bool(m.get("ok")), "wall_s": m.get("wall_s"),
                         "error": m.get("error", "")})
        order: list[str] = []
        for seed in seeds:
            order += [c for c in recs[seed] if c not in order]
        for cid in order:
            per = {seed: recs[seed].get(cid) for seed in seeds}
            status = {str(seed): (r["status"] if r else "missing") for seed, r in per.items()}
            first = next(r for r in per.values() if r)
            vals = [_scalar(r.get("measured")) for r in per.values() if r]
            vals = [v for v in vals if v is not None and np.isfinite(v)]
            entry = {"chapter": slug, "claim": cid, "source": first["source"], "statement": first["statement"],
                     "kind": first["kind"], "status": status,
                     "consistent": len(set(status.values())) == 1 and "FAILED" not in status.values()
                     and "missing" not in status.values(),
                     "expected": first.get("expected"), "paper_value": first.get("paper_value")}
            if vals:
                entry["measured"] = {"mean": float(np.mean(vals)), "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                                     "min": float(np.min(vals)), "max": float(np.max(vals)), "n": len(vals)}
            claims.append(entry)
    walls = [j["wall_s"] for j in jobs if j["wall_s"] is not None]
    rob = {
        "profile": profile, "seeds": seeds, "chapters": slugs, "params": {k: repr(v) for k, v in sorted((params or {}).items())},
        "written": time.strftime("%Y-%m-%d %H:%M:%S"), "workers": workers,
        "sweep_wall_s": None if sweep_wall_s is None else round(sweep_wall_s, 1),
        "sum_job_wall_s": round(float(sum(walls)), 1) if walls else None,
        "jobs": jobs, "claims": claims,
        "failed_jobs": [f"{j['chapter']} seed {j['seed']}" for j in jobs if not j["ok"]],
        "inconsistent": [f"{c['chapter']}:{c['claim']}" for c in claims if not c["consistent"]],
    }
    rob["ok"] = not rob["failed_jobs"] and not rob["inconsistent"]
    d = sweep_dir(profile)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / ".robustness.json.tmp"
    tmp.write_text(json.dumps(rob, indent=1))
    os.replace(tmp, d / "robustness.json")
    return rob


def summary(rob: dict) -> str:
    """A few lines: how many claims, how many the same at every seed, which are not."""
    n, bad = len(rob["claims"]), rob["inconsistent"]
    lines = [f"robustness ({rob['profile']}, seeds {', '.join(map(str, rob['seeds']))}): {n - len(bad)} of {n} claims "
             f"have the same verdict at every seed; {len(rob['failed_jobs'])} failed job(s)"]
    if rob.get("sweep_wall_s") is not None:
        lines.append(f"  wall time {rob['sweep_wall_s']:.0f} s on {rob['workers']} worker(s); the jobs' own wall times add up to "
                     f"{rob['sum_job_wall_s']:.0f} s")
    for j in rob["failed_jobs"]:
        lines.append(f"  failed job: {j}")
    for c in rob["claims"]:
        if not c["consistent"]:
            lines.append(f"  differs: {c['chapter']}:{c['claim']}  " + ", ".join(f"{s}={v}" for s, v in c["status"].items()))
    lines.append(f"  written to {sweep_dir(rob['profile']) / 'robustness.json'}")
    return "\n".join(lines)


def latest() -> dict | None:
    """The most recently written robustness ledger of any profile, or None when no sweep ran."""
    paths = sorted(build_dir().glob("sweep/*/robustness.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(paths[-1].read_text()) if paths else None


VERDICTS = (*OUTCOMES, "FAILED", "missing")
MIXED = "cells differ"          # a table whose cells have different (but seed-stable) verdicts, e.g. one refuted cell
_COLOURS = ("#4c9f70", "#9ccf8a", "#5b7fc7", "#d9d9d9", "#d1495b", "#ffffff", "#e8c170")


def heat_rows(rob: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of the claims x seeds picture: one per claim, with the cells of a reproduced table
    (ids ``"<table>:<cell>"``) collapsed into one row ``"<table> (n cells)"`` whose verdict at a seed
    is the cells' common verdict, ``FAILED``/``missing`` if any cell is, else :data:`MIXED`."""
    seeds = [str(s) for s in rob["seeds"]]
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in rob["claims"]:
        groups.setdefault((c["chapter"], c["claim"].split(":", 1)[0]), []).append(c)
    labels, rows = [], []
    for (chapter, name), cs in groups.items():
        row = []
        for s in seeds:
            st = {c["status"][s] for c in cs}
            row.append(st.pop() if len(st) == 1 else "FAILED" if "FAILED" in st else "missing" if "missing" in st else MIXED)
        labels.append(f"{chapter}: {name}" + (f" ({len(cs)} cells)" if len(cs) > 1 or ":" in cs[0]["claim"] else ""))
        rows.append(row)
    return labels, rows


def headline(rob: dict | None) -> str:
    """One Markdown paragraph on the sweep (or the plain statement that none was run)."""
    if rob is None:
        return ("**No seed sweep has been run for this build.** Run `python -m lib sweep --seeds 0-9` "
                "(then `python -m lib build --no-execute`) to fill this page.")
    n, bad = len(rob["claims"]), rob["inconsistent"]
    some = [] if set(rob["chapters"]) >= set(chapters.CHAPTERS) else rob["chapters"]
    what = f"the **{rob['profile']}** profile" + (f" (chapters {', '.join(some)} only)" if some else "")
    if len(rob["seeds"]) == 1:
        head = (f"Sweep of {what} at seed {rob['seeds'][0]} only, written {rob['written']}: "
                f"**{n - len(bad)} of {n} claims** hold their verdict there (one seed cannot show that a verdict is the same "
                f"at every seed: run `python -m lib sweep --seeds 0-9`); {len(rob['failed_jobs'])} job(s) failed")
    else:
        head = (f"Sweep of {what}, seeds {', '.join(map(str, rob['seeds']))}, written {rob['written']}: "
                f"**{n - len(bad)} of {n} claims** have the same verdict at every seed; {len(rob['failed_jobs'])} job(s) failed")
    return (head
            + (f" ({', '.join(rob['failed_jobs'])})" if rob["failed_jobs"] else "") + "."
            + (f" Wall time {rob['sweep_wall_s']:.0f} s on {rob['workers']} worker(s)." if rob.get("sweep_wall_s") else ""))


def heatmap(rob: dict):
    """The claims x seeds picture of a robustness ledger (seaborn heatmap, one colour per verdict;
    a reproduced table is one row, :func:`heat_rows`)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    codes = {s: i for i, s in enumerate((*VERDICTS, MIXED))}
    seeds = [str(s) for s in rob["seeds"]]
    labels, rows = heat_rows(rob)
    grid = np.array([[codes[v] for v in row] for row in rows])
    fig, ax = plt.subplots(figsize=(5.5 + 0.3 * len(seeds), 0.16 * len(labels) + 1.2), layout="constrained")
    sns.heatmap(grid, ax=ax, cmap=sns.color_palette(list(_COLOURS), as_cmap=True), vmin=-0.5, vmax=len(codes) - 0.5,
                linewidths=0.3, linecolor="white", xticklabels=seeds, yticklabels=labels)
    cb = ax.collections[0].colorbar
    cb.set_ticks(range(len(codes)))
    cb.set_ticklabels(list(codes))
    ax.set(xlabel="seed", ylabel="", title="verdict of every claim at every seed")
    ax.tick_params(axis="y", labelsize=6)
    return fig


def markdown_table(rob: dict) -> str:
    """Per claim: the verdicts and how often, whether they agree, and the measured spread."""
    from .checks import _fmt

    def fmt(x: Any) -> str:
        return "–" if x is None else _fmt(x)

    rows = ["| chapter | claim | verdicts | same at every seed | measured: mean ± sd (min – max) | compared with | paper |",
            "|---|---|---|---|---|---|---|"]
    for c in rob["claims"]:
        counts: dict[str, int] = {}
        for v in c["status"].values():
            counts[v] = counts.get(v, 0) + 1
        m = c.get("measured")
        spread = f"{m['mean']:.4g} ± {m['sd']:.2g} ({m['min']:.4g} – {m['max']:.4g})" if m else "–"
        rows.append(f"| {c['chapter']} | `{c['claim']}` | " + ", ".join(f"{k} ×{v}" for k, v in counts.items())
                    + f" | {'yes' if c['consistent'] else '**no**'} | {spread} | {fmt(c['expected'])} | {fmt(c['paper_value'])} |")
    return "\n".join(rows)
