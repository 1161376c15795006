"""lib.theory.spectrum: closed-form mixture moments and the two fitting methods."""

import numpy as np
import pytest
from scipy import integrate, stats

from lib.theory import spectrum as S


@pytest.mark.parametrize("xi,omega,alpha", [(0.0, 1.0, 0.0), (0.3, 2.0, 5.0), (-1.0, 0.5, -3.0), (2.0, 0.1, 50.0)])
def test_skewnormal_moments_match_scipy(xi, omega, alpha):
    ref = [stats.skewnorm(alpha, loc=xi, scale=omega).moment(k) for k in range(1, 5)]
    np.testing.assert_allclose(S.skewnormal_raw_moments(xi, omega, alpha), ref, rtol=1e-12, atol=1e-15)


def test_mixture_moments_match_integration():
    w, p = 0.3, (0.5, 1.5, 2.0)
    for k in range(1, 5):
        val = integrate.quad(lambda l: l**k * S.mixture_pdf(l, w, *p), -np.inf, np.inf, epsabs=0, epsrel=1e-12, points=None)[0]
        assert S.mixture_moments(w, *p)[k - 1] == pytest.approx(val, rel=1e-7, abs=1e-10)


def test_method_of_moments_round_trip():
    m = S.skewnormal_raw_moments(0.7, 1.3, -4.0)
    xi, om, al, ok = S.sn_from_three_moments(*m[:3])
    assert ok
    np.testing.assert_allclose([xi, om, al], [0.7, 1.3, -4.0], rtol=1e-9)


@pytest.mark.parametrize("truth", [dict(w=1e-5, xi=1.3, omega=20.0, alpha=4.0), dict(w=0.02, xi=-0.5, omega=3.0, alpha=-2.0)])
def test_profile_fit_recovers_known_mixtures_and_beats_grid(truth):
    target = S.mixture_moments(**truth)
    best, roots = S.profile_fit(target)
    assert roots and best.loss < 1e-10
    assert any(abs(r.w - truth["w"]) < 1e-8 * truth["w"] for r in roots)
    coarse = {k: v[::4] for k, v in S.PAPER_GRID.items()}
    assert best.loss <= S.grid_fit(target, coarse).loss


def test_profile_fit_without_exact_solution_still_returns_a_finite_fit():
    target = np.array([2.08e-06, 5.49e-07, 1.44e-07, 3.79e-08])     # second moment below the bulk's sigma^2
    best, roots = S.profile_fit(target)
    assert roots == [] and np.isfinite(best.loss) and 0 < best.w <= 1


def test_tail_mass_and_smoothing():
    assert S.tail_mass(np.array([0.0, 0.5, -2.0, 3.0]), 1.0) == 0.5
    grid = np.linspace(-5, 5, 2001)
    d = S.smoothed_density(np.array([0.0, 1.0]), np.array([0.25, 0.75]), grid, 0.1)
    assert np.trapezoid(d, grid) == pytest.approx(1.0, rel=1e-6)


def test_mixture_moments_by_quadrature_against_the_closed_form():
    q = S.mixture_moments_by_quadrature(0.3, 0.2, 0.5, 3.0)
    assert np.allclose(q, S.mixture_moments(0.3, 0.2, 0.5, 3.0), rtol=1e-7, atol=0)
    assert not np.allclose(q, S.mixture_moments(0.31, 0.2, 0.5, 3.0), rtol=1e-4, atol=0)


def test_fits_of_moments_no_mixture_can_match_fail_with_a_clear_error():
    """A zero or non-finite moment (or not four of them) makes the normalised objective undefined: one
    readable ValueError naming the moments, before any search, not an unpacking error deep in it."""
    small = {k: v[::18] for k, v in S.PAPER_GRID.items()}
    for bad in ([0.1, 0.0, 0.2, 0.3], [0.1, np.nan, 0.2, 0.3], [0.1, 0.2, 0.3]):
        with pytest.raises(ValueError, match="four finite, non-zero moments"):
            S.grid_fit(np.array(bad), small)
        with pytest.raises(ValueError, match="four finite, non-zero moments"):
            S.profile_fit(np.array(bad))


def test_mixture_tail_is_the_integral_of_the_density():
    """P(|λ| > t) in closed form (scipy's skew-normal and normal tails) against quadrature of the
    density over both tails; quad's relative tolerance 1e-11 sets the comparison."""
    p = (0.3, 0.5, 2.0, -4.0)
    for t in (0.0, 0.002, 0.7, 3.0):
        lo = integrate.quad(lambda x: S.mixture_pdf(x, *p), -np.inf, -t, epsabs=0, epsrel=1e-11, limit=200)[0]
        hi = integrate.quad(lambda x: S.mixture_pdf(x, *p), t, np.inf, epsabs=0, epsrel=1e-11, limit=200)[0]
        assert abs(S.mixture_tail(t, *p) - (lo + hi)) < 1e-9, t
    assert S.mixture_tail(0.0, *p) == pytest.approx(1.0, abs=1e-12)
    assert S.mixture_tail(0.01, *p) < S.mixture_tail(0.001, *p)


def test_the_scalar_objective_of_the_polish_is_eq6_of_the_mixture_moments():
    # the plain-float objective that profile_fit's Nelder-Mead polish calls must be Eq. 6 of
    # mixture_moments, term for term: the two differ by round-off only (a few ulps of each term,
    # summed over four terms of magnitude up to the objective itself), over six decades of each parameter
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(500):
        w, xi = 10 ** rng.uniform(-6, 0), rng.normal() * 10 ** rng.uniform(-3, 2)
        omega, alpha = 10 ** rng.uniform(-3, 2), rng.normal() * 5
        target = np.abs(rng.normal(size=4)) * 10 ** rng.uniform(-4, 6, 4)
        ref = float(S.objective(S.mixture_moments(w, xi, omega, alpha), target))
        got = S._objective_at(w, xi, omega, alpha, S.BULK_SIGMA, tuple(target))
        worst = max(worst, abs(got - ref) / ref)
    assert worst < 1e-12
