"""lib.theory.linear_nets: reduced energies against autograd, and the residual flow as a shifted plain flow."""

import math

import numpy as np

import pytest
import torch
from torch.func import grad, hessian

from lib.theory import linear_nets as LN

DT = torch.float64


@pytest.mark.parametrize("kind", LN.ARCH_OFFSETS)
def test_closed_form_derivatives(kind):
    c = LN.offsets(kind, 5)
    a = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=DT)
    for i in range(6):
        torch.testing.assert_close(LN.energy_grad(a[i], 1.7, c), grad(lambda x: LN.energy(x, 1.7, c))(a[i]))
        torch.testing.assert_close(LN.energy_hessian(a[i], 1.7, c), hessian(lambda x: LN.energy(x, 1.7, c))(a[i]))


def test_offsets_and_bad_kind():
    assert LN.offsets("hyper", 3).tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        LN.offsets("dense", 3)


def test_two_mode_residual_is_shifted_plain():
    s = torch.tensor([3.0, 1.5], dtype=DT)
    u = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=DT) / math.sqrt(2)
    z = torch.zeros(2, 2, dtype=DT)
    ra, rb = LN.two_mode_descent(z, z, s, 0.05, 200, shift_a=u, shift_b=u)
    pa, pb = LN.two_mode_descent(u.clone(), u.clone(), s, 0.05, 200)
    torch.testing.assert_close(ra + u, pa)
    torch.testing.assert_close(rb + u, pb)
    # the flow converges to a^a . b^g = diag(s)
    ab = torch.einsum("an,gn->ag", pa[-1], pb[-1])
    torch.testing.assert_close(ab, torch.diag(s), atol=1e-6, rtol=0)


def test_gradient_descent_plain_stuck_residual_converges():
    a0 = 1e-4 * torch.randn(8, 6, generator=torch.Generator().manual_seed(1), dtype=DT)
    _, up = LN.gradient_descent(a0, 2.0, LN.offsets("plain", 6), 0.01, 500)
    _, ur = LN.gradient_descent(a0, 2.0, LN.offsets("residual", 6), 0.01, 500)
    assert up[-1].abs().max() < 1e-10
    torch.testing.assert_close(ur[-1], torch.full((8,), 2.0, dtype=DT), atol=1e-6, rtol=0)


def test_derivative_errors_are_round_off_and_see_a_wrong_hessian(monkeypatch):
    a = torch.randn(8, 5, generator=torch.Generator().manual_seed(3), dtype=DT)
    errs = LN.derivative_errors(a, 2.0, 5)
    assert len(errs) == 2 * len(LN.ARCH_OFFSETS) and max(errs) < 1e-12
    real = LN.energy_hessian
    monkeypatch.setattr(LN, "energy_hessian", lambda a_, s, c: real(a_, s, c) * (1 + 1e-6))
    assert max(LN.derivative_errors(a, 2.0, 5)[1::2]) > 1e-7


def test_tied_weights_direction_is_an_eigenvector_with_the_closed_form_eigenvalue():
    a = torch.randn(10, 5, generator=torch.Generator().manual_seed(4), dtype=DT)
    a[:, 1] = a[:, 0]
    for kind in ("plain", "residual"):                  # c_1 = c_2, so the first two factors are equal
        t = LN.tied_weights_hessian(a, 2.0, LN.offsets(kind, 5))
        torch.testing.assert_close(t["hd"], t["predicted"], rtol=0, atol=1e-12 * t["hessian"].abs().max().item())
    assert (t["hessian"][:, :, 0] - t["hessian"][:, :, 1]).abs().max() > 1e-3       # the columns are not identical


def test_convergence_times_and_steps_to_fit():
    a0 = 1e-3 * torch.randn(16, 3, generator=torch.Generator().manual_seed(5), dtype=DT)
    traj, t_hit = LN.convergence_times(a0, 2.0, {"residual": 0.05, "plain": 0.05}, 400, record_every=5)
    assert set(traj) == {"residual", "plain"} and t_hit["residual"].shape == (16,)
    assert np.isfinite(t_hit["residual"]).all() and (t_hit["residual"] % 5 == 0).all()
    ts, us = traj["residual"]
    first = int(t_hit["residual"][0]) // 5
    assert abs(us[first, 0] - 2.0) < 0.02 and abs(us[first - 1, 0] - 2.0) >= 0.02
    assert np.isinf(t_hit["plain"]).all()          # from ~0 the plain product barely moves in 400 steps
    s = torch.tensor([3.0, 1.5], dtype=DT)
    a = torch.stack([torch.zeros(2, 2, dtype=DT), torch.diag(s).sqrt()])
    assert LN.steps_to_fit(a, a, s) == 1 and LN.steps_to_fit(a[:1], a[:1], s) == float("inf")
