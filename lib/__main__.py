"""Command line of the book: ``python -m lib list|run|build``.

    python -m lib list                       chapters, their parameters, quick and paper values
    python -m lib run [CHAPTER ...] [--profile quick|paper] [-p NAME VALUE ...]
    python -m lib build [CHAPTER ...] [--profile ...] [-p ...] [--no-execute | --from-sweep SEED]
    python -m lib sweep [CHAPTER ...] --seeds 0-9 [--profile ...] [-p ...] [--workers N | --scheduler tcp://HOST:PORT] [--gpu]
    python -m lib bench [--device auto|cpu|cuda] [--size full|tiny]
    python -m lib check-html [--html DIR] [--screenshots DIR]   the built book in headless Chromium
"""

from __future__ import annotations

import argparse
import sys

from .machinery import chapters, runner


def _list() -> int:
    for spec in chapters.CHAPTERS.values():
        print(f"{spec.slug}: {spec.title}\n  paper: {spec.paper}\n  paper profile: {spec.paper_runtime}")
        print("  parameters: profile='quick'|'paper', device='auto'|'cpu'|'cuda', seed=0")
        for k in spec.knobs:
            print(f"    {k.name:<14} quick={k.quick!r:<10} paper={k.paper!r:<10} {k.allowed():<22} {k.help}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib", description="Run and build the executable book.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="chapters and their parameters")
    for name in ("run", "build"):
        p = sub.add_parser(name, help="execute chapters with papermill" if name == "run" else "run, then build the HTML book")
        p.add_argument("chapters", nargs="*", help="chapter slugs (default: all)")
        p.add_argument("--profile", default="quick", help="quick (CPU, minutes) or paper (the papers' scale, GPU advised)")
        p.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       help="set a parameter, e.g. -p seed 3 -p depth 30 -p device cuda")
        if name == "build":
            p.add_argument("--no-execute", action="store_true", help="build from the notebooks already in _build/executed")
            p.add_argument("--from-sweep", type=int, default=None, metavar="SEED",
                           help="build from the notebooks and ledgers that a sweep of --profile ran at SEED (no execution)")
    sw = sub.add_parser("sweep", help="run chapters x seeds on dask.distributed; write the robustness ledger")
    sw.add_argument("chapters", nargs="*", help="chapter slugs (default: all)")
    sw.add_argument("--seeds", default="0-9", help="seeds and ranges, e.g. 0-9 or 1,2,101-103 (default 0-9)")
    sw.add_argument("--profile", default="quick", help="quick or paper")
    sw.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="set a parameter for every job")
    sw.add_argument("--workers", type=int, default=None,
                    help="workers of the local cluster (default: one per core, at most one per job; torch threads = cores / workers)")
    sw.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:port) instead of a local cluster")
    sw.add_argument("--gpu", action="store_true",
                    help="each job takes one GPU (worker resource GPU=1); locally, one worker per visible GPU")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    mu = sub.add_parser("mutate", help="run chapters under named perturbations of lib on dask.distributed; "
                                        "report which declared claims turned red")
    mu.add_argument("chapters", nargs="*", help="chapter slugs (default: all with a declared mutation)")
    mu.add_argument("--mutations", default=None, help="comma-separated mutation names (default: all; see lib/machinery/mutations.py)")
    mu.add_argument("--seed", type=int, default=0, help="seed of every job (default 0)")
    mu.add_argument("--workers", type=int, default=None, help="workers of the local cluster (default: one per core)")
    mu.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler instead of a local cluster")
    mu.add_argument("--stop-early", action="store_true",
                    help="end each chapter once every claim its mutation declares is recorded (faster; the report then "
                         "lists only the claims turned red up to there)")
    mu.add_argument("--ci", action="store_true", help="the CI subset: one early-stopping mutation per chapter (mutations.CI)")
    mu.add_argument("--no-progress", action="store_true", help="no progress bar")
    b = sub.add_parser("bench", help="benchmark the hot paths (ratios), write _build/bench/report.{json,md}")
    b.add_argument("--device", default="auto", help="auto (CUDA when present, plus CPU), cpu or cuda")
    b.add_argument("--size", default="full", help="full (minutes on a CPU) or tiny (seconds, for the test)")
    b.add_argument("--no-memory", action="store_true", help="skip the paper-scale HVP memory measurement")
    c = sub.add_parser("check-html", help="open every page of the built book in headless Chromium, offline; screenshots")
    c.add_argument("--html", default=None, help="the built book (default _build/html)")
    c.add_argument("--screenshots", default=None, help="where to save one PNG per page (default _build/screenshots)")
    args = ap.parse_args(argv)
    if args.cmd == "check-html":
        from .machinery import browser

        try:
            results = browser.check_site(args.html, args.screenshots)
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(browser.report(results))
        return 0 if all(not r["problems"] for r in results) else 1
    if args.cmd == "list":
        return _list()
    if args.cmd == "bench":
        from .machinery import bench

        try:
            bench.run(args.device, args.size, memory=not args.no_memory)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.cmd == "mutate":
        from .machinery import mutations

        try:
            names = args.mutations.split(",") if args.mutations else (list(mutations.CI) if args.ci else None)
            rep = mutations.run(args.chapters or None, names, seed=args.seed, workers=args.workers,
                                scheduler=args.scheduler, progress=not args.no_progress, stop_early=args.stop_early or args.ci)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0 if rep["ok"] else 1
    params = {k: runner.parse_value(v) for k, v in args.p}
    if args.cmd == "sweep":
        from .machinery import sweep

        try:
            rob = sweep.run(args.chapters or None, sweep.parse_seeds(args.seeds), args.profile, params, workers=args.workers,
                            scheduler=args.scheduler, gpu=args.gpu, progress=not args.no_progress)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0 if rob["ok"] else 1
    try:
        if args.cmd == "run":
            ok = runner.run(args.chapters or None, args.profile, params)
        else:
            if args.from_sweep is not None:
                from .machinery import sweep

                if params or args.chapters or args.no_execute:
                    raise ValueError("--from-sweep builds every chapter as the sweep ran it: give no chapters, -p or --no-execute")
                sweep.stage_seed(args.profile, args.from_sweep)
            ok = runner.build(args.chapters or None, args.profile, params,
                              execute=not args.no_execute and args.from_sweep is None)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
