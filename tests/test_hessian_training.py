"""lib.experiments.hessian_training: training with Hessian moments tracked (Orhan & Pitkow §2.3)."""

import numpy as np
import torch

from lib.experiments import hessian_training as HT
from lib.nets.models import Arch


def test_train_tracking_spectra_shapes_and_streams():
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(60, 6, generator=g), torch.randint(0, 3, (60,), generator=g)
    arch = Arch(d_in=6, width=8, depth=2, d_out=3, kind="residual", init="glorot", bias=True)
    kw = dict(E=2, epochs=2, checkpoints=[0, 2], n_probes=3, n_moments=4, stream=5,
              generator_for=lambda s: torch.Generator().manual_seed(s), batch_size=20, desc="test")
    h = HT.train_tracking_spectra(arch, X, Y, X[:30], Y[:30], **kw)
    assert h["acc"].shape == (3, 2) and h["zero"].shape[0] == 3
    assert sorted(h["w"]) == [0, 2] and h["moments"][2].shape == (2, 4)
    assert np.all((h["w"][0] >= 0) & (h["w"][0] <= 1))
    again = HT.train_tracking_spectra(arch, X, Y, X[:30], Y[:30], **kw)     # the streams make it reproducible
    assert np.array_equal(h["acc"], again["acc"]) and np.array_equal(h["moments"][2], again["moments"][2])
    assert np.allclose(HT.mean_accuracy(h), h["acc"][1:].mean(0))
    untracked = HT.train_tracking_spectra(arch, X, Y, X[:30], Y[:30], **{**kw, "track": False})
    assert untracked["w"] == {} and np.array_equal(untracked["acc"], h["acc"])


def test_small_net_exact_spectrum_is_the_hessian_of_its_loss():
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(50, 4, generator=g, dtype=torch.float64), torch.arange(50) % 3
    sn = HT.small_net_exact_spectrum(x, y, width=5, steps=20, generator=torch.Generator().manual_seed(8))
    f, H = sn["loss"], sn["hessian"]
    assert H.shape == (f.N, f.N) and torch.allclose(H, H.T, atol=1e-12)
    torch.testing.assert_close(sn["eigenvectors"] @ torch.diag(sn["eigenvalues"]) @ sn["eigenvectors"].T, H)
    v = torch.randn(f.N, generator=g, dtype=torch.float64)
    torch.testing.assert_close(H @ v, f.hvp(v))
    assert 0 <= sn["accuracy"] <= 1 and sn["seconds"] > 0
