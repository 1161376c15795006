"""Orhan & Pitkow §2.3-2.7: networks trained while their Hessian spectra are tracked. At checkpoints
four Skilling moments of every member's Hessian (Supp. Note 3, Eqs. 2-4) are estimated and the
mixture of Eq. 5 is fitted to them; its tail probability ``w`` is the paper's measure of how far a
network is from degenerate (Fig. 3b). Every epoch the probability that a hidden unit responds zero
is recorded (Fig. 7b)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..nets import training as T
from ..nets.models import Arch, Net
from ..theory import curvature as C
from ..theory import measure
from ..theory import spectrum as S
from . import layer_signals as LS


def tail_probabilities(model: Net, X: Tensor, Y: Tensor, *, n_probes: int, n_moments: int,
                       generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skilling's moment estimates of every member's Hessian of the cross-entropy on ``(X, Y)``
    (``n_probes`` Gaussian probes, ``n_moments`` moments; ``(E, n_moments)`` averaged over the probes)
    and the profile fit of Eq. 5 to the first four of each: returns ``(moments, w, fit_loss)``."""
    f = C.FlatLoss(model, T.cross_entropy, X, Y)
    probes = torch.randn(n_probes, f.N, generator=generator, device=X.device)
    m = C.skilling_moments(lambda B: C.batched_hvp(f, f.theta, B), probes, n_moments,
                           dot=f.member_dot, sizes=f.sizes).double().mean(0).cpu().numpy()   # (E, K)
    fits = [S.profile_fit(m[e, :4])[0] for e in range(model.E)]
    return m, np.array([fi.w for fi in fits]), np.array([fi.loss for fi in fits])


def train_tracking_spectra(arch: Arch, X: Tensor, Y: Tensor, XH: Tensor, YH: Tensor, *, E: int, epochs: int,
                           checkpoints, n_probes: int, n_moments: int, stream: int,
                           generator_for: Callable[[int], torch.Generator], lr: float = 5e-4, batch_size: int = 500,
                           track: bool = True, layer_stats_at=(), desc: str = "") -> dict:
    """§2.3's training (Glorot weights, zero biases, Adam with learning rate ``lr``, batches of
    ``batch_size``) of ``E`` networks of ``arch`` at once on ``(X, Y)``, each with its own mini-batch
    order. Weights and mini-batch orders come from ``generator_for(stream)``, the probes of epoch
    ``ep`` from ``generator_for(1000 + 17 stream + ep)``. Every epoch: the probability of a zero
    response on ``X``; with ``track``, at the ``checkpoints``: :func:`tail_probabilities` on the
    Hessian of ``(XH, YH)``; at the epochs in ``layer_stats_at``: the per-layer signal and gradient
    sizes of :func:`lib.experiments.layer_signals.layer_statistics` on the first 500 examples of
    ``(X, Y)`` (Fig. 6a; no random draws, so the run is the same with or without them). Returns
    ``acc`` and ``zero`` ``(epochs + 1, E)``, ``w``, ``fit_loss``, ``moments`` keyed by checkpoint
    epoch and ``layers`` keyed by epoch."""
    g = generator_for(stream)
    model = Net(arch, E=E, generator=g, device=X.device)

    def at_checkpoint(ep, net):
        zero = {"zero": measure.zero_response_probability(net, X).cpu().numpy()}
        if ep in layer_stats_at:
            zero["layers"] = (ep, LS.layer_statistics(net, X[:500], Y[:500]))
        if not (track and ep in checkpoints):
            return zero
        m, w, fl = tail_probabilities(net, XH, YH, n_probes=n_probes, n_moments=n_moments,
                                      generator=generator_for(1000 + 17 * stream + ep))
        return {**zero, "cp": ep, "w": w, "fit_loss": fl, "moments": m}

    h = T.train(model, X, Y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adam", generator=g,
                callback=at_checkpoint, independent_order=True, desc=desc)
    out = {"acc": torch.stack(h["accuracy"]).cpu().numpy(), "zero": np.array(h["zero"])}
    for key in ("w", "fit_loss", "moments"):
        out[key] = dict(zip(h.get("cp", []), h.get(key, [])))
    out["layers"] = dict(h.get("layers", []))
    return out


def mean_accuracy(h: dict) -> np.ndarray:
    """Mean training accuracy over all epochs after the start, per network (the paper's ranking
    statistic of Fig. 4)."""
    return h["acc"][1:].mean(0)


def paper_architecture(kind: str, *, d_in: int, width: int, hidden_layers: int, d_out: int, **kw) -> Arch:
    """Orhan & Pitkow §2.3: ``hidden_layers`` hidden layers of ``width`` units (a stem and
    ``hidden_layers - 1`` blocks), Glorot-normal weights, zero biases; the hyper-residual net's
    ``Q_k`` of the paper's "``width/4`` orthonormal vectors, 4 copies" type. ``kw`` overrides any
    field (a skip matrix, the malicious initialisation)."""
    base = dict(d_in=d_in, width=width, depth=hidden_layers - 1, d_out=d_out, kind=kind, init="glorot", bias=True)
    if kind == "hyper":
        base["hyper_q"] = max(1, width // 4)
    return Arch(**{**base, **kw})


def training_data(dataset: str, *, device=None) -> tuple[Tensor, Tensor]:
    """The training set: the embedded digits, or a local CIFAR set (:func:`lib.nets.data.load`: local
    files only, a clear error otherwise) with the mirror image of every picture added (Supp. Note 2)."""
    from ..nets import data

    if dataset == "digits":
        return data.digits(device=device)
    X, Y = data.load(dataset, device=device)
    mirrored = X.reshape(-1, 3, 32, 32).flip(-1).reshape(len(X), -1)
    return torch.cat([X, mirrored]), torch.cat([Y, Y])


def small_net_exact_spectrum(x: Tensor, y: Tensor, *, width: int = 24, steps: int = 300, lr: float = 5e-3,
                             generator: torch.Generator | None = None) -> dict:
    """A small test case for the moment estimators: a one-hidden-layer net of ``width`` units (Glorot
    weights, biases, float64, from ``generator``) trained by ``steps`` full-batch Adam steps on
    ``x``, ``y`` (cross-entropy), then its exact Hessian from ``N`` Hessian-vector products
    (:func:`lib.theory.curvature.exact_hessian`) and the eigendecomposition. Returns ``loss`` (the
    :class:`~lib.theory.curvature.FlatLoss`), ``hessian``, ``eigenvalues``, ``eigenvectors``,
    ``seconds`` (to build the Hessian) and ``accuracy`` (training)."""
    import time

    net = Net(Arch(d_in=x.shape[1], width=width, depth=1, d_out=int(y.max()) + 1, init="glorot", bias=True), E=1,
              generator=generator, device=x.device, dtype=x.dtype)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        T.cross_entropy(net(x), y).sum().backward()
        opt.step()
    f = C.FlatLoss(net, T.cross_entropy, x, y)
    t0 = time.perf_counter()
    H = C.exact_hessian(f, f.theta)
    seconds = time.perf_counter() - t0
    lam, U = torch.linalg.eigh(H)
    return {"loss": f, "hessian": H, "eigenvalues": lam, "eigenvectors": U, "seconds": seconds,
            "accuracy": T.accuracy(net(x), y).item()}


def exact_tail_against_count(arch: Arch, X: Tensor, Y: Tensor, XH: Tensor, YH: Tensor, *, E: int, epochs: int,
                             checkpoints, stream: int, generator_for: Callable[[int], torch.Generator],
                             lr: float = 5e-4, batch_size: int = 500, threshold: float = 3 * S.BULK_SIGMA,
                             rtol: float = 1e-9, desc: str = "") -> dict:
    """Fig. 3b's tail probability against what it stands for, on networks narrow enough for exact
    spectra. ``E`` networks of ``arch`` are trained as in :func:`train_tracking_spectra` (the dtype
    of ``X``). At the ``checkpoints`` every member's exact Hessian of the loss on ``(XH, YH)``
    (:func:`lib.theory.curvature.member_hessians`) is diagonalised; its first four moments are exact,
    so the profile fit of Eq. 5 sees no estimation noise, and its ``w`` is set beside the direct
    count: the fraction of eigenvalues outside the model's bulk, ``|λ| > threshold`` (three of the
    bulk's standard deviations), and the numerical rank as a fraction, ``|λ| > rtol · max |λ|``, which
    does not depend on the Hessian's overall scale (float64 round-off in the eigenvalues is about
    ``n ε max|λ| ≈ 1e-12 max|λ|`` for these sizes, so ``rtol = 1e-9`` counts no round-off as rank).
    A fit that the four moments do not admit gives ``w = nan``. Returns ``acc`` ``(epochs + 1, E)``
    and, keyed by checkpoint epoch, ``w``, ``count``, ``rank``, ``fit_loss`` (each ``(E,)``), ``fit``
    (``(E, 4)``: ``w, ξ, ω, α`` of Eq. 5) and ``eigenvalues`` ``(E, n)``."""
    g = generator_for(stream)
    model = Net(arch, E=E, generator=g, device=X.device, dtype=X.dtype)

    def at_checkpoint(ep, net):
        if ep not in checkpoints:
            return {}
        lam = torch.linalg.eigvalsh(C.member_hessians(C.FlatLoss(net, T.cross_entropy, XH, YH)))
        m = C.exact_moments(lam, 4).cpu().numpy()
        fits = np.full((E, 5), np.nan)                  # w, xi, omega, alpha, Eq. 6 objective
        for e in range(E):
            try:
                fit = S.profile_fit(m[e])[0]
                fits[e] = fit.w, fit.xi, fit.omega, fit.alpha, fit.loss
            except ValueError:
                pass
        lam = lam.cpu().numpy()
        return {"cp": ep, "w": fits[:, 0], "fit": fits[:, :4], "fit_loss": fits[:, 4],
                "count": np.array([S.tail_mass(v, threshold) for v in lam]),
                "rank": np.array([S.tail_mass(v, rtol * np.abs(v).max()) for v in lam]), "eigenvalues": lam}

    h = T.train(model, X, Y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adam", generator=g,
                callback=at_checkpoint, independent_order=True, desc=desc)
    out = {"acc": torch.stack(h["accuracy"]).cpu().numpy()}
    for key in ("w", "fit", "fit_loss", "count", "rank", "eigenvalues"):
        out[key] = dict(zip(h.get("cp", []), h.get(key, [])))
    return out
