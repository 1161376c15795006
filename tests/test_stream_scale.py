"""lib.theory.stream_scale and lib.experiments.layer_signals: the mean-field scale of the hidden
stream of Glorot ReLU nets, the W - I block as a maximum, and the per-layer measurements of Fig. 6a."""

import math

import numpy as np
import pytest
import torch

from lib.experiments import hessian_training as HT
from lib.experiments import layer_signals as LS
from lib.nets.models import Arch, Net
from lib.theory import stream_scale as SS


def test_plain_recursion_halves_and_residual_matches_hand_computation():
    s0 = torch.tensor([2.0])
    qp = SS.glorot_stream_moments(s0, 3, "plain")
    assert torch.allclose(qp, torch.tensor([1.0, 0.5, 0.25, 0.125], dtype=torch.float64))
    qr = SS.glorot_stream_moments(s0, 1, "residual")
    # q1 = 1, m1 = sqrt(1/pi); q2 = 1.5 + 2 m1 sqrt(1/(2 pi)) = 1.5 + sqrt(2)/pi
    assert abs(qr[1].item() - (1.5 + math.sqrt(2) / math.pi)) < 1e-15
    # homogeneous of degree one in the input scale
    assert torch.allclose(SS.glorot_stream_moments(7 * s0, 5, "residual"), 7 * SS.glorot_stream_moments(s0, 5, "residual"))
    with pytest.raises(ValueError, match="kind"):
        SS.glorot_stream_moments(s0, 2, "hyper")


def test_recursion_predicts_a_wide_residual_net():
    """At width 512 the measured per-block growth of q is within 1% of the mean-field recursion
    (finite-width corrections are O(1/n) per block, 0.2% here); a recursion without the mean term
    (growth 3/2) would miss by more than 25%."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(64, 32, generator=g, dtype=torch.float64)
    arch = HT.paper_architecture("residual", d_in=32, width=512, hidden_layers=8, d_out=4)
    net = Net(arch, E=4, generator=g, dtype=torch.float64)
    with torch.no_grad():
        _, tr = net(x, trace=True)
    q = torch.stack([h.pow(2).mean() for h in tr.hidden])
    pred = SS.glorot_stream_moments(SS.stem_variance(x, 512), 7, "residual")
    ratio_meas, ratio_pred = (q[-1] / q[0]) ** (1 / 7), (pred[-1] / pred[0]) ** (1 / 7)
    assert abs(ratio_meas / ratio_pred - 1) < 0.01
    assert abs(ratio_pred / 1.5 - 1) > 0.25


def test_malicious_block_is_a_maximum_and_the_net_builds_it():
    g = torch.Generator().manual_seed(4)
    w, b, x = torch.randn(3, 6, 6, generator=g, dtype=torch.float64), torch.randn(3, 6, generator=g, dtype=torch.float64), \
        torch.randn(3, 10, 6, generator=g, dtype=torch.float64)
    written, mx = SS.malicious_block(w, b, x)
    assert (written - mx).abs().max().item() < 1e-14
    # a perturbed identity (W - 0.9 I) is no longer a maximum
    eye = torch.eye(6, dtype=torch.float64)
    other = torch.relu(torch.matmul(x, (w - 0.9 * eye).transpose(-1, -2)) + b.unsqueeze(-2)) + x
    assert (other - mx).abs().max().item() > 1e-2


def test_layer_statistics_shapes_and_the_gradient_at_the_top():
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(40, 12, generator=g), torch.randint(0, 3, (40,), generator=g)
    net = Net(HT.paper_architecture("plain", d_in=12, width=16, hidden_layers=5, d_out=3), E=2, generator=g)
    st = LS.layer_statistics(net, x, y)
    assert st["q"].shape == st["grad"].shape == (2, 5) and st["loss"].shape == (2,)
    # against autograd on member 0 alone, with torch's own cross-entropy
    out, tr = net(x, trace=True)
    grads = torch.autograd.grad(torch.nn.functional.cross_entropy(out[0], y, reduction="sum"), tr.hidden[-1])[0][0]
    assert abs(grads.norm(dim=-1).mean().item() - st["grad"][0, -1]) < 1e-5
    f, se = LS.growth_per_layer(np.array([[1.0, 2.0, 8.0, 27.0], [1.0, 2.0, 8.0, 37.0]]))
    assert abs(f - 32.0 ** (1 / 3)) < 1e-12 and abs(se - f * 5.0 / 32.0 / 3) < 1e-12   # ratios 27, 37: s.e. 5


def test_init_statistics_and_the_networks_own_malicious_block():
    g = torch.Generator().manual_seed(6)
    x, y = torch.rand(30, 10, generator=g), torch.randint(0, 3, (30,), generator=g)
    archs = {k: HT.paper_architecture("residual", d_in=10, width=12, hidden_layers=4, d_out=3, **kw)
             for k, kw in (("residual", {}), ("malicious", {"init": "malicious"}))}
    st = LS.init_statistics(archs, x, y, E=3, generator=g)
    assert set(st) == {"residual", "malicious"} and st["malicious"]["q"].shape == (3, 4)
    net = Net(archs["malicious"], E=3, generator=g)
    err, size = LS.malicious_block_error(net, x)
    assert err < 1e-5 * size and size > 0
    # the identity holds for any W (with W' = W + I); a block that is not rho(Wx + b) + x breaks it
    scaled = Net(HT.paper_architecture("residual", d_in=10, width=12, hidden_layers=4, d_out=3, init="malicious", alpha=0.5),
                 E=3, generator=g)
    assert LS.malicious_block_error(scaled, x)[0] > 1e-3 * LS.malicious_block_error(scaled, x)[1]
    with pytest.raises(ValueError, match="malicious"):
        LS.malicious_block_error(Net(archs["residual"], E=1, generator=g), x)


def test_scale_matched_net_scales_only_the_residual_branches():
    base = dict(d_in=7, width=10, depth=3, d_out=4, bias=True, init="glorot")
    plain = LS.scale_matched_net(Arch(kind="plain", **base), E=2, generator=torch.Generator().manual_seed(3))
    he = Net(Arch(kind="plain", **{**base, "init": "he"}), E=2, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(plain.weights, he.weights))
    res = LS.scale_matched_net(Arch(kind="residual", **base), E=2, generator=torch.Generator().manual_seed(3),
                               branch_scale=0.1)
    he_res = Net(Arch(kind="residual", **{**base, "init": "he"}), E=2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(res.weights[0], he_res.weights[0]) and torch.equal(res.weights[-1], he_res.weights[-1])
    for i in (1, 2, 3):
        assert torch.allclose(res.weights[i], 0.1 * he_res.weights[i])
    with pytest.raises(ValueError, match="plain or residual"):
        LS.scale_matched_net(Arch(kind="hyper", **base), E=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="branch_scale"):
        LS.scale_matched_net(Arch(kind="residual", **base), E=1, generator=torch.Generator(), branch_scale=0.0)


def test_mean_layer_factor_averages_single_layer_ratios():
    q = np.array([[1.0, 0.5, 0.25, 0.125], [2.0, 2.0, 1.0, 0.5]])     # factors (1/2, 1/2, 1/2) and (1, 1/2, 1/2)
    m, se = LS.mean_layer_factor(q)
    assert m == pytest.approx((0.5 + 2 / 3) / 2) and se == pytest.approx(np.std([0.5, 2 / 3], ddof=1) / np.sqrt(2))
    with pytest.raises(ValueError, match="at least 2"):
        LS.mean_layer_factor(q[:1])


def test_mean_layer_factor_is_one_half_for_glorot_plain_nets():
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    net = Net(Arch(d_in=16, width=32, depth=8, d_out=3, kind="plain", init="glorot", bias=True), E=64,
              generator=torch.Generator().manual_seed(1))
    m, se = LS.mean_layer_factor(LS.layer_statistics(net, x, torch.zeros(200, dtype=torch.long))["q"])
    assert abs(m - 0.5) < 4.5 * se and se < 0.02           # q[:, 0] is the stem's output: every factor is a block's


def test_hidden_second_moments_is_the_q_of_layer_statistics():
    x = torch.randn(50, 16, generator=torch.Generator().manual_seed(2))
    net = Net(Arch(d_in=16, width=8, depth=3, d_out=3, kind="residual", init="glorot", bias=True), E=4,
              generator=torch.Generator().manual_seed(3))
    q = LS.hidden_second_moments(net, x)
    assert q.shape == (4, 4)
    np.testing.assert_array_equal(q, LS.layer_statistics(net, x, torch.zeros(50, dtype=torch.long))["q"])


def test_gradient_decay_and_mean_log_gradient_summarise_fig6a_per_network():
    grad = np.array([[1.0, 10.0, 1000.0], [100.0, 10.0, 1.0]])
    layers = {0: {"grad": grad}, 2: {"grad": 10 * grad}}
    decay, size = LS.gradient_decay(layers), LS.mean_log_gradient(layers)
    assert set(decay) == set(size) == {0, 2}
    np.testing.assert_allclose(decay[0], [3.0, -2.0])
    np.testing.assert_allclose(decay[2], decay[0])
    np.testing.assert_allclose(size[0], [4 / 3, 1.0])
    np.testing.assert_allclose(size[2], size[0] + 1)
