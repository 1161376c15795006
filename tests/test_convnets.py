"""lib.nets.convnets: Yu & Tomasi's simplified networks, the map T, Table 3 expectations, cushions,
dominant flows in real networks."""

import math

import pytest
import torch
import torch.nn.functional as F
from scipy import integrate, stats

from lib.nets import convnets as C

DT = torch.float64


def g(s=0):
    return torch.Generator().manual_seed(s)


def small(kind="residual", N=1):
    return C.ConvArch(N, kind, in_channels=1, widths=(2, 4, 8))


def test_arch_counts_and_validation():
    a = C.ConvArch(10)
    assert a.depth == 32 and a.n_weights() == 461_872
    assert int(sum(m.sum() for m in C.id_mask(a).values())) == 1072
    assert C.ConvArch(6, "plain").n_parameters() == C.ConvArch(6, "residual").n_parameters()
    assert [s for _, _, s in a.convs()].count(2) == 2
    with pytest.raises(ValueError, match="kind"):
        C.ConvArch(2, "highway")
    with pytest.raises(ValueError, match="init"):
        C.init_params(a, 1, "xavier")


def test_transfer_is_exact_equivalence_and_inverse():
    a = small()
    r = C.init_params(a, 3, "kwi", generator=g(), dtype=DT)
    x = torch.randn(5, 1, 8, 8, generator=g(1), dtype=DT)
    assert torch.allclose(C.forward(a, r, x, kind="residual"), C.forward(a, C.transfer(a, r), x, kind="plain"), atol=1e-13)
    assert not torch.allclose(C.forward(a, r, x, kind="residual"), C.forward(a, r, x, kind="plain"), atol=1e-3)
    back = C.transfer(a, C.transfer(a, r), sign=-1)
    assert max((back[k] - r[k]).abs().max().item() for k in r) <= 2.3e-16


def test_dominant_network_keeps_its_zeros_through_training():
    a = small("dominant")
    p = C.init_params(a, 2, "hmwi", generator=g(), dtype=DT)
    masks = C.diagonal_masks(a, dtype=DT)
    x = torch.rand(16, 1, 8, 8, generator=g(2), dtype=DT)
    y = torch.randint(0, 10, (16,), generator=g(3))
    q, _ = C.train(a, p, x, y, steps=3, batch_size=8, lr=0.1, generator=g(4), progress=False)
    for k, m in masks.items():
        assert (q[k] * (1 - m)).abs().max() == 0
        assert (q[k] - p[k]).abs().max() > 0


def test_twins_stay_equal_in_float64_for_a_few_steps():
    a = small()
    r0 = C.init_params(a, 2, "hmwi", generator=g(), dtype=DT)
    x = torch.rand(32, 1, 8, 8, generator=g(2), dtype=DT)
    y = torch.randint(0, 10, (32,), generator=g(3))
    out = C.train_twins(a, r0, x, y, steps=5, batch_size=8, lr=0.05, generator=g(4), progress=False)
    assert out["divergence"].max() < 1e-14 and out["flips"].sum() == 0
    assert torch.allclose(out["loss_res"], out["loss_plain"], atol=1e-13)
    tab = C.twin_table(a, out["params"], x, y, weight_decay=1e-4)
    for k in ("L", "C", "acc"):
        torch.testing.assert_close(tab["res"][k], tab["plain"][k], rtol=1e-12, atol=1e-14)
    assert (tab["res"]["C"] > tab["res"]["L"]).all()


def test_abs_moments_against_quadrature():
    for mu, s, a in ((0.0, 0.3, 0.25), (1.0, 0.01, 0.25), (0.1, 0.2, 0.05)):
        e_abs, e_tail = C._abs_moments_normal(mu, s, a)
        pdf = lambda w: abs(w) * stats.norm.pdf(w, mu, s)
        q_abs = integrate.quad(pdf, -math.inf, 0)[0] + integrate.quad(pdf, 0, math.inf)[0]
        q_tail = integrate.quad(pdf, -math.inf, -a)[0] + integrate.quad(pdf, a, math.inf)[0]
        assert e_abs == pytest.approx(q_abs, rel=1e-8)
        assert e_tail == pytest.approx(q_tail, rel=1e-8, abs=1e-14)


def test_expected_weight_stats_match_a_large_sample():
    a = C.ConvArch(2, in_channels=1, widths=(4, 8, 16))
    for init, tr in (("kwi", False), ("hmwi", True)):
        p = C.init_params(a, 400, init, generator=g(), dtype=DT)
        p = C.transfer(a, p) if tr else p
        st = C.weight_stats(a, p)
        ex = C.expected_weight_stats(a, init, transferred=tr)
        for k, v in st.items():
            se = v.std() / math.sqrt(v.numel())
            assert abs(v.mean().item() - ex[k]) <= 5 * se.item() + 1e-9 * abs(ex[k]), (init, k)


def _dense_conv_matrix(w, size, stride):
    D, Cc = w.shape[:2]
    f = lambda v: F.conv2d(v.view(1, Cc, *size), w, stride=stride, padding=1).flatten()
    return torch.autograd.functional.jacobian(f, torch.zeros(Cc * size[0] * size[1], dtype=w.dtype))


@pytest.mark.parametrize("stride,size", [(1, (5, 4)), (2, (6, 6)), (2, (5, 7))])
def test_conv_operator_frobenius_equals_dense_matrix(stride, size):
    w = torch.randn(3, 2, 3, 3, generator=g(), dtype=DT)
    dense = _dense_conv_matrix(w, size, stride)
    assert C.conv_operator_fro(w, size, stride).item() == pytest.approx(dense.norm().item(), rel=1e-12)


def test_layer_cushion_by_hand():
    a = small("plain")
    p = C.init_params(a, 1, "kwi", generator=g(), dtype=DT)
    x = torch.rand(3, 1, 8, 8, generator=g(1), dtype=DT)
    layer = 2
    mu = C.layer_cushion(a, p, x, layer, remove_identity=False)[0]
    xin = C.layer_activations(a, p, x)[layer - 1][0]
    stride = a.convs()[layer][2]
    A = _dense_conv_matrix(p[f"w{layer}"][0], tuple(xin.shape[-2:]), stride)
    v = xin.flatten(1)
    expect = (v @ A.T).norm(dim=1) / (A.norm() * v.norm(dim=1))
    assert torch.allclose(mu, expect, rtol=1e-12)


def test_interlayer_cushion_of_a_linear_map_and_bn_invariance():
    W = torch.randn(6, 4, generator=g(), dtype=DT)
    x = torch.randn(5, 4, generator=g(1), dtype=DT)
    mu = C.interlayer_cushion(lambda v: W @ v, x)
    expect = 2.0 * (x @ W.T).norm(dim=1) / (W.norm() * x.norm(dim=1))
    assert torch.allclose(mu, expect, rtol=1e-12)
    X = torch.rand(4, 3, 5, 5, generator=g(2), dtype=DT)
    w1, w2 = torch.randn(2, 3, 3, 3, 3, generator=g(3), dtype=DT)
    y1, _ = C.bn_block(X, w1, w2, residual=False)
    y2, _ = C.bn_block(2.5 * X, w1, w2, residual=False)
    assert torch.allclose(y1, y2, atol=1e-13)                       # scale invariance: J X = 0
    y3, _ = C.bn_block(2.5 * X, w1, w2, residual=True)
    assert not torch.allclose(C.bn_block(X, w1, w2, residual=True)[0], y3, atol=1e-3)


def test_dominant_fraction_against_full_jacobians():
    a = small("residual")
    p = C.init_params(a, 1, "hmwi", generator=g(), dtype=DT)
    x = torch.rand(2, 1, 8, 8, generator=g(1), dtype=DT)
    y = torch.tensor([3, 7])
    sig = C.dominant_fraction(a, p, x, y)[0]
    p1 = {k: v[0] for k, v in p.items()}
    n_conv = len(a.convs())
    acts = C.layer_activations(a, p, x)
    for layer in range(n_conv - 1):
        per_sample = []
        for b in range(2):
            def pooled_of(h, layer=layer, b=b):
                taps = {layer: h - acts[layer][0, b]}
                return C._forward_one(a, p1, x[b:b + 1], "residual", {layer: taps[layer][None]}, None)[1][0]
            J = torch.autograd.functional.jacobian(pooled_of, acts[layer][0, b].clone())   # (64, Ck, H, W)
            logits = C._forward_one(a, p1, x[b:b + 1], "residual", None, None)[0][0]
            gL = (torch.softmax(logits, -1) - F.one_hot(y[b], 10).to(DT)) @ p1["fc_w"]
            theta = J * gL[:, None, None, None]                                            # (j, i, H, W)
            Ck = theta.shape[1]
            diag = theta[torch.arange(Ck), torch.arange(Ck)]
            rest = theta.sum(0) - diag
            r = (diag.abs() / rest.abs()).flatten(1).mean(-1)
            per_sample.append((r > 1).to(DT).mean())
        assert sig[layer].item() == pytest.approx(torch.stack(per_sample).mean().item(), abs=1e-12)


def test_bn_block_cushion_zero_without_eps_and_linear_in_eps():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 5, 5, generator=g, dtype=torch.float64).relu()
    w1, w2 = (torch.randn(4, 4, 3, 3, generator=g, dtype=torch.float64) * math.sqrt(2 / 36) for _ in range(2))
    assert C.bn_block_cushion(x, w1, w2, residual=False).max() < 1e-13
    m1 = C.bn_block_cushion(x, w1, w2, residual=False, eps=1e-6)
    m2 = C.bn_block_cushion(x, w1, w2, residual=False, eps=2e-6)
    torch.testing.assert_close(m2, 2 * m1, rtol=1e-4, atol=0)
    # scaling the batch by 2 multiplies the variance by 4 and divides the cushion by 4
    torch.testing.assert_close(C.bn_block_cushion(2 * x, w1, w2, residual=False, eps=1e-6), m1 / 4, rtol=1e-4, atol=0)
    assert C.bn_block_cushion(x, w1, w2, residual=True).min() > 0.05


def test_loss_and_decay_matches_direct_sums():
    g = torch.Generator().manual_seed(7)
    a = C.ConvArch(1, "plain", in_channels=1)
    prm = C.init_params(a, 2, "kwi", generator=g, dtype=torch.float64)
    x = torch.randn(20, 1, 8, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (20,), generator=g)
    L, dec, acc = C.loss_and_decay(a, prm, x, y, weight_decay=1e-4, chunk=7)
    torch.testing.assert_close(L, C.cross_entropy(C.forward(a, prm, x), y))
    direct = 1e-4 * torch.stack([sum((v[e] ** 2).sum() for v in prm.values()) for e in range(2)])
    torch.testing.assert_close(dec, direct)
    assert acc.shape == (2,) and ((0 <= acc) & (acc <= 1)).all()
