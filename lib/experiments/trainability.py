"""Balduzzi et al. §5: the looks-linear initialisation. A CReLU net with mirrored weights is exactly
linear at the start and stops being linear after one step (:func:`looks_linear_test`); §5.1, Fig. 6:
does it make a deep CReLU net as trainable as a resnet? The four families, trained side by side at
every depth (:func:`trainability_by_depth`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..nets.models import Arch, Net
from ..nets.training import train
from ..theory import shattering as S


def fig6_architectures(depth: int, width: int, d_in: int, d_out: int) -> dict[str, Arch]:
    """The four families of §5.1, Fig. 6, as fully connected nets of ``depth`` hidden layers:
    a ReLU net and a CReLU net with He initialisation, the CReLU net with the looks-linear
    initialisation (mirrored orthogonal blocks ``(W, -W)``: exactly linear at the start), and a
    ReLU resnet. The CReLU nets have ``round(width/√2)`` units per layer (2× as many outputs), for
    about the same number of parameters, as in the paper. The paper's resnet has batch norm; ours
    has none, so its branches are scaled by ``1/√depth`` to keep the forward variance bounded."""
    wc = max(1, round(width / math.sqrt(2)))
    return {"ReLU, He": Arch(d_in, width, depth, d_out, act="relu", init="he"),
            "CReLU, He": Arch(d_in, wc, depth, d_out, act="crelu", init="he"),
            "CReLU, looks-linear": Arch(d_in, wc, depth, d_out, act="crelu", init="looks-linear"),
            "ReLU resnet": Arch(d_in, width, depth, d_out, kind="residual", act="relu", init="he", beta=1 / math.sqrt(depth))}


def trainability_by_depth(X: Tensor, y: Tensor, depths, *, width: int, n_networks: int, epochs: int, lr: float,
                          batch_size: int = 64, optimizer: str = "adam", generator: torch.Generator | None = None,
                          progress: bool = False) -> dict[tuple[str, int], np.ndarray]:
    """§5.1, Fig. 6 at a small scale: every family of :func:`fig6_architectures` at every depth,
    ``n_networks`` independent networks each (one ensemble, its own mini-batch order per network),
    trained on ``(X, y)`` with the same optimiser, learning rate and budget of ``epochs``.
    Returns ``{(family, depth): final training accuracy per network (n_networks,)}``."""
    out = {}
    n_classes = int(y.max()) + 1
    for L in depths:
        for name, arch in fig6_architectures(L, width, X.shape[1], n_classes).items():
            net = Net(arch, E=n_networks, generator=generator, device=X.device, dtype=X.dtype)
            h = train(net, X, y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, generator=generator,
                      independent_order=True, progress=progress, desc=f"{name}, L = {L}")
            out[name, L] = h["accuracy"][-1].double().numpy()
    return out


@dataclass
class LooksLinearTest:
    """What :func:`looks_linear_test` measures on one looks-linear CReLU net."""

    err_linear: float                  # max |net(x) - Σ_j (x W_1 ... W_L)_j| over 64 Gaussian inputs
    scale_linear: float                # max |x W_1 ... W_L|, the size the round-off of err_linear scales with
    spread: float                      # (max - min) of d net(t v)/dt along a line, over sqrt(width) |v|
    eta: float                         # the step at which one gradient step leaves a nonlinearity of about 1e-4
    nonlinearity: dict[int, float]     # k -> relative nonlinearity along the line after one step of k·eta


def _line_nonlinearity(W: Tensor, t: Tensor, v: Tensor) -> float:
    """How far the net is from affine along the line ``t v``: the residual of the least-squares affine
    fit of ``net(t v)`` over ``t``, relative to the output's norm."""
    out = S.crelu_chain(t[:, None] * v, W)[0]
    A = torch.stack([t, torch.ones_like(t)], 1)
    resid = out - A @ torch.linalg.lstsq(A, out[:, None]).solution[:, 0]
    return (resid.norm() / out.norm()).item()


def _one_step(W: Tensor, t: Tensor, v: Tensor, lr: float) -> Tensor:
    """One gradient step of size ``lr`` on a nonlinear target along the line, ``|t| - mean|t|``
    (both standardised): it breaks the mirror symmetry of the looks-linear start."""
    Wp = W.clone().requires_grad_(True)
    out = S.crelu_chain(t[:, None] * v, Wp)[0]
    target = t.abs() - t.abs().mean()
    loss = ((out / out.std() - target / target.std()) ** 2).mean()
    (gW,) = torch.autograd.grad(loss, Wp)
    return (W - lr * gW).detach()


def looks_linear_test(depth: int, width: int, t: Tensor, *, generator: torch.Generator | None = None,
                      device=None) -> LooksLinearTest:
    """§5: a CReLU net with mirrored orthogonal blocks ``(W, -W)`` (:func:`lib.theory.shattering.looks_linear_weights`,
    float64) computes exactly the linear map ``x W_1 ... W_L`` summed, so its gradient along any line is
    constant; one gradient step on a nonlinear target makes it nonlinear, to first order in the step.
    ``t (M,)`` are the line's coordinates; the weights, 64 inputs and the line's direction ``v`` are
    drawn from ``generator`` in that order. The step ``eta`` is set from one probe so that the
    nonlinearity is about 1e-4 (first-order regime); then steps of ``k eta``, ``k = 0, 1, 2, 4``."""
    f64 = torch.float64
    W = S.looks_linear_weights(1, depth, width, generator=generator, dtype=f64).to(device)
    x = torch.randn(64, width, generator=generator, device=device, dtype=f64)
    v = torch.randn(1, width, generator=generator, device=device, dtype=f64)
    t = t.to(device=device, dtype=f64)
    prod_map = x
    for l in range(depth):
        prod_map = prod_map @ W[0, l, :width, :]                      # the W blocks
    err = (S.crelu_chain(x, W)[0] - prod_map.sum(-1)).abs().max().item()
    _, d_line = torch.func.jvp(lambda s: S.crelu_chain(s[:, None] * v, W)[0], (t,), (torch.ones_like(t),))
    spread = (d_line.max() - d_line.min()).abs().item() / (math.sqrt(width) * v.norm().item())
    eta = 1e-7 * 1e-4 / _line_nonlinearity(_one_step(W, t, v, 1e-7), t, v)
    nl = {k: _line_nonlinearity(_one_step(W, t, v, k * eta), t, v) for k in (0, 1, 2, 4)}
    return LooksLinearTest(err, float(prod_map.abs().max()), spread, eta, nl)
