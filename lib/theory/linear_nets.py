"""Reduced models of deep *linear* networks (Orhan & Pitkow 2018, Supplementary Note 4, after
Saxe, McClelland & Ganguli 2013).

Mode-strength energies (Eqs. 29-31), one input-output mode of singular value ``s``:
``E(a) = ½ (s - Π_l (a_l + c_l))²`` with offsets ``c_l = 0`` (plain), ``1`` (residual, identity
skips) or ``l`` (hyper-residual, all skips the identity), ``l = 1..D``. With ``p_l = a_l + c_l`` and
``u = Π p_l``:

* ``∂E/∂a_i = -(s - u) Π_{l≠i} p_l``                                   (Eq. 32 for c = 1),
* ``∂²E/∂a_i² = (Π_{l≠i} p_l)²``                                       (Eq. 33),
* ``∂²E/∂a_i∂a_k = (2u - s) Π_{l≠i,k} p_l``  for ``i ≠ k``               (Eq. 34).

Two-mode, three-layer dynamics (Eqs. 12-19): ``a^α, b^α ∈ R^n`` (input and output weights of mode
α), ``ȧ^α = (s_α - a^α·b^α) b^α - Σ_{γ≠α} (a^α·b^γ) b^γ`` and symmetrically for ``b``; the
residual net is the same flow in the shifted variables ``a^α + v^α``, ``b^α + u^α``.
Everything is batched over leading dimensions (an ensemble of initialisations).
"""

from __future__ import annotations

import torch
from torch import Tensor

ARCH_OFFSETS = ("plain", "residual", "hyper")


def offsets(kind: str, depth: int, *, device=None, dtype=torch.float64) -> Tensor:
    """``c_l`` of Eqs. 29-31 for ``l = 1..depth``."""
    if kind == "plain":
        return torch.zeros(depth, device=device, dtype=dtype)
    if kind == "residual":
        return torch.ones(depth, device=device, dtype=dtype)
    if kind == "hyper":
        return torch.arange(1, depth + 1, device=device, dtype=dtype)
    raise ValueError(f"kind {kind!r}: use one of {ARCH_OFFSETS}")


def energy(a: Tensor, s: float, c: Tensor) -> Tensor:
    """Eqs. 29-31 (τ = 1): ``½ (s - Π (a_l + c_l))²`` over the last dim of ``a``."""
    return 0.5 * (s - torch.prod(a + c, dim=-1)) ** 2


def _prod_except(p: Tensor) -> Tensor:
    """``Π_{l≠i} p_l`` for every ``i`` without division (prefix and suffix products)."""
    ones = torch.ones_like(p[..., :1])
    pre = torch.cumprod(torch.cat([ones, p[..., :-1]], -1), -1)
    suf = torch.flip(torch.cumprod(torch.cat([ones, torch.flip(p[..., 1:], [-1])], -1), -1), [-1])
    return pre * suf


def energy_grad(a: Tensor, s: float, c: Tensor) -> Tensor:
    """Eq. 32 generalised to offsets ``c``: ``-(s - u) Π_{l≠i} p_l``."""
    p = a + c
    return -(s - torch.prod(p, -1, keepdim=True)) * _prod_except(p)


def energy_hessian(a: Tensor, s: float, c: Tensor) -> Tensor:
    """Eqs. 33-34 generalised to offsets ``c``: ``(..., D, D)``."""
    p = a + c
    D = p.shape[-1]
    u = torch.prod(p, -1)
    ex = _prod_except(p)                                       # Π_{l≠i}
    # Π_{l≠i,k} = Π_{l≠i} / p_k computed without division: drop i, then k
    idx = torch.arange(D, device=p.device)
    pp = p.unsqueeze(-2).expand(*p.shape[:-1], D, D).clone()   # row i: p with p_i -> 1
    pp[..., idx, idx] = 1.0
    ex2 = _prod_except(pp)                                     # [i, k] = Π_{l≠i,k} (k ≠ i)
    H = (2 * u - s)[..., None, None] * ex2
    H[..., idx, idx] = ex.pow(2)
    return H


def gradient_descent(a0: Tensor, s: float, c: Tensor, lr: float, steps: int, record_every: int = 1) -> tuple[Tensor, Tensor]:
    """Discrete gradient descent on Eqs. 29-31 for a batch of initialisations ``a0 (..., D)``.

    Returns the recorded steps ``(T,)`` and the end-to-end map ``u = Π (a_l + c_l)`` at them,
    ``(T, ...)``."""
    a = a0.clone()
    ts, us = [0], [torch.prod(a + c, -1)]
    for t in range(1, steps + 1):
        a = a - lr * energy_grad(a, s, c)
        if t % record_every == 0:
            ts.append(t)
            us.append(torch.prod(a + c, -1))
    return torch.tensor(ts), torch.stack(us)


def two_mode_flow(a: Tensor, b: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    """Right-hand sides of Eqs. 12-15 (plain) for modes stacked in dim -2: ``a, b (..., M, n)``,
    ``s (M,)``. For the residual net (Eqs. 16-19) call it with ``a + v`` and ``b + u``."""
    ab = torch.einsum("...an,...gn->...ag", a, b)              # [α, γ] = a^α · b^γ
    M = ab.shape[-1]
    eye = torch.eye(M, dtype=a.dtype, device=a.device)
    coef = eye * s - ab                                         # diag: s_α - a^α·b^α; off: -(a^α·b^γ)
    da = torch.einsum("...ag,...gn->...an", coef, b)
    db = torch.einsum("...ga,...gn->...an", coef, a)            # coef^T: [γ, α] for b^α
    return da, db


def two_mode_descent(a0: Tensor, b0: Tensor, s: Tensor, lr: float, steps: int,
                     shift_a: Tensor | None = None, shift_b: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Euler steps of Eqs. 12-15 (or 16-19 with ``shift_a = v``, ``shift_b = u``). Returns the
    trajectories of the *adjustable* weights ``a``, ``b``: ``(steps + 1, ..., M, n)`` each."""
    sa = 0 if shift_a is None else shift_a
    sb = 0 if shift_b is None else shift_b
    a, b = a0.clone(), b0.clone()
    A, Bs = [a], [b]
    for _ in range(steps):
        da, db = two_mode_flow(a + sa, b + sb, s)
        a, b = a + lr * da, b + lr * db
        A.append(a)
        Bs.append(b)
    return torch.stack(A), torch.stack(Bs)
