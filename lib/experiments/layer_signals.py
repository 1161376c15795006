"""Orhan & Pitkow §2.6, Fig. 6a, and the scale of the hidden stream: per layer, how large the
signal is and how large the gradient of the loss with respect to it is, at initialisation and
during training, for ensembles of the §2.3 networks. These are the measurements behind the
chapter's account of why, at its scale, residual nets do not train better than plain ones.

Shapes: an ensemble of ``E`` networks, ``H`` hidden representations (the stem output and every
block output, :class:`lib.nets.models.Trace`); arrays are numpy, float64."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..nets import training as T
from ..nets.models import Arch, Net
from ..theory import measure


def _second_moments(hidden) -> Tensor:
    """``q (E, H)``: the mean square of each traced hidden representation over examples and units."""
    return torch.stack([h.double().pow(2).mean((-2, -1)) for h in hidden], -1)


def hidden_second_moments(net: Net, X: Tensor) -> np.ndarray:
    """``q (E, H)`` of :func:`layer_statistics` from a forward pass alone (no gradients): what a
    check of the forward signal's scale needs, e.g. on a large fresh ensemble."""
    with torch.no_grad():
        return _second_moments(net(X, trace=True)[1].hidden).cpu().numpy()


def layer_statistics(net: Net, X: Tensor, Y: Tensor) -> dict[str, np.ndarray]:
    """One forward and backward pass of the ensemble ``net`` on ``(X, Y)``.

    Returns ``q (E, H)``, the mean square of each hidden representation over examples and units;
    ``grad (E, H)``, the mean over examples of the norm of the gradient of that example's
    cross-entropy with respect to its representation (Fig. 6a's "gradient norms with respect to
    layer activities"); ``logit_sd (E,)``, the standard deviation of the outputs; and ``loss (E,)``,
    the mean cross-entropy."""
    out, tr = net(X, trace=True)
    per_example = -torch.log_softmax(out, -1).gather(-1, Y.expand(out.shape[0], -1).unsqueeze(-1)).squeeze(-1)
    grads = measure.trace_grads(per_example.sum(), tr.hidden)
    with torch.no_grad():
        q = _second_moments(tr.hidden)
        g = torch.stack([gr.double().norm(dim=-1).mean(-1) for gr in grads], -1)
        return {"q": q.cpu().numpy(), "grad": g.cpu().numpy(), "logit_sd": out.double().std((-2, -1)).cpu().numpy(),
                "loss": per_example.double().mean(-1).cpu().numpy()}


def init_statistics(archs: dict[str, Arch], X: Tensor, Y: Tensor, *, E: int, generator: torch.Generator,
                    device=None) -> dict[str, dict[str, np.ndarray]]:
    """:func:`layer_statistics` of a fresh ensemble of ``E`` networks of every architecture of
    ``archs`` (name -> :class:`~lib.nets.models.Arch`), drawn in the order given from ``generator``."""
    return {name: layer_statistics(Net(a, E=E, generator=generator, device=device), X, Y) for name, a in archs.items()}


def malicious_block_error(net: Net, X: Tensor) -> tuple[float, float]:
    """§2.5's W - I residual block as the network computes it, against ``max(W'x + b, x)`` with
    ``W' = W + I`` taken from the network's own first block and ``x`` its stem output on ``X``:
    ``(largest |difference|, largest |block output|)`` over every member, example and unit."""
    if net.arch.init != "malicious" or net.arch.depth < 1:
        raise ValueError("malicious_block_error needs a residual net with init='malicious' and at least one block")
    with torch.no_grad():
        _, tr = net(X, trace=True)
        x, out = tr.hidden[0], tr.hidden[1]
        w = net.weights[1]
        w_prime = w + torch.eye(w.shape[-2], w.shape[-1], dtype=w.dtype, device=w.device)
        pre = torch.matmul(x, w_prime.transpose(-1, -2)) + (net.biases[1] if net.arch.bias else 0)
        return float((out - torch.maximum(pre, x)).abs().max()), float(out.abs().max())


def train_with_layer_statistics(net: Net, X: Tensor, Y: Tensor, *, epochs: int, lr: float, optimizer: str,
                                checkpoints, generator: torch.Generator, batch_size: int = 500,
                                probe: int = 500, progress: bool = False, desc: str = "") -> dict:
    """Train the ensemble ``net`` as §2.3 does (mini-batches of ``batch_size``, each member its own
    order) with ``optimizer`` ("adam" or "sgd") at learning rate ``lr``, recording
    :func:`layer_statistics` on the first ``probe`` training examples at every epoch in
    ``checkpoints``. Returns ``acc`` and ``loss`` ``(epochs + 1, E)`` and ``stats``: checkpoint epoch ->
    :func:`layer_statistics`."""
    Xp, Yp = X[:probe], Y[:probe]

    def at(ep: int, model: Net) -> dict:
        return {"cp": ep, "stats": layer_statistics(model, Xp, Yp)} if ep in checkpoints else {}

    h = T.train(net, X, Y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, generator=generator,
                callback=at, independent_order=True, progress=progress, desc=desc or optimizer)
    return {"acc": torch.stack(h["accuracy"]).cpu().numpy(), "loss": torch.stack(h["loss"]).cpu().numpy(),
            "stats": dict(zip(h.get("cp", []), h.get("stats", [])))}


def gradient_decay(layers: dict) -> dict[int, np.ndarray]:
    """Fig. 6a's vanishing in one number per network: ``log10`` of the top hidden layer's gradient
    norm over the first one's, ``{epoch: (E,)}``, from ``layers`` (epoch -> :func:`layer_statistics`).
    Positive: the gradient shrinks as it descends; negative: it grows."""
    return {ep: np.log10(st["grad"][:, -1] / st["grad"][:, 0]) for ep, st in layers.items()}


def mean_log_gradient(layers: dict) -> dict[int, np.ndarray]:
    """The mean over layers of ``log10`` of the gradient norm, ``{epoch: (E,)}``, from ``layers``
    (epoch -> :func:`layer_statistics`): how large the gradients are through the net as a whole."""
    return {ep: np.log10(st["grad"]).mean(-1) for ep, st in layers.items()}


def mean_layer_factor(q: np.ndarray) -> tuple[float, float]:
    """The mean over members and layers of the per-layer factor ``q[e, l+1] / q[e, l]``
    (``q (E, H)``, :func:`layer_statistics`) and its standard error over the ``E`` members (each
    member's mean over its layers is one sample). For a plain ReLU net with weights
    ``N(0, c/fan_in)`` every factor has conditional mean exactly ``c/2`` given the layer below
    (``E[q' | x] = (c/2) |x|^2 / n``), so this is an unbiased estimate of ``c/2`` made of
    light-tailed terms. The end-to-end ratio ``q[:, -1] / q[:, 0]`` of :func:`growth_per_layer` is a
    product of ``H - 1`` such factors: log-normal, with a sample mean over a few dozen networks
    that is typically low and a sample standard error that is too small (at width 48 and 19
    layers, 0.484 +- 0.004 against an exact 1/2 at seed 882)."""
    E, H = q.shape
    if H < 2 or E < 2:
        raise ValueError(f"mean_layer_factor: need at least 2 members and 2 representations, got {q.shape}")
    per_member = (q[:, 1:] / q[:, :-1]).mean(1)
    return float(per_member.mean()), float(per_member.std(ddof=1) / np.sqrt(E))


def growth_per_layer(q: np.ndarray) -> tuple[float, float]:
    """The growth of the hidden stream's second moment per layer, from ``q (E, H)``
    (:func:`layer_statistics`): ``f = mean_e(q[e, -1] / q[e, 0]) ** (1 / (H - 1))`` and its
    delta-method standard error over the ``E`` members. The mean of the ratios, not of their logs:
    for a plain Glorot ReLU net ``E[q_H / q_1] = 2^-(H-1)`` holds exactly at any width (each layer
    halves the expected square given the layer below), so ``f`` is then an unbiased comparison
    with 1/2 up to the final root."""
    E, H = q.shape
    if H < 2 or E < 2:
        raise ValueError(f"growth_per_layer: need at least 2 members and 2 representations, got {q.shape}")
    r = q[:, -1] / q[:, 0]
    m = r.mean()
    f = m ** (1.0 / (H - 1))
    return float(f), float(f * r.std(ddof=1) / np.sqrt(E) / m / (H - 1))


def scale_matched_net(arch: Arch, *, E: int, generator: torch.Generator, branch_scale: float = 0.05,
                      device=None) -> Net:
    """The chapter's setting in which plain and residual nets start at the same moderate scale, so
    that a difference in training speed is not a difference in the starting scale. ``arch`` is
    re-initialised with He-normal weights, ``N(0, 2/fan_in)``, and zero biases: a plain ReLU layer
    then keeps the signal's second moment in expectation (``q' = q``). A residual net's branch
    weights (every block's, not the stem's or readout's) are further multiplied by
    ``branch_scale``, so that each block adds only a little to the stream (Fixup- and
    SkipInit-style; at 0.05 the stream's second moment grows by about 1.05 per block on the
    digits). Only the starting point changes: the parametrisation and the optimiser see the same
    network as with any other initialisation."""
    if arch.kind not in ("plain", "residual") or arch.units != 1 or arch.order != "post":
        raise ValueError(f"scale_matched_net: a plain or residual post-activation net with one unit per block, "
                         f"not kind={arch.kind!r}, units={arch.units}, order={arch.order!r}")
    if not branch_scale > 0:
        raise ValueError(f"branch_scale={branch_scale}: need a positive number")
    net = Net(arch.with_(init="he"), E=E, generator=generator, device=device)
    if arch.kind == "residual":
        with torch.no_grad():
            for w in net.weights[1:1 + arch.depth]:
                w.mul_(branch_scale)
    return net


def scale_matched_comparison(archs: dict[str, Arch], X: Tensor, Y: Tensor, *, E: int, epochs: int,
                             optimizers: dict[str, float], generator_for: Callable[[int], torch.Generator],
                             stream: int, branch_scale: float = 0.05, device=None) -> dict:
    """Plain and residual nets started at the same moderate scale (:func:`scale_matched_net`) and
    trained as §2.3 trains them, once per optimiser (``{"adam": lr, "sgd": lr}``): ``E`` networks
    per architecture of ``archs`` as one ensemble, with weights and mini-batch orders from
    ``generator_for(stream + i)`` for the ``i``-th (optimiser, architecture) pair. Returns
    ``{optimiser: {name: train_with_layer_statistics(...)}}`` with the layer statistics at epoch 0."""
    out: dict = {}
    i = 0
    for opt, lr in optimizers.items():
        out[opt] = {}
        for name, arch in archs.items():
            g = generator_for(stream + i)
            i += 1
            net = scale_matched_net(arch, E=E, generator=g, branch_scale=branch_scale, device=device)
            out[opt][name] = train_with_layer_statistics(net, X, Y, epochs=epochs, lr=lr, optimizer=opt,
                                                         checkpoints=(0,), generator=g, desc=f"{opt} {name}")
    return out
