"""lib.experiments.sphere_maps: Philipp et al. Prop. 6 / Thm 2 quadrature on S²."""

import math

import torch

from lib.experiments import sphere_maps


def test_lattice_is_on_the_sphere_and_a_rotation_preserves_volume():
    X = sphere_maps.fibonacci_sphere(1000)
    assert torch.allclose(X.norm(dim=1), torch.ones(1000, dtype=torch.float64)) and X.mean(0).abs().max() < 1e-3
    Q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    det, q = sphere_maps.sphere_averages(sphere_maps.normalised_layer(Q, lambda x: x), 2000)
    assert abs(det - 1) < 1e-12 and abs(q - 1) < 1e-12


def test_a_normalised_tanh_layer_keeps_the_volume_and_cannot_shrink_on_average():
    W = torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) / math.sqrt(3)
    det, change, q2 = sphere_maps.volume_quadrature(sphere_maps.normalised_layer(W, torch.tanh), sizes=(5000, 10000, 20000))
    assert abs(det - 1) < 10 * change + 1e-4 and q2 >= 1
