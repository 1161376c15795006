"""Philipp et al.'s training experiments of §G and §D.2: a network trained with plain SGD on a
classification task while its *effective depth* is tracked (the paper's second programme, run in
the same pass as the training), and afterwards replaced, from the bottom up, by its first-order
Taylor expansion around the initial weights. The networks, the programme and the expansion are
:mod:`lib.theory.dilution`'s; this module only trains and measures."""

from __future__ import annotations

import torch
from torch import Tensor

from ..theory.dilution import TableArch, effective_depth_update, init_weights, program, run_program, taylor_output
from ..theory.measure import spectral_norms


def train_tracked(arch: TableArch, X: Tensor, y: Tensor, *, n_nets: int, epochs: int, lr: float, batch: int,
                  generator: torch.Generator, n_classes: int = 10, eps: float = 1e-6) -> dict:
    """Train ``n_nets`` networks of ``arch`` (one ensemble, independent initialisations) on ``X (n, d_in)``
    with labels ``y (n,)`` by SGD (step ``lr``, mini-batches of ``batch`` drawn by one permutation per
    epoch, cross-entropy on the first ``n_classes`` outputs), tracking the λ-contributions of every
    linear layer (§D.2, :func:`~lib.theory.dilution.effective_depth_update`; for a ResNet inside a
    block the gradient that reaches the block input through the branch only).

    Returns ``err`` (training error per network), ``taylor`` (per cut, the training error of the
    network whose operations below the cut are replaced by their first-order Taylor expansion
    around the initial weights, §G; cuts after every linear layer of a vanilla net, after every
    skip of a ResNet), ``eff`` (effective depth per network: the largest λ whose contribution
    exceeds ``eps`` in some layer; 0 when none does), ``n_lin`` (linear layers) and ``ops``."""
    ops = program(arch)
    ws0, _ = init_weights(arch, n_nets, generator=generator, device=X.device, dtype=X.dtype)
    ws = [w.clone().requires_grad_(True) for w in ws0]
    islin = [op[0] == "linear" for op in ops]
    C = [torch.zeros(n_nets, len(ops) + 2, dtype=X.dtype, device=X.device) if l_ else None for l_ in islin]
    starts = [j for j, op in enumerate(ops) if op[0] == "start"]
    skips_ = [j for j, op in enumerate(ops) if op[0] == "skip"]
    lin_groups: dict[tuple, list[int]] = {}
    for j, op in enumerate(ops):
        if op[0] == "linear":
            lin_groups.setdefault(tuple(ws0[op[1]].shape), []).append(j)
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=generator, device=X.device)
        for s0 in range(0, len(X), batch):
            idx = perm[s0:s0 + batch]
            xb, yb = X[idx].expand(n_nets, -1, -1), y[idx]
            keep: list[Tensor] = []
            logits = run_program(arch, ops, ws, xb, keep=keep)[..., :n_classes]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, n_classes), yb.repeat(n_nets),
                                                     reduction="none").reshape(n_nets, -1)
            grads = torch.autograd.grad(loss.sum(), ws + keep, retain_graph=bool(starts))
            gw, gk = grads[:len(ws)], grads[len(ws):]
            branch: list = [None] * len(ops)
            for st, sk_ in zip(starts, skips_):          # the gradient reaching a block's input through its branch only
                (gb_,) = torch.autograd.grad(keep[sk_ - 1], keep[st], gk[sk_], retain_graph=True)
                branch[st] = gb_.norm(dim=-1).detach()
            with torch.no_grad():
                gn = [g_.norm(dim=-1) for g_ in gk]
                ins = [(xb if j == 0 else keep[j - 1]).norm(dim=-1) for j in range(len(ops))]
                rop = [None] * len(ops)
                for js in lin_groups.values():             # ‖W - W0‖₂ of every linear layer, one batch per shape
                    for j, s_ in zip(js, spectral_norms(torch.stack([ws[ops[j][1]] - ws0[ops[j][1]] for j in js]))):
                        rop[j] = s_
                for i, c in enumerate(effective_depth_update(ops, gn, branch, rop, ins, lr)):
                    if c is not None:
                        C[i][:, :c.shape[-1]] += c
                for w, gg in zip(ws, gw):
                    w -= lr * gg / len(idx)
    ws = [w.detach() for w in ws]
    Xe = X.expand(n_nets, -1, -1)
    with torch.no_grad():
        err = (run_program(arch, ops, ws, Xe)[..., :n_classes].argmax(-1) != y).float().mean(-1)
        cuts = [j for j in range(1, len(ops) + 1) if ops[j - 1][0] == ("linear" if arch.skip == "none" else "skip")]
        taylor = {cut: (taylor_output(arch, ops, ws0, ws, Xe, cut)[..., :n_classes].argmax(-1) != y).float().mean(-1).cpu().numpy()
                  for cut in cuts}
    tot = torch.stack([c for c in C if c is not None]).max(0).values                    # (E, λ): the largest over layers
    lam = torch.arange(tot.shape[-1], device=tot.device)
    eff = torch.where(tot > eps, lam, 0).max(-1).values.cpu().numpy()                   # the largest λ above eps, else 0
    return dict(err=err.cpu().numpy(), taylor=taylor, eff=eff, n_lin=sum(islin), ops=ops)


def trained(result: dict, n_classes: int = 10) -> bool:
    """Whether the networks of a :func:`train_tracked` result learned the task: their mean training
    error is below half the chance error ``1 - 1/n_classes`` (0.45 for ten classes). Philipp et
    al.'s statements about effective depth and the Taylor test (§4.4, §7, §G) are about trained
    networks; a network still near chance (a step size too large for its depth, say) updates
    chaotically, and its λ-contributions and Taylor errors say nothing about them."""
    return float(result["err"].mean()) < 0.5 * (1 - 1 / n_classes)


def linear_layers_below(result: dict) -> tuple[list[int], list[int]]:
    """The Taylor cuts of :func:`train_tracked` in order, and the number of linear layers below each."""
    cuts = sorted(result["taylor"])
    return cuts, [sum(op[0] == "linear" for op in result["ops"][:c]) for c in cuts]


#: §G's comparison at quick scale: the architectures trained and their batch sizes (None: full batch)
DIGIT_ARCHITECTURES = {"vanilla batch-ReLU": (("relu", "batch"), dict(d_out=10), None),   # full batch, as the paper had to
                       "vanilla layer-tanh": (("tanh", "layer"), dict(d_out=10), 100),
                       "looks-linear ReLU": (("relu", "none", "looks-linear"), dict(d_out=10), 100),
                       "ResNet layer-tanh": (("tanh", "layer"), dict(skip="identity"), 100)}


def train_architectures(X: Tensor, y: Tensor, *, depth: int, width: int, n_nets: int, epochs: int, lr: float,
                        generator: torch.Generator, architectures: dict = DIGIT_ARCHITECTURES) -> dict[str, dict]:
    """§4.4, §7 and §G on a classification task: for each entry of ``architectures`` (name ->
    (``TableArch`` positional arguments, keyword arguments, batch size or None for full batch))
    a network of ``depth`` linear layers of width ``width`` on inputs of dimension ``X.shape[1]``,
    ``n_nets`` of them trained as one ensemble by :func:`train_tracked` (step ``lr``, ``epochs``
    epochs), one after another from ``generator``. Returns name -> :func:`train_tracked`'s result."""
    out = {}
    for name, (args, kw, batch) in architectures.items():
        arch = TableArch(*args, depth=depth, d=width, d_in=X.shape[1], **kw)
        out[name] = train_tracked(arch, X, y, n_nets=n_nets, epochs=epochs, lr=lr, batch=batch or len(X), generator=generator)
    return out


def taylor_increase(result: dict):
    """§G's robustness to depth reduction, per network: the training error when every layer below
    the top one is Taylor-expanded, minus the trained network's error."""
    return result["taylor"][max(result["taylor"])] - result["err"]
