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


@dataclass
class TransferEquivalence:
    """Eq. 1 measured at random weights: ``params`` (a batch of residual parameter vectors), the
    largest ``|residual(r) - plain(T(r))|`` over the inputs (``gap``), the same against the plain net
    at ``r`` itself (``wrong_gap``: what the map ``T`` changes), and the largest output (``scale``,
    for the round-off tolerance)."""

    params: dict
    gap: float
    wrong_gap: float
    scale: float


def transfer_equivalence(arch: C.ConvArch, *, n_inputs: int = 8, size: int = 32, generator: torch.Generator | None = None,
                         device=None, dtype=torch.float64) -> TransferEquivalence:
    """§3, Eq. 1: the plain net at ``T(r)`` computes the residual net at ``r``. Draws two HMWI and
    two KWI parameter vectors of ``arch`` (so both initialisations are covered), then ``n_inputs``
    ReLU'd Gaussian images of ``arch.in_channels × size × size``, in that order from ``generator``."""
    hmwi = C.init_params(arch, 2, "hmwi", generator=generator, device=device, dtype=dtype)
    kwi = C.init_params(arch, 2, "kwi", generator=generator, device=device, dtype=dtype)
    r = {k: torch.cat([hmwi[k], kwi[k]]) for k in hmwi}
    x = torch.randn(n_inputs, arch.in_channels, size, size, generator=generator, device=device, dtype=dtype).relu()
    res = C.forward(arch, r, x, kind="residual")
    plain = C.forward(arch, C.transfer(arch, r), x, kind="plain")
    wrong = C.forward(arch, r, x, kind="plain")
    return TransferEquivalence(r, (res - plain).abs().max().item(), (res - wrong).abs().max().item(), res.abs().max().item())


def gradient_gap(arch: C.ConvArch, params: dict[str, Tensor], x: Tensor, y: Tensor) -> tuple[float, float]:
    """§4.1: the gradient of the residual net's summed cross-entropy at ``r`` against the plain
    net's at ``T(r)``: ``T`` only adds constants (the 1s of the ID entries), so its Jacobian is the
    identity and the two gradients are equal. Returns the largest entrywise difference over all
    parameters and the largest gradient entry."""
    def grads(prm, kind):
        leaves = {k: v.clone().requires_grad_(True) for k, v in prm.items()}
        ce = C.cross_entropy(C.forward(arch, leaves, x, kind=kind), y).sum()
        return dict(zip(leaves, torch.autograd.grad(ce, list(leaves.values()))))

    gr, gp = grads(params, "residual"), grads(C.transfer(arch, params), "plain")
    return max((gr[k] - gp[k]).abs().max().item() for k in gr), max(v.abs().max().item() for v in gr.values())


TWIN_PRECISIONS = (("float64", torch.float64, 2), ("float32", torch.float32, 4))


def twin_runs(arch: C.ConvArch, x: Tensor, y: Tensor, *, steps: int, batch_size: int, lr: float, weight_decay: float,
              streams: Callable[[int], torch.Generator], precisions=TWIN_PRECISIONS) -> dict:
    """App. B / Fig. 6: for each ``(name, dtype, E)`` of ``precisions``, ``E`` equivalently
    initialised twin pairs (HMWI residual nets and their plain images ``T(r)``, initial weights from
    ``streams(4)``, mini-batch orders from ``streams(5)``) trained side by side by
    :func:`lib.nets.convnets.train_twins`. Returns ``{name: twins}``, each with ``first``, the step
    (1-based) of each pair's first ReLU disagreement (None if none), and ``dtype``."""
    out = {}
    for name, dt, E in precisions:
        r0 = C.init_params(arch, E, "hmwi", generator=streams(4), device=x.device, dtype=dt)
        tw = C.train_twins(arch, r0, x.to(dt), y, steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                           generator=streams(5))
        fl = tw["flips"]
        tw["first"] = [int(torch.nonzero(fl[:, e])[0]) + 1 if fl[:, e].any() else None for e in range(E)]
        tw["dtype"] = dt
        out[name] = tw
    return out


def decay_ratios(trained: dict, x: Tensor, y: Tensor, *, weight_decay: float) -> dict:
    """Table 4: the training loss over the weight-decay term, per network, for every PlnNet and
    ResNet of :func:`train_families` at initialisation and after training:
    ``{(kind, L, "init" | "final"): (n_seeds,)}``."""
    out = {}
    for (kind, L), t in trained.items():
        if kind != "dominant":
            for when, prm in (("init", t["p0"]), ("final", t["p"])):
                loss, decay, _ = C.loss_and_decay(t["arch"], prm, x, y, weight_decay=weight_decay)
                out[kind, L, when] = (loss / decay).numpy()
    return out


@dataclass
class IdentityMass:
    """Table 3 after training (§4.2): for a trained ResNet seen as ``T(r_e)``, the mean of its ID
    entries, the mean and largest change of those entries since initialisation, and per network
    the share of the weight mass above the threshold held by ID entries (``share``); the same
    share for a trained PlnNet (``plain_share``)."""

    id_mean: float
    mean_change: float
    max_change: float
    share: np.ndarray
    plain_share: np.ndarray


def identity_mass(residual: dict, plain: dict) -> IdentityMass:
    """:class:`IdentityMass` of a trained ResNet and PlnNet (entries of :func:`train_families`)."""
    arch = residual["arch"]
    t_e = C.transfer(arch, residual["p"])
    st_t, st_p = C.weight_stats(arch, t_e), C.weight_stats(plain["arch"], plain["p"])
    w_e, ids = C.flat_weights(arch, t_e)
    w_0, _ = C.flat_weights(arch, C.transfer(arch, residual["p0"]))
    move = (w_e - w_0)[:, ids].abs()
    return IdentityMass(w_e[:, ids].mean().item(), move.mean().item(), move.max().item(),
                        (st_t["mass_id"] / st_t["mass_large"]).cpu().numpy(),
                        (st_p["mass_id"] / st_p["mass_large"]).cpu().numpy())


def dominant_fractions(trained: dict, depth: int, x: Tensor, y: Tensor, x_eval: Tensor, y_eval: Tensor, *,
                       batch_size: int, lr: float, weight_decay: float, streams: Callable[[int], torch.Generator]) -> dict:
    """App. D.4.2 / Fig. 12a: the fraction ``σ^(ℓ)`` of dominant gradient flows per layer
    (:func:`lib.nets.convnets.dominant_fraction` on ``(x_eval, y_eval)``, mean over networks) of the
    depth-``depth`` PlnNet and ResNet of :func:`train_families`, after their first SGD step (the
    same step for both: orders from ``streams(200 + depth)``) and after training.
    Returns ``{(kind, "first" | "last"): (layers,)}``."""
    sig = {}
    for kind in ("plain", "residual"):
        t = trained[(kind, depth)]
        first, _ = C.train(t["arch"], t["p0"], x, y, steps=1, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                           generator=streams(200 + depth), progress=False)
        sig[(kind, "first")] = C.dominant_fraction(t["arch"], first, x_eval, y_eval).mean(0).cpu().numpy()
        sig[(kind, "last")] = C.dominant_fraction(t["arch"], t["p"], x_eval, y_eval).mean(0).cpu().numpy()
    return sig


def noise_sensitivities(trained: dict, depths, x: Tensor, levels, *, n_draws: int = 4,
                        generator: torch.Generator | None = None) -> dict:
    """Noise stability measured directly (§1, §5; Arora et al. 2018): the relative change of the
    logits on ``x`` when Gaussian noise of std ``s`` is added to the weights, for every ``s`` in
    ``levels``, of the PlnNets and ResNets (as ``T(r)``) of :func:`train_families` at ``depths``.
    Returns ``{(kind, L): [per level (networks, inputs)]}`` on the CPU."""
    out = {}
    for L in depths:
        for kind in ("plain", "residual"):
            t = trained[(kind, L)]
            prm = C.transfer(t["arch"], t["p"]) if kind == "residual" else t["p"]
            out[(kind, L)] = [C.noise_sensitivity(t["arch"], prm, x, s, n_draws=n_draws, generator=generator).cpu()
                              for s in levels]
    return out


def bn_block_cushions(*, channels: int = 16, size: int = 8, eps_grid=(1e-7, 1e-6, 1e-5, 1e-4),
                      generator: torch.Generator | None = None, device=None) -> dict:
    """§5, the fully-fledged block's interlayer cushion at random weights: a batch of ``channels``
    ReLU'd Gaussian inputs of ``channels × size × size`` and two He 3×3 convolutions (in that
    order from ``generator``), through the plain and the residual batch-norm block
    (:func:`lib.nets.convnets.bn_block_cushion`) in float32 and float64, with batch-norm ``eps`` 0
    and 1e-5. Returns ``cushion`` (``{(precision, residual, eps): per-sample cushions}``),
    ``per_eps`` (the float64 plain block's mean cushion over ``eps`` for each of ``eps_grid``) and
    ``doubled`` (its mean cushion with the inputs doubled, over the undoubled one, at 1e-5)."""
    f64 = torch.float64
    x = torch.randn(channels, channels, size, size, generator=generator, device=device, dtype=f64).relu()
    w1, w2 = (torch.randn(channels, channels, 3, 3, generator=generator, device=device, dtype=f64).mul(
        np.sqrt(2 / (9 * channels))) for _ in range(2))
    cushion = {(name, res, eps): C.bn_block_cushion(x.to(dt), w1.to(dt), w2.to(dt), residual=res, eps=eps).cpu().numpy()
               for name, dt in (("float32", torch.float32), ("float64", f64)) for res in (False, True) for eps in (0.0, 1e-5)}
    per_eps = np.array([C.bn_block_cushion(x, w1, w2, residual=False, eps=e).mean().item() / e for e in eps_grid])
    doubled = C.bn_block_cushion(2 * x, w1, w2, residual=False, eps=1e-5).mean().item() / cushion[("float64", False, 1e-5)].mean()
    return dict(cushion=cushion, per_eps=per_eps, doubled=doubled, eps_grid=list(eps_grid))


#: App. C, Table 3: the statistics of one network the paper prints, the values it prints for the
#: KWI plain net ``p0`` and for ``t0 = T(r0)`` of an HMWI ResNet (depth 32), and half a unit of the
#: last digit of each printed value (the rounding a printed cell carries)
TABLE3_KEYS = ("mean", "std", "mass_all", "mass_large", "mass_id")
TABLE3_PAPER = {"p0": (0.000062, 0.070, 25000, 420, 67), "t0": (0.0023, 0.048, 1900, 1100, 1100)}
TABLE3_ROUNDING = {"p0": (0.0000005, 0.0005, 500, 5, 0.5), "t0": (0.00005, 0.0005, 50, 50, 50)}


@dataclass
class Table3Column:
    """One column of Table 3: the ``params`` drawn, the statistics of each network
    (``{statistic: (n_networks,)}``, :func:`lib.nets.convnets.weight_stats`) and their exact
    expectation (:func:`lib.nets.convnets.expected_weight_stats`)."""

    params: dict
    stats: dict
    expected: dict


def table3_statistics(arch: C.ConvArch, n_networks: int, *, generator: torch.Generator | None = None,
                      device=None) -> dict[str, Table3Column]:
    """App. C, Table 3 at initialisation: ``n_networks`` KWI plain nets ``p0`` and the plain images
    ``t0 = T(r0)`` of as many HMWI ResNets (drawn in that order from ``generator``, float64), each
    with its per-network weight statistics and their exact expectation. Returns
    ``{"p0": …, "t0": …}``."""
    p0 = C.init_params(arch, n_networks, "kwi", generator=generator, device=device, dtype=torch.float64)
    t0 = C.transfer(arch, C.init_params(arch, n_networks, "hmwi", generator=generator, device=device, dtype=torch.float64))
    return {name: Table3Column(prm, {k: v.cpu().numpy() for k, v in C.weight_stats(arch, prm).items()},
                               C.expected_weight_stats(arch, init, transferred=transferred))
            for name, prm, init, transferred in (("p0", p0, "kwi", False), ("t0", t0, "hmwi", True))}


def twin_end_of_training(arch: C.ConvArch, twins: dict, x: Tensor, y: Tensor, *, weight_decay: float) -> tuple[dict, dict, list]:
    """App. B, Table 2: the training loss ``L``, the cost ``C`` (loss plus weight decay) and the
    accuracy of both twins of every pair of :func:`twin_runs` at the end of training
    (:func:`lib.nets.convnets.twin_table`, in each pair's own precision). Returns the tables
    (``{precision: twin_table}``), the relative gaps ``|plain - res| / |res|`` of ``L`` and ``C``
    (``{precision: {"L", "C": (pairs,)}}``) and one display row per pair."""
    tables = {name: C.twin_table(arch, tw["params"], x.to(tw["dtype"]), y, weight_decay=weight_decay)
              for name, tw in twins.items()}
    rel = {name: {k: ((t["plain"][k] - t["res"][k]).abs() / t["res"][k].abs()).numpy() for k in ("L", "C")}
           for name, t in tables.items()}
    rows = [{"precision, pair": f"{name}, {e}",
             "PlnNet L · C · acc": " · ".join(f"{t['plain'][k][e]:.5g}" for k in ("L", "C", "acc")),
             "ResNet L · C · acc": " · ".join(f"{t['res'][k][e]:.5g}" for k in ("L", "C", "acc")),
             "relative gap in L": f"{rel[name]['L'][e]:.1e}", "ReLU disagreements": int(twins[name]["flips"][:, e].sum())}
            for name, t in tables.items() for e in range(len(t["res"]["L"]))]
    return tables, rel, rows


def log_loss_growth(trained: dict, shallow: int, deep: int) -> dict[str, float]:
    """App. D.1, Fig. 9 (degradation): per family of :func:`train_families`, the growth of the
    final training loss from depth ``shallow`` to ``deep`` as the difference of the mean log losses
    over networks (the log of the ratio of geometric means)."""
    def mean_log(kind, L):
        return float(np.log(trained[(kind, L)]["loss"].cpu().numpy()).mean())

    return {k: mean_log(k, deep) - mean_log(k, shallow) for k in dict.fromkeys(k for k, _ in trained)}


def log_change_per_network(sens: dict, depth: int) -> dict[str, np.ndarray]:
    """Per network of :func:`noise_sensitivities` at ``depth``, the mean over noise levels of the
    log of its mean relative output change (the network, not the input or the noise draw, is the
    unit a comparison of families replicates): ``{"plain" | "residual": (networks,)}``."""
    return {k: torch.stack([v.mean(1).log() for v in sens[(k, depth)]]).mean(0).numpy() for k in ("plain", "residual")}
