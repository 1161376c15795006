"""lib.theory.linear_nets: reduced energies against autograd, and the residual flow as a shifted plain flow."""

import math

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
