"""lib.theory.spin_glass: path counts, epsilon weights, Legendre sums and theta_k against independent computations."""

import math

import mpmath
import numpy as np
import pytest

from lib.theory import spin_glass as SG


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


def test_theta_reduces_to_one_variable_and_increases():
    rng = np.random.default_rng(0)
    for p_ in (3, 7, 30):
        r = np.arange(2, p_ + 1)
        q = rng.dirichlet(np.ones(len(r)), size=50)
        t = SG.theta_ratio(q, r)
        assert ((1 <= t) & (t <= p_ - 1)).all()
        np.testing.assert_allclose(SG.theta_k(q, r), SG.theta_of_ratio(t), rtol=0, atol=1e-12)
        assert SG.theta_of_ratio(p_ - 1) == pytest.approx(0.5 * math.log(p_ - 1) - (1 - 2 / p_))
    tt = np.linspace(1.5, 50, 200)
    h = 1e-5
    fd = (SG.theta_of_ratio(tt + h) - SG.theta_of_ratio(tt - h)) / (2 * h)
    np.testing.assert_allclose(SG.theta_of_ratio_derivative(tt), fd, rtol=1e-6)


def test_band_miss_log_agrees_with_band_mass_and_rate_is_positive():
    for b in (0.5, 2.0):
        a = b / (1 + b)
        for p_ in (20, 200):
            miss = 1 - SG.band_mass(p_, b, a - 0.05, a + 0.05)
            assert math.exp(SG.log_band_miss(p_, b, a - 0.05, a + 0.05)) == pytest.approx(miss, rel=1e-9, abs=1e-15)
        assert SG.band_miss_rate(b, a - 0.05, a + 0.05) > 0
        assert SG.band_miss_rate(b, a - 0.1, a + 0.1) > SG.band_miss_rate(b, a - 0.05, a + 0.05)


def test_labelled_paths_counts_and_reindexing():
    p_, n, d, lam = 3, 2, 2, 2
    labels = [np.fromfunction(lambda i, b: b % lam, (d, n), dtype=int)] + \
             [np.fromfunction(lambda a, b: b % lam, (n, n), dtype=int) for _ in range(p_ - 1)]
    paths = SG.labelled_paths(labels)
    for r, groups in paths.items():
        psi = d * math.comb(p_ - 1, r - 1) * n**r
        assert sum(len(v) for v in groups.values()) == psi
        assert all(len(v) == psi // lam**r for v in groups.values()) and len(groups) == lam**r
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=lam), rng.normal(size=d)
    eq10 = sum(x[v].sum() * np.prod(w[list(t_)]) for g in paths.values() for t_, v in g.items())
    assert SG.linear_output(labels, w, x) == pytest.approx(eq10, rel=1e-12)


def test_asymptotic_study_keeps_distinct_arguments_and_the_proofs_rate():
    # beta = 2 has the |x| of beta = 0.5, so it is dropped and 0.3 tops the set up to three
    st = SG.asymptotic_study([0.5, 2.0, 0.1], 3000)
    assert list(st) == [0.5, 0.1, 0.3]
    for b, a in st.items():
        assert a.x == pytest.approx(abs((1 + b * b) / (1 - b * b)))
        assert a.ps[0] == 10 and a.ps[-1] == 3000 and np.all(np.diff(a.ps) > 0)
        assert a.slope == pytest.approx(-1.0, abs=0.03)          # O(1/p): the leading-term error of App. B
        assert a.p1 is None or a.err[list(a.ps).index(a.p1)] < 0.01
    # more betas than n_distinct: all of them are kept, nothing added
    assert list(SG.asymptotic_study([0.1, 0.2, 0.4, 0.6], 100)) == [0.1, 0.2, 0.4, 0.6]


def test_log_legendre_mpmath_is_the_reference():
    assert SG.log_legendre_mpmath(2, 3.0) == pytest.approx(math.log(0.5 * (3 * 9 - 1)), rel=1e-15)   # P_2 = (3x^2 - 1)/2
    assert SG.log_legendre_mpmath(1000, 1.01) == pytest.approx(SG.log_legendre(1000, 1.01), rel=1e-12)
