"""Parametric models of a Hessian's spectral density fitted to a few moments
(Orhan & Pitkow 2018, Supplementary Note 3, Eqs. 5-6).

The model is ``q(λ) = w · SN(λ; ξ, ω, α) + (1 - w) · N(λ; 0, σ²)`` with ``σ = 0.001`` fixed: a
skew-normal "tail" of weight ``w`` (the *tail probability*) and a narrow Gaussian "bulk" at zero.

Closed-form moments. For the standard skew normal ``Z ~ SN(0, 1, α)`` with
``δ = α / √(1 + α²)`` and ``b = √(2/π)`` the moment generating function is
``M(t) = 2 exp(t²/2) Φ(δ t)``; differentiating four times at 0 gives
``E Z = bδ``, ``E Z² = 1``, ``E Z³ = bδ (3 - δ²)``, ``E Z⁴ = 3``; ``X = ξ + ωZ`` by the binomial
expansion (:func:`skewnormal_raw_moments`).

Fitting. The paper minimised the normalised objective ``Σ_k |m̂_k - m_k| / |m_k|`` (Eq. 6) by a
54⁴-point grid search (:func:`grid_fit`, the same grid). Because ``w`` enters linearly, the fit
reduces to one dimension (:func:`profile_fit`): for a given ``w`` the skew-normal component must
carry the raw moments ``μ_k(w) = (m_k - (1 - w) g_k) / w`` (``g_k`` those of the bulk), its first
three are matched *exactly* by the method of moments (mean, variance, skewness → ``ξ, ω, δ``), and
only the fourth moment is left to a scalar equation in ``w``. Every root is an exact fit
(objective 0); several roots are distinct mixtures with the same four moments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

B = math.sqrt(2.0 / math.pi)
BULK_SIGMA = 0.001
SN_MAX_SKEW = 0.5 * (4 - math.pi) * (B / math.sqrt(1 - B * B)) ** 3  # |δ| → 1 limit, ≈ 0.9953


def _std_sn_moments(delta: np.ndarray) -> list[np.ndarray]:
    d = np.asarray(delta, dtype=float)
    one = np.ones_like(d)
    return [one, B * d, one, B * d * (3 - d * d), 3 * one]


def skewnormal_raw_moments(xi, omega, alpha, n: int = 4) -> np.ndarray:
    """Raw moments ``E X^k``, ``k = 1..n`` (``n ≤ 4``), of ``SN(ξ, ω, α)``; broadcasts, returns
    ``(..., n)``."""
    if not 1 <= n <= 4:
        raise ValueError("closed forms are implemented for n <= 4")
    xi, omega, alpha = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (xi, omega, alpha)))
    delta = alpha / np.sqrt(1 + alpha**2)
    ez = _std_sn_moments(delta)
    out = []
    for k in range(1, n + 1):
        out.append(sum(math.comb(k, j) * xi ** (k - j) * omega**j * ez[j] for j in range(k + 1)))
    return np.stack(out, axis=-1)


def gaussian_raw_moments(sigma: float = BULK_SIGMA, n: int = 4) -> np.ndarray:
    """Raw moments of ``N(0, σ²)``: ``0, σ², 0, 3σ⁴``."""
    return np.array([0.0, sigma**2, 0.0, 3 * sigma**4][:n])


def mixture_moments(w, xi, omega, alpha, sigma: float = BULK_SIGMA) -> np.ndarray:
    """Raw moments 1..4 of the Eq. 5 mixture, ``(..., 4)``."""
    w = np.asarray(w, dtype=float)[..., None]
    return w * skewnormal_raw_moments(xi, omega, alpha) + (1 - w) * gaussian_raw_moments(sigma)


def mixture_pdf(lam, w, xi, omega, alpha, sigma: float = BULK_SIGMA) -> np.ndarray:
    """Density of the Eq. 5 mixture at ``lam``."""
    from scipy import stats

    return w * stats.skewnorm.pdf(lam, alpha, loc=xi, scale=omega) + (1 - w) * stats.norm.pdf(lam, 0, sigma)


def mixture_tail(t, w, xi, omega, alpha, sigma: float = BULK_SIGMA) -> np.ndarray:
    """``P(|λ| > t)`` under the Eq. 5 mixture, for ``t ≥ 0`` (the fitted counterpart of
    :func:`tail_mass`)."""
    from scipy import stats

    t = np.asarray(t, dtype=float)
    sn = stats.skewnorm.sf(t, alpha, loc=xi, scale=omega) + stats.skewnorm.cdf(-t, alpha, loc=xi, scale=omega)
    return w * sn + (1 - w) * 2 * stats.norm.sf(t, 0, sigma)


def objective(model: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Eq. 6: ``Σ_k |m̂_k - m_k| / |m_k|`` over the last axis."""
    return np.sum(np.abs(model - target) / np.abs(target), axis=-1)


def _objective_at(w: float, xi: float, omega: float, alpha: float, sigma: float, target: tuple) -> float:
    """:func:`objective` of :func:`mixture_moments` at one point, in plain floats: the same closed
    forms, term by term, without numpy's per-call overhead (the Nelder-Mead polish of
    :func:`profile_fit` evaluates it thousands of times per fit, and numpy's small-array calls made
    each evaluation about 30 times slower)."""
    d = alpha / math.sqrt(1 + alpha * alpha)
    e1, e3 = B * d, B * d * (3 - d * d)                  # E Z, E Z^3 of the standard skew normal (E Z^2 = 1, E Z^4 = 3)
    x2, x3, o2, o3 = xi**2, xi**3, omega**2, omega**3
    sn = (xi + omega * e1,
          x2 + 2 * xi * omega * e1 + o2,
          x3 + 3 * x2 * omega * e1 + 3 * xi * o2 + o3 * e3,
          xi**4 + 4 * x3 * omega * e1 + 6 * x2 * o2 + 4 * xi * o3 * e3 + omega**4 * 3.0)
    bulk = (0.0, sigma**2, 0.0, 3 * sigma**4)
    return sum(abs(w * m + (1 - w) * b - t) / abs(t) for m, b, t in zip(sn, bulk, target))


@dataclass
class Fit:
    """A fitted mixture and how it was found."""

    w: float
    xi: float
    omega: float
    alpha: float
    loss: float
    evaluations: int
    seconds: float

    def moments(self) -> np.ndarray:
        return mixture_moments(self.w, self.xi, self.omega, self.alpha)


PAPER_GRID = dict(
    w=np.logspace(-9, -3, 54), alpha=np.linspace(-100, 100, 54),
    xi=np.linspace(-10, 10, 54), omega=np.logspace(-1, 3, 54),
)


def fit_target(target) -> np.ndarray:
    """The four moments a fit is asked to match, as floats; one ValueError naming them when the
    normalised objective is undefined for them (it divides by each moment's magnitude)."""
    t = np.asarray(target, dtype=float)
    if t.shape != (4,) or not np.all(np.isfinite(t)) or np.any(t == 0):
        raise ValueError(f"the mixture fit needs four finite, non-zero moments (the objective divides by each); got {t.tolist()}")
    return t


def grid_fit(target: np.ndarray, grid: dict[str, np.ndarray] | None = None, sigma: float = BULK_SIGMA) -> Fit:
    """The paper's grid search (Supp. Note 3): every combination of the four grids (54⁴ =
    8,503,056 points by default), vectorised over (ξ, ω, α) for each ``w``."""
    import time

    g = PAPER_GRID if grid is None else grid
    t0 = time.perf_counter()
    xi, om, al = np.meshgrid(g["xi"], g["omega"], g["alpha"], indexing="ij")
    sn = skewnormal_raw_moments(xi, om, al)                       # (nξ, nω, nα, 4)
    bulk = gaussian_raw_moments(sigma)
    target = fit_target(target)
    best = (np.inf, None)
    for w in g["w"]:
        L = objective(w * sn + (1 - w) * bulk, target)
        i = int(np.argmin(L))
        if L.flat[i] < best[0]:
            best = (float(L.flat[i]), (float(w), float(xi.flat[i]), float(om.flat[i]), float(al.flat[i])))
    n = len(g["w"]) * xi.size
    w, x, o, a = best[1]
    return Fit(w, x, o, a, best[0], n, time.perf_counter() - t0)


def sn_from_three_moments(mu1, mu2, mu3):
    """Method of moments for the skew normal: ``(ξ, ω, α, admissible)`` matching raw moments
    1-3 exactly. The skewness of a skew normal is bounded by ≈ 0.9953 in absolute value; beyond
    it ``δ`` is clipped to ±(1 - 1e-9) and ``admissible`` is False."""
    mu1, mu2, mu3 = (np.asarray(v, dtype=float) for v in (mu1, mu2, mu3))
    var = mu2 - mu1**2
    ok = var > 0
    var = np.where(ok, var, np.nan)
    c3 = mu3 - 3 * mu1 * mu2 + 2 * mu1**3
    g1 = c3 / var**1.5
    admissible = ok & (np.abs(g1) < SN_MAX_SKEW)
    r = np.cbrt(2 * np.abs(g1) / (4 - math.pi))
    delta = np.sign(g1) * np.minimum(r / (B * np.sqrt(1 + r * r)), 1 - 1e-9)
    omega = np.sqrt(var / (1 - (B * delta) ** 2))
    xi = mu1 - omega * B * delta
    alpha = delta / np.sqrt(1 - delta**2)
    return xi, omega, alpha, admissible


def profile(target: np.ndarray, ws: np.ndarray, sigma: float = BULK_SIGMA):
    """The one-dimensional reduction: for each ``w`` the skew normal matching moments 1-3 of the
    component exactly. Returns ``(xi, omega, alpha, admissible, loss)`` arrays over ``ws``."""
    target = np.asarray(target, dtype=float)
    bulk = gaussian_raw_moments(sigma)
    ws = np.asarray(ws, dtype=float)
    mu = (target[None, :] - (1 - ws[:, None]) * bulk[None, :]) / ws[:, None]
    xi, om, al, ok = sn_from_three_moments(mu[:, 0], mu[:, 1], mu[:, 2])
    loss = np.where(np.isfinite(om), objective(mixture_moments(ws, xi, om, al, sigma), target), np.inf)
    return xi, om, al, ok, loss


def profile_fit(target: np.ndarray, n_grid: int = 4000, w_min: float = 1e-12, sigma: float = BULK_SIGMA,
                polish: bool = True) -> tuple[Fit, list[Fit]]:
    """Fit Eq. 5 to four moments through the one-dimensional reduction (module docstring).

    Scans ``w`` on a log grid over ``[w_min, 1]``, refines every root of the fourth-moment
    residual with Brent's method (each is an exact fit), and returns the best fit together with
    all exact fits found (``[]`` when none exists, e.g. when the moments are not those of any such
    mixture; then the best is a Nelder-Mead polish of the objective from the scan's minimum)."""
    import time

    from scipy import optimize

    t0 = time.perf_counter()
    target = fit_target(target)
    ws = np.logspace(math.log10(w_min), 0, n_grid)
    xi, om, al, ok, loss = profile(target, ws, sigma)
    evals = n_grid

    def resid(lw: float) -> float:
        w = 10.0**lw
        x, o, a, _ = profile(target, np.array([w]), sigma)[:4]
        return float(mixture_moments(w, x, o, a, sigma)[0, 3] - target[3])

    roots: list[Fit] = []
    r4 = np.where(ok, mixture_moments(ws, xi, om, al, sigma)[:, 3] - target[3], np.nan)
    for i in np.nonzero(np.isfinite(r4[:-1]) & np.isfinite(r4[1:]) & (np.sign(r4[:-1]) != np.sign(r4[1:])))[0]:
        lw, res = optimize.brentq(resid, math.log10(ws[i]), math.log10(ws[i + 1]), xtol=1e-14, full_output=True)
        evals += res.function_calls
        w = 10.0**lw
        x, o, a, _, L = (v[0] for v in profile(target, np.array([w]), sigma))
        roots.append(Fit(w, float(x), float(o), float(a), float(L), evals, 0.0))
    if roots:
        best = min(roots, key=lambda f: f.loss)
    else:
        # No exact fit exists (e.g. the skewness is beyond any skew normal's, or the fixed bulk's
        # variance exceeds the measured second moment). Polish the objective from the scan's best
        # point and from the best point of a coarse 12⁴ version of the paper's grid.
        starts = []
        if np.isfinite(loss).any():
            i = int(np.nanargmin(np.where(np.isfinite(loss), loss, np.nan)))
            starts.append(Fit(float(ws[i]), float(xi[i]), float(om[i]), float(al[i]), float(loss[i]), 0, 0.0))
            # a root where the residual only touches zero (often at the edge of the admissible
            # skewness) shows no sign change: minimise the profile between the scan's neighbours
            lo, hi = math.log10(ws[max(i - 1, 0)]), math.log10(ws[min(i + 1, n_grid - 1)])
            prof_loss = lambda lw: min(float(np.nan_to_num(profile(target, np.array([10.0**lw]), sigma)[4][0], nan=1e6)), 1e6)
            res = optimize.minimize_scalar(prof_loss, bounds=(lo, hi), method="bounded", options=dict(xatol=1e-13))
            evals += res.nfev
            w = 10.0**res.x
            x, o, a, _, L = (v[0] for v in profile(target, np.array([w]), sigma))
            if np.isfinite(L):
                starts.append(Fit(w, float(x), float(o), float(a), float(L), 0, 0.0))
        coarse = {k: v[:: max(1, len(v) // 12)] for k, v in PAPER_GRID.items()}
        starts.append(grid_fit(target, coarse, sigma))
        evals += starts[-1].evaluations
        best = min(starts, key=lambda f: f.loss)
        if polish:
            target_t = tuple(float(v) for v in target)

            def obj(p):
                w, o = 10.0 ** p[0], 10.0 ** p[2]
                if w > 1:
                    return np.inf
                return _objective_at(w, float(p[1]), o, float(p[3]), sigma, target_t)

            for st in starts:
                res = optimize.minimize(obj, [math.log10(st.w), st.xi, math.log10(st.omega), st.alpha],
                                        method="Nelder-Mead", options=dict(xatol=1e-10, fatol=1e-12, maxiter=4000))
                evals += res.nfev
                if res.fun < best.loss:
                    best = Fit(10.0 ** res.x[0], float(res.x[1]), 10.0 ** res.x[2], float(res.x[3]), float(res.fun), 0, 0.0)
    seconds = time.perf_counter() - t0
    best.evaluations, best.seconds = evals, seconds
    for f in roots:
        f.evaluations, f.seconds = evals, seconds
    return best, roots


def tail_mass(eigenvalues: np.ndarray, threshold: float) -> float:
    """Fraction of eigenvalues with ``|λ| > threshold`` (the empirical counterpart of ``w``)."""
    lam = np.asarray(eigenvalues, dtype=float)
    return float(np.mean(np.abs(lam) > threshold))


def smoothed_density(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, width: float) -> np.ndarray:
    """A Gaussian-kernel smoothing of the discrete measure ``Σ weights δ(λ - nodes)`` on ``grid``."""
    nodes, weights = np.asarray(nodes, float).ravel(), np.asarray(weights, float).ravel()
    z = (grid[:, None] - nodes[None, :]) / width
    return (np.exp(-0.5 * z * z) * weights[None, :]).sum(1) / (width * math.sqrt(2 * math.pi))


def mixture_moments_by_quadrature(w: float, xi: float, omega: float, alpha: float, *, split: float = 0.05,
                                  sigma: float = BULK_SIGMA) -> np.ndarray:
    """Raw moments 1..4 of the Eq. 5 mixture by adaptive quadrature of ``λᵏ`` against
    :func:`mixture_pdf` (``scipy.integrate.quad``, relative tolerance 1e-12), in three pieces:
    ``[−split, split]`` around the narrow bulk at 0 (with 0 as a break point), and the two tails.
    An independent check of :func:`mixture_moments`' closed form."""
    from scipy import integrate

    def piece(k, a, b, **kw):
        return integrate.quad(lambda x: x ** k * mixture_pdf(x, w, xi, omega, alpha, sigma), a, b, epsabs=0, epsrel=1e-12,
                              limit=400, **kw)[0]

    return np.array([piece(k, -split, split, points=[0.0]) + piece(k, split, np.inf) + piece(k, -np.inf, -split)
                     for k in range(1, 5)])
