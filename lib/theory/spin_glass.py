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
from typing import NamedTuple

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


# --- the chapter's measurements of the statements above ----------------------------------------

def legendre_exact(p: int, x):
    """``P_p(x)`` by Bonnet's recurrence ``(k+1) P_{k+1} = (2k+1) x P_k - k P_{k-1}``, exactly when
    ``x`` is a :class:`fractions.Fraction`."""
    from fractions import Fraction

    a, b = Fraction(1), x
    if p == 0:
        return a
    for k in range(1, p):
        a, b = b, ((2 * k + 1) * x * b - k * a) / (k + 1)
    return b


def eq39_exact(ys, p_max: int = 40) -> tuple[int, list]:
    """Eq. 39 in exact rational arithmetic, for every ``y`` in ``ys`` (Fractions, ``y ≠ 1``) and
    ``p = 0…p_max``: the number of cases where ``Σ_{r=0}^p C(p,r)² y^r ≠ (1-y)^p P_p((1+y)/(1-y))``,
    and the sorted distinct values of ``(1-y)^p P_p(…) - Σ_{r=1}^p C(p,r)² y^r`` (the paper's sum
    from ``r = 1``; ``[1]`` when only the ``r = 0`` term is missing)."""
    from fractions import Fraction

    bad, diffs = 0, set()
    for y in ys:
        x = (1 + y) / (1 - y)
        for p in range(0, p_max + 1):
            rhs = (1 - y) ** p * legendre_exact(p, x)
            full = sum(Fraction(math.comb(p, r)) ** 2 * y ** r for r in range(0, p + 1))
            bad += full != rhs
            diffs.add(rhs - (full - 1))
    return bad, sorted(diffs)


def eq15_main_text_exact(ys, p_max: int = 30) -> int:
    """Eqs. 15/17 with the main text's ``C(p-1, r-1)``: the number of ``(y, p)``, ``p = 1…p_max``,
    where ``z² = Σ_{r=1}^p C(p-1, r-1)² y^r`` differs from ``y (1-y)^{p-1} P_{p-1}((1+y)/(1-y))``
    (exact rationals)."""
    from fractions import Fraction

    return sum(sum(Fraction(math.comb(p - 1, r - 1)) ** 2 * y ** r for r in range(1, p + 1))
               != y * (1 - y) ** (p - 1) * legendre_exact(p - 1, (1 + y) / (1 - y))
               for y in ys for p in range(1, p_max + 1))


def log_legendre_mpmath(p: int, x: float, dps: int = 40) -> float:
    """``log P_p(x)`` by mpmath's arbitrary-precision Legendre function at ``dps`` digits: the
    independent reference :func:`log_legendre` is checked against."""
    import mpmath

    with mpmath.workdps(dps):
        return float(mpmath.log(mpmath.legenp(p, 0, x)))


class AsymptoticError(NamedTuple):
    """One row of :func:`asymptotic_study`."""
    x: float            # the Legendre argument |x|
    ps: np.ndarray      # degrees
    err: np.ndarray     # relative error of the large-p form at each degree
    slope: float        # fitted decay exponent (Thm 2's proof needs -1)
    p1: int | None      # first degree with error below 1%


def asymptotic_error(ps, x: float, tail: float = 100.0) -> tuple[np.ndarray, float, int | None]:
    """Relative error of :func:`log_legendre_asymptotic` against :func:`log_legendre` at every
    degree in ``ps`` (sorted), the exponent of its decay fitted over ``p ≥ max(ps)/tail`` (log-log
    least squares), and the first degree where the error is below 1% (None if none is)."""
    ps = np.asarray(ps)
    exact = np.array([log_legendre(int(p), x) for p in ps])
    err = np.abs(np.expm1(log_legendre_asymptotic(ps, x) - exact))
    t = ps >= ps[-1] / tail
    slope = float(np.polyfit(np.log(ps[t]), np.log(err[t]), 1)[0])
    return err, slope, (int(ps[np.argmax(err < 0.01)]) if (err < 0.01).any() else None)


def legendre_argument(beta: float) -> float:
    """``|x| = |(1 + β²)/(1 - β²)|``, the argument of the Legendre polynomial in ``z² = P_p(x)(1 - β²)^p``
    (Eq. 39; for ``β > 1``, ``P_p(-x) = (-1)^p P_p(x)``, so only ``|x|`` matters)."""
    return abs((1 + beta * beta) / (1 - beta * beta))


def asymptotic_study(betas, p_max: int, *, n_degrees: int = 25, extra=(0.3, 0.7, 0.2), n_distinct: int = 3) -> dict:
    """The proof of Thm 2 (App. B) replaces ``P_p(x)`` by its large-``p`` form; this measures that
    replacement. Degrees ``ps``: ``n_degrees`` log-spaced from 10 to ``p_max``. Arguments: the
    ``|x|`` of every ``β`` in ``betas`` (``β`` and ``1/β`` give the same ``|x|``, so repeats are
    dropped), topped up from ``extra`` to at least ``n_distinct`` distinct values. Returns
    ``{β: (x, ps, errors, fitted decay exponent, first p below 1%)}`` (see :func:`asymptotic_error`)."""
    ps = np.unique(np.round(np.logspace(1, math.log10(p_max), n_degrees)).astype(int))
    xs: dict = {}
    for b in list(betas) + list(extra):
        x = legendre_argument(b)
        if all(abs(x - x_) > 1e-9 for x_ in xs.values()) and (b in betas or len(xs) < n_distinct):
            xs[b] = x
    return {b: AsymptoticError(x, ps, *asymptotic_error(ps, x)) for b, x in xs.items()}


def mode_agreement(betas, ps) -> tuple[int, float]:
    """Thm 1 over ``betas`` × degrees ``ps`` × both normalisations: the number of cases where
    :func:`argmax_eps_closed_form` is not a mode of ``ε_r`` (ties are not mismatches), and the
    largest ``p · |argmax_r ε_r / p - β/(1+β)|`` (Thm 1 bounds it by 1)."""
    mismatch, dev = 0, 0.0
    for b in betas:
        for nz in NORMALISATIONS:
            for p in ps:
                p = int(p)
                r, le = log_eps(p, b, nz)
                mismatch += abs(le[r == argmax_eps_closed_form(p, b, nz)][0] - le.max()) > 1e-9
                dev = max(dev, abs(argmax_eps(p, b, nz) / p - b / (1 + b)) * p)
    return mismatch, dev


def band_rows(betas, depths, *, mass: float = 0.99, half_width: float = 0.05) -> list[dict]:
    """Thm 2 measured: per ``β`` and depth ``p``, the narrowest band ``[lo, hi]`` of path lengths
    holding ``mass`` of ``Σ ε_r²``, its width over ``p`` and over ``√p``, and the weight outside the
    fixed band ``β/(1+β) ± half_width``."""
    rows = []
    for b in betas:
        a = b / (1 + b)
        for p in depths:
            lo, hi = narrowest_band(p, b, mass)
            rows.append(dict(beta=b, p=p, lo=lo, hi=hi, width_p=(hi - lo) / p, width_sqrt_p=(hi - lo) / math.sqrt(p),
                             miss=math.exp(log_band_miss(p, b, a - half_width, a + half_width))))
    return rows


def band_decay_rates(beta: float, ps, half_width: float = 0.05) -> list[float]:
    """Local exponential decay rates ``-Δ log(miss) / Δp`` of the weight outside ``β/(1+β) ±
    half_width`` between consecutive degrees of ``ps`` (to compare with :func:`band_miss_rate`)."""
    a = beta / (1 + beta)
    lm = [log_band_miss(p, beta, a - half_width, a + half_width) for p in ps]
    return [-(lm[i + 1] - lm[i]) / (ps[i + 1] - ps[i]) for i in range(len(ps) - 1)]


def lemma4_modes(p: int) -> tuple[list[int], list[int]]:
    """Lemma 4 at depth ``p`` (main normalisation for the first list): for ``k = 1…p`` the mode of
    ``ε_r`` at the geometric middle ``β`` of ``[(k-1)/(p-k+1), k/(p-k)]``; and (proof
    normalisation) the modes at ``β* = C(p, p/2)``, ``1/β*``, ``1``, ``p + 1`` and ``2/(p-1)``."""
    hits = []
    for k in range(1, p + 1):
        lo = (k - 1) / (p - k + 1)
        hi = k / (p - k) if k < p else lo * 4 + 1
        hits.append(argmax_eps(p, math.sqrt(lo * hi) if lo > 0 else hi / 2, "main"))
    bstar = math.comb(p, p // 2)
    return hits, [argmax_eps(p, b, "proof") for b in (bstar, 1 / bstar, 1.0, p + 1, 2 / (p - 1))]


def lemma1_assignments(cases, rng: np.random.Generator) -> tuple[float, int, int]:
    """Lemma 1 on tiny nets ``(p, n, d, Λ)``, each with three assignments of ``Λ`` weight values to
    the weights -- uniform over units, at random, and skewed (all one value but one weight) -- and
    random values and inputs from ``rng``: the largest relative error between the network's output
    and Eq. 10's sum over tuples of values; the number of uniform assignments whose tuples are not
    each crossed by ``ψ_r / Λ^r`` paths; the number of skewed ones whose counts are uneven."""
    err, uniform_uneven, skewed_uneven = 0.0, 0, 0
    for p, n, d, lam in cases:
        by_unit = [np.fromfunction(lambda i, b: b % lam, (d, n), dtype=int)] + \
                  [np.fromfunction(lambda a, b: b % lam, (n, n), dtype=int) for _ in range(p - 1)]
        at_random = [rng.integers(0, lam, size=(d, n))] + [rng.integers(0, lam, size=(n, n)) for _ in range(p - 1)]
        skewed = [np.zeros((d, n), dtype=int)] + [np.zeros((n, n), dtype=int) for _ in range(p - 1)]
        skewed[0][0, 0] = 1
        for labels, uniform in ((by_unit, True), (at_random, None), (skewed, False)):
            paths = labelled_paths(labels)
            w, x = rng.normal(size=lam), rng.normal(size=d)
            eq10 = sum(x[v].sum() * np.prod(w[list(t)]) for g in paths.values() for t, v in g.items())
            err = max(err, abs(linear_output(labels, w, x) - eq10) / max(1.0, abs(eq10)))
            psi = {r: d * math.comb(p - 1, r - 1) * n**r for r in paths}
            even = all(len(g) == lam**r and all(len(v) == psi[r] // lam**r for v in g.values()) for r, g in paths.items())
            uniform_uneven += uniform is True and not even
            skewed_uneven += uniform is False and not even
    return err, uniform_uneven, skewed_uneven


def ensemble_variance(eps_list, Lam: int, n_mc: int, *, generator=None, device=None) -> tuple[list[float], list[float]]:
    """Eq. 30 by Monte Carlo (float64): for each weight vector ``ε`` (normalised to the unit sphere;
    entry ``r-1`` weighs the order-``r`` interactions), ``n_mc`` draws of the Gaussian couplings
    ``J`` of the spin glass ``H = Σ_r ε_r Λ^{-(r-1)/2} Σ J_{i_1…i_r} w_{i_1}⋯w_{i_r}`` at one fixed
    ``w`` with ``‖w‖² = Λ``. Returns the mean of ``H²`` and its standard error per ``ε`` (Eq. 30:
    ``E H² = Λ``)."""
    import torch

    f64 = torch.float64
    w = torch.randn(Lam, generator=generator, device=device, dtype=f64)
    w = w * math.sqrt(Lam) / w.norm()
    means, ses = [], []
    for e in eps_list:
        e = np.asarray(e, dtype=float) / np.linalg.norm(e)
        H = torch.zeros(n_mc, device=device, dtype=f64)
        for r, er in enumerate(e, start=1):
            if er == 0:
                continue
            J = torch.randn(n_mc, *([Lam] * r), generator=generator, device=device, dtype=f64)
            prod = w
            for _ in range(r - 1):
                prod = torch.einsum("...i,j->...ij", prod, w)
            H += er * Lam ** (-(r - 1) / 2) * (J * prod).flatten(1).sum(-1)
        h2 = H ** 2
        means.append(h2.mean().item())
        ses.append(h2.std().item() / math.sqrt(n_mc))
    return means, ses


def theta_max_search(p: int, rng: np.random.Generator, starts: int = 200) -> float:
    """The maximum of :func:`theta_k` over the simplex of weights on orders ``r = 2…p``, by
    L-BFGS-B from ``starts`` random points (softmax parametrisation)."""
    from scipy.optimize import minimize

    r = np.arange(2, p + 1)
    best = -np.inf
    for _ in range(starts):
        res = minimize(lambda z: -theta_k(np.exp(z - z.max()) / np.exp(z - z.max()).sum(), r), rng.normal(size=len(r)),
                       method="L-BFGS-B")
        best = max(best, -res.fun)
    return float(best)


def complexity_against_beta(p: int, betas) -> np.ndarray:
    """Fig. 1(f): ``θ_k(ℝ, ε(β))`` at depth ``p`` for every ``β`` (main normalisation, orders
    ``r ≥ 2``, weights ``ε_r²`` renormalised)."""
    out = []
    for b in betas:
        r, le = log_eps(p, b, "main")
        q = np.exp(2 * le[r >= 2])
        out.append(theta_k(q / q.sum(), r[r >= 2]))
    return np.array(out)


def theta_reduction_error(ps, rng: np.random.Generator, n_weights: int = 200, concentration: float = 0.3) -> tuple[float, bool]:
    """Thm 5's one-variable reduction on random weight vectors (Dirichlet(``concentration``) over
    orders ``r = 2…p``, ``n_weights`` per ``p`` in ``ps``): the largest ``|θ_k(ε) - h(v''/v')|`` and
    whether every ratio ``v''/v'`` lies in ``[1, p-1]``."""
    err, in_range = 0.0, True
    for p in ps:
        r = np.arange(2, p + 1)
        q = rng.dirichlet(np.full(len(r), concentration), size=n_weights)
        t = theta_ratio(q, r)
        in_range &= bool(((t >= 1) & (t <= p - 1)).all())
        err = max(err, float(np.abs(theta_k(q, r) - theta_of_ratio(t)).max()))
    return err, in_range


def theta_derivative_error(t, rel_step: float = 1e-6) -> tuple[float, float]:
    """:func:`theta_of_ratio_derivative` against central differences of :func:`theta_of_ratio`
    (step ``rel_step · t``) on the grid ``t``: the largest relative difference, and the smallest
    value of the closed form (``h' ≥ 0`` is what Thm 5's proof needs)."""
    t = np.asarray(t, dtype=float)
    fd = (theta_of_ratio(t * (1 + rel_step)) - theta_of_ratio(t * (1 - rel_step))) / (2 * rel_step * t)
    hp = theta_of_ratio_derivative(t)
    return float(np.max(np.abs(fd - hp) / hp)), float(hp.min())
