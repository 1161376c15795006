"""Unit tests of lib.theory.measure against dense, independent computations."""

import math

import pytest
import torch
from torch.func import jacrev

from lib.theory import measure
from lib.nets.models import Arch, Net

DT = torch.float64


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_qm_norm_three_ways():
    for shape in [(1, 9), (9, 9), (20, 7), (4, 30)]:
        a = torch.randn(*shape, generator=g(), dtype=DT)
        fro = torch.linalg.matrix_norm(a, "fro")
        torch.testing.assert_close(measure.qm_norm(a) * math.sqrt(shape[1]), fro)
        torch.testing.assert_close(measure.qm_norm_svd(a), measure.qm_norm(a))
    # the qm norm is not the spectral norm divided by sqrt(n) (rank > 1)
    a = torch.randn(6, 6, generator=g(1), dtype=DT)
    assert abs(measure.qm_norm(a) - torch.linalg.matrix_norm(a, 2) / math.sqrt(6)) > 1e-3


def test_qm_norm_random_directions_statistical():
    a = torch.randn(5, 8, generator=g(), dtype=DT)
    u = measure.random_unit_vectors(200_000, 8, generator=g(1))
    torch.testing.assert_close(u.norm(dim=-1), torch.ones(200_000, dtype=DT))
    sq = measure.qm_norm_probes(a, u)
    se = sq.std() / math.sqrt(sq.numel())
    assert abs(sq.mean() - measure.qm_norm(a) ** 2) < 5 * se


def test_quadratic_expectation():
    x = torch.tensor([3.0, -4.0], dtype=DT)
    assert measure.quadratic_expectation(x).item() == pytest.approx(math.sqrt(12.5), rel=1e-15)


@pytest.mark.parametrize("kw", [dict(kind="plain"), dict(kind="residual", order="pre", norm="layer", act="tanh")])
def test_ensemble_jacobian_matches_jacrev(kw):
    net = Net(Arch(d_in=5, width=7, depth=3, d_out=4, **kw), E=3, generator=g(), dtype=DT)
    x = torch.randn(6, 5, generator=g(1), dtype=DT)
    J = measure.ensemble_input_jacobian(net, x)
    assert J.shape == (3, 6, 4, 5)
    for e in range(3):
        m = net.member(e)
        Je = measure.jacobian(lambda v: m(v[None])[0, 0], x)
        torch.testing.assert_close(J[e], Je)
        torch.testing.assert_close(J[e, 2], jacrev(lambda v: m(v[None])[0, 0])(x[2]))


def test_ensemble_jacobian_refuses_batch_norm():
    net = Net(Arch(d_in=5, width=7, depth=2, d_out=4, norm="batch"), E=2)
    with pytest.raises(ValueError, match="batch normalisation"):
        measure.ensemble_input_jacobian(net, torch.randn(3, 5))


def test_gsc_against_jacobians():
    """GSC(l, 0) from traced gradients equals the dense definition: Q_D(||g_l||/sqrt(d)) Q_D||f_l|| / Q_D|f_0|."""
    net = Net(Arch(d_in=5, width=6, depth=2, d_out=3, kind="residual"), E=2, generator=g(), dtype=DT)
    x = torch.randn(10, 5, generator=g(1), dtype=DT)
    y = torch.randn(10, 3, generator=g(2), dtype=DT)
    got = measure.gsc(net, x, y)
    assert got.shape == (2, 4)
    for e in range(2):
        m = net.member(e)
        f0 = (m(x)[0] * y).sum(-1)
        # output column: J = y (the gradient of the dot error w.r.t. the output)
        out = m(x)[0]
        want = (y.norm(dim=-1) / math.sqrt(3)).pow(2).mean().sqrt() * out.norm(dim=-1).pow(2).mean().sqrt() / f0.pow(2).mean().sqrt()
        torch.testing.assert_close(got[e, -1], want)
        # first representation (stem output), by autograd on a leaf copy
        _, tr = m(x, trace=True)
        h1 = tr.hidden[0].detach().requires_grad_(True)
        # rebuild the rest of the network from h1 by hand
        h = h1
        for b in range(2):
            h = torch.relu(h @ m.weights[1 + b].transpose(-1, -2)) + h @ m.skip.transpose(-1, -2)
        o = h @ m.weights[3].transpose(-1, -2)
        gr, = torch.autograd.grad((o[0] * y).sum(), h1)
        want1 = (gr[0].norm(dim=-1) / math.sqrt(6)).pow(2).mean().sqrt() * h1[0].norm(dim=-1).pow(2).mean().sqrt() / f0.pow(2).mean().sqrt()
        torch.testing.assert_close(got[e, 0], want1.detach())


def test_zero_response_probability_counts_dead_units():
    """Half-dead ReLU layers by construction: the probability is the fraction of zeros; chunking
    does not change it."""
    net = Net(Arch(d_in=4, width=6, depth=2, kind="plain", act="relu"), E=3, generator=torch.Generator().manual_seed(0),
              dtype=torch.float64)
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    p = measure.zero_response_probability(net, x)
    _, tr = net(x, trace=True)
    frac = torch.stack([(a == 0).double().mean(dim=(-2, -1)) for a in tr.act]).mean(0)   # equal-size layers
    assert p.shape == (3,) and torch.allclose(p, frac) and 0.2 < p.mean() < 0.8
    assert torch.allclose(measure.zero_response_probability(net, x, chunk=7), p)


def test_spectral_norms_by_squaring_match_the_svd():
    """Gram squaring (the GPU path of ||W - W0||_2 in lib.experiments.effective_depth) agrees with
    LAPACK's largest singular value to round-off on Gaussian, low-rank, tall, wide and zero
    matrices, in float64 and float32; a nearly degenerate top pair (gap 1e-9) costs at most the gap."""
    gen = g(11)
    for dt, rtol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        cases = [torch.randn(6, 5, 40, 40, generator=gen, dtype=DT),
                 torch.randn(6, 40, 3, generator=gen, dtype=DT) @ torch.randn(6, 3, 40, generator=gen, dtype=DT),
                 torch.randn(4, 50, 7, generator=gen, dtype=DT), torch.randn(4, 7, 50, generator=gen, dtype=DT)]
        for a in cases:
            a = a.to(dt)
            ref = torch.linalg.svdvals(a.to(DT))[..., 0]
            got = measure.spectral_norms(a, method="squaring")
            assert got.dtype == dt and got.shape == a.shape[:-2]
            torch.testing.assert_close(got.to(DT), ref, rtol=rtol, atol=0)
        assert (measure.spectral_norms(torch.zeros(3, 9, 9, dtype=dt), method="squaring") == 0).all()
    U, _ = torch.linalg.qr(torch.randn(30, 30, generator=gen, dtype=DT))
    V, _ = torch.linalg.qr(torch.randn(30, 30, generator=gen, dtype=DT))
    s = torch.linspace(1, 0.5, 30, dtype=DT)
    s[1] = 1 - 1e-9
    got = measure.spectral_norms(((U * s) @ V.T)[None], method="squaring")
    assert 1 - 2e-9 <= float(got) <= 1 + 1e-12
    a = torch.randn(3, 20, 20, generator=gen, dtype=DT)
    assert torch.equal(measure.spectral_norms(a), torch.linalg.matrix_norm(a, ord=2))      # the CPU keeps LAPACK's values
    with pytest.raises(ValueError, match="method"):
        measure.spectral_norms(a, method="power")
