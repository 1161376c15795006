"""lib.theory.two_unit: the two-unit erf student of Orhan & Pitkow's Fig. 2 (Fukumizu & Amari; Wei et al.)."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

from lib.theory import two_unit as TU

f64 = torch.float64
TJ, TV = torch.tensor([[2.0], [0.5]], dtype=f64), torch.tensor([1.0, 1.0], dtype=f64)


def test_erf_kernel_against_quadrature():
    for a, b in ((0.7, -1.3), (2.0, 0.5), (1.0, 1.0)):
        phi = lambda x: special.erf(a * x / math.sqrt(2)) * special.erf(b * x / math.sqrt(2)) * math.exp(-x * x / 2)
        ref = integrate.quad(phi, -np.inf, np.inf, epsabs=1e-13)[0] / math.sqrt(2 * math.pi)
        got = TU.erf_kernel(torch.tensor([a], dtype=f64), torch.tensor([b], dtype=f64)).item()
        assert got == pytest.approx(ref, abs=1e-11)


def test_teacher_has_zero_loss_and_unpack_checks_length():
    theta = torch.cat([TV, TJ.flatten()])
    assert TU.population_loss(theta, TJ, TV).item() == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="not k"):
        TU.unpack(torch.zeros(5, dtype=f64), 1)


def test_overlap_line_is_critical_and_curvature_is_w1w2_times_a_constant():
    single, plateau = TU.best_single_unit(TJ, TV)
    assert plateau > 1e-4                                         # a one-unit student cannot fit two teacher units
    line = TU.on_overlap_line(single, torch.linspace(-3, 3, 13, dtype=f64))
    assert torch.allclose(TU.population_loss(line, TJ, TV), torch.tensor(plateau, dtype=f64), rtol=0, atol=1e-13)
    g = torch.vmap(torch.func.grad(lambda th: TU.population_loss(th, TJ, TV)))(line)
    assert g.abs().max() < 1e-8
    ratio = (TU.separating_curvature(line, TJ, TV)[:, 0] / (line[:, 0] * line[:, 1]))
    ratio = ratio[torch.isfinite(ratio)]
    assert (ratio.max() - ratio.min()).abs() < 1e-9 * ratio.abs().mean()
    # the midpoint-preserving direction does not have this property (the B terms do not cancel)
    eye_dir = torch.tensor([0.0, 0.0, 1.0, -1.0], dtype=f64)
    H = torch.vmap(torch.func.hessian(lambda th: TU.population_loss(th, TJ, TV)))(line)
    mid = torch.einsum("p,bpq,q->b", eye_dir, H, eye_dir) / (line[:, 0] * line[:, 1])
    mid = mid[torch.isfinite(mid)]
    assert (mid.max() - mid.min()).abs() > 1e-3 * mid.abs().mean()


def test_gradient_descent_is_a_batch_of_plain_gradient_steps():
    theta0 = torch.tensor([[0.3, -0.2, 1.0, -0.5], [1.0, 0.5, 0.2, 0.1]], dtype=f64)
    out = TU.gradient_descent(theta0, TJ, TV, lr=0.1, steps=2)
    th = theta0[1].clone()
    for _ in range(2):
        th = th - 0.1 * torch.func.grad(lambda t: TU.population_loss(t, TJ, TV))(th)
    assert out["loss"].shape == (3, 2) and out["loss"][-1, 1] == pytest.approx(TU.population_loss(th, TJ, TV).item(), rel=1e-12)
    assert out["h"][0, 0] == pytest.approx(1.5) and out["z"][0, 0] == pytest.approx(0.5 / 0.1)
    assert list(TU.escape_steps(np.array([[1.0, 1.0], [0.4, 0.9], [0.1, 0.8]]), 1.0)) == [1, -1]
