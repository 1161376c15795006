"""Residual networks as ensembles of paths and as multi-interaction spin glasses
(Littwin & Wolf 2016, §3-§5 and Appendix B).

Path weights. A residual net of ``p`` layers with identity skips around layers ``2..p`` (Eq. 8)
has ``γ_r = C(p-1, r-1) n^r`` paths of length ``r = 1..p`` per input (§3). The weight of the
length-``r`` interactions in the loss is ``ε_r ∝ C(p-1, r-1) β^r`` (Eqs. 15, 17; "main"
normalisation) -- the proofs of Appendix B use ``ε_r ∝ C(p, r) β^r`` ("proof"), both over
``r = 1..p`` with ``Σ ε_r² = 1``. Everything is computed in log space (``gammaln``, ``logsumexp``) so ``p`` up to
10⁶ neither overflows nor underflows.

Legendre polynomials. ``Σ_{r=0}^{p} C(p, r)² y^r = (1 - y)^p P_p((1 + y)/(1 - y))`` (Eq. 39, with
the sum from ``r = 0``), so for ``x > 1`` the log of ``P_p(x)`` is a log-sum-exp of positive terms
with ``y = (x - 1)/(x + 1)`` (:func:`log_legendre`), exact to float64 round-off at any degree.

Spin-glass complexity. For ``ε`` over interaction orders ``r``, ``v' = Σ ε_r² r``,
``v'' = Σ ε_r² r(r-1)`` and ``θ_k(ℝ, ε) = ½ log(v''/v') - (v'' - v')/(v'' + v')`` (Eqs. 31, 33,
Auffinger & Ben Arous 2013, Cor. 1.1).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.special import gammaln, logsumexp

NORMALISATIONS = ("main", "proof")


def log_binom(n, k) -> np.ndarray:
    """``log C(n, k)`` elementwise (``-inf`` outside ``0 ≤ k ≤ n``)."""
    n, k = np.asarray(n, dtype=float), np.asarray(k, dtype=float)
    ok = (k >= 0) & (k <= n)
    with np.errstate(invalid="ignore"):
        val = gammaln(n + 1) - gammaln(np.where(ok, k, 0) + 1) - gammaln(np.where(ok, n - k, 0) + 1)
    return np.where(ok, val, -np.inf)


def orders(p: int, normalisation: str = "main") -> np.ndarray:
    """Interaction orders ``r = 1..p`` (both normalisations sum from ``r = 1``, as the paper does)."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation {normalisation!r}: use one of {NORMALISATIONS}")
    return np.arange(1, p + 1)


def log_eps(p: int, beta: float, normalisation: str = "main") -> tuple[np.ndarray, np.ndarray]:
    """Orders ``r`` and ``log ε_r`` normalised so that ``Σ ε_r² = 1`` (Eq. 17, or the proofs'
    ``C(p, r) β^r`` with ``normalisation='proof'``)."""
    r = orders(p, normalisation)
    lb = log_binom(p - 1, r - 1) if normalisation == "main" else log_binom(p, r)
    le = lb + r * math.log(beta)
    return r, le - 0.5 * logsumexp(2 * le)


def argmax_eps(p: int, beta: float, normalisation: str = "main") -> int:
    """``argmax_r ε_r`` (the first maximiser), computed from the log weights."""
    r, le = log_eps(p, beta, normalisation)
    return int(r[np.argmax(le)])


def argmax_eps_closed_form(p: int, beta: float, normalisation: str = "main") -> int:
    """The mode in closed form from the ratio of consecutive weights.

    main: ``ε_{r+1}/ε_r = β (p - r)/r ≥ 1 ⟺ r ≤ pβ/(1+β)``, so the mode is
    ``⌊pβ/(1+β)⌋ + 1`` clipped to ``[1, p]`` (the smaller index on a tie);
    proof: ``ε_{r+1}/ε_r = β (p - r)/(r + 1) ≥ 1 ⟺ r ≤ (pβ - 1)/(1+β)``, mode
    ``⌊(pβ - 1)/(1+β)⌋ + 1`` clipped to ``[1, p]``. Ties (equality) resolve to the smaller index."""
    if normalisation == "main":
        t = p * beta / (1 + beta)
        m = math.floor(t) + 1 if not float(t).is_integer() else int(t)
        return int(min(max(m, 1), p))
    t = (p * beta - 1) / (1 + beta)
    m = math.floor(t) + 1 if not float(t).is_integer() else int(t)
    return int(min(max(m, 1), p))


def band_mass(p: int, beta: float, a1: float, a2: float, normalisation: str = "main") -> float:
    """``Σ_{a1 p ≤ r ≤ a2 p} ε_r²`` (Theorem 2)."""
    r, le = log_eps(p, beta, normalisation)
    sel = (r >= a1 * p) & (r <= a2 * p)
    return float(np.exp(logsumexp(2 * le[sel]))) if sel.any() else 0.0


def log_band_miss(p: int, beta: float, a1: float, a2: float, normalisation: str = "main") -> float:
    """``log Σ_{r ∉ [a1 p, a2 p]} ε_r²``, the weight *outside* Theorem 2's band, in log space (it is
    far below float64's ``1 - band_mass`` resolution at large ``p``)."""
    r, le = log_eps(p, beta, normalisation)
    out = (r < a1 * p) | (r > a2 * p)
    return float(logsumexp(2 * le[out])) if out.any() else -math.inf


def band_miss_rate(beta: float, a1: float, a2: float) -> float:
    """Our rate for Theorem 2 (beyond the paper): ``-log(weight outside [a1, a2]) / p → I``.

    ``log ε_r² = 2 log C(p-1, r-1) + 2 r log β + const``, and with ``r ≈ αp`` Stirling gives
    ``2p (H(α) + α log β)``, ``H`` the binary entropy; the maximum over ``α`` is ``2p log(1+β)`` at
    ``α* = β/(1+β)``. The weight outside the band is dominated by its nearer edge:
    ``I = 2 min_{α ∈ {a1, a2}} [log(1+β) - H(α) - α log β]``, up to ``O(log p / p)``."""
    def f(a):
        return -a * math.log(a) - (1 - a) * math.log(1 - a) + a * math.log(beta)
    edges = [a for a in (a1, a2) if 0 < a < 1]
    return 2 * min(math.log1p(beta) - f(a) for a in edges)


def narrowest_band(p: int, beta: float, mass: float = 0.99, normalisation: str = "main") -> tuple[int, int]:
    """The shortest run of consecutive orders ``[r_lo, r_hi]`` holding ``mass`` of ``Σ ε_r²``."""
    r, le = log_eps(p, beta, normalisation)
    w = np.exp(2 * le)
    c = np.concatenate([[0.0], np.cumsum(w)])
    best = (r[0], r[-1])
    j = 0
    for i in range(len(r)):
        j = max(j, i)
        while j < len(r) and c[j + 1] - c[i] < mass:
            j += 1
        if j >= len(r):
            break
        if r[j] - r[i] < best[1] - best[0]:
            best = (int(r[i]), int(r[j]))
    return best


def legendre_sum_log(p: int, y: float) -> float:
    """``log Σ_{r=0}^{p} C(p, r)² y^r`` for ``y > 0``."""
    r = np.arange(p + 1)
    return float(logsumexp(2 * log_binom(p, r) + r * math.log(y)))


def log_legendre(p: int, x: float) -> float:
    """``log P_p(x)`` for ``x > 1`` through Eq. 39 (module docstring), any degree."""
    if not x > 1:
        raise ValueError("log_legendre needs x > 1 (P_p(x) > 0 there)")
    y = (x - 1) / (x + 1)
    return legendre_sum_log(p, y) - p * math.log1p(-y)


def log_legendre_asymptotic(p, x: float):
    """Log of the large-degree form used in the proof of Theorem 2:
    ``P_p(x) ~ (x + √(x² - 1))^{p + ½} / (√(2πp) (x² - 1)^{¼})``."""
    p = np.asarray(p, dtype=float)
    return (p + 0.5) * math.log(x + math.sqrt(x * x - 1)) - 0.5 * np.log(2 * math.pi * p) - 0.25 * math.log(x * x - 1)


def paths_by_enumeration(p: int, n: int) -> dict[int, int]:
    """Count input-to-output paths of each length of the Eq. 8 network (one input, ``n`` units
    per layer, skips around layers ``2..p``) by listing them: a path picks a unit of layer 1, then
    at every layer ``l = 2..p`` either the skip (same unit, no weight) or one of the ``n`` units
    through ``W_l`` (one weight). Its length is the number of weights it crosses."""
    counts: dict[int, int] = {}
    choices = [("skip",)] + [("w", j) for j in range(n)]
    for first in range(n):
        for steps in itertools.product(choices, repeat=p - 1):
            r = 1 + sum(1 for s in steps if s[0] == "w")
            counts[r] = counts.get(r, 0) + 1
    return dict(sorted(counts.items()))


def paths_by_network(p: int, n: int) -> dict[int, int]:
    """The same counts from the network itself: with linear units, every weight equal to a
    formal variable ``s`` and identity skips, the output (summed over the last layer) is
    ``Σ_r γ_r s^r``; the polynomial is propagated layer by layer with exact integer coefficients."""
    # state: for each unit, a polynomial in s (coefficient list); all units are equal by symmetry
    poly = np.zeros(p + 1, dtype=object)
    poly[1] = 1                                   # layer 1: one weight from the input, per unit
    for _ in range(2, p + 1):
        through = np.zeros(p + 1, dtype=object)
        through[1:] = poly[:-1] * n               # W_l: sum of n units times s
        poly = poly + through                     # plus the identity skip
    return {r: int(poly[r]) * n for r in range(1, p + 1) if poly[r]}


def labelled_paths(labels: list[np.ndarray]) -> dict[int, dict[tuple, list[int]]]:
    """Lemma 1 (Littwin & Wolf §3) by listing every path of the Eq. 8 network, with ``Λ`` distinct
    weight values: ``labels[0] (d, n)`` gives the value index (in ``0..Λ-1``) of each first-layer
    weight, ``labels[l] (n, n)`` those of ``W_{l+1}``, ``l = 1..p-1``. A path starts at an input
    ``i``, crosses a first-layer weight to a unit, then at each later layer either skips (no weight)
    or crosses one weight to a unit. Returns ``{r: {(i_1..i_r): [input of each such path]}}``: the
    paths of length ``r`` grouped by their tuple of weight values, which is Eq. 10's re-indexing
    (the inner sum's ``x^{(j)}`` are the listed inputs)."""
    out: dict[int, dict[tuple, list[int]]] = {}
    d, n = labels[0].shape

    def walk(layer: int, unit: int, tup: tuple, i: int) -> None:
        if layer == len(labels):
            out.setdefault(len(tup), {}).setdefault(tup, []).append(i)
            return
        walk(layer + 1, unit, tup, i)                                  # the identity skip
        for b in range(n):
            walk(layer + 1, b, tup + (int(labels[layer][unit, b]),), i)

    for i in range(d):
        for b in range(n):
            walk(1, b, (int(labels[0][i, b]),), i)
    return out


def linear_output(labels: list[np.ndarray], w: np.ndarray, x: np.ndarray) -> float:
    """The output ``Y`` (summed over the last layer) of the Eq. 8 network with linear units, weight
    values ``w[labels]`` and input ``x``: ``N_1 = W_1ᵀx``, ``N_l = W_lᵀN_{l-1} + N_{l-1}``."""
    N = w[labels[0]].T @ x
    for lab in labels[1:]:
        N = w[lab].T @ N + N
    return float(N.sum())


def xi_second_moments(m: int, d: int, cov: np.ndarray | None = None) -> np.ndarray:
    """Lemma 2 (Littwin & Wolf §3): a path variable ``ξ`` is a sum of ``m = ψ_r/Λ^r`` inputs drawn
    from ``d`` distinct ones, ``ξ = Σ_i α_i x_i`` with ``α ∈ ℕ^d``, ``Σ α_i = m``. Returns
    ``E[ξ²] = αᵀ cov α`` for every such ``α`` (all compositions of ``m`` into ``d`` parts, in
    lexicographic order; exact integers as floats). ``cov`` is the inputs' covariance (d × d,
    default the identity: independent unit-variance inputs, which the paper's proof assumes when it
    writes ``E[ξ²] = ‖α‖²``)."""
    cov = np.eye(d) if cov is None else np.asarray(cov, dtype=float)
    if cov.shape != (d, d):
        raise ValueError(f"cov must be {d} x {d}, got {cov.shape}")
    alphas = np.array([a for a in itertools.product(range(m + 1), repeat=d) if sum(a) == m], dtype=float)
    return np.einsum("ki,ij,kj->k", alphas, cov, alphas)


def theta_ratio(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``t = v''/v' = Σ q_r r(r-1) / Σ q_r r``, the one variable :func:`theta_k` depends on: it is
    the mean of ``r - 1`` under the weights ``q_r r``, so ``1 <= t <= p - 1`` over orders
    ``2..p``, with ``t = p - 1`` only at ``q = e_p``."""
    q = np.asarray(q, dtype=float)
    return (q * r * (r - 1)).sum(-1) / (q * r).sum(-1)


def theta_of_ratio(t):
    """Eq. 33 as a function of ``t = v''/v'`` alone: dividing ``(v'' - v')/(v'' + v')`` by ``v'``
    gives ``h(t) = ½ log t - (t - 1)/(t + 1)`` (our reduction, behind the exact proof of Thm 5)."""
    t = np.asarray(t, dtype=float)
    return 0.5 * np.log(t) - (t - 1) / (t + 1)


def theta_of_ratio_derivative(t):
    """``h'(t) = 1/(2t) - 2/(t+1)² = (t - 1)²/(2t(t + 1)²) >= 0``: ``h`` increases on ``t >= 1``."""
    t = np.asarray(t, dtype=float)
    return (t - 1) ** 2 / (2 * t * (t + 1) ** 2)


def theta_k(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Eq. 33 with ``q_r = ε_r²`` (last axis) over orders ``r ≥ 2``."""
    q = np.asarray(q, dtype=float)
    v1 = (q * r).sum(-1)
    v2 = (q * r * (r - 1)).sum(-1)
    return 0.5 * np.log(v2 / v1) - (v2 - v1) / (v2 + v1)
