"""lib.spin_glass: path counts, epsilon weights, Legendre sums and theta_k against independent computations."""

import math

import mpmath
import numpy as np
import pytest

from lib import spin_glass as SG


@pytest.mark.parametrize("p,n", [(2, 2), (3, 3), (5, 2)])
def test_path_counts_two_ways(p, n):
    formula = {r: math.comb(p - 1, r - 1) * n**r for r in range(1, p + 1)}
    assert SG.paths_by_enumeration(p, n) == formula == SG.paths_by_network(p, n)


def test_eps_normalised_and_modes():
    for nz in SG.NORMALISATIONS:
        r, le = SG.log_eps(40, 0.7, nz)
        assert r[0] == 1 and r[-1] == 40
        assert np.exp(2 * le).sum() == pytest.approx(1.0, rel=1e-12)
        # direct (small p, no logs)
        w = np.array([(math.comb(39, k - 1) if nz == "main" else math.comb(40, k)) * 0.7**k for k in r])
        np.testing.assert_allclose(np.exp(le), w / np.linalg.norm(w), rtol=1e-10)
        assert SG.argmax_eps(40, 0.7, nz) == int(r[np.argmax(w)])
    with pytest.raises(ValueError):
        SG.orders(5, "other")


def test_closed_form_mode_matches_numerics_off_ties():
    for p in (7, 30, 101):
        for b in (0.13, 0.77, 3.1):
            for nz in SG.NORMALISATIONS:
                assert SG.argmax_eps(p, b, nz) == SG.argmax_eps_closed_form(p, b, nz)


def test_log_legendre_against_mpmath_and_asymptotic_rate():
    mpmath.mp.dps = 30
    for p, x in [(5, 1.3), (60, 2.0), (400, 1.05)]:
        assert SG.log_legendre(p, x) == pytest.approx(float(mpmath.log(mpmath.legenp(p, 0, x))), rel=1e-12)
    e1 = abs(math.expm1(SG.log_legendre_asymptotic(1000, 2.0) - SG.log_legendre(1000, 2.0)))
    e2 = abs(math.expm1(SG.log_legendre_asymptotic(10000, 2.0) - SG.log_legendre(10000, 2.0)))
    assert 8 < e1 / e2 < 12
    with pytest.raises(ValueError):
        SG.log_legendre(3, 0.5)


def test_band_and_theta():
    lo, hi = SG.narrowest_band(200, 0.5, 0.99)
    assert lo <= SG.argmax_eps(200, 0.5) <= hi
    assert SG.band_mass(200, 0.5, (lo - 0.5) / 200, (hi + 0.5) / 200) >= 0.99
    r = np.arange(2, 6)
    assert SG.theta_k(np.eye(4)[-1], r) == pytest.approx(0.5 * math.log(4) - (1 - 2 / 5))


def test_xi_second_moments_lemma2():
    """Lemma 2's range m²/d <= E[xi²] <= m² for independent unit inputs, both ends attained; a
    negatively correlated pair goes below the lower end."""
    v = SG.xi_second_moments(4, 2)
    assert sorted(v.tolist()) == [8.0, 10.0, 10.0, 16.0, 16.0]          # alpha = (2,2), (1,3), (3,1), (0,4), (4,0)
    assert v.min() == 4**2 / 2 and v.max() == 4**2
    w = SG.xi_second_moments(2, 2, cov=[[1.0, -0.5], [-0.5, 1.0]])
    assert w.min() == 1.0 < 2**2 / 2                                     # alpha = (1, 1): 1 + 1 - 2 * 0.5
    with pytest.raises(ValueError):
        SG.xi_second_moments(2, 2, cov=np.eye(3))
