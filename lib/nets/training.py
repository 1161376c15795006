"""A seeded mini-batch training loop with a progress bar and a metrics history.

Works for ensembles: the loss is summed over the ensemble dimension, and because the networks
share no parameter, one optimiser step trains all ``E`` networks independently (SGD and Adam are
element-wise, so each network follows exactly the trajectory it would follow alone).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from tqdm import tqdm

from ..theory.ensembles import draw_device


def cross_entropy(out: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy per network, ``out (E, B, C)``, ``labels (B,)`` -> ``(E,)``."""
    return -torch.log_softmax(out, dim=-1).gather(-1, labels.expand(out.shape[0], -1).unsqueeze(-1)).squeeze(-1).mean(-1)


def accuracy(out: Tensor, labels: Tensor) -> Tensor:
    """Fraction of correct arg-max predictions per network, ``(E,)``."""
    return (out.argmax(-1) == labels).to(out.dtype).mean(-1)


def train(net: torch.nn.Module, x: Tensor, labels: Tensor, *, epochs: int, batch_size: int, lr: float,
          optimizer: str = "sgd", generator: torch.Generator | None = None,
          loss_fn: Callable[[Tensor, Tensor], Tensor] = cross_entropy,
          callback: Callable[[int, torch.nn.Module], dict] | None = None,
          independent_order: bool = False, penalty: Callable[[torch.nn.Module], Tensor] | None = None,
          progress: bool = True, desc: str = "train") -> dict[str, list]:
    """Train ``net`` (an ensemble ``Net``) on ``(x, labels)`` for ``epochs`` epochs.

    Mini-batches are drawn by a permutation from ``generator`` (seeded by the caller), so the
    same seed gives the same run; with ``independent_order`` every member of the ensemble gets
    its own permutation (independent runs, as several seeds would be). ``penalty(net)``, if given,
    returns a per-network ``(E,)`` regulariser added to every mini-batch's loss (not to the recorded
    loss, which stays the data loss). After every epoch (and
    before the first) the history records per-network training loss and accuracy on the full set
    and whatever ``callback(epoch, net)`` returns (an empty dict records nothing).
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer {optimizer!r}: use 'sgd' or 'adam'")
    if epochs < 0 or batch_size < 1 or lr <= 0:
        raise ValueError("train() needs epochs >= 0, batch_size >= 1 and lr > 0")
    opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(net.parameters(), lr=lr)
    n = x.shape[0]
    hist: dict[str, list] = {"epoch": [], "loss": [], "accuracy": []}

    def record(epoch: int) -> None:
        with torch.no_grad():
            out = net(x)
            hist["epoch"].append(epoch)
            hist["loss"].append(loss_fn(out, labels).cpu())
            hist["accuracy"].append(accuracy(out, labels).cpu())
        if callback is not None:
            for k, v in callback(epoch, net).items():
                hist.setdefault(k, []).append(v)

    record(0)
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False, mininterval=2.0)
    perm_device = draw_device(generator, x.device)
    for epoch in bar:
        if independent_order:
            perm = torch.stack([torch.randperm(n, generator=generator, device=perm_device) for _ in range(net.E)])
        else:
            perm = torch.randperm(n, generator=generator, device=perm_device)
        perm = perm.to(x.device)
        for i in range(0, n, batch_size):
            idx = perm[..., i:i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[idx]), labels[idx])
            if penalty is not None:
                loss = loss + penalty(net)
            loss.sum().backward()
            opt.step()
        record(epoch)
        bar.set_postfix(loss=f"{hist['loss'][-1].mean():.3f}", acc=f"{hist['accuracy'][-1].mean():.3f}")
    return hist
