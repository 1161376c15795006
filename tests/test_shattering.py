"""lib.theory.shattering: real-network gradients, activation statistics and the mean-field maps."""

import math

import numpy as np
import pytest
import torch

from lib.theory import shattering as S
from lib.experiments import trainability

DT = torch.float64


def g(s=0):
    return torch.Generator().manual_seed(s)


def test_grid_gradients_equal_autograd():
    E, L, N, M = 3, 4, 16, 40
    W = S.he_weights(E, L, N, generator=g(), dtype=DT)
    w = torch.randn(E, N, generator=g(1), dtype=DT)
    x = torch.linspace(-2, 2, M, dtype=DT)
    for kind, norm in [("ff", "none"), ("ff", "center"), ("res", "bn")]:
        d = S.grid_gradients(x, W, generator=g(3), kind=kind, norm=norm, b=0.5, readout=w)
        gen = g(3)                                   # the same embedding as grid_gradients draws
        v = torch.randn(E, 1, N, generator=gen, dtype=DT)
        c = torch.randn(E, 1, N, generator=gen, dtype=DT)
        xr = x.clone().requires_grad_(True)
        s = S.chain(xr[None, :, None] * v + c, W, kind=kind, norm=norm, b=0.5, readout=w)
        # with frozen statistics the inputs are independent, so d(sum over networks)/dx_i is the sum of
        # the per-network derivatives at x_i
        (ga,) = torch.autograd.grad(s.sum(), xr)
        torch.testing.assert_close(d.sum(0), ga)


def test_vector_gradients_are_per_sample_under_frozen_bn():
    E, L, N, M = 2, 3, 8, 6
    W = S.he_weights(E, L, N, generator=g(4), dtype=DT)
    x = torch.randn(M, N, generator=g(5), dtype=DT)
    G = S.ensemble_input_gradients(x, W, kind="res", norm="bn", b=0.3)
    # perturbing input 0 alone changes only output 0 to first order once statistics are frozen:
    # compare with the Jacobian of the per-sample map built from the frozen statistics
    J = torch.autograd.functional.jacobian(lambda z: S.chain(z, W, kind="res", norm="bn", b=0.3), x.expand(E, M, N).clone())
    # J (E, M, E, M, N): diagonal blocks are the per-sample gradients, off-diagonal (other samples) vanish
    for e in range(E):
        torch.testing.assert_close(torch.stack([J[e, i, e, i] for i in range(M)]), G[e])
        off = J[e, 0, e, 1:]
        assert off.abs().max() < 1e-12


def test_sheppard_and_arccosine_maps_by_monte_carlo():
    n = 400_000
    for c in (-0.6, 0.0, 0.3, 0.9):
        z = torch.randn(n, 2, generator=g(6), dtype=DT)
        u = z[:, 0]
        v = c * z[:, 0] + math.sqrt(1 - c * c) * z[:, 1]
        both = ((u > 0) & (v > 0)).to(DT)
        assert abs(both.mean().item() - S.coactive_probability(c)) < 4 * both.std().item() / math.sqrt(n)
        pr = torch.relu(u) * torch.relu(v)
        assert abs(pr.mean().item() / 0.5 - S.relu_correlation(c)) < 4 * pr.std().item() / 0.5 / math.sqrt(n)
    assert S.coactive_probability(0.0) == 0.25 and S.relu_correlation(1.0) == pytest.approx(1.0)


def test_fractions_and_run_lengths_against_brute_force():
    acts = torch.rand(2, 3, 7, 5, generator=g(7)) > 0.5
    co = S.coactivation_fraction(acts)
    a = acts.float()
    brute = torch.zeros(2, 3)
    for i in range(7):
        for j in range(i + 1, 7):
            brute += (a[..., i, :] * a[..., j, :]).mean(-1)
    torch.testing.assert_close(co, brute / 21)
    raster = torch.tensor([[1, 0], [1, 0], [0, 0], [1, 1]], dtype=torch.bool)   # (M=4, N=2)
    assert sorted(S.run_lengths(raster).tolist()) == sorted([2, 1, 1, 3, 1])
    rasters = torch.rand(3, 9, 4, generator=g(11)) > 0.5
    per_net = [S.run_lengths(rasters[e:e + 1]).mean() for e in range(3)]
    np.testing.assert_allclose(S.mean_run_length(rasters).numpy(), per_net)


def test_effective_rank_and_acf():
    u = torch.randn(10, generator=g(8), dtype=DT)
    assert S.effective_rank(torch.outer(u, u)).item() == pytest.approx(1.0)
    assert S.effective_rank(torch.eye(6, dtype=DT)).item() == pytest.approx(6.0)
    a = S.autocorrelation(torch.arange(10.0, dtype=DT)[None], 3)
    assert a[0, 0].item() == pytest.approx(1.0) and a[0, 1] < 1


def test_looks_linear_is_linear():
    W2 = S.looks_linear_weights(2, 6, 5, generator=g(9))
    x = torch.randn(4, 5, generator=g(10), dtype=DT)
    lin = x.expand(2, 4, 5)
    for l in range(6):
        lin = lin @ W2[:, l, :5, :]
    torch.testing.assert_close(S.crelu_chain(x, W2), lin.sum(-1))
    Q = W2[0, 0, :5, :]
    torch.testing.assert_close(Q.T @ Q, torch.eye(5, dtype=DT))


def test_centred_bn_closed_form_equals_product():
    kappa = 1 - 1 / math.pi
    for L in (1, 5, 50):
        for beta in (0.1, 1.0):
            s2 = 1 + kappa * beta**2 * np.arange(L)
            v, c = S.bn_resnet_moments_centered(L, beta)
            assert v == pytest.approx(np.prod(1 + beta**2 / s2), rel=1e-10)
            assert c == pytest.approx(np.prod(1 + 0.5 * beta**2 / s2), rel=1e-10)


def test_finite_batch_closed_form_equals_product():
    kappa = 1 - 1 / math.pi
    for M in (8, 32):
        f, half = M / (M - 3), 2 * S.bn_coactive_probability(M)
        for L in (1, 10, 50):
            for beta in (0.1, 1.0):
                s2 = 1 + kappa * beta**2 * np.arange(L)
                v, c = S.bn_resnet_moments_centered(L, beta, batch=M)
                assert v == pytest.approx(np.prod(1 + f * beta**2 / s2), rel=1e-10)
                assert c == pytest.approx(np.prod(1 + half * f * beta**2 / s2), rel=1e-10)
    with pytest.raises(ValueError, match="M <= 3"):
        S.bn_resnet_moments_centered(5, 1.0, batch=3)


def test_bn_coactive_probability_is_sheppard_at_the_centred_correlation():
    # centring a batch of M iid Gaussians gives every pair the correlation -1/(M-1) exactly
    g = torch.Generator().manual_seed(0)
    M, n = 8, 200_000
    z = torch.randn(n, M, generator=g, dtype=DT)
    z = z - z.mean(1, keepdim=True)
    both = ((z[:, 0] > 0) & (z[:, 1] > 0)).to(DT)
    p = S.bn_coactive_probability(M)
    assert p == pytest.approx(0.25 + math.asin(-1 / 7) / (2 * math.pi))
    assert abs(both.mean().item() - p) < 4 * both.std().item() / math.sqrt(n)
    assert S.bn_coactive_probability(32) == pytest.approx(0.2449, abs=1e-4)


def test_bn_feedforward_growth_is_the_isotropic_inverse_moment_and_a_lower_bound():
    # E[1/(w^T C w)], w ~ N(0, 2/N), C of rank M-1 with trace N kappa/2: (M-1)/((M-3) kappa) when C is
    # isotropic, larger when it is not (convexity)
    g = torch.Generator().manual_seed(1)
    N, M, kappa, n = 64, 8, 1 - 1 / math.pi, 400_000
    w = torch.randn(n, M - 1, generator=g, dtype=DT) * math.sqrt(2 / N)
    iso = torch.full((M - 1,), N * kappa / 2 / (M - 1), dtype=DT)
    aniso = iso * torch.linspace(0.5, 1.5, M - 1, dtype=DT)
    aniso = aniso * iso.sum() / aniso.sum()
    r_iso = 1 / (w**2 @ iso)
    r_an = 1 / (w**2 @ aniso)
    bound = S.bn_feedforward_growth(M)
    assert abs(r_iso.mean().item() - bound) < 5 * r_iso.std().item() / math.sqrt(n)
    assert r_an.mean().item() > bound + 5 * r_an.std().item() / math.sqrt(n)


def test_finite_batch_sweep_shapes_and_first_layer():
    g = torch.Generator().manual_seed(2)
    out = S.finite_batch_sweep([8, 32], width=32, n_networks=200, depth=3, generator=g)
    assert sorted(out) == [8, 32]
    for M, q in out.items():
        assert q["coact"].shape == (3,) and q["se_coact"].shape == (3,)
        # layer 1: Gaussian inputs, E[1/sigma_hat^2] = M/((M-3) 2) for the biased batch variance of N(0, 2)
        assert abs(q["first"] - M / (2 * (M - 3))) < 5 * q["se_first"] + 2 / 32
        assert q["se_growth"] > 0
    with pytest.raises(ValueError, match="depth >= 2"):
        S.finite_batch_sweep([8], width=8, n_networks=20, depth=1)
    fb = S.finite_batch_predictions(out)
    assert fb["M"].tolist() == [8, 32] and fb["coact"].shape == fb["p_M"].shape == (6,)
    assert fb["growth"][1] == out[32]["growth"] and fb["p_M"][3] == S.bn_coactive_probability(32) != fb["p_M"][0]
    assert np.allclose(fb["g_M"], [7 / (5 * (1 - 1 / math.pi)), 31 / (29 * (1 - 1 / math.pi))])   # (M-1)/((M-3) kappa)


def test_meanfield_resnet_reduces_to_theorem2_at_c_zero_first_layer():
    cs, var, corr = S.meanfield_resnet(3, 0.0)
    assert var.tolist() == [2.0, 4.0, 8.0]
    assert corr[0] == pytest.approx(0.75)


def test_gradient_correlations_white_and_shared():
    g = torch.Generator().manual_seed(3)
    n = 400
    white = torch.randn(50, 64, n, generator=g, dtype=DT)
    C = S.gradient_correlations(white)
    torch.testing.assert_close(C.diagonal(dim1=-2, dim2=-1), torch.ones(50, 64, dtype=DT))
    off = S.mean_abs_offdiagonal(C)
    assert abs(off.mean().item() - math.sqrt(2 / (math.pi * n))) < 5 * off.std().item() / math.sqrt(50) + 1e-3
    shared = white + 3 * torch.randn(50, 1, n, generator=g, dtype=DT)   # a common direction
    assert S.mean_abs_offdiagonal(S.gradient_correlations(shared)).min() > 0.8


def test_minibatch_gradient_stats_pairs_the_families():
    g = torch.Generator().manual_seed(4)
    X = torch.randn(100, 12, generator=g)
    fams = {"ff": ("ff", 1.0), "res small": ("res", 0.1), "res small again": ("res", 0.1)}
    out = S.minibatch_gradient_stats(X, fams, [1, 3], width=16, n_batches=3, batch=40, generator=g)
    assert set(out) == {(f, L) for f in fams for L in (1, 3)}
    q = out["ff", 3]
    assert q["rank"].shape == q["snr"].shape == q["offdiag"].shape == (3,) and q["image"].shape == (40, 40)
    # the same family twice sees the same draws: identical statistics (common random numbers)
    for k in ("rank", "snr", "offdiag"):
        np.testing.assert_array_equal(out["res small", 3][k], out["res small again", 3][k])
    with pytest.raises(ValueError, match="larger than"):
        S.minibatch_gradient_stats(X, fams, [1], width=8, n_batches=1, batch=200)


def test_fig6_architectures_start_as_the_paper_says():
    a = trainability.fig6_architectures(6, 32, 10, 3)
    assert a["CReLU, looks-linear"].width == a["CReLU, He"].width == 23 and a["ReLU, He"].width == 32
    # the looks-linear CReLU net is exactly linear at initialisation: f(x) + f(-x) = 2 f(0) = 0 (no biases)
    from lib.nets.models import Net
    net = Net(a["CReLU, looks-linear"], E=2, generator=torch.Generator().manual_seed(0), dtype=DT)
    x = torch.randn(5, 10, generator=torch.Generator().manual_seed(1), dtype=DT)
    torch.testing.assert_close(net(x) + net(-x), torch.zeros(2, 5, 3, dtype=DT), atol=1e-12, rtol=0)
    he = Net(a["CReLU, He"], E=2, generator=torch.Generator().manual_seed(0), dtype=DT)
    assert (he(x) + he(-x)).abs().max() > 1e-3


def test_trainability_by_depth_shapes():
    g = torch.Generator().manual_seed(5)
    X = torch.randn(60, 8, generator=g)
    y = (X[:, 0] > 0).long()
    out = trainability.trainability_by_depth(X, y, [2, 3], width=8, n_networks=3, epochs=1, lr=1e-3, batch_size=20, generator=g)
    assert len(out) == 8 and all(v.shape == (3,) and ((0 <= v) & (v <= 1)).all() for v in out.values())


def test_meanfield_power_law_and_activity_fractions():
    sl_corr, sl_c = S.meanfield_power_law(5000, fit_from=500)
    assert abs(sl_corr + 3) < 0.05 and abs(sl_c + 2) < 0.05
    ext, mid = S.activity_fractions(np.array([0.0, 1.0, 0.5, 0.3, 0.8, 1.0]))
    assert ext == 0.5 and mid == pytest.approx(2 / 6)
