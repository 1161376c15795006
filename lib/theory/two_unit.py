"""Orhan & Pitkow §2.2, Fig. 2, after Fukumizu & Amari (2000) and Wei et al. (2008): why
singularities slow gradient descent, in the smallest network that has them.

A student with two hidden units, ``f(x) = w_1 g(J_1 x) + w_2 g(J_2 x)``, learns a teacher
``f*(x) = Σ_k v_k g(t_k x)`` on standard Gaussian inputs ``x`` (dimension ``n``; the book uses
``n = 1``), with ``g(u) = erf(u/√2)`` and the population loss ``L = ½ E_x (f - f*)²``. For this unit
the Gaussian expectations are closed-form (Williams 1997):
``E g(a·x) g(b·x) = (2/π) arcsin(a·b / √((1 + |a|²)(1 + |b|²)))``, so ``L`` and its derivatives are
exact functions of the weights (no sampling).

The singularities: ``J_1 = J_2`` (overlap: only ``w_1 + w_2`` matters) and ``w_i = 0`` (elimination:
``J_i`` does not matter). Wei et al.'s coordinates are ``h = |J_1 - J_2|`` and
``z = (w_1 - w_2)/(w_1 + w_2)``: the overlap manifold is ``h = 0``, the elimination manifolds
``z = ±1``. If ``(w*, J*)`` is the best *one-unit* student, every point of the line
``J_1 = J_2 = J*``, ``w_1 = (1 + z) w*/2``, ``w_2 = (1 - z) w*/2`` is a critical point of ``L``
(the student computes the one-unit optimum, whose gradient vanishes, and the split ``z`` is
invisible), with a zero Hessian eigenvalue along the line. Its transverse curvature in the
direction that separates the units is ``w_1 w_2`` times a quantity fixed by the teacher, so it
changes sign exactly where ``w_1 w_2`` does, at ``z = ±1``: the elimination points divide the line
into stable and unstable segments. Near an unstable segment gradient descent is slowed (the
near-singularity plateau); on a stable one it can only drift along the flat direction (the
on-singularity plateau, escaped by noise)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def erf_kernel(a: Tensor, b: Tensor) -> Tensor:
    """``E_x erf(a·x/√2) erf(b·x/√2)`` for ``x ~ N(0, I)``, over the last dimension (broadcast)."""
    return (2 / math.pi) * torch.asin((a * b).sum(-1) / torch.sqrt((1 + (a * a).sum(-1)) * (1 + (b * b).sum(-1))))


def unpack(theta: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """``theta = (w_1..w_k, J_1 (n), .., J_k (n))`` -> ``w (k,)``, ``J (k, n)``."""
    k = theta.shape[-1] // (n + 1)
    if k * (n + 1) != theta.shape[-1]:
        raise ValueError(f"a parameter vector of length {theta.shape[-1]} is not k (1 + n) for n = {n}")
    return theta[..., :k], theta[..., k:].reshape(*theta.shape[:-1], k, n)


def population_loss(theta: Tensor, teacher_J: Tensor, teacher_v: Tensor) -> Tensor:
    """``½ E_x (f - f*)²`` of the student ``theta`` (:func:`unpack`) against the teacher with input
    weights ``teacher_J (m, n)`` and output weights ``teacher_v (m,)``; exact (Williams' kernel)."""
    w, J = unpack(theta, teacher_J.shape[-1])
    ss = (w[..., :, None] * w[..., None, :] * erf_kernel(J[..., :, None, :], J[..., None, :, :])).sum((-2, -1))
    st = (w[..., :, None] * teacher_v * erf_kernel(J[..., :, None, :], teacher_J)).sum((-2, -1))
    tt = (teacher_v[:, None] * teacher_v * erf_kernel(teacher_J[:, None], teacher_J)).sum()
    return 0.5 * (ss - 2 * st + tt)


def best_single_unit(teacher_J: Tensor, teacher_v: Tensor, *, starts: int = 16, seed: int = 0) -> tuple[Tensor, float]:
    """The best one-unit student ``(w*, J*)`` (``(1 + n,)`` float64) and its loss, by BFGS with
    exact gradients from ``starts`` random starting points (the best of them)."""
    from scipy import optimize

    tJ, tv = teacher_J.double(), teacher_v.double()
    loss = lambda th: population_loss(th, tJ, tv)                     # noqa: E731
    f = lambda x: loss(torch.from_numpy(x)).item()                     # noqa: E731
    g = lambda x: torch.func.grad(loss)(torch.from_numpy(x)).numpy()   # noqa: E731
    rng = np.random.default_rng(seed)
    best = min((optimize.minimize(f, rng.normal(size=1 + tJ.shape[-1]), jac=g, method="BFGS", options={"gtol": 1e-13})
                for _ in range(starts)), key=lambda r: r.fun)
    return torch.from_numpy(best.x), float(best.fun)


def on_overlap_line(single: Tensor, z: Tensor) -> Tensor:
    """The two-unit students ``J_1 = J_2 = J*``, ``w_{1,2} = (1 ± z) w*/2`` for every split ``z``:
    ``(len(z), 2 + 2n)``."""
    w, J = single[0], single[1:]
    z = torch.as_tensor(z, dtype=torch.float64).reshape(-1, 1)
    return torch.cat([(1 + z) * w / 2, (1 - z) * w / 2, J.expand(len(z), -1), J.expand(len(z), -1)], -1)


def separating_curvature(theta: Tensor, teacher_J: Tensor, teacher_v: Tensor) -> Tensor:
    """The curvature of the loss in the direction that pulls the two units apart while keeping
    their output-weighted centre ``(w_1 J_1 + w_2 J_2)/(w_1 + w_2)`` fixed: ``J_1 += (1 - λ) u``,
    ``J_2 -= λ u`` with ``λ = w_1/(w_1 + w_2)`` and ``u`` each input direction in turn (not
    normalised), at the students ``theta (B, 2 + 2n)``: ``(B, n)``. On the overlap line the terms in
    ``E g'(J*x)² x²`` cancel and what is left is ``w_1 w_2 / w* · E[e(x) g''(J*x) x x]``, ``e`` the
    one-unit optimum's error: the sign of ``w_1 w_2`` times a teacher-fixed quantity."""
    n = teacher_J.shape[-1]
    w, _ = unpack(theta, n)
    lam = (w[:, 0] / (w[:, 0] + w[:, 1]))[:, None, None]                       # (B, 1, 1)
    eye = torch.eye(n, dtype=theta.dtype).expand(len(theta), n, n)
    d = torch.cat([torch.zeros(len(theta), n, 2, dtype=theta.dtype), (1 - lam) * eye, -lam * eye], -1)   # (B, n, P)
    loss = lambda th: population_loss(th, teacher_J, teacher_v)    # noqa: E731
    H = torch.vmap(torch.func.hessian(loss))(theta)
    return torch.einsum("bip,bpq,biq->bi", d, H, d)


def hessian_spectra(theta: Tensor, teacher_J: Tensor, teacher_v: Tensor) -> Tensor:
    """Eigenvalues of the exact Hessian of the population loss at every student of ``theta (B, P)``."""
    loss = lambda th: population_loss(th, teacher_J, teacher_v)    # noqa: E731
    return torch.linalg.eigvalsh(torch.vmap(torch.func.hessian(loss))(theta))


def gradient_descent(theta0: Tensor, teacher_J: Tensor, teacher_v: Tensor, *, lr: float, steps: int,
                     every: int = 1) -> dict[str, np.ndarray]:
    """Full-batch (population) gradient descent from every student of ``theta0 (B, P)`` at once.
    Records every ``every`` steps: ``loss (T, B)``, Wei et al.'s ``h = |J_1 - J_2|`` and
    ``z = (w_1 - w_2)/(w_1 + w_2)`` ``(T, B)``, and ``step (T,)``."""
    n = teacher_J.shape[-1]
    th = theta0.clone()
    out: dict[str, list] = {"step": [], "loss": [], "h": [], "z": []}
    for t in range(steps + 1):
        th.requires_grad_(True)
        v = population_loss(th, teacher_J, teacher_v)            # (B,): the runs share no parameter,
        (g,) = torch.autograd.grad(v.sum(), th)                   # so one backward gives every run's gradient
        th, v = th.detach(), v.detach()
        if t % every == 0 or t == steps:
            w, J = unpack(th, n)
            out["step"].append(t)
            out["loss"].append(v.numpy().copy())
            out["h"].append((J[:, 0] - J[:, 1]).norm(dim=-1).numpy())
            out["z"].append(((w[:, 0] - w[:, 1]) / (w[:, 0] + w[:, 1])).numpy())
        th = th - lr * g
    return {k: np.array(v) for k, v in out.items()}


def escape_steps(losses: np.ndarray, plateau: float, *, fraction: float = 0.5) -> np.ndarray:
    """For every run (columns of ``losses (T, B)``, one row per recorded step), the first row at
    which the loss falls below ``fraction`` of the plateau loss (``-1`` if it never does)."""
    below = losses < fraction * plateau
    return np.where(below.any(0), below.argmax(0), -1)
