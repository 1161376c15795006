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


def convergence_times(a0: Tensor, s: float, step_sizes: dict, steps: int, *, record_every: int = 10,
                      within: float = 0.01) -> tuple[dict, dict]:
    """Gradient descent (:func:`gradient_descent`) from the same initial weights ``a0`` for every
    ``kind -> step size`` of ``step_sizes`` (the offsets of :func:`offsets`), and the first recorded
    step at which each run's end-to-end map is within ``within · s`` of the target ``s`` (``inf``
    when it never is). Returns ``(trajectories, times)``: kind -> (recorded steps, maps) as numpy
    arrays, and kind -> ``(runs,)`` times."""
    import numpy as np

    traj, t_hit = {}, {}
    for kind, lr in step_sizes.items():
        ts, us = gradient_descent(a0, s, offsets(kind, a0.shape[-1], device=a0.device), lr, steps, record_every=record_every)
        ts, us = ts.cpu().numpy(), us.cpu().numpy()
        hit = np.abs(us - s) < within * s
        traj[kind], t_hit[kind] = (ts, us), np.where(hit.any(0), ts[hit.argmax(0)], np.inf)
    return traj, t_hit


def steps_to_fit(a: Tensor, b: Tensor, s: Tensor, shift: Tensor | float = 0, within: float = 0.01) -> float:
    """Eqs. 12-19: the first step of a :func:`two_mode_descent` trajectory ``a``, ``b`` at which
    every effective product ``(a + shift)^α · (b + shift)^γ`` is within ``within · max s`` of
    ``diag(s)`` (``inf`` if none is)."""
    ab = torch.einsum("tan,tgn->tag", a + shift, b + shift)
    ok = ((ab - torch.diag(s)).abs() <= within * s.max()).flatten(1).all(1)
    return int(ok.to(torch.int64).argmax()) if ok.any() else float("inf")


def derivative_errors(a: Tensor, s: float, depth: int) -> list[float]:
    """Eqs. 29-34 against automatic differentiation: for every architecture of :data:`ARCH_OFFSETS`,
    the largest relative error of :func:`energy_grad` and of :func:`energy_hessian` at the points
    ``a (n, depth)`` against ``torch.func.grad`` and ``torch.func.hessian`` of :func:`energy`
    (``[grad error, Hessian error]`` per architecture, in that order)."""
    from torch.func import grad, hessian

    errs = []
    for kind in ARCH_OFFSETS:
        c = offsets(kind, depth, device=a.device)
        g_auto = torch.stack([grad(lambda x: energy(x, s, c))(x) for x in a])
        h_auto = torch.stack([hessian(lambda x: energy(x, s, c))(x) for x in a])
        errs += [((energy_grad(a, s, c) - g_auto).abs().max() / g_auto.abs().max()).item(),
                 ((energy_hessian(a, s, c) - h_auto).abs().max() / h_auto.abs().max()).item()]
    return errs


def tied_weights_hessian(a: Tensor, s: float, c: Tensor) -> dict[str, Tensor]:
    """Supp. Note 4 after Eq. 34, at points ``a (n, depth)`` whose first two factors are equal
    (``a₁ + c₁ = a₂ + c₂``: equal weights in a plain or residual net):
    the Hessian of :func:`energy` (``hessian``), its product with ``d = e₁ − e₂`` (``hd``), and what
    that product is in closed form, ``(s − u) Π_{k>2}(a_k + c_k) d`` with ``u`` the end-to-end map
    (``predicted``): ``d`` is an eigenvector, with eigenvalue zero only at the target ``u = s``, so the
    two columns are not identical (they differ by ``H d``)."""
    H = energy_hessian(a, s, c)
    d = torch.zeros(a.shape[-1], dtype=a.dtype, device=a.device)
    d[0], d[1] = 1.0, -1.0
    rest, u = (a[:, 2:] + c[2:]).prod(-1), (a + c).prod(-1)
    return {"hessian": H, "hd": H @ d, "predicted": ((s - u) * rest)[:, None] * d}
