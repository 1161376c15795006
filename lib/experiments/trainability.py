"""Balduzzi et al. §5.1, Fig. 6: does a looks-linear initialisation make a deep CReLU net as
trainable as a resnet? The four families, trained side by side at every depth."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..nets.models import Arch, Net
from ..nets.training import train


def fig6_architectures(depth: int, width: int, d_in: int, d_out: int) -> dict[str, Arch]:
    """The four families of §5.1, Fig. 6, as fully connected nets of ``depth`` hidden layers:
    a ReLU net and a CReLU net with He initialisation, the CReLU net with the looks-linear
    initialisation (mirrored orthogonal blocks ``(W, -W)``: exactly linear at the start), and a
    ReLU resnet. The CReLU nets have ``round(width/√2)`` units per layer (2× as many outputs), for
    about the same number of parameters, as in the paper. The paper's resnet has batch norm; ours
    has none, so its branches are scaled by ``1/√depth`` to keep the forward variance bounded."""
    wc = max(1, round(width / math.sqrt(2)))
    return {"ReLU, He": Arch(d_in, width, depth, d_out, act="relu", init="he"),
            "CReLU, He": Arch(d_in, wc, depth, d_out, act="crelu", init="he"),
            "CReLU, looks-linear": Arch(d_in, wc, depth, d_out, act="crelu", init="looks-linear"),
            "ReLU resnet": Arch(d_in, width, depth, d_out, kind="residual", act="relu", init="he", beta=1 / math.sqrt(depth))}


def trainability_by_depth(X: Tensor, y: Tensor, depths, *, width: int, n_networks: int, epochs: int, lr: float,
                          batch_size: int = 64, optimizer: str = "adam", generator: torch.Generator | None = None,
                          progress: bool = False) -> dict[tuple[str, int], np.ndarray]:
    """§5.1, Fig. 6 at a small scale: every family of :func:`fig6_architectures` at every depth,
    ``n_networks`` independent networks each (one ensemble, its own mini-batch order per network),
    trained on ``(X, y)`` with the same optimiser, learning rate and budget of ``epochs``.
    Returns ``{(family, depth): final training accuracy per network (n_networks,)}``."""
    out = {}
    n_classes = int(y.max()) + 1
    for L in depths:
        for name, arch in fig6_architectures(L, width, X.shape[1], n_classes).items():
            net = Net(arch, E=n_networks, generator=generator, device=X.device, dtype=X.dtype)
            h = train(net, X, y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, generator=generator,
                      independent_order=True, progress=progress, desc=f"{name}, L = {L}")
            out[name, L] = h["accuracy"][-1].double().numpy()
    return out
