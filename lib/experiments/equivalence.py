"""Yu & Tomasi's experiments: equivalently initialised plain and residual twins (§4.1, App. B),
the three families trained side by side (App. A, Table 1, App. D.3), the per-sample cushions of
§5 / Fig. 3, and the noise injected into trained weights. The networks and their measurements
are :mod:`lib.nets.convnets`'; the closed forms of the dominant flows are
:mod:`lib.theory.dominant_flow`'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..nets import convnets as C


def paper_parameter_count(N: int, c0: int = 3) -> int:
    """App. A, Fig. 4: the parameter count ``W(N) + B(N)`` of a simplified PlnNet or ResNet with
    ``N`` blocks per stage (depth ``3N + 2``) on ``c0``-channel images: 3×3 convolutions of 16, 32
    and 64 channels, the two channel-doubling blocks, and a 10-way linear read-out."""
    return 9 * (16 * c0 + 256 * N + 512 + 1024 * (N - 1) + 2048 + 4096 * (N - 1)) + 640 + 16 + 112 * N + 10


@dataclass
class TwinDrift:
    """How far twins trained side by side drift apart, against the linear round-off bound
    ``4 t u`` after ``t`` steps (``u`` the unit round-off): ``excess``, the worst ratio of the gap
    to the bound over all steps and pairs; ``flips``, the number of (step, pair) ReLU
    disagreements; per pair, ``before``, the worst ratio before its first disagreement; ``growth``,
    for pairs that first disagree in the first half of the run, the largest gap after it over the
    gap just before (or the one-step bound); ``late``, the number of pairs that first disagree in
    the second half."""

    excess: float
    flips: int
    before: list[float]
    growth: list[float]
    late: int


def twin_drift(divergence: Tensor, flips: Tensor, unit_roundoff: float) -> TwinDrift:
    """:class:`TwinDrift` from :func:`lib.nets.convnets.train_twins`' ``divergence`` (steps, E) (the
    largest ``|p_t - T(r_t)|`` per step and pair) and ``flips`` (steps, E) (ReLU disagreements)."""
    steps = divergence.shape[0]
    bound = 4 * torch.arange(1, steps + 1, dtype=torch.float64)[:, None] * unit_roundoff
    before, growth, late = [], [], 0
    for e in range(divergence.shape[1]):
        on = torch.nonzero(flips[:, e]).flatten()
        stop = int(on[0]) if len(on) else steps
        before.append((divergence[:stop, e] / bound[:stop, 0]).max().item() if stop else 0.0)
        if len(on) and stop < steps // 2:
            last = divergence[stop - 1, e].item() if stop else bound[0, 0].item()
            growth.append(divergence[stop:, e].max().item() / max(last, 1e-30))
        elif len(on):
            late += 1
    return TwinDrift((divergence / bound).max().item(), int(flips.sum()), before, growth, late)


KIND_INIT = (("plain", "kwi"), ("residual", "hmwi"), ("dominant", "hmwi"))


def train_families(depths, x: Tensor, y: Tensor, *, n_seeds: int, steps: int, batch_size: int, lr: float,
                   weight_decay: float, streams: Callable[[int], torch.Generator], record_every: int | None = None,
                   eval_chunk: int = 512) -> tuple[dict, dict]:
    """App. A / Table 1 and App. D.3 / Table 5: at every depth ``L = 3N + 2`` in ``depths``, a PlnNet
    (KWI initialisation), a ResNet (HMWI) and a net of dominant paths only (T', HMWI), ``n_seeds`` of
    each trained as one ensemble by SGD with momentum on ``(x (n, c, h, w), y (n,))``. Initial
    weights come from ``streams(100 + L)`` and mini-batch orders from ``streams(200 + L)`` (e.g.
    ``run.generator``), the same for the three families. Returns ``(trained, histories)`` keyed by
    ``(kind, L)``: ``arch``, ``p0``, ``p`` (initial and final parameters), ``loss`` and ``acc`` (final
    training loss and accuracy over all of ``x``, per network), and the training histories."""
    trained, histories = {}, {}
    record_every = record_every or max(1, steps // 40)
    for L in depths:
        for kind, init in KIND_INIT:
            arch = C.ConvArch((L - 2) // 3, kind, in_channels=x.shape[1])
            p0 = C.init_params(arch, n_seeds, init, generator=streams(100 + L), device=x.device, dtype=x.dtype)
            p, hist = C.train(arch, p0, x, y, steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                              generator=streams(200 + L), record_every=record_every, desc=f"{kind} L={L}")
            with torch.no_grad():
                out = torch.cat([C.forward(arch, p, x[i:i + eval_chunk]) for i in range(0, x.shape[0], eval_chunk)], dim=1)
            trained[(kind, L)] = dict(arch=arch, p0=p0, p=p, loss=C.cross_entropy(out, y).cpu(),
                                      acc=(out.argmax(-1) == y).float().mean(-1).cpu())
            histories[(kind, L)] = hist
    return trained, histories


def cushions(plain: dict, residual: dict, x: Tensor, layer: int) -> dict[str, Tensor]:
    """§5 / Fig. 3: per-sample cushions ``‖A x‖ / (‖A‖_F ‖x‖)`` of layer ``layer`` (0-based) of a
    trained PlnNet and of a trained ResNet seen as a plain net ``T(r)``, with the ID entries' 1s
    removed from ``A`` (the paper's reading) and kept. ``plain``/``residual`` are entries of
    :func:`train_families`. Returns flattened CPU tensors (samples × networks)."""
    t_e = C.transfer(residual["arch"], residual["p"])
    return {"plain": C.layer_cushion(plain["arch"], plain["p"], x, layer, remove_identity=False).flatten().cpu(),
            "residual (1s removed)": C.layer_cushion(residual["arch"], t_e, x, layer, remove_identity=True).flatten().cpu(),
            "residual (1s kept)": C.layer_cushion(residual["arch"], t_e, x, layer, remove_identity=False).flatten().cpu()}


def median_cushions_by_block(plain: dict, residual: dict, x: Tensor) -> np.ndarray:
    """The median per-sample cushion at every block ``1 … 3N`` of a trained PlnNet (row 0) and of
    the trained ResNet as ``T(r)`` with the 1s removed (row 1): ``(2, 3N)``."""
    t_e = C.transfer(residual["arch"], residual["p"])
    n_blocks = 3 * plain["arch"].n_blocks
    return np.array([[C.layer_cushion(a, prm, x, k, remove_identity=rm).median().item() for k in range(1, n_blocks + 1)]
                     for a, prm, rm in ((plain["arch"], plain["p"], False), (residual["arch"], t_e, True))])
