"""lib.theory.dominant_flow: the closed form of Yu & Tomasi's Eq. 14 and the trivial case of App. D.4.1."""

import math

import numpy as np
import pytest
import torch

from lib.theory import dominant_flow as Df


def g(s=0):
    return torch.Generator().manual_seed(s)


def test_phi_closed_form_symmetry_and_quadrature():
    for r in (0.01, 0.5, 1.0, 3.0, 40.0):
        assert Df.phi_quadrature(r) == pytest.approx(float(Df.phi(r)), abs=1e-12)
        assert float(Df.phi(1 / r)) == pytest.approx(1 - float(Df.phi(r)), abs=1e-15)
    assert float(Df.phi(1.0)) == 0.5


def test_best_exponent_is_a_minimax_point():
    c, err = Df.best_exponent()
    assert err < Df.max_error(1.2)[0]
    assert err <= min(Df.max_error(c - 0.01)[0], Df.max_error(c + 0.01)[0])


def test_trivial_theta_matches_an_explicit_product():
    th, z = Df.trivial_theta(3, n=4, L=5, l=2, p=0.7, eps=0.5, sigma_a=0.3, sigma_v=2.0, generator=g(), dtype=torch.float64)
    gg = g()
    # redraw in the same order as trivial_theta and build the product explicitly, experiment by experiment
    As, Ss = [], []
    for _ in range(3, 6):
        As.append(torch.randn(3, 4, 4, generator=gg, dtype=torch.float64) * 0.3)
        Ss.append(torch.rand(3, 1, 4, generator=gg, dtype=torch.float64) < 0.7)
    V = torch.randn(3, 1, 4, generator=gg, dtype=torch.float64) * 2.0
    for e in range(3):
        M = torch.eye(4, dtype=torch.float64)
        for A, S in zip(As, Ss):
            M = M @ (torch.eye(4, dtype=torch.float64) + 0.5 * A[e]).T @ torch.diag(S[e, 0].to(torch.float64))
        assert torch.allclose(th[e], M @ torch.diag(V[e, 0]), atol=1e-14)
        assert torch.equal(z[e], torch.stack([S[e, 0] for S in Ss]).all(0))


def test_trivial_sigma_limits():
    # p = 1 and eps = 0: Theta = V is diagonal, every unit dominant
    assert Df.trivial_sigma(50, p=1.0, eps=0.0, generator=g()).eq(1).all()
    # p = 0: every gradient is zero, no unit dominant (0/0 counts as not dominant)
    assert Df.trivial_sigma(50, p=0.0, generator=g()).eq(0).all()
    with pytest.raises(ValueError):
        Df.trivial_sigma(10, l=10, L=10)


def test_variance_factors_and_approximation_forms():
    p, k = 0.8, 6
    assert Df.p_prime(p, k) == pytest.approx(sum(p ** (2 * m) for m in range(1, k + 1)))
    assert Df.q_corrected(p, k) == pytest.approx(sum(p**m for m in range(1, k + 1)))
    base = dict(n=20, L=10, l=5, eps=0.3, sigma_a=0.2)
    # at p = 1 all three forms coincide
    vals = [Df.sigma_approx(**base, p=1.0, form=f) for f in ("conclusion", "eq11", "corrected")]
    assert max(vals) - min(vals) < 1e-15
    with pytest.raises(ValueError, match="form"):
        Df.sigma_approx(form="eq12")


def test_monte_carlo_of_phi_agrees():
    gen = np.random.default_rng(0)
    x = gen.normal(size=200_000) * 0.4
    y = gen.normal(size=200_000)
    est = (np.abs(x) > np.abs(y)).mean()
    assert abs(est - float(Df.phi(0.4))) < 4 * math.sqrt(est * (1 - est) / x.size)


def test_trivial_variance_estimates_the_corrected_factor_not_the_papers():
    setting = dict(n=10, L=6, l=2, p=0.8, eps=0.5, sigma_a=0.01, sigma_v=0.1)   # eps is replaced by small_eps
    q, se = Df.trivial_variance(20_000, **setting, generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError):                      # n, sigma_a, sigma_v are stated, never assumed
        Df.trivial_variance(10, p=0.8)
    g = torch.Generator().manual_seed(0)
    assert (q, se) != Df.trivial_variance(20_000, **setting, small_eps=0.5, generator=g)
    k = setting["L"] - setting["l"]
    assert abs(q - Df.q_corrected(0.8, k)) < 4 * se + 1e-3 * q         # 1e-3: the eps = 1e-3 second-order terms
    assert abs(q - Df.p_prime(0.8, k)) > 10 * se


def test_trivial_sweeps_move_one_variable_at_a_time():
    base = dict(n=10, L=6, l=2, p=0.9, eps=0.1, sigma_a=0.01, sigma_v=0.1)
    out = Df.trivial_sweeps(base, {"p": [0.5, 1.0], "sigma_v": [1.0]}, 2000, generator=torch.Generator().manual_seed(1))
    assert list(out) == [("p", 0.5), ("p", 1.0), ("sigma_v", 1.0)]
    r = out[("p", 1.0)]
    assert r["paper"] == pytest.approx(Df.sigma_approx(n=10, L=6, l=2, p=1.0, eps=0.1, sigma_a=0.01))
    assert r["corrected"] == pytest.approx(Df.sigma_approx(n=10, L=6, l=2, p=1.0, eps=0.1, sigma_a=0.01, form="corrected",
                                                           exact_phi=True))
    assert abs(r["res"] - r["paper"]) < 4 * r["res_se"] + 0.02 and r["plain"] < r["res"]
    assert out[("p", 0.5)]["res"] < r["res"]
