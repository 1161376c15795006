"""Philipp et al. Props. 1 and 4: a ReLU network is positively homogeneous in each layer's weights,
so rescaling layer ``l`` by ``c_l`` (with ``Π c_l = 1``) leaves the function unchanged, and SGD with
step sizes ``c_l² lr`` follows the rescaled trajectory exactly (Prop. 1); the GSC, a ratio of
scale-free quantities, does not change (Prop. 4), while the layer Jacobians' qm norms do."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..theory import measure


def relu_net(Ws: list[Tensor], x: Tensor, keep: list | None = None) -> Tensor:
    """A bias-free ReLU MLP ``x -> W_L ρ(... ρ(W_1 x))``; with ``keep``, each layer's pre-activation
    is appended to it."""
    h = x
    for i, w in enumerate(Ws):
        h = h @ w.T
        if keep is not None:
            keep.append(h)
        if i < len(Ws) - 1:
            h = torch.relu(h)
    return h


def sgd(Ws: list[Tensor], lrs, x: Tensor, y: Tensor, *, epochs: int, batch: int, order: Tensor) -> list[Tensor]:
    """Plain SGD on the cross-entropy of ``relu_net(Ws, x)``, layer ``l`` with step ``lrs[l]``, over
    the mini-batches of the fixed ``order`` of the data, for ``epochs`` epochs."""
    Ws = [w.clone().requires_grad_(True) for w in Ws]
    for _ in range(epochs):
        for s in range(0, len(x), batch):
            idx = order[s:s + batch].to(x.device)
            loss = torch.nn.functional.cross_entropy(relu_net(Ws, x[idx]), y[idx])
            grads = torch.autograd.grad(loss, Ws)
            with torch.no_grad():
                for w, gr, l_ in zip(Ws, grads, lrs):
                    w -= l_ * gr
    return [w.detach() for w in Ws]


def layer_stats(Ws: list[Tensor], x: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per layer ``l``: GSC(l, top) with the summed logits as the top layer (Def. 1, quadratic
    means over the points of ``x``), and the qm norm of the layer Jacobian
    d(pre-activation l+1)/d(pre-activation l) averaged over the points."""
    keep: list = []
    x = x.clone().requires_grad_(True)
    out = relu_net(Ws, x, keep)
    grads = torch.autograd.grad(out.sum(), keep)
    q = lambda t: t.pow(2).mean().sqrt().item()                       # noqa: E731  quadratic mean
    f0 = out.sum(-1)
    gsc = [q(g.norm(dim=-1) / math.sqrt(g.shape[-1])) * q(h.norm(dim=-1)) / q(f0) for h, g in zip(keep, grads)]
    jac = [measure.qm_norm(Ws[l + 1] * (keep[l] > 0).to(x.dtype).mean(0)).item() for l in range(len(Ws) - 1)]
    return np.array(gsc), np.array(jac)


@dataclass
class RescaledTraining:
    """What :func:`rescaled_training` measures."""

    accuracy: float               # training accuracy of the original net after training
    prediction_error: float       # max |f_a - f_b| / max |f_a| over the data
    weight_error: float           # max over layers of max |W_b - c W_a| / max |c W_a|
    gsc: tuple[np.ndarray, np.ndarray]        # GSC(l, top) per layer, original and rescaled
    jacobian: tuple[np.ndarray, np.ndarray]   # layer Jacobians' qm norms, original and rescaled
    steps: int


def rescaled_training(x: Tensor, y: Tensor, *, depth: int, r: float, lr: float, batch: int, epochs: int,
                      generator: torch.Generator | None = None, order_seed: int = 0) -> RescaledTraining:
    """Prop. 1 on data ``(x, y)``: a ``depth``-layer ReLU MLP of width ``x.shape[1]`` (He weights from
    ``generator``) trained by SGD with step ``lr``, and the same net with layer 1 scaled by
    ``r^-(depth-1)`` and every other layer by ``r`` (``Π c_l = 1``), trained with steps ``c_l² lr``
    on the same mini-batches (the order drawn from ``order_seed``). In exact arithmetic the two stay
    rescalings of each other; Prop. 4: their GSCs agree, their Jacobian norms do not."""
    d, n_classes = x.shape[1], int(y.max()) + 1
    dims = [d] + [d] * (depth - 1) + [n_classes]
    W0 = [torch.randn(o, i, generator=generator, device=x.device, dtype=x.dtype) * math.sqrt(2 / i)
          for i, o in zip(dims[:-1], dims[1:])]
    cs = [r ** -(depth - 1)] + [r] * (depth - 1)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(order_seed))
    Wa = sgd(W0, [lr] * depth, x, y, epochs=epochs, batch=batch, order=order)
    Wb = sgd([c * w for c, w in zip(cs, W0)], [lr * c * c for c in cs], x, y, epochs=epochs, batch=batch, order=order)
    out_a, out_b = relu_net(Wa, x), relu_net(Wb, x)
    gsc_a, jac_a = layer_stats(Wa, x[:200])
    gsc_b, jac_b = layer_stats(Wb, x[:200])
    return RescaledTraining(accuracy=(out_a.argmax(-1) == y).double().mean().item(),
                            prediction_error=((out_a - out_b).abs().max() / out_a.abs().max()).item(),
                            weight_error=max(((wb - c * wa).abs().max() / (c * wa).abs().max()).item()
                                             for wa, wb, c in zip(Wa, Wb, cs)),
                            gsc=(gsc_a, gsc_b), jacobian=(jac_a, jac_b), steps=math.ceil(len(x) / batch) * epochs)
