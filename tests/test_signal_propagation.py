"""lib.experiments.signal_propagation: the preliminaries' experiments, checked against exact facts
at small sizes (each test can fail: a wrong initialisation constant, a wrong residual identity or
a rescaling that changes the function would break it)."""

import math

import numpy as np
import pytest
import torch

from lib.experiments import signal_propagation as SP

DT = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_plain_he_keeps_the_second_moment_and_resnet_doubles_it():
    x0 = torch.randn(1, 16, generator=gen(1), dtype=DT)
    plain = SP.second_moments(SP.he_relu(16, 3), 4000, x0, generator=gen(2))
    assert plain.alpha is None and plain.h.shape == (4000, 4)
    se = plain.h.std(0, ddof=1) / math.sqrt(4000)
    assert np.all(np.abs(plain.h.mean(0) - 1) < 4 * se + 1e-12)
    # with He's 1/n instead of 2/n the moment would halve per layer: far outside the band
    assert np.all(np.abs(plain.h.mean(0)[1:] - 0.5 ** np.arange(1, 4)) > 4 * se[1:])
    res = SP.second_moments(SP.he_relu(16, 3, kind="residual"), 4000, x0, generator=gen(3))
    assert res.alpha == 1.0 and np.allclose(res.symmetric_law(), [1, 2, 4, 8])
    h1 = res.h[:, 1]
    assert abs(h1.mean() - 2) < 4 * h1.std(ddof=1) / math.sqrt(4000)


def test_one_step_residual_is_centred_and_fails_for_a_wrong_alpha():
    x0 = torch.randn(1, 16, generator=gen(1), dtype=DT)
    m = SP.second_moments(SP.he_relu(16, 4, kind="residual", alpha=2**-0.5), 3000, x0, generator=gen(4))
    step = m.one_step_residual()
    se = step.std(0, ddof=1) / math.sqrt(len(step))
    assert np.all(np.abs(step.mean(0)) < 4 * se)
    wrong = SP.Moments(m.h, m.pos, alpha=1.0).one_step_residual()   # predicts twice the growth
    assert np.all(np.abs(wrong.mean(0)) > 4 * wrong.std(0, ddof=1) / math.sqrt(len(wrong)))
    with pytest.raises(ValueError, match="plain"):
        SP.Moments(m.h, m.pos, alpha=None).one_step_residual()


def test_batching_draws_every_network():
    x0 = torch.randn(1, 8, generator=gen(1), dtype=DT)
    arch = SP.he_relu(8, 2)
    small = SP.second_moments(arch, 10, x0, generator=gen(5), max_bytes=(8 + 2 * 8) * 8 * 8 * 3)   # 3 nets per batch
    assert small.h.shape == (10, 3) and len(np.unique(small.h[:, -1])) == 10


def test_qm_faces_identity_to_roundoff():
    q = SP.qm_faces([(1, 6), (6, 6), (12, 6), (5, 9)], 20_000, probe_index=2, generator=gen(6), dtype=DT)
    assert np.allclose(q.svd_side, q.frobenius, rtol=1e-13, atol=0)
    assert list(q.min_dim) == [1, 6, 6, 5]
    assert abs(q.probes.mean() - q.qm2) < 4 * q.probes.std(ddof=1) / math.sqrt(20_000)


def test_rescaling_keeps_function_and_gsc_and_moves_gradients():
    x = torch.randn(64, 8, generator=gen(7), dtype=DT)
    y = torch.randn(64, 8, generator=gen(8), dtype=DT)
    r = SP.rescaling_invariance(SP.he_relu(8, 4, d_out=8), 3, x, y, generator=gen(9), weight_seed=11)
    assert r.output_change < 1e-12
    assert np.allclose(r.grad_rescaled / r.predicted_factor, r.grad, rtol=1e-11)
    assert np.allclose(r.gsc_rescaled, r.gsc, rtol=1e-11)
    # the raw gradients really did move (by the drawn factors, up to 10x per layer)
    assert np.max(np.abs(np.log(r.grad_rescaled / r.grad))) > 0.5
