"""Unit tests of lib.nets.models: ensemble mode, each initialisation's defining property, the
architectures' algebra (skips, gates, normalisations) and parameter counts."""

import math

import pytest
import torch

from lib.nets.models import Arch, Net
from lib.theory.maps import activation, normalise
from lib.theory import ensembles
from lib.theory.ensembles import haar_orthogonal
from lib.nets import models as lib_models

DT = torch.float64

ARCHS = [
    dict(kind="plain"),
    dict(kind="plain", order="pre", norm="layer"),
    dict(kind="residual"),
    dict(kind="residual", order="pre", units=2, norm="batch", final_norm=True, norm_eps=1e-12),
    dict(kind="residual", skip="orthogonal", alpha=2**-0.5, beta=0.3),
    dict(kind="residual", skip="gaussian", act="tanh", bias=True),
    dict(kind="hyper", bias=True),
    dict(kind="highway", gamma=0.6, order="pre", act="selu"),
    dict(kind="residual", act="crelu"),
    dict(kind="plain", act="crelu", init="looks-linear"),
    dict(kind="plain", act="relu", init="looks-linear", norm="length"),
    dict(kind="residual", init="malicious"),
]


def g(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kw", ARCHS, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_ensemble_equals_loop_over_members(kw):
    """One batched forward pass over E networks equals E separate single-network passes."""
    arch = Arch(d_in=6, width=8, depth=4, d_out=3, **kw)
    net = Net(arch, E=5, generator=g(), dtype=DT)
    x = torch.randn(9, 6, generator=g(1), dtype=DT)
    y = net(x)
    assert y.shape == (5, 9, 3)
    for e in range(5):
        torch.testing.assert_close(net.member(e)(x)[0], y[e], rtol=0, atol=1e-13)
    # and gradients too
    loss = y.pow(2).sum()
    grads = torch.autograd.grad(loss, list(net.parameters()))
    m = net.member(2)
    gm = torch.autograd.grad(m(x).pow(2).sum(), list(m.parameters()))
    for a, b in zip(grads, gm):
        torch.testing.assert_close(a[2], b[0], rtol=1e-12, atol=1e-12)


def test_per_network_inputs():
    arch = Arch(d_in=4, width=6, depth=2, d_out=2)
    net = Net(arch, E=3, generator=g(), dtype=DT)
    x = torch.randn(3, 5, 4, generator=g(1), dtype=DT)
    y = net(x)
    for e in range(3):
        torch.testing.assert_close(net.member(e)(x[e])[0], y[e])


def test_bad_input_shape_is_a_clear_error():
    net = Net(Arch(d_in=4, width=6, depth=2), E=3)
    with pytest.raises(ValueError, match="expected"):
        net(torch.randn(5, 7))


def _var_check(w, var):
    """Sample variance of the entries within 5 standard errors of ``var`` (Gaussian entries:
    the variance estimate has standard error var * sqrt(2 / N))."""
    n = w.numel()
    assert abs(w.var().item() - var) < 5 * var * math.sqrt(2 / n), (w.var().item(), var)
    assert abs(w.mean().item()) < 5 * math.sqrt(var / n)


@pytest.mark.parametrize("init,var", [
    ("he", lambda i, o: 2 / i), ("lecun", lambda i, o: 1 / i), ("glorot", lambda i, o: 2 / (i + o)),
    ("hardt-ma", lambda i, o: 1 / i**2)])
def test_gaussian_init_variances(init, var):
    net = Net(Arch(d_in=30, width=40, depth=2, d_out=10, init=init), E=50, generator=g(), dtype=DT)
    for w in net.weights:
        _, o, i = w.shape
        _var_check(w.detach(), var(i, o))


def test_philipp_gaussian_rule():
    """Philipp et al. §I.1: variance 2/in after a ReLU, 1/in otherwise (stem on raw inputs)."""
    net = Net(Arch(d_in=30, width=40, depth=2, d_out=10, init="gaussian"), E=50, generator=g(), dtype=DT)
    _var_check(net.weights[0].detach(), 1 / 30)
    for w in net.weights[1:]:
        _var_check(w.detach(), 2 / w.shape[-1])
    tanh = Net(Arch(d_in=30, width=40, depth=2, d_out=10, init="gaussian", act="tanh"), E=50, generator=g(), dtype=DT)
    for w in tanh.weights:
        _var_check(w.detach(), 1 / w.shape[-1])


def test_orthogonal_init_is_orthogonal():
    net = Net(Arch(d_in=12, width=12, depth=3, d_out=5, init="orthogonal"), E=4, generator=g(), dtype=DT)
    for w in net.weights:
        wt = w.detach()
        small = min(wt.shape[-2:])
        gram = wt @ wt.transpose(-1, -2) if wt.shape[-2] == small else wt.transpose(-1, -2) @ wt
        torch.testing.assert_close(gram, torch.eye(small, dtype=DT).expand_as(gram), atol=1e-13, rtol=0)


def test_haar_orthogonal_is_haar_not_biased():
    """Mezzadri's sign correction: the diagonal entries of Haar matrices have mean 0 (without the
    correction QR returns a positive-diagonal R and the diagonal of Q is biased)."""
    q = haar_orthogonal(4000, 3, 3, generator=g(), dtype=DT)
    d = torch.diagonal(q, dim1=-2, dim2=-1)
    # each entry has variance 1/3; 5 standard errors of the mean
    assert d.mean().abs().item() < 5 * math.sqrt(1 / 3 / d.numel())


@pytest.mark.parametrize("act", ["relu", "crelu"])
def test_looks_linear_networks_are_exactly_linear(act):
    """Balduzzi et al. §5 / Philipp et al. §H: at initialisation the network is a linear map."""
    arch = Arch(d_in=6, width=10, depth=7, d_out=4, act=act, init="looks-linear")
    net = Net(arch, E=3, generator=g(), dtype=DT)
    x, y = torch.randn(2, 5, 6, generator=g(2), dtype=DT)
    torch.testing.assert_close(net(2.5 * x - 1.5 * y), 2.5 * net(x) - 1.5 * net(y), atol=1e-12, rtol=0)
    # and not trivially so: the map is not zero and a He-initialised net is not linear
    assert net(x).abs().max() > 0.1
    he = Net(arch.with_(init="he"), E=3, generator=g(), dtype=DT)
    assert (he(2.5 * x - 1.5 * y) - (2.5 * he(x) - 1.5 * he(y))).abs().max() > 1e-3


def test_relu_looks_linear_preserves_norm():
    """Philipp et al. §H: orthogonal W' and square widths make the linear map an isometry."""
    arch = Arch(d_in=8, width=16, depth=5, d_out=8, act="relu", init="looks-linear")
    net = Net(arch, E=2, generator=g(), dtype=DT)
    x = torch.randn(7, 8, generator=g(3), dtype=DT)
    torch.testing.assert_close(net(x).norm(dim=-1), x.norm(dim=-1).expand(2, 7), atol=1e-12, rtol=0)


def test_malicious_is_glorot_minus_identity():
    arch = Arch(d_in=20, width=20, depth=3, kind="residual", init="malicious")
    he = Net(arch.with_(init="glorot"), E=2, generator=g(), dtype=DT)
    mal = Net(arch, E=2, generator=g(), dtype=DT)
    torch.testing.assert_close(mal.weights[0], he.weights[0])  # the stem is not a residual branch
    for wm, wh in zip(mal.weights[1:], he.weights[1:]):
        torch.testing.assert_close(wm.detach(), wh.detach() - torch.eye(20, dtype=DT))


def test_residual_block_algebra():
    """x_{l+1} = alpha (s S x_l + beta F(x_l)) with the fixed skip matrix S."""
    arch = Arch(d_in=5, width=5, depth=1, kind="residual", order="pre", stem=False, skip="orthogonal",
                alpha=0.7, beta=0.2)
    net = Net(arch, E=2, generator=g(), dtype=DT)
    x = torch.randn(4, 5, generator=g(1), dtype=DT)
    f = torch.relu(x) @ net.weights[0].transpose(-1, -2)
    expected = 0.7 * (x @ net.skip.transpose(-1, -2) + 0.2 * f)
    torch.testing.assert_close(net(x), expected)


def test_highway_gates():
    arch = Arch(d_in=5, width=5, depth=1, kind="highway", gamma=0.6, order="pre", stem=False)
    net = Net(arch, E=2, generator=g(), dtype=DT)
    x = torch.randn(4, 5, generator=g(1), dtype=DT)
    f = torch.relu(x) @ net.weights[0].transpose(-1, -2)
    torch.testing.assert_close(net(x), 0.8 * x + 0.6 * f)


def test_hyper_residual_sum():
    """Orhan & Pitkow §2 (iii): x_{l+1} = f(W_l x_l) + x_l + sum_{k<l} Q_k x_k."""
    arch = Arch(d_in=4, width=6, depth=3, kind="hyper")
    net = Net(arch, E=2, generator=g(), dtype=DT)
    x = torch.randn(3, 4, generator=g(1), dtype=DT)
    _, tr = net(x, trace=True)
    xs = tr.hidden
    W, Q = net.weights, net.hyper_q
    unit = lambda h, i: torch.relu(h @ W[i].transpose(-1, -2))
    torch.testing.assert_close(xs[1], unit(xs[0], 1) + xs[0])
    torch.testing.assert_close(xs[2], unit(xs[1], 2) + xs[1] + xs[0] @ Q[0].transpose(-1, -2))
    torch.testing.assert_close(xs[3], unit(xs[2], 3) + xs[2] + xs[0] @ Q[0].transpose(-1, -2) + xs[1] @ Q[1].transpose(-1, -2))
    torch.testing.assert_close(Q[0] @ Q[0].transpose(-1, -2), torch.eye(6, dtype=DT).expand(2, 6, 6))


def test_normalisations():
    z = torch.randn(3, 50, 7, generator=g(), dtype=DT) * 3 + 1
    b = normalise("batch", z)
    torch.testing.assert_close(b.mean(1), torch.zeros(3, 7, dtype=DT), atol=1e-12, rtol=0)
    torch.testing.assert_close(b.var(1, unbiased=False), torch.ones(3, 7, dtype=DT))
    ln = normalise("layer", z)
    torch.testing.assert_close(ln.mean(-1), torch.zeros(3, 50, dtype=DT), atol=1e-12, rtol=0)
    lo = normalise("length", z)
    torch.testing.assert_close(lo.pow(2).mean(-1), torch.ones(3, 50, dtype=DT))
    torch.testing.assert_close(lo * z.pow(2).mean(-1, keepdim=True).sqrt(), z)  # direction kept


def test_activations():
    z = torch.tensor([-2.0, 0.5], dtype=DT)
    torch.testing.assert_close(activation("crelu", z), torch.tensor([0.0, 0.5, 2.0, 0.0], dtype=DT))
    # SeLU with Klambauer et al.'s constants (Philipp et al. §I.1 rounds them to 1.0507, 1.6733)
    torch.testing.assert_close(activation("selu", z), torch.tensor([1.0507 * 1.6733 * (math.exp(-2) - 1), 1.0507 * 0.5], dtype=DT), atol=1e-4, rtol=0)


def test_orhan_parameter_counts():
    """Orhan & Pitkow §2.3: 20 (30) hidden layers of 128 units, CIFAR-100 coarse (20 classes)."""
    assert Net(Arch(d_in=3072, width=128, depth=19, d_out=20, bias=True)).n_params() == 709_652
    assert Net(Arch(d_in=3072, width=128, depth=29, d_out=20, bias=True)).n_params() == 874_772
    for kind in ("residual", "hyper"):  # fixed skips add no parameter
        assert Net(Arch(d_in=3072, width=128, depth=19, d_out=20, bias=True, kind=kind)).n_params() == 709_652


@pytest.mark.parametrize("bad,match", [
    (dict(kind="dense"), "kind"), (dict(act="gelu"), "act"), (dict(norm="group"), "norm"),
    (dict(init="xavier"), "init"), (dict(depth=-1), "depth"), (dict(kind="highway"), "gamma"),
    (dict(init="looks-linear", act="tanh"), "looks-linear"), (dict(init="malicious"), "malicious"),
    (dict(final_norm=True), "final_norm"), (dict(skip="random"), "skip"), (dict(norm_at=3), "norm_at"),
    (dict(norm_at=1, norm="batch"), "norm_at"), (dict(norm_at=True), "norm_at")])
def test_bad_architecture_is_a_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        Arch(**({"d_in": 4, "width": 6, "depth": 2} | bad))


def test_norm_at_batch_normalises_one_unit_only():
    """Orhan & Pitkow Fig. 6b: ``norm_at=i`` normalises the pre-activations of the unit with weights
    ``weights[i]`` over the batch (mean 0, variance 1 per feature and network) and leaves every
    other unit, and the parameters drawn, as they are without it."""
    a = Arch(d_in=5, width=7, depth=3, d_out=2, bias=True, init="glorot")
    x = torch.randn(40, 5, generator=g(), dtype=DT)
    plain, normed = (Net(arch, E=3, generator=g(), dtype=DT) for arch in (a, a.with_(norm_at=2)))
    for p, q in zip(plain.parameters(), normed.parameters()):
        assert torch.equal(p, q)
    _, tp = plain(x, trace=True)
    _, tn = normed(x, trace=True)
    z = tn.pre[2]
    torch.testing.assert_close(z.mean(1), torch.zeros(3, 7, dtype=DT), atol=1e-12, rtol=0)
    torch.testing.assert_close(z.var(1, unbiased=False), torch.ones(3, 7, dtype=DT), atol=1e-10, rtol=0)
    zp = tp.pre[2]
    torch.testing.assert_close(z, (zp - zp.mean(1, keepdim=True)) / zp.std(1, unbiased=False, keepdim=True))
    for i in (0, 1):
        assert torch.equal(tn.pre[i], tp.pre[i])
    assert not torch.allclose(tn.pre[3], tp.pre[3])


def test_repeated_orthonormal_and_hyper_q_int():
    m = ensembles.repeated_orthonormal(2, 8, 2, generator=g(), dtype=DT)
    assert m.shape == (2, 8, 8)
    torch.testing.assert_close(m[:, :, :2], m[:, :, 2:4])
    torch.testing.assert_close(m[:, :, :2].transpose(-1, -2) @ m[:, :, :2], torch.eye(2, dtype=DT).expand(2, 2, 2))
    assert torch.linalg.matrix_rank(m[0]).item() == 2
    with pytest.raises(ValueError, match="hyper_q"):
        Arch(d_in=4, width=8, depth=3, kind="hyper", hyper_q=3)
    net = Net(Arch(d_in=4, width=8, depth=3, kind="hyper", hyper_q=2), E=2, generator=g(), dtype=DT)
    assert torch.linalg.matrix_rank(net.hyper_q[0, 0]).item() == 2


def test_hyper_forward_matches_the_definition():
    """Orhan & Pitkow §2.3 (iii): x_{l+1} = f(W_l x_l) + x_l + sum_{k<l} Q_k x_k, written out naively."""
    net = Net(Arch(d_in=4, width=5, depth=4, kind="hyper"), E=2, generator=g(), dtype=DT)
    x = torch.randn(3, 4, generator=g(1), dtype=DT)
    hs = [torch.relu(x @ net.weights[0].transpose(-1, -2))]
    for b in range(4):
        h = torch.relu(hs[-1] @ net.weights[b + 1].transpose(-1, -2)) + hs[-1]
        for k in range(b):
            h = h + hs[k] @ net.hyper_q[k].transpose(-1, -2)
        hs.append(h)
    torch.testing.assert_close(net(x), hs[-1])


@pytest.mark.parametrize("tau", [0.0, 0.05, 0.2])
def test_designed_skip_spectrum_on_unit_circle(tau):
    s = ensembles.designed_skip(32, tau, E=3, generator=g(2))
    assert s.shape == (3, 32, 32)
    torch.testing.assert_close(torch.linalg.eigvals(s).abs(), torch.ones(3, 32, dtype=DT), atol=1e-8, rtol=0)
    dev = (s.transpose(-1, -2) @ s - torch.eye(32, dtype=DT)).abs().amax((-1, -2))
    assert bool((dev < 1e-12).all()) == (tau == 0.0)
    _, t, o, r = ensembles.designed_skip_parts(32, tau, E=3, generator=g(2))
    torch.testing.assert_close(t @ t.transpose(-1, -2), r)
    torch.testing.assert_close(torch.diagonal(r, dim1=-2, dim2=-1), torch.ones(3, 32, dtype=DT))
