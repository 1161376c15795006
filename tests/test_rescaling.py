"""lib.experiments.rescaling: Philipp et al. Props. 1 and 4 on a small ReLU net."""

import numpy as np
import torch

from lib.experiments import rescaling


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(120, 12, generator=g, dtype=torch.float64), torch.randint(0, 4, (120,), generator=g)


def test_rescaled_net_follows_the_same_trajectory_and_keeps_its_gsc():
    x, y = _data()
    p = rescaling.rescaled_training(x, y, depth=5, r=1.7, lr=0.05, batch=30, epochs=2, generator=torch.Generator().manual_seed(1))
    assert p.steps == 8 and p.prediction_error < 1e-12 and p.weight_error < 1e-12
    np.testing.assert_allclose(p.gsc[1], p.gsc[0], rtol=1e-10)
    ratio = p.jacobian[1] / p.jacobian[0]
    assert np.all(np.abs(ratio - 1.7) < 1e-9)         # layers 2..L were scaled by r: their Jacobians by r


def test_a_shifted_relu_breaks_the_equivalence():
    x, y = _data()
    relu = torch.relu
    torch.relu = lambda t: relu(t) + 1e-6               # no longer positively homogeneous
    try:
        p = rescaling.rescaled_training(x, y, depth=5, r=1.7, lr=0.05, batch=30, epochs=1,
                                        generator=torch.Generator().manual_seed(1))
    finally:
        torch.relu = relu
    assert p.prediction_error > 1e-9
