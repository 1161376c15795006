"""lib.experiments.singularities: Orhan & Pitkow's Supp. Note 1 counts on exact Hessians."""

import pytest
import torch

from lib.experiments import singularities as SG


def test_null_directions_match_the_rescalings_and_singularities():
    x = torch.randn(200, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    nullity, spectra = SG.zero_loss_nullities(x, generator_for=lambda: torch.Generator().manual_seed(2))
    assert nullity == {("plain", "generic"): 18, ("plain", "overlap"): 24, ("plain", "dead"): 30,
                       ("residual", "generic"): 6, ("residual", "overlap"): 6, ("residual", "dead"): 13}
    for k, s in spectra.items():                           # a gap of orders of magnitude at the threshold
        assert s[nullity[k]] / s[-1] > 1e-6 and (nullity[k] == 0 or s[nullity[k] - 1] / s[-1] < 1e-12)


def test_half_active_construction():
    x = torch.randn(100, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    net = SG.half_active_net("plain", "overlap", x, generator=torch.Generator().manual_seed(4))
    pre = net(x, trace=True)[1].pre
    for i in (0, 2):
        assert torch.all(((pre[i] > 0).double().mean(1) - 0.5).abs() <= 0.01)   # every unit on for half the inputs
    assert torch.equal(net.weights[1][0, 0], net.weights[1][0, 1])
    with pytest.raises(ValueError, match="config"):
        SG.half_active_net("plain", "twin", x)


def test_overlap_columns_agree_outside_the_incoming_rows_only():
    from lib.theory import curvature as C

    x = torch.randn(100, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    net = SG.half_active_net("plain", "overlap", x, generator=torch.Generator().manual_seed(4))
    f = C.FlatLoss(net, SG.half_mse, x, torch.randn(100, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64))
    ov = SG.overlap_hessian_columns(f)
    assert len(ov["incoming"]) == 14 and len(ov["rest"]) == f.N - 14
    assert ov["diff"][ov["rest"]].max() < 1e-12 * ov["hessian"].abs().max()
    assert ov["diff"][ov["incoming"]].max() > 1e-4
    assert SG.flat_index(f, f.names[1], *[0] * len(f.shapes[1])) == f.shapes[0].numel()
