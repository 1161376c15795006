"""lib.theory.curvature against dense, independent computations (float64)."""

import math

import pytest
import torch
from torch.func import hessian

from lib.theory import curvature as C
from lib.nets.models import Arch, Net
from lib.nets.training import cross_entropy

DT = torch.float64


def g(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def ens():
    net = Net(Arch(d_in=6, width=5, depth=2, d_out=3, kind="residual", bias=True, init="glorot"), E=3, generator=g(), dtype=DT)
    x = torch.randn(20, 6, generator=g(1), dtype=DT)
    y = torch.randint(0, 3, (20,), generator=g(2))
    return C.FlatLoss(net, cross_entropy, x, y)


def test_flat_loss_round_trip(ens):
    assert ens.N == sum(p.numel() for p in ens.net.parameters())
    assert ens.sizes.tolist() == [ens.N // 3] * 3
    torch.testing.assert_close(ens(ens.theta), cross_entropy(ens.net(ens.x), ens.y).sum())


def test_exact_hessian_matches_torch_func_hessian_and_is_block_diagonal(ens):
    H = C.exact_hessian(ens, ens.theta)
    H_ref = hessian(ens)(ens.theta)
    torch.testing.assert_close(H, 0.5 * (H_ref + H_ref.T), atol=1e-12, rtol=0)
    for a in range(3):
        for b in range(3):
            block = H[ens.owner == a][:, ens.owner == b]
            if a != b:
                assert block.abs().max() == 0
    # each member's block is that member's own Hessian
    m1 = C.FlatLoss(ens.net.member(1), cross_entropy, ens.x, ens.y)
    torch.testing.assert_close(H[ens.owner == 1][:, ens.owner == 1], C.exact_hessian(m1, m1.theta), atol=1e-12, rtol=0)


def test_member_hessians_are_the_diagonal_blocks(ens):
    """n products give every member's block; compared with the dense ensemble Hessian's blocks
    (float64, the same products summed in another order: round-off only)."""
    H = C.exact_hessian(ens, ens.theta)
    Hm = C.member_hessians(ens)
    assert Hm.shape == (3, int(ens.sizes[0]), int(ens.sizes[0]))
    for e in range(3):
        torch.testing.assert_close(Hm[e], H[ens.owner == e][:, ens.owner == e], atol=1e-12, rtol=0)
    assert not torch.allclose(Hm[0], Hm[1])                      # distinct members, not one block repeated


def test_skilling_moments_per_member_equal_dense(ens):
    H = C.exact_hessian(ens, ens.theta)
    R = torch.randn(5, ens.N, generator=g(3), dtype=DT)
    m = C.skilling_moments(lambda V: C.batched_hvp(ens, ens.theta, V), R, 5, dot=ens.member_dot, sizes=ens.sizes)
    assert m.shape == (5, 3, 5)
    for e in range(3):
        sel = ens.owner == e
        He, Re = H[sel][:, sel], R[:, sel]
        for k in range(1, 6):
            ref = (Re * (Re @ torch.linalg.matrix_power(He, k))).sum(-1) / sel.sum()
            torch.testing.assert_close(m[:, e, k - 1], ref, atol=1e-13, rtol=1e-10)


def test_direct_and_even_odd_moments_agree():
    A = torch.randn(30, 30, generator=g(4), dtype=DT)
    A = A + A.T
    R = torch.randn(7, 30, generator=g(5), dtype=DT)
    mv = lambda V: V @ A
    torch.testing.assert_close(C.skilling_moments(mv, R, 6), C.direct_moments(mv, R, 6), rtol=1e-11, atol=0)
    lam = torch.linalg.eigvalsh(A)
    torch.testing.assert_close(C.exact_moments(lam, 3), torch.stack([torch.trace(torch.linalg.matrix_power(A, k)) / 30 for k in (1, 2, 3)]))


def test_lanczos_full_run_recovers_spectrum_and_quadrature_is_exact():
    A = torch.randn(25, 25, generator=g(6), dtype=DT)
    A = A + A.T
    lam = torch.linalg.eigvalsh(A)
    q = torch.randn(2, 25, generator=g(7), dtype=DT)
    nodes, w = C.slq(lambda V: V @ A, q, 25)
    torch.testing.assert_close(nodes[0], lam, atol=1e-9, rtol=0)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, dtype=DT))
    nodes, w = C.slq(lambda V: V @ A, q, 4)             # exact for k <= 2m - 1 = 7
    qn = q / q.norm(dim=-1, keepdim=True)
    for k in range(1, 8):
        ref = (qn * (qn @ torch.linalg.matrix_power(A, k))).sum(-1)
        torch.testing.assert_close((w * nodes**k).sum(-1), ref, rtol=1e-9, atol=1e-9)
    # and not for k = 2m (the quadrature has only m nodes)
    ref8 = (qn * (qn @ torch.linalg.matrix_power(A, 8))).sum(-1)
    assert ((w * nodes**8).sum(-1) - ref8).abs().max() > 1e-6 * ref8.abs().max()


def test_skilling_moments_rejects_zero_moments():
    with pytest.raises(ValueError):
        C.skilling_moments(lambda V: V, torch.ones(1, 3), 0)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_batched_hvp_modes_equal_the_dense_hessian(ens, mode):
    f = ens
    H = torch.func.hessian(f)(f.theta)
    V = torch.randn(5, f.N, generator=torch.Generator().manual_seed(3), dtype=f.theta.dtype)
    torch.testing.assert_close(C.batched_hvp(f, f.theta, V, chunk=2, mode=mode), V @ H.T, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(C.batched_hvp(f, f.theta, V, mode=mode), V @ H.T, rtol=1e-10, atol=1e-12)   # chunk="auto"
    with pytest.raises(ValueError, match="mode"):
        C.batched_hvp(f, f.theta, V, mode="sideways")


def test_kaniel_paige_saad_bound():
    """By hand on diag(2, 1, 0) (gamma = 1, lambda_1 - lambda_N = 2): one step gives the Rayleigh
    quotient, and the bound is 2 tan^2; with more steps it shrinks by T_(m-1)(3)^2, and on a random
    matrix the Ritz values of C.slq respect it."""
    lam = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    u1 = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    t = 0.3
    q = torch.tensor([[math.sin(t) / math.sqrt(2), math.sin(t) / math.sqrt(2), math.cos(t)]], dtype=torch.float64)
    torch.testing.assert_close(C.kaniel_paige_saad(lam, u1, q, 1), torch.tensor([2 * math.tan(t) ** 2], dtype=torch.float64))
    torch.testing.assert_close(C.kaniel_paige_saad(lam, u1, q, 3), torch.tensor([2 * math.tan(t) ** 2 / 17.0 ** 2],
                                                                                 dtype=torch.float64))   # T_2(3) = 2*9 - 1
    rq = (q @ torch.diag(lam) @ q.T).item()
    assert 2.0 - rq <= C.kaniel_paige_saad(lam, u1, q, 1).item() + 1e-12
    gen = torch.Generator().manual_seed(8)
    A = torch.randn(60, 60, generator=gen, dtype=torch.float64)
    H = (A + A.T) / 2
    ev, U = torch.linalg.eigh(H)
    probes = torch.randn(5, 60, generator=gen, dtype=torch.float64)
    nodes, _ = C.slq(lambda B: B @ H, probes, 8)
    gap = ev[-1] - nodes.max(-1).values
    assert (gap >= -1e-10).all() and (gap <= C.kaniel_paige_saad(ev, U[:, -1], probes, 8) + 1e-10).all()


def test_hvp_chunk_is_chosen_per_device_type():
    assert C.hvp_chunk("cpu") == C.HVP_CHUNKS["cpu"] == C.HVP_CHUNK == 4
    assert C.hvp_chunk("cuda") == C.hvp_chunk(torch.device("cuda", 1)) == 16
    assert C.hvp_chunk("meta") == 4


def test_skilling_probe_variance_is_the_gaussian_quadratic_form_variance():
    from lib.theory import curvature as C
    lam = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    v = C.skilling_probe_variance(lam, 2)
    assert torch.allclose(v, torch.stack([2 * (lam ** 2).sum(), 2 * (lam ** 4).sum()]) / 9, rtol=1e-15)
    z = torch.randn(400_000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    est = (z ** 2 * lam).sum(1) / 3                                 # r'Hr / N for H = diag(lam)
    se = v[0] * (2 / 400_000) ** 0.5 * 3                           # a generous s.e. of a sample variance (heavy tails)
    assert abs(est.var() - v[0]) < 4 * se


def test_skilling_variance_by_group_matches_the_closed_form_for_every_group_size():
    lam = torch.linspace(-1.0, 2.0, 40, dtype=torch.float64)
    z = torch.randn(8192, 40, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    pvar, pse = C.skilling_variance_by_group(lam, z, 3, (1, 4, 16))
    theory = C.skilling_probe_variance(lam, 3)
    assert pvar.shape == pse.shape == (3, 3)
    assert ((pvar - theory).abs() < 5 * pse).all()
    assert ((pvar - 2 * theory).abs() > 5 * pse).all()          # a factor-2 error in the formula is seen
