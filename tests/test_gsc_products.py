"""lib.experiments.gsc_products: Philipp et al. Prop. 5, direct GSC against the product of single layers."""

import numpy as np
import torch

from lib.experiments import gsc_products
from lib.theory import dilution as D


def test_direct_and_product_where_the_gsc_explodes():
    rel = []
    for d, depth in ((16, 8), (32, 12)):
        arch = D.TableArch("tanh", "layer", depth=depth, d=d)
        sd, sp, ld, lp = gsc_products.gsc_direct_and_product(arch, n_nets=4, generator=torch.Generator().manual_seed(0))
        assert sd.shape == sp.shape == (4,) and ld.shape == lp.shape
        assert sd.mean() > 0.05 and sp.mean() > sd.mean()      # it explodes; the product a little faster
        assert abs(ld[0] - lp[0]) < 1e-12                       # one macro-layer: the same number
        rel.append((sp - sd).mean() / sd.mean())
    assert rel[1] < rel[0] < 1                                  # the product's excess shrinks with the width


def test_draws_are_reproducible():
    arch = D.TableArch("selu", "none", depth=6, d=8)
    a = gsc_products.gsc_direct_and_product(arch, n_nets=2, generator=torch.Generator().manual_seed(3))
    b = gsc_products.gsc_direct_and_product(arch, n_nets=2, generator=torch.Generator().manual_seed(3))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_explosion_rate_of_an_exact_exponential():
    from lib.experiments import gsc_tables
    kinds = ["linear", "norm", "nonlin"] * 5 + ["linear"]
    pos = gsc_tables.layer_positions(kinds)
    assert list(pos[:4]) == [0.0, 0.33, 0.66, 1.0]
    prof = 3.0 * 1.2 ** (6 - pos)                       # GSC(l, 0) = c r^(L - l), L = 6
    rate, r2 = gsc_tables.explosion_rate(prof, kinds, depth=6)
    assert abs(rate - 1.2) < 1e-12 and abs(r2 - 1) < 1e-12
