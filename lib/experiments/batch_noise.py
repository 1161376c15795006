"""Philipp et al. §4.5: batch normalisation makes a network's output depend on the rest of the batch.
With a large GSC that dependence is amplified, so that mini-batch noise scrambles the error: the
relative change of the error of fixed points when the other points of their batch are redrawn
grows with the GSC of the first batch-norm layer and shrinks like the batch statistics' noise."""

from __future__ import annotations

import numpy as np
import torch

from ..nets import data
from ..theory import dilution as D


def batch_noise(depth: int, batch_sizes, *, width: int, n_nets: int, reps: int = 6, n_probe: int = 32,
                generator=None, device=None, dtype=torch.float32) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """For ``n_nets`` batch-ReLU nets of ``depth`` layers (:class:`lib.theory.dilution.TableArch`, width
    ``width``), each with ``n_probe`` fixed Gaussian-noise points: the GSC of the first batch-norm
    layer (``(n_nets,)``, measured on a batch of 2,000), and for every batch size ``b`` the relative
    change of the probe points' error ``f_0`` between two batches that share the probe points and
    draw their other ``b - n_probe`` points afresh, root mean square over the probe points,
    ``reps`` times: ``b -> (reps, n_nets)``. Everything is drawn from ``generator`` in this order:
    weights, probe points, the 2,000-point batch, then per ``b``, per repetition, the two batches."""
    arch = D.TableArch("relu", "batch", depth=depth, d=width)
    ws, sk = D.init_weights(arch, n_nets, generator=generator, device=device, dtype=dtype)
    probe, yp = data.gaussian_noise(n_nets, n_probe, width, width, generator=generator, device=device, dtype=dtype)
    big, ybig = data.gaussian_noise(n_nets, 2000, width, width, generator=generator, device=device, dtype=dtype)
    m = D.metrics(arch, ws, sk, big, ybig)
    gsc_bn = m["gsc"][:, m["kinds"].index("norm")].double().cpu().numpy()      # the first BN layer
    out = {}
    for b in batch_sizes:
        rel = []
        for _ in range(reps):
            f0s = []
            for _ in range(2):
                other, _ = data.gaussian_noise(n_nets, b - n_probe, width, width, generator=generator, device=device,
                                               dtype=dtype)
                layers, _, _, _ = D.forward(arch, ws, sk, torch.cat([probe, other], 1))
                f0s.append((layers[-1][:, :n_probe] * yp).sum(-1))
            rel.append(((f0s[0] - f0s[1]).pow(2).mean(1) / 2).sqrt() / f0s[0].pow(2).mean(1).sqrt())
        out[b] = torch.stack(rel).double().cpu().numpy()                          # (reps, n_nets)
    return gsc_bn, out


def sqrt_b_scaling(noise: dict[int, np.ndarray], gsc_bn: np.ndarray, n_probe: int = 32) -> dict[str, np.ndarray]:
    """§4.5's law ``relative change ≈ GSC / √b`` tested on a :func:`batch_noise` result: per network
    the least-squares slope of the log relative change (mean over repetitions) against
    ``log(√(b − n_probe) / b)`` -- the scale of the difference between two batches that share the
    ``n_probe`` probe points, which a ``1/√b`` law predicts with slope 1 -- as ``slopes``
    ``(n_nets,)``; and ``ratio`` ``(len(b),)``, the mean relative change over ``mean GSC / √b``."""
    bs = sorted(noise)
    logs = np.array([np.log(noise[b].mean(0)) for b in bs])                           # (len(bs), n_nets)
    xb = np.log(np.sqrt(np.array(bs) - float(n_probe)) / np.array(bs))
    slopes = np.array([np.polyfit(xb, logs[:, e], 1)[0] for e in range(logs.shape[1])])
    ratio = np.array([noise[b].mean() / (gsc_bn.mean() / np.sqrt(b)) for b in bs])
    return {"slopes": slopes, "ratio": ratio}
