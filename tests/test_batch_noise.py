"""lib.experiments.batch_noise: Philipp et al. §4.5, the error's dependence on the rest of the batch."""

import numpy as np
import torch

from lib.experiments import batch_noise


def test_relative_change_shrinks_with_the_batch_and_is_reproducible():
    kw = dict(width=16, n_nets=3, reps=3, device=None)
    gsc, out = batch_noise.batch_noise(3, [64, 1024], generator=torch.Generator().manual_seed(0), **kw)
    assert gsc.shape == (3,) and np.all(gsc > 0) and out[64].shape == (3, 3)
    assert out[1024].mean() < out[64].mean() / 2                 # ~ sqrt(b - 32)/b: 4.2x smaller from 64 to 1024
    again = batch_noise.batch_noise(3, [64, 1024], generator=torch.Generator().manual_seed(0), **kw)
    assert np.array_equal(out[64], again[1][64]) and np.array_equal(gsc, again[0])
