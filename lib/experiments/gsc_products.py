"""Philipp et al. Prop. 5: the GSC across ``m`` macro-layers against the product of the ``m``
single-macro-layer GSCs. The product is the paper's guide to how gradients explode; it is exact
for linear maps along a single direction and an approximation otherwise."""

from __future__ import annotations

import numpy as np
import torch

from ..nets import data
from ..theory import dilution as D
from ..theory import measure


def gsc_direct_and_product(arch: "D.TableArch", *, n_nets: int, n_points: int = 6, generator=None, device=None,
                           dtype=torch.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For ``n_nets`` random nets of ``arch`` (:func:`lib.theory.dilution.init_weights`), each at
    ``n_points`` Gaussian-noise points of its own (:func:`lib.nets.data.gaussian_noise`): the log GSC
    from the top layer ``f_L`` down across ``m = 1, 2, …`` macro-layers (linear, [norm], nonlinearity),
    computed directly from the product of the block Jacobians (``ld``) and as the sum of the
    single-macro-layer log GSCs (``lp``), each averaged over the points. Returns the per-net slopes
    of ``ld`` and ``lp`` against ``m`` (least squares, ``(n_nets,)`` each) and the net-averaged
    curves ``ld`` and ``lp``. Weights and points are drawn from ``generator`` net by net."""
    ops = D.program(arch)
    per = 3 if arch.norm != "none" else 2                            # operations per macro-layer
    W = arch.d
    sd_, sp_, curves = [], [], []
    for _ in range(n_nets):
        ws = [w[0] for w in D.init_weights(arch, 1, generator=generator, device=device, dtype=dtype)[0]]
        xs, _ = data.gaussian_noise(1, n_points, W, W, generator=generator, device=device, dtype=dtype)
        hs, Js = [D.run_program(arch, ops, ws, xs[0], stop=1)], []    # the points at f_L
        for m_ in range((len(ops) - 1) // per):
            blk = lambda v, m_=m_: D.run_program(arch, ops, ws, v, start=1 + m_ * per, stop=1 + (m_ + 1) * per)  # noqa: E731
            Js.append(torch.func.vmap(torch.func.jacrev(blk))(hs[-1]))  # (points, W, W)
            hs.append(blk(hs[-1]))
        nrm = torch.stack([h.norm(dim=-1) for h in hs])                 # (m + 1, points)
        one = torch.stack([measure.qm_norm(J) for J in Js]) * nrm[:-1] / nrm[1:]
        P, direct = torch.eye(W, dtype=dtype, device=device).expand(n_points, W, W), []
        for j, J in enumerate(Js):
            P = J @ P
            direct.append(measure.qm_norm(P) * nrm[0] / nrm[j + 1])
        ld = torch.log(torch.stack(direct)).mean(1).cpu().numpy()
        lp = torch.cumsum(torch.log(one), 0).mean(1).cpu().numpy()
        mm = np.arange(1, len(ld) + 1)
        sd_.append(np.polyfit(mm, ld, 1)[0])
        sp_.append(np.polyfit(mm, lp, 1)[0])
        curves.append((ld, lp))
    return np.array(sd_), np.array(sp_), np.mean([c[0] for c in curves], 0), np.mean([c[1] for c in curves], 0)
