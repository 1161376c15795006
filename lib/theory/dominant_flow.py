"""Dominant gradient flows, the trivial case (Yu & Tomasi 2019, App. D.4.1 and App. E).

**App. E.** For independent ``X ~ N(0, σ_X²)``, ``Y ~ N(0, σ_Y²)`` and ``r = σ_X/σ_Y``, the paper
writes ``φ(r) = P[|X| > |Y|] = 4∫₀^∞ g_r(u) G(u) du - 1`` (Eq. 14) and approximates it by
``1/(1 + r^{-c})`` with ``c = 1.2`` (Eq. 15). The integral has a closed form: ``(X/σ_X, Y/σ_Y)``
is an isotropic Gaussian pair, its polar angle ``θ`` is uniform, and ``|X| > |Y|`` iff
``|tan θ| < r``, so ``φ(r) = (2/π) arctan r`` (:func:`phi`). :func:`phi_quadrature` evaluates
the paper's integral, :func:`phi_approx` Eq. 15, :func:`best_exponent` the minimax ``c``.

**App. D.4.1.** ``n × n`` layers ``K = I + εA`` (residual) or ``K = A'`` (plain), diagonal 0/1 ReLU
masks ``S`` with ``P[S_ii = 1] = p``, and a diagonal loss gradient ``V ~ N(0, σ_V²)``:
``Θ^(ℓ) = [Π_{m=ℓ+1}^{L} K^(m)ᵀ S^(m)] V``, ``r_i = |Θ_ii| / |Σ_{j≠i} Θ_ij|`` and
``σ^(ℓ) = mean_i 1[r_i > 1]``. :func:`trivial_sigma` simulates it exactly (batched over
experiments); :func:`sigma_approx` is the paper's ``E[σ] ≈ p^{L-ℓ}/(1 + r^{-1.2})`` in both of
its printed forms (Eq. 11 with ``p'``, and the "in conclusion" form, which is the ``p = 1``
value), and with the corrected variance of ``C_ij`` and the exact ``φ``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import integrate, optimize, stats
from torch import Tensor


def phi(r):
    """``P[|X| > |Y|] = (2/π) arctan(σ_X/σ_Y)`` (exact closed form of Yu & Tomasi's Eq. 14)."""
    return 2.0 / np.pi * np.arctan(np.asarray(r, dtype=float))


def phi_quadrature(r: float) -> float:
    """The paper's Eq. 14, ``4∫₀^∞ g_r(u) G(u) du - 1`` with ``g_r`` the N(0, r²) density and
    ``G`` the standard normal CDF, by adaptive quadrature (scipy.integrate.quad)."""
    val, _ = integrate.quad(lambda u: stats.norm.pdf(u, scale=r) * stats.norm.cdf(u), 0.0, np.inf,
                            epsabs=1e-14, epsrel=1e-13, limit=200)
    return 4.0 * val - 1.0


def phi_approx(r, c: float = 1.2):
    """Yu & Tomasi's Eq. 15, ``1/(1 + r^{-c})``."""
    return 1.0 / (1.0 + np.asarray(r, dtype=float) ** (-c))


def max_error(c: float, t_max: float = 30.0, n: int = 20001) -> tuple[float, float]:
    """``max_r |φ(r) - 1/(1 + r^{-c})|`` on ``log r ∈ [-t_max, t_max]`` (the error is odd in
    ``log r`` about ``r = 1`` and vanishes at both ends) and the ``r`` where it is attained."""
    t = np.linspace(0.0, t_max, n)
    err = np.abs(phi(np.exp(t)) - phi_approx(np.exp(t), c))
    i = int(np.argmax(err))
    return float(err[i]), float(np.exp(t[i]))


def best_exponent() -> tuple[float, float]:
    """The minimax exponent ``c*`` of Eq. 15 and its worst error (bounded scalar minimisation)."""
    res = optimize.minimize_scalar(lambda c: max_error(c)[0], bounds=(0.8, 2.0), method="bounded",
                                   options={"xatol": 1e-6})
    return float(res.x), float(res.fun)


def trivial_theta(n_exp: int, *, n: int = 20, L: int = 10, l: int = 5, p: float = 0.9, eps: float = 0.1,
                  sigma_a: float = 0.01, sigma_v: float = 0.1, residual: bool = True,
                  generator: torch.Generator | None = None, device=None,
                  dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """``n_exp`` draws of ``Θ^(ℓ) = [Π_{m=ℓ+1}^{L} K^(m)ᵀ S^(m)] V`` of App. D.4.1, exactly (batched
    matrix products, no ε-expansion): ``(n_exp, n, n)``, and the event ``Z_i`` (unit ``i`` on in
    every layer ``ℓ+1..L``) as ``(n_exp, n)`` booleans.

    ``K^(m) = I + εA^(m)`` (``residual``) or ``A^(m)`` (plain), entries of ``A`` i.i.d.
    ``N(0, σ_A²)`` (for the plain net this only sets a scale, which cancels in ``r_i``), masks
    ``P[S_ii = 1] = p``, ``V = diag(N(0, σ_V²))``.
    """
    if not (0 <= l < L and n >= 2 and 0.0 <= p <= 1.0 and eps >= 0 and sigma_a > 0 and sigma_v > 0):
        raise ValueError("the trivial case needs 0 <= l < L, n >= 2, 0 <= p <= 1, eps >= 0, sigma_a > 0, sigma_v > 0")
    eye = torch.eye(n, device=device, dtype=dtype)
    prod = eye.expand(n_exp, n, n)
    z = torch.ones(n_exp, n, dtype=torch.bool, device=device)
    for _ in range(l + 1, L + 1):
        A = torch.randn(n_exp, n, n, generator=generator, device=device, dtype=dtype) * sigma_a
        K = eye + eps * A if residual else A
        on = torch.rand(n_exp, 1, n, generator=generator, device=device, dtype=dtype) < p
        z &= on[:, 0]
        prod = prod @ (K.transpose(-1, -2) * on.to(dtype))           # K^T S: S scales the columns
    v = torch.randn(n_exp, 1, n, generator=generator, device=device, dtype=dtype) * sigma_v
    return prod * v, z                                                # Θ = (...) V scales column j by V_jj


def trivial_sigma(n_exp: int, *, chunk: int = 25000, generator: torch.Generator | None = None, device=None,
                  dtype: torch.dtype = torch.float32, **setting) -> Tensor:
    """``σ^(ℓ) = mean_i 1[r_i > 1]``, ``r_i = |Θ_ii| / |Σ_{j≠i} Θ_ij|`` (App. D.4.1) in ``n_exp``
    independent experiments ``(n_exp,)``; ``setting`` as :func:`trivial_theta`. A row whose
    gradient is identically zero (``r_i = 0/0``) counts as not dominant."""
    out = []
    for start in range(0, n_exp, chunk):
        theta, _ = trivial_theta(min(chunk, n_exp - start), generator=generator, device=device, dtype=dtype, **setting)
        diag = theta.diagonal(dim1=-2, dim2=-1)
        ratio = diag.abs() / (theta.sum(-1) - diag).abs()             # nan for 0/0 rows: not > 1
        out.append((ratio > 1).to(dtype).mean(-1))
    return torch.cat(out)


def p_prime(p: float, k: int) -> float:
    """The paper's ``p' = Σ_{m=1}^{k} p^{2m} = p²(1 - p^{2k})/(1 - p²)`` (App. D.4.1), ``k = L - ℓ``."""
    return float(k) if p == 1.0 else p * p * (1 - p ** (2 * k)) / (1 - p * p)


def q_corrected(p: float, k: int) -> float:
    """The variance factor of ``C_ij`` given ``Z_i`` done right: ``C_ij = Σ_m B_m A_ij^(m)`` with
    Bernoulli ``B_m`` of mean ``p^{L-m+1}`` independent of ``A``, so
    ``Var C_ij = σ_A² Σ_{m=1}^{k} p^m = σ_A² p(1 - p^k)/(1 - p)`` -- the probabilities, not their
    squares, because ``E[B²] = E[B]``."""
    return float(k) if p == 1.0 else p * (1 - p**k) / (1 - p)


def sigma_approx(*, n: int = 20, L: int = 10, l: int = 5, p: float = 0.9, eps: float = 0.1, sigma_a: float = 0.01,
                 form: str = "conclusion", exact_phi: bool = False) -> float:
    """``E[σ^(ℓ)] ≈ p^{L-ℓ} φ(r)`` of App. D.4.1 with ``φ = 1/(1 + r^{-1.2})`` (``exact_phi``:
    ``(2/π) arctan r``) and ``r`` from

    * ``form="conclusion"``: ``√(1 + kε²σ_A²) / (ε σ_A √(k(n-1)))`` (the paper's final formula,
      which is Eq. 11 at ``p = 1``),
    * ``form="eq11"``: ``√(1 + kε²σ_A²) / (ε σ_A √((n-1)p'))`` (Eq. 11 as derived),
    * ``form="corrected"``: Eq. 11 with ``p'`` replaced by :func:`q_corrected`,

    where ``k = L - ℓ``.
    """
    k = L - l
    num = math.sqrt(1 + k * eps**2 * sigma_a**2)
    if eps == 0.0:
        r = math.inf
    elif form == "conclusion":
        r = num / (eps * sigma_a * math.sqrt(k * (n - 1)))
    elif form == "eq11":
        r = num / (eps * sigma_a * math.sqrt((n - 1) * p_prime(p, k))) if p > 0 else math.inf
    elif form == "corrected":
        r = num / (eps * sigma_a * math.sqrt((n - 1) * q_corrected(p, k))) if p > 0 else math.inf
    else:
        raise ValueError(f"form={form!r}: use 'conclusion', 'eq11' or 'corrected'")
    f = float(phi(r)) if exact_phi else (1.0 if math.isinf(r) else float(phi_approx(r)))
    return p**k * f


def phi_monte_carlo(rs, n: int, *, generator: torch.Generator | None = None, device=None) -> np.ndarray:
    """App. E, Eq. 14 by simulation: ``n`` draws of ``X ~ N(0, r²)`` and ``Y ~ N(0, 1)`` for every
    ``r`` in ``rs`` (float64); returns the indicators ``|X| > |Y|``, ``(n, len(rs))``, whose mean
    estimates :func:`phi`."""
    rs = torch.as_tensor(np.asarray(rs, dtype=float), device=device)
    X = torch.randn(n, len(rs), generator=generator, device=device, dtype=torch.float64) * rs
    Y = torch.randn(n, len(rs), generator=generator, device=device, dtype=torch.float64)
    return (X.abs() > Y.abs()).to(torch.float64).cpu().numpy()


def trivial_variance(n_exp: int, *, n: int, sigma_a: float, sigma_v: float, small_eps: float = 1e-3,
                     generator: torch.Generator | None = None, device=None, dtype: torch.dtype = torch.float64,
                     **setting) -> tuple[float, float]:
    """The variance behind Eq. 11 of App. D.4.1, measured: ``Var[Σ_{j≠i} Θ_ij | Z_i]`` divided by
    ``(ε σ_A σ_V)² (n - 1)``, from ``n_exp`` draws of :func:`trivial_theta` at the setting (``n``,
    ``sigma_a``, ``sigma_v`` and the rest of ``setting``) with its ``eps`` replaced by ``small_eps``
    (``1e-3``: the second-order terms are ``1e-6`` relative), so that it estimates the first-order
    factor the paper calls ``p'`` (:func:`p_prime`; the correct one is :func:`q_corrected`). Returns
    the mean and its standard error over the rows ``i`` where ``Z_i`` holds."""
    theta, z = trivial_theta(n_exp, **{**setting, "eps": small_eps}, n=n, sigma_a=sigma_a, sigma_v=sigma_v,
                             generator=generator, device=device, dtype=dtype)
    diag = theta.diagonal(dim1=-2, dim2=-1)
    rz = ((theta.sum(-1) - diag)[z] / (small_eps * sigma_a * sigma_v * math.sqrt(n - 1))).cpu().numpy()
    sq = rz**2
    return float(sq.mean()), float(sq.std(ddof=1) / math.sqrt(sq.size))


def trivial_sweeps(base: dict, sweeps: dict, n_exp: int, *, generator: torch.Generator | None = None,
                   device=None) -> dict:
    """Fig. 11 of App. D.4.1: ``E[σ^(ℓ)]`` simulated for the residual and the plain net
    (:func:`trivial_sigma`, ``n_exp`` experiments each) with one variable of ``base`` (a
    :func:`trivial_theta` setting) moved at a time over ``sweeps`` (``{variable: values}``), beside
    the paper's approximation and the corrected variance with the exact ``φ``
    (:func:`sigma_approximations`). Returns ``{(variable, value): {res, res_se, plain, paper, corrected}}``."""
    out = {}
    for var, vals in sweeps.items():
        for v in vals:
            setting = {**base, var: v}
            res = trivial_sigma(n_exp, **setting, generator=generator, device=device).cpu().numpy()
            plain = trivial_sigma(n_exp, **setting, residual=False, generator=generator, device=device).cpu().numpy()
            approx = sigma_approximations(**setting)
            out[(var, v)] = dict(res=res.mean(), res_se=float(np.std(res, dtype=float, ddof=1)) / math.sqrt(res.size),
                                 plain=plain.mean(), paper=approx["conclusion"], corrected=approx["corrected, exact phi"])
    return out


def sigma_approximations(*, n: int = 20, L: int = 10, l: int = 5, p: float = 0.9, eps: float = 0.1, sigma_a: float = 0.01,
                         sigma_v: float | None = None) -> dict[str, float]:
    """Every form of :func:`sigma_approx` at one setting: the paper's final formula
    (``"conclusion"``), its Eq. 11 (``"eq11"``), Eq. 11 with the corrected variance
    (``"corrected"``) and the same with the exact ``φ`` (``"corrected, exact phi"``). ``sigma_v`` is
    accepted so a :func:`trivial_theta` setting can be passed whole; ``σ_V`` cancels from ``r``."""
    kw = dict(n=n, L=L, l=l, p=p, eps=eps, sigma_a=sigma_a)
    out = {f: sigma_approx(**kw, form=f) for f in ("conclusion", "eq11", "corrected")}
    out["corrected, exact phi"] = sigma_approx(**kw, form="corrected", exact_phi=True)
    return out
