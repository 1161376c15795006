"""Littwin & Wolf §4: batch norm and the driving force that deepens a residual ensemble.

- :func:`bn_stream`: the second moment along a batch-normalised ReLU resnet (§4.1, Eq. 22 and the
  recursion ``E[N_{l+1}²] = 1 + E[N_l²]``), Monte Carlo over random networks.
- :class:`BNResNet`: App. C's network, ``blocks`` ReLU layers with identity skips around layers
  2…, the paper's batch norm (a scale ``λ_l`` per layer over the batch st. dev.), a linear read-out;
  ``E`` networks at once. It runs either with live batch statistics or in the paper's model, where
  ``σ_l`` and the ReLU gates are constants.
- :func:`theorem3`: Thm 3 (1) and (2) on such a network, to first order in the step size.
- :func:`theorem4`: Thm 4 (Eqs. 26-27) on a small net without batch norm.
- :func:`train_scales`: Fig. 1(d-e), the scales ``|λ_l|`` and the weight norm during SGD training.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..nets.training import accuracy


def bn_stream(kind: str, n_nets: int, *, depth: int = 30, width: int = 64, batch: int = 256,
              generator: torch.Generator | None = None, device=None, dtype=torch.float64) -> tuple[np.ndarray, np.ndarray]:
    """§4.1: a batch of ``batch`` Gaussian inputs through ``n_nets`` random He ReLU resnets of
    ``depth`` layers, ``N_1 = ρ(x W_1)``, ``N_{l+1} = N_l + BN(ρ(N_l W_{l+1}))``, with the paper's
    batch norm (``kind="eq22"``: divide by the layer's mean batch st. dev., Eq. 22) or the usual one
    (``"standard"``: subtract the batch mean, divide per unit). Returns ``(E[N_l²] for l = 1…depth,
    σ_l² for l = 2…depth)``, the mean over networks, batch and units."""
    if kind not in ("eq22", "standard"):
        raise ValueError(f"kind = {kind!r}: use 'eq22' or 'standard'")
    x = torch.randn(n_nets, batch, width, generator=generator, device=device, dtype=dtype)

    def W():
        return torch.randn(n_nets, width, width, generator=generator, device=device, dtype=dtype) * math.sqrt(2 / width)

    N = torch.relu(x @ W())
    second, sig2 = [N.pow(2).mean().item()], []
    for _ in range(2, depth + 1):
        R = torch.relu(N @ W())
        s = R.std(dim=1, keepdim=True)
        sig2.append(s.pow(2).mean().item())
        inc = R / s.mean(dim=2, keepdim=True) if kind == "eq22" else (R - R.mean(1, keepdim=True)) / (s + 1e-12)
        N = N + inc
        second.append(N.pow(2).mean().item())
    return np.array(second), np.array(sig2)


class BNResNet(torch.nn.Module):
    """Littwin & Wolf App. C: ``blocks`` layers of ``width`` ReLU units (He init), identity skips
    around layers 2…, the paper's batch norm (Eq. 22: ``λ_l / σ_l`` times the layer's output, ``σ_l``
    the mean over units of the batch st. dev.), a linear read-out to ``n_cls`` logits; ``E``
    networks at once, inputs ``(E, B, d_in)``."""

    def __init__(self, E: int, d_in: int, width: int, blocks: int, n_cls: int, *, bn: bool = True,
                 generator: torch.Generator | None = None, device=None, dtype=torch.float32):
        super().__init__()
        dims = [d_in] + [width] * blocks
        self.bn, self.blocks = bn, blocks
        self.W = torch.nn.ParameterList([torch.nn.Parameter(
            torch.randn(E, dims[l], width, generator=generator, device=device, dtype=dtype) * math.sqrt(2 / dims[l]))
            for l in range(blocks)])
        self.out = torch.nn.Parameter(torch.randn(E, width, n_cls, generator=generator, device=device, dtype=dtype)
                                      / math.sqrt(width))
        self.lam = torch.nn.Parameter(torch.ones(E, blocks, device=device, dtype=dtype))

    def forward(self, x: Tensor, live: bool = True) -> Tensor:
        """``live``: ``σ_l`` from this batch, differentiated (real batch norm), and ReLU gates from
        the pre-activations; otherwise the constants stored by :meth:`freeze_sigma` (the paper's
        model, where ``σ_l`` and the gates do not depend on the weights)."""
        N, sigmas, masks = None, [], []
        for l in range(self.blocks):
            z = (x if l == 0 else N) @ self.W[l]
            R = torch.relu(z) if live else z * self.masks[l]
            masks.append((z > 0).to(z.dtype))
            if self.bn:
                s = R.std(dim=1, keepdim=True).mean(dim=2, keepdim=True) + 1e-5 if live else self.frozen[l]
                sigmas.append(s.detach())
                R = self.lam[:, l, None, None] / s * R
            N = R if l == 0 else N + R
        self.last_sigmas, self.last_masks = sigmas, masks
        return N @ self.out

    def freeze_sigma(self, x: Tensor) -> None:
        """Store this batch's ``σ_l`` and ReLU gates: the paper's model treats both as constants."""
        with torch.no_grad():
            self(x, live=True)
        self.frozen, self.masks = self.last_sigmas, self.last_masks

    def weights(self) -> list[Tensor]:
        return list(self.W) + [self.out]


@dataclass
class Theorem3:
    """Thm 3 measured on one :class:`BNResNet` ensemble (``E`` networks) with a loss linear in the
    output. ``homogeneity_frozen`` / ``homogeneity_live``: ``λ_1 ∂L/∂λ_1 / L`` per network with
    ``σ`` held fixed / differentiated; ``first_order``: per step size ``μ``, the largest relative
    error of ``Δ ∂L/∂λ_1 ≈ -μ‖g‖²/λ_1`` (Eq. 41); ``affine_error``: per skipped layer, the largest
    ``|λ_l ∂L/∂λ_l - (L - L|λ_l=0)|`` (Thm 3(2)); ``first_order_skipped``: ``(layers, μ)`` relative
    errors of ``Δ ∂L/∂λ_l ≈ -μ g·g_p/λ_l`` (Eq. 44)."""

    homogeneity_frozen: np.ndarray
    homogeneity_live: np.ndarray
    first_order: np.ndarray
    affine_error: np.ndarray
    first_order_skipped: np.ndarray
    mus: tuple[float, ...]
    layers: tuple[int, ...]


def theorem3(net: BNResNet, x: Tensor, s: Tensor, *, mus=(1e-5, 1e-6, 1e-7), layers: tuple[int, ...] = (1, 4, 9)) -> Theorem3:
    """Littwin & Wolf Thm 3 on ``net`` (float64 advised) with the linear loss ``L = mean(s ⊙ f(x))``
    (Eq. 20), ``x (B, d_in)`` shared by the networks and ``s (B, n_cls)`` fixed. In the paper's model
    (``σ_l`` and gates frozen at ``x``): (1) ``λ_1 ∂L/∂λ_1 = L`` and, after a step ``w → w - μg``,
    ``∂L/∂λ_1`` moves by ``-μ‖g‖²/λ_1`` to first order; (2) for a skipped layer ``l`` (0-based index in
    ``layers``), ``λ_l ∂L/∂λ_l = L - L|_{λ_l=0}`` and ``∂L/∂λ_l`` moves by ``-μ g·g_p/λ_l`` with ``g_p``
    the gradient of ``L - L|_{λ_l=0}``. The step sizes ``mus`` are small enough that no ReLU changes
    sign along the step; the error of a first-order prediction then falls like ``μ``."""
    E = net.lam.shape[0]
    xb = x.expand(E, -1, -1)

    def loss(model, live):
        return (model(xb, live=live) * s).mean(dim=(1, 2))

    def lam_grad(model):
        return torch.autograd.grad(loss(model, False).sum(), model.lam)[0].detach()

    net.freeze_sigma(xb)
    homog = []
    for live in (False, True):
        L = loss(net, live)
        g1 = torch.autograd.grad(L.sum(), net.lam)[0][:, 0]
        homog.append(((net.lam[:, 0] * g1).detach() / L.detach()).cpu().numpy())
    gw = torch.autograd.grad(loss(net, False).sum(), net.weights())

    def moved(mu):
        m = copy.deepcopy(net)
        m.frozen, m.masks = net.frozen, net.masks
        with torch.no_grad():
            for p, g in zip(m.weights(), gw):
                p -= mu * g
        return lam_grad(m)

    g0 = lam_grad(net)
    g_moved = {mu: moved(mu) for mu in mus}
    lam = net.lam.detach().clone()
    pred1 = -sum((g ** 2).sum(dim=tuple(range(1, g.dim()))) for g in gw) / lam[:, 0]
    first = [(((g_moved[mu][:, 0] - g0[:, 0]) - mu * pred1) / (mu * pred1)).abs().max().item() for mu in mus]
    L_full = loss(net, False).detach()
    affine, rel2 = [], []
    for l in layers:
        keep = net.lam[:, l].detach().clone()
        with torch.no_grad():
            net.lam[:, l] = 0.0
        L_zero = loss(net, False)
        g_zero = torch.autograd.grad(L_zero.sum(), net.weights())
        with torch.no_grad():
            net.lam[:, l] = keep
        affine.append((lam[:, l] * g0[:, l] - (L_full - L_zero.detach())).abs().max().item())
        g_p = [a - b for a, b in zip(gw, g_zero)]
        pred = -sum((a * b).sum(dim=tuple(range(1, a.dim()))) for a, b in zip(gw, g_p)) / lam[:, l]
        rel2.append([(((g_moved[mu][:, l] - g0[:, l]) - mu * pred) / (mu * pred)).abs().max().item() for mu in mus])
    return Theorem3(homog[0], homog[1], np.array(first), np.array(affine), np.array(rel2), tuple(mus), tuple(layers))


@dataclass
class Theorem4:
    """Thm 4 measured: ``premise`` (``∂L/∂C`` at the rescaled weights, ≈ 0), ``homogeneity`` (the
    errors of ``L_m(cw) = c^m L_m`` and ``L_p(cw) = c^p L_p`` at ``c = 1.7``) and ``first_order``
    (per step size, the relative error of Eq. 27's first-order change of ``∂L/∂C``)."""

    premise: float
    homogeneity: list[float]
    first_order: np.ndarray
    mus: tuple[float, ...]


def theorem4(*, d: int = 8, n: int = 6, batch: int = 64, mus=(1e-4, 1e-5, 1e-6), generator: torch.Generator | None = None,
             device=None, dtype=torch.float64) -> Theorem4:
    """Littwin & Wolf Thm 4 (Eqs. 26-27) without batch norm: a ReLU net with a short path (``W1, v``:
    ``m = 2`` weight layers) and a long one (``W1, W2, W3, v``: ``p = 4``), inputs ``(batch, d)``,
    ``n`` units. A loss linear in the output splits as ``L = L_m + L_p`` with ``L(cw) = c^m L_m +
    c^p L_p``. Signs ``s`` are redrawn until ``L_m L_p < 0``; the weights are then rescaled to the
    ``c*`` where ``∂L/∂C = 0`` (``C = ‖w‖/√Λ``), and a step ``-μg`` must change ``∂L/∂C`` by
    ``-μ/C (m|g_m|² + p|g_p|² + (m+p) g_m·g_p)`` to first order."""
    kw = dict(generator=generator, device=device, dtype=dtype)
    x = torch.randn(batch, d, **kw)
    w = [torch.randn(d, n, **kw) / math.sqrt(d), torch.randn(n, n, **kw) * math.sqrt(2 / n),
         torch.randn(n, n, **kw) * math.sqrt(2 / n), torch.randn(n, **kw) / math.sqrt(n)]

    def parts(ws, s):
        h = torch.relu(x @ ws[0])
        br = torch.relu(torch.relu(h @ ws[1]) @ ws[2])
        return (s * (h @ ws[3])).mean(), (s * (br @ ws[3])).mean()

    for _ in range(100):
        s = torch.randn(batch, **kw)
        Lm, Lp = parts(w, s)
        if Lm * Lp < 0:
            break
    else:
        raise RuntimeError("no sign vector with L_m L_p < 0 in 100 draws")
    c_star = (-2 * Lm / (4 * Lp)).item() ** 0.5
    w = [w_ * c_star for w_ in w]
    homog = [(parts([w_ * 1.7 for w_ in w], s)[k] / parts(w, s)[k] - 1.7 ** e).abs().item() for k, e in ((0, 2), (1, 4))]

    def flat(qs):
        return torch.cat([q.reshape(-1) for q in qs])

    def radial(ws):
        ws = [w_.detach().requires_grad_(True) for w_ in ws]
        g = torch.autograd.grad(sum(parts(ws, s)), ws)
        wflat = flat([w_.detach() for w_ in ws])
        C = wflat.norm() / math.sqrt(wflat.numel())
        return (wflat @ flat(g)) / C, [q.detach() for q in g], C

    r0, g_all, C0 = radial(w)
    ws_ = [w_.detach().requires_grad_(True) for w_ in w]
    gm = torch.autograd.grad(parts(ws_, s)[0], ws_, allow_unused=True, materialize_grads=True)   # L_m ignores W2, W3
    gp = torch.autograd.grad(parts(ws_, s)[1], ws_)
    pred = -(2 * flat(gm).pow(2).sum() + 4 * flat(gp).pow(2).sum() + 6 * flat(gm) @ flat(gp)) / C0
    err = [abs(((radial([w_ - mu * q for w_, q in zip(w, g_all)])[0] - r0) - mu * pred) / (mu * pred)).item() for mu in mus]
    return Theorem4(r0.item(), homog, np.array(err), tuple(mus))


@dataclass
class ScaleTraining:
    """Fig. 1(d-e) measured: ``lam`` (epochs + 1, E, blocks) the scales ``|λ_l|`` at the start and
    after every epoch; ``weight_norm`` (records, E) ``‖w‖₂`` of the layers every ``record_every``
    steps; ``accuracy`` (epochs, E) training accuracy after every epoch."""

    lam: np.ndarray
    weight_norm: np.ndarray
    accuracy: np.ndarray
    record_every: int


def train_scales(x: Tensor, y: Tensor, *, E: int, width: int, blocks: int, bn: bool, lr: float, epochs: int,
                 n_cls: int | None = None, batch: int = 50, record_every: int = 20, init: torch.Generator | None = None,
                 order: torch.Generator | None = None) -> ScaleTraining:
    """Littwin & Wolf §4.2 / Fig. 1(d-e): ``E`` :class:`BNResNet` (weights from ``init``) trained
    with plain SGD (learning rate ``lr``, mini-batches of ``batch`` in an order drawn from
    ``order``, the same order for every network) on ``(x (n, d), y (n,))`` with cross-entropy,
    recording the batch-norm scales and the weight norm. ``n_cls`` defaults to ``max(y) + 1``."""
    n_cls = n_cls or int(y.max()) + 1
    model = BNResNet(E, x.shape[1], width, blocks, n_cls, bn=bn, generator=init, device=x.device, dtype=x.dtype)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    n = len(x)
    lam_hist, wn_hist, acc = [model.lam.detach().abs().clone()], [], []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=order, device=order.device if order is not None else None).to(x.device)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            out = model(x[idx].expand(E, -1, -1))
            loss = torch.nn.functional.cross_entropy(out.reshape(-1, n_cls), y[idx].repeat(E), reduction="sum") / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if (i // batch) % record_every == 0:
                wn_hist.append(torch.sqrt(sum(w.detach().pow(2).sum(dim=(1, 2)) for w in model.W)).cpu().numpy())
        lam_hist.append(model.lam.detach().abs().clone())
        with torch.no_grad():
            acc.append(accuracy(model(x.expand(E, -1, -1)), y).cpu().numpy())
    return ScaleTraining(torch.stack(lam_hist).cpu().numpy(), np.array(wn_hist), np.array(acc), record_every)
