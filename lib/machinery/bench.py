"""``python -m lib bench``: the hot paths of the book, measured as ratios side by side in one run.

Shared machines are noisy, so every headline number is a *ratio* of two computations timed
alternately in the same process (each time is the best of ``reps`` repetitions); absolute times
are reported for information. Results go to ``_build/bench/report.json`` and
``_build/bench/report.md``; the table is also printed.

1. **ensemble** (a roofline): E random networks (50 layers of width 100, E = 256 by default)
   forward and backward as one batched computation. With one input per network (the Monte Carlo of
   the chapters, :func:`lib.theory.measure.gsc`: gradients with respect to the layers, not the weights) the
   pass must read the weights twice (forward and backward) and does little arithmetic per byte, so its yardstick is the machine's memory
   bandwidth, measured in the same run as a large copy (**bandwidth**): the report gives the
   batched pass's bytes per second as a fraction of it (target >= 60%). A Python loop over the same
   networks one by one is timed too, for information, and with a batch of 64 inputs (compute-bound).
2. **hvp**: the cost of one Hessian-vector product in units of one gradient of the same loss, for
   both modes of :func:`lib.theory.curvature.batched_hvp` (reverse-over-reverse and forward-over-reverse)
   and several numbers of probes per vmapped call, with the probes batched as the Skilling
   estimator batches them: at the skilling chapter's quick ensemble and at Orhan & Pitkow's paper
   size (N = 709,652). The book's setting (:data:`lib.theory.curvature.HVP_CHUNKS`, per device type) was chosen from these
   rows; targets: <= 2x a gradient and within 5% of the other mode's best.
3. **moments**: Skilling's estimator (:func:`lib.theory.curvature.skilling_moments`, probes batched with
   ``vmap`` as in the chapter) and a well-kept peer, SciPy's ARPACK Lanczos
   (``scipy.sparse.linalg.eigsh`` on a ``LinearOperator`` wrapping the same HVP, one vector at a
   time), each timed with its number of HVPs counted; the overhead beyond the HVPs themselves is
   ``1 - n_hvp * t_hvp / t_total`` with ``t_hvp`` one HVP alone (negative: batching the probes beats
   one-at-a-time products). Target <= 20 % for ours.
4. **gsc**: Philipp et al.'s Table 1 protocol (:mod:`lib.theory.dilution`, §I.2): every row, several
   datasets of Gaussian noise with one random network each, float32 vs float64: points per second.
5. **book**: per-chapter quick-profile wall times from ``_build/executed/timings.json`` when a
   run has recorded them; target: sum <= 10 minutes on the 2-core CPU.
6. **memory**: peak memory of one HVP at the Orhan & Pitkow paper scale (20 hidden layers of 128
   units on 3,072 inputs, N = 709,652, a batch of 500): CUDA's allocator peak on a GPU; on the CPU
   the peak resident set during the HVP above the resident set before it, in a fresh process.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..theory import curvature as C
from .checks import build_dir
from ..nets.models import Arch, Net
from ..nets.training import cross_entropy

TARGETS = {"roofline": ">= 60% of bandwidth", "hvp": "<= 2x a gradient, and <= 1.05x the other mode's best",
           "moments": "overhead <= 20%", "book": "sum <= 600 s"}


def best_time(fn: Callable[[], Any], reps: int, sync: Callable[[], None] = lambda: None) -> float:
    """Best of ``reps`` timings of ``fn`` after one warm-up call (``sync`` waits for the device;
    :func:`_sync` gives the one for CUDA): :func:`best_times` of one function."""
    return best_times({"fn": fn}, reps, sync)["fn"]


def _sync(device: torch.device) -> Callable[[], None]:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def bench_ensemble(device, E: int, depth: int, width: int, batch: int, reps: int) -> dict:
    """The chapters' Monte Carlo pass (:func:`lib.theory.measure.gsc`: forward with the trace, then the
    gradient of the error with respect to every layer's output, no weight gradients) over an
    ensemble of ``E`` networks at once, and over the same networks one by one in a Python loop."""
    from ..theory.measure import gsc

    g = torch.Generator(device=device).manual_seed(0)
    net = Net(Arch(d_in=width, width=width, depth=depth, d_out=width, init="he"), E=E, generator=g, device=device)
    x = torch.randn(batch, width, generator=g, device=device)
    y = torch.randn(batch, width, generator=g, device=device)
    members = [net.member(e) for e in range(E)]
    sync = _sync(device)
    t = best_times({"batched": lambda: gsc(net, x, y), "loop": lambda: [gsc(m, x, y) for m in members]}, reps, sync)
    tb, tl = t["batched"], t["loop"]
    w_bytes = sum(p.numel() * p.element_size() for p in net.parameters())
    # the least memory traffic of the pass: every weight matrix read forward and read again backward
    # (activations are E x batch x width per layer, negligible beside the weights at one input per net)
    return {"E": E, "depth": depth, "width": width, "batch": batch, "batched_s": tb, "loop_s": tl, "ratio": tl / tb,
            "weights_MiB": w_bytes / 2**20, "bytes_moved": 2 * w_bytes, "bytes_per_s": 2 * w_bytes / tb}


def _orhan_loss(device, depth: int, width: int, d_in: int, n_classes: int, batch: int, E: int = 1,
                dtype: torch.dtype = torch.float32):
    g = torch.Generator(device=device).manual_seed(1)
    net = Net(Arch(d_in=d_in, width=width, depth=depth - 1, d_out=n_classes, init="glorot", bias=True),
              E=E, generator=g, device=device, dtype=dtype)
    x = torch.rand(batch, d_in, generator=g, device=device, dtype=dtype)
    y = torch.randint(0, n_classes, (batch,), generator=g, device=device)
    return C.FlatLoss(net, cross_entropy, x, y)


def best_times(fns: dict[str, Callable[[], Any]], reps: int, sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Best of ``reps`` timings of each function, the functions timed in turn inside every
    repetition (after one warm-up call each), so that a slow spell of a shared machine hits them
    all alike."""
    for fn in fns.values():
        fn()
    sync()
    best = {k: math.inf for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


#: (mode, probes per vmapped call) of :func:`lib.theory.curvature.batched_hvp` timed by :func:`bench_hvp`
#: (the book's own per-device :data:`lib.theory.curvature.HVP_CHUNKS` always among them)
HVP_SETTINGS = tuple((m, c) for m, chunks in (("reverse", (1, 2, 4, 8)), ("forward", (1, 4)))
                     for c in sorted({*chunks, *C.HVP_CHUNKS.values()}) + [None])


def _setting(mode: str, chunk: int | None) -> str:
    return f"{mode}/{'all' if chunk is None else chunk}"


def bench_hvp(device, *, E: int, depth: int, width: int, d_in: int, n_classes: int, batch: int, n_probes: int,
              dtype: torch.dtype, reps: int, label: str) -> dict:
    """Cost of one Hessian-vector product, in units of one gradient of the same loss, for every
    setting of :data:`HVP_SETTINGS`, as the book computes them: ``n_probes`` probes at once (the
    Skilling estimator's batch), the cost per product being the batch's time over ``n_probes``.
    Reports the book's setting (reverse mode, :func:`lib.theory.curvature.hvp_chunk` probes per call)
    beside the fastest setting of each mode; goals: the book's <= 2x a gradient, and no slower
    than the other mode's best by more than 5%."""
    f = _orhan_loss(device, depth, width, d_in, n_classes, batch, E=E, dtype=dtype)
    V = torch.randn(n_probes, f.N, generator=torch.Generator(device=device).manual_seed(2), device=device, dtype=dtype)
    fns = {"grad": lambda: f.grad()}
    for mode, chunk in HVP_SETTINGS:
        fns[_setting(mode, chunk)] = lambda m=mode, c=chunk: C.batched_hvp(f, f.theta, V, chunk=c, mode=m)
    t = best_times(fns, reps, _sync(device))
    tg = t.pop("grad")
    per = {k: v / n_probes for k, v in t.items()}
    book = _setting("reverse", C.hvp_chunk(device))
    best = {m: min((k for k in per if k.startswith(m)), key=per.get) for m in ("reverse", "forward")}
    return {"label": label, "N": f.N, "E": E, "batch": batch, "n_probes": n_probes, "dtype": str(dtype).replace("torch.", ""),
            "grad_s": tg, "per_hvp_s": per, "ratio_to_grad": {k: v / tg for k, v in per.items()},
            "book": book, "book_ratio": per[book] / tg, "best_reverse": best["reverse"], "best_forward": best["forward"],
            "book_vs_forward": per[book] / per[best["forward"]], "book_vs_best": per[book] / min(per.values())}


def bench_bandwidth(device, mib: int, reps: int) -> dict:
    """The machine's memory bandwidth as a large copy (STREAM's "copy": ``mib`` MiB read and as much
    written), the yardstick of :func:`bench_ensemble`'s batched pass."""
    n = mib * 2**20 // 4
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    t = best_time(lambda: dst.copy_(src), reps, _sync(device))
    return {"MiB": mib, "s": t, "bytes_per_s": 2 * n * 4 / t}


def bench_moments(device, depth: int, width: int, d_in: int, batch: int, n_probes: int, reps: int) -> dict:
    """Skilling (ours) and ARPACK's Lanczos (peer) on the same HVP, overheads beyond the HVPs;
    ``t_hvp`` is one HVP alone (the book's mode, one probe) on this network."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    f = _orhan_loss(device, depth, width, d_in, 10, batch)
    sync = _sync(device)
    probes = torch.randn(n_probes, f.N, generator=torch.Generator(device=device).manual_seed(4), device=device)
    t_hvp = best_time(lambda: C.batched_hvp(f, f.theta, probes[:1]), reps, sync)
    counter = {"n": 0}

    def mv_rows(B):                                            # the production path: vmap over probes
        counter["n"] += B.shape[0]
        return C.batched_hvp(f, f.theta, B)

    def ours():
        counter["n"] = 0
        C.skilling_moments(mv_rows, probes, 4)
        sync()

    t_ours = best_time(ours, max(1, reps // 2), sync)
    n_ours = counter["n"]

    def mv_np(x):
        counter["n"] += 1
        out = f.hvp(torch.as_tensor(np.asarray(x).ravel(), device=device, dtype=torch.float32))
        return out.detach().cpu().numpy().astype(np.float64)

    op = LinearOperator((f.N, f.N), matvec=mv_np, dtype=np.float64)
    v0 = probes[0].cpu().numpy().astype(np.float64)

    def peer():
        counter["n"] = 0
        eigsh(op, k=4, which="LA", ncv=2 * n_probes, maxiter=1, v0=v0, tol=1e-2)

    def peer_safe():
        try:
            peer()
        except Exception:  # ARPACK may stop at maxiter: the matvecs it made are what we time
            pass

    t_peer = best_time(peer_safe, max(1, reps // 2), sync)
    n_peer = counter["n"]
    return {"N": f.N, "hvp_s": t_hvp, "ours_s": t_ours, "ours_hvps": n_ours,
            "ours_overhead": 1 - n_ours * t_hvp / t_ours, "peer": "scipy.sparse.linalg.eigsh (ARPACK Lanczos)",
            "peer_s": t_peer, "peer_hvps": n_peer, "peer_overhead": 1 - n_peer * t_hvp / t_peer}


def bench_gsc(device, E: int, depth: int, width: int, n_points: int, reps: int, paper_points: int = 10_000) -> dict:
    """Philipp et al.'s Table 1 protocol (§I.2, :mod:`lib.theory.dilution`): every row, ``E`` datasets of
    ``n_points`` points (one random network each), ``depth`` linear layers of ``width``; timed as a
    whole in float32 and float64. Reports points per second (rows x datasets x points / time), and
    ``paper_pass``: the rate of one float32 pass shaped as the paper profile's (``paper_points`` per
    dataset; on a GPU as many datasets as one pass of the chapter holds)."""
    from ..nets import data as Ld
    from ..theory import dilution as D

    sync = _sync(device)
    out = {"rows": len(D.TABLE1), "E": E, "n_points": n_points, "depth": depth, "width": width}
    for dt in (torch.float32, torch.float64):
        g = torch.Generator(device=device).manual_seed(5)

        def protocol():
            for key in D.TABLE1:
                arch = D.TableArch(*key, depth=depth, d=width)
                x, y = Ld.gaussian_noise(E, n_points, width, width, generator=g, device=device, dtype=dt)
                ws, sk = D.init_weights(arch, E, generator=g, device=device, dtype=dt)
                D.metrics(arch, ws, sk, x, y)

        t = best_time(protocol, max(1, reps // 2), sync)
        out[str(dt).replace("torch.", "")] = {"s": t, "points_per_s": len(D.TABLE1) * E * n_points / t}
    out["float32_speedup"] = out["float64"]["s"] / out["float32"]["s"]
    # one pass shaped as the chapter's paper-profile passes (float32): paper_points per dataset and, on a
    # GPU, as many datasets as the chapter puts in one pass. Small passes leave a GPU mostly idle
    # (2026-12-04, H200: 50,000 points/s at 4 x 1,000 points, while the paper's Table 1 took 35 s for
    # 34,000,000 points), so the paper profile is predicted from this rate, not the one above.
    n_big = max(1, D.datasets_per_pass(paper_points, width, depth)) if device.type == "cuda" else 1
    g = torch.Generator(device=device).manual_seed(7)
    arch = D.TableArch("relu", "batch", depth=depth, d=width)
    x, y = Ld.gaussian_noise(n_big, paper_points, width, width, generator=g, device=device, dtype=torch.float32)
    ws, sk = D.init_weights(arch, n_big, generator=g, device=device, dtype=torch.float32)
    t = best_time(lambda: D.metrics(arch, ws, sk, x, y), max(1, reps // 2), sync)
    out["paper_pass"] = {"E": n_big, "n_points": paper_points, "s": t, "points_per_s": n_big * paper_points / t}
    return out


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(batch: int) -> None:
    """Run in a fresh CPU process (Linux): the peak resident set during one paper-scale HVP above
    the resident set just before it. The kernel's high-water mark (VmHWM) is reset to the current
    RSS by writing 5 to /proc/self/clear_refs, so earlier peaks (importing torch, building the
    model) do not count."""
    dev = torch.device("cpu")
    f = _orhan_loss(dev, 20, 128, 3072, 20, batch)
    v = torch.randn(f.N, generator=torch.Generator().manual_seed(6))
    f.hvp(v[:0].new_zeros(f.N))                                  # warm-up (torch's one-time setup)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = _status_kib("VmRSS")
    t0 = time.perf_counter()
    f.hvp(v)
    t = time.perf_counter() - t0
    peak = _status_kib("VmHWM")
    print(json.dumps({"N": f.N, "batch": batch, "hvp_s": t, "peak_bytes": (peak - base) * 1024}))


def bench_memory(device, batch: int) -> dict:
    """Peak memory of one HVP at the paper scale (N = 709,652): on CUDA the allocator's peak above
    what the model and data hold; on the CPU the growth of the peak resident set of a fresh
    process across the HVP (model and data are built first, so they are not counted)."""
    if device.type == "cuda":
        f = _orhan_loss(device, 20, 128, 3072, 20, batch)
        v = torch.randn(f.N, generator=torch.Generator(device=device).manual_seed(6), device=device)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        f.hvp(v)
        torch.cuda.synchronize(device)
        r = {"N": f.N, "batch": batch, "hvp_s": time.perf_counter() - t0,
             "peak_bytes": int(torch.cuda.max_memory_allocated(device) - base), "how": "CUDA allocator peak above the model and data"}
    else:
        import subprocess
        import sys

        out = subprocess.run([sys.executable, "-c", f"from lib.machinery.bench import _memory_child; _memory_child({int(batch)})"],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["how"] = "peak RSS (VmHWM, reset just before) above the RSS before the HVP, fresh process"
    r["peak_MiB"] = r["peak_bytes"] / 2**20
    return r


def book_timings() -> dict:
    p = build_dir() / "executed" / "timings.json"
    if not p.exists():
        return {"available": False, "note": "run `python -m lib run` first to record per-chapter wall times"}
    t = json.loads(p.read_text())
    quick = {k: v for k, v in t.items() if v.get("profile", "quick") == "quick"}
    total = sum(v["wall_s"] for v in quick.values())
    return {"available": True, "chapters": {k: v["wall_s"] for k, v in quick.items()}, "sum_s": total}


def paper_estimates(r: dict) -> dict[str, dict]:
    """Per chapter, the ``paper`` profile's wall time on this device predicted from this run's
    measured rates, for the part of the chapter that the benchmarked kernels cover (named in
    ``basis``; the rest of the chapter adds to it, so the figure is a lower bound), beside the
    measured paper runtime recorded in the registry. ``estimate_s`` is None where no benchmarked
    kernel covers the chapter's dominant cost."""
    from . import chapters
    from ..theory import dilution as D

    out = {}
    g = r["gsc"]
    # Table 1 and Table 3 at the paper's knobs: rows x datasets x points through the §I.2 metrics pass
    # (the benchmark's depth and width are the paper's: 50 and 100, float32 as in the chapter)
    dil = chapters.get("dilution-theorem")
    pts = (len(D.TABLE1) + len(D.TABLE3)) * dil.knob("n_datasets").paper * dil.knob("n_points").paper
    rate = g["paper_pass"]["points_per_s"]
    exact = g["depth"] == dil.knob("depth").paper and g["width"] == dil.knob("width").paper
    out["dilution-theorem"] = {"estimate_s": pts / rate, "basis": f"Tables 1 and 3: {pts:,} points at the "
                               f"{rate:,.0f} points/s of a paper-shaped pass" + ("" if exact else " (benchmarked at a smaller depth and width)")}
    # Orhan & Pitkow: the three architectures of Fig. 3, n_seeds nets each, one gradient per batch of 500
    # over CIFAR-100's 50,000 images per epoch, and at 7 checkpoints 2 HVPs per probe on hessian_batch
    # examples (an HVP costs in proportion to its batch: the measured per-HVP time at batch 500 scaled)
    h = next(x for x in r["hvp"] if x["label"] == "paper N")
    sk = chapters.get("skilling-moments")
    nets = 3 * sk.knob("n_seeds").paper
    steps = sk.knob("epochs").paper * (50_000 // 500)
    t_hvp = h["grad_s"] * h["book_ratio"] * sk.knob("hessian_batch").paper / h["batch"]
    n_hvp = 7 * 2 * sk.knob("n_probes").paper
    t_train = nets * steps * h["grad_s"] * 500 / h["batch"]
    out["skilling-moments"] = {"estimate_s": t_train + nets * n_hvp * t_hvp,
                               "basis": f"Fig. 3 training ({nets} nets x {steps:,} steps at {h['grad_s'] * 1e3:.1f} ms per gradient, "
                                        f"N = {h['N']:,}) and its {nets * n_hvp:,} HVPs ({t_hvp:.2f} s each)"}
    for slug, spec in chapters.CHAPTERS.items():
        out.setdefault(slug, {"estimate_s": None, "basis": "no benchmarked kernel covers its dominant cost"})
        out[slug]["measured"] = spec.paper_runtime
    return out


#: HVP configurations: the skilling chapter's quick ensemble (its ``tail_probabilities``: 4 nets of
#: 20 x 48 on the digits, 250 examples, 16 probes, float64) and Orhan & Pitkow's paper network
#: (20 x 128 on 3,072 CIFAR inputs, 20 classes: N = 709,652; one net, batch 500, 8 probes).
HVP_CONFIGS = {
    "full": {"book quick (skilling-moments)": dict(E=4, depth=20, width=48, d_in=64, n_classes=10, batch=250, n_probes=16),
             "paper N": dict(E=1, depth=20, width=128, d_in=3072, n_classes=20, batch=500, n_probes=8)},
    "tiny": {"book quick (skilling-moments)": dict(E=2, depth=3, width=8, d_in=8, n_classes=3, batch=16, n_probes=3),
             "paper N": dict(E=1, depth=3, width=16, d_in=32, n_classes=4, batch=16, n_probes=2)},
}
SIZES = {
    "full": dict(E=256, depth=50, width=100, batch=64, hvp_depth=20, hvp_width=48, hvp_din=64, hvp_batch=500,
                 n_probes=8, gsc_E=4, gsc_depth=50, gsc_width=100, gsc_points=1000, gsc_paper_points=10_000, mem_batch=500, bw_MiB=512, reps=5),
    "tiny": dict(E=8, depth=4, width=16, batch=8, hvp_depth=3, hvp_width=8, hvp_din=8, hvp_batch=16,
                 n_probes=3, gsc_E=2, gsc_depth=4, gsc_width=8, gsc_points=16, gsc_paper_points=64, mem_batch=4, bw_MiB=8, reps=2),
}


def run(device: str = "auto", size: str = "full", out_dir: Path | None = None, memory: bool = True) -> dict:
    """Run every benchmark on ``device`` (``auto``: CUDA when present; CPU always as well when a
    GPU is used, so the table has both), write the report and return it."""
    from .runtime import resolve_device

    if size not in SIZES:
        raise ValueError(f"size {size!r}: use one of {', '.join(SIZES)}")
    s = SIZES[size]
    devs = [resolve_device(device)]
    if devs[0].type == "cuda":
        devs.insert(0, torch.device("cpu"))
    report: dict[str, Any] = {"torch": torch.__version__, "size": size, "threads": torch.get_num_threads(), "devices": {}}
    for dev in devs:
        r = {}
        t0 = time.perf_counter()
        r["ensemble"] = bench_ensemble(dev, s["E"], s["depth"], s["width"], 1, s["reps"])
        r["ensemble_batch"] = bench_ensemble(dev, s["E"], s["depth"], s["width"], s["batch"], s["reps"])
        r["bandwidth"] = bench_bandwidth(dev, s["bw_MiB"], s["reps"])
        for e in (r["ensemble"], r["ensemble_batch"]):
            e["bandwidth_fraction"] = e["bytes_per_s"] / r["bandwidth"]["bytes_per_s"]
        r["hvp"] = [bench_hvp(dev, **cfg, dtype=torch.float64, reps=s["reps"], label=name)
                    for name, cfg in HVP_CONFIGS[size].items()]
        r["moments"] = bench_moments(dev, s["hvp_depth"], s["hvp_width"], s["hvp_din"], s["hvp_batch"], s["n_probes"], s["reps"])
        r["gsc"] = bench_gsc(dev, s["gsc_E"], s["gsc_depth"], s["gsc_width"], s["gsc_points"], s["reps"], s["gsc_paper_points"])
        if memory:
            r["memory"] = bench_memory(dev, s["mem_batch"])
        r["wall_s"] = time.perf_counter() - t0
        report["devices"][str(dev)] = r
    for dev_name, r in report["devices"].items():
        r["paper_estimates"] = paper_estimates(r)
    report["book"] = book_timings()
    out_dir = Path(out_dir) if out_dir is not None else build_dir() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    md = markdown(report)
    (out_dir / "report.md").write_text(md)
    print(md)
    return report


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def markdown(report: dict) -> str:
    rows = ["| benchmark | device | measured | target | absolute times (information) |", "|---|---|---|---|---|"]
    for dev, r in report["devices"].items():
        m = r["moments"]
        bw = r["bandwidth"]
        rows.append(f"| memory bandwidth (copy of {bw['MiB']} MiB) | {dev} | {bw['bytes_per_s'] / 1e9:.1f} GB/s | information "
                    f"(the roofline's yardstick) | {bw['s'] * 1e3:.1f} ms |")
        for e in (r["ensemble"], r["ensemble_batch"]):
            rows.append(f"| ensemble MC, E={e['E']}, {e['depth']}x{e['width']}, {e['batch']} input(s) per net: least traffic "
                        f"(weights read forward and backward) over time, as a fraction of the copy bandwidth | {dev} | "
                        f"**{100 * e['bandwidth_fraction']:.0f}%** of bandwidth; loop ratio {e['ratio']:.1f}x | "
                        f"{TARGETS['roofline'] if e['batch'] == 1 else 'information (compute-bound)'} | "
                        f"batched {e['batched_s'] * 1e3:.1f} ms ({e['bytes_per_s'] / 1e9:.1f} GB/s), loop {e['loop_s'] * 1e3:.0f} ms, "
                        f"weights {e['weights_MiB']:.0f} MiB |")
        for h in r["hvp"]:
            rt = h["ratio_to_grad"]
            rows.append(f"| HVP / gradient, {h['label']}: N={h['N']:,} ({h['E']} net(s)), batch {h['batch']}, {h['n_probes']} probes, "
                        f"{h['dtype']}; the book's `{h['book']}` | {dev} | **{h['book_ratio']:.2f}x**; "
                        f"{h['book_vs_forward']:.2f}x the best forward setting (`{h['best_forward']}`), fastest overall "
                        f"`{min(rt, key=rt.get)}` | {TARGETS['hvp']} | grad {h['grad_s'] * 1e3:.1f} ms; per HVP: "
                        + ", ".join(f"{k} {v:.2f}x" for k, v in rt.items()) + " |")
        rows.append(f"| Skilling moments, overhead beyond HVPs | {dev} | **{100 * m['ours_overhead']:.0f}%** ({m['ours_hvps']} HVPs) | "
                    f"{TARGETS['moments']} | ours {m['ours_s']:.2f} s; peer ARPACK {m['peer_s']:.2f} s, {m['peer_hvps']} HVPs, "
                    f"overhead {100 * m['peer_overhead']:.0f}% |")
        g = r["gsc"]
        rows.append(f"| Table 1 protocol (Philipp et al. §I.2), {g['rows']} rows x {g['E']} datasets x {g['n_points']} points, "
                    f"depth {g['depth']}, width {g['width']} | {dev} | {g['float32']['points_per_s']:,.0f} points/s float32, "
                    f"{g['float64']['points_per_s']:,.0f} float64 ({g['float32_speedup']:.1f}x) | information | "
                    f"float32 {g['float32']['s']:.1f} s, float64 {g['float64']['s']:.1f} s |")
        pp = g["paper_pass"]
        rows.append(f"| one pass shaped as the paper profile's: {pp['E']} dataset(s) x {pp['n_points']:,} points, depth {g['depth']}, "
                    f"width {g['width']}, float32 | {dev} | {pp['points_per_s']:,.0f} points/s | information | {pp['s']:.2f} s |")
        if "memory" in r:
            mm = r["memory"]
            rows.append(f"| peak memory, one HVP at N={mm['N']:,}, batch {mm['batch']} | {dev} | "
                        f"{mm['peak_MiB']:.0f} MiB | information | "
                        f"{mm['hvp_s']:.2f} s ({mm['how']}) |")
    for dev, r in report["devices"].items():
        for slug, p in r["paper_estimates"].items():
            est = "no estimate" if p["estimate_s"] is None else f"**{_duration(p['estimate_s'])}** (lower bound)"
            rows.append(f"| paper profile of {slug}, predicted from this run's rates | {dev} | {est} | information | "
                        f"{p['basis']}; measured: {p['measured']} |")
    b = report["book"]
    if b.get("available"):
        rows.append(f"| whole book, quick profile | recorded run | **{b['sum_s']:.0f} s** "
                    f"({', '.join(f'{k} {v:.0f} s' for k, v in b['chapters'].items())}) | {TARGETS['book']} | |")
    else:
        rows.append(f"| whole book, quick profile | - | not recorded | {TARGETS['book']} | {b['note']} |")
    return "\n".join(rows) + "\n"
