"""Orhan & Pitkow, Supp. Note 1 and §2.1 (Fig. 1): the singularities of a small ReLU net's loss
surface counted on exact Hessians. A net whose units are each active on half of the inputs, then
made to have two identical (overlapping) units or one dead unit; at zero loss its Hessian is the
Gauss-Newton matrix, and its null directions are the rescalings and the singular directions."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..nets import training as T
from ..nets.models import Arch, Net
from ..theory import curvature as C
from ..theory.ensembles import draw_device
from . import layer_signals as LS

CONFIGS = ("generic", "overlap", "dead")


def half_active_net(kind: str, config: str, x: Tensor, *, generator: torch.Generator | None = None,
                    dtype: torch.dtype = torch.float64) -> Net:
    """A 5-6-6-6-3 ReLU net (``kind`` "plain" or "residual", Glorot weights) whose every hidden unit is
    active on exactly half of ``x (n, 5)`` (biases set to minus the median pre-activation, layer by
    layer); ``config`` "overlap" then makes units 0 and 1 of hidden layer 2 identical, "dead" kills
    unit 0 of layer 2 (zero incoming weights, bias -1), "generic" leaves it."""
    if config not in CONFIGS:
        raise ValueError(f"config={config!r}: use one of {CONFIGS}")
    net = Net(Arch(d_in=x.shape[1], width=6, depth=2, d_out=3, kind=kind, init="glorot", bias=True), E=1,
              generator=generator, device=x.device, dtype=dtype)
    with torch.no_grad():
        for i in range(3):                               # hidden layers 1, 2, 3
            net.biases[i].zero_()
            net.biases[i].copy_(-net(x, trace=True)[1].pre[i].median(dim=1, keepdim=True).values)
            if i == 1 and config == "overlap":
                net.weights[1][0, 1] = net.weights[1][0, 0]
                net.biases[1][0, 0, 1] = net.biases[1][0, 0, 0]
            if i == 1 and config == "dead":
                net.weights[1][0, 0] = 0.0
                net.biases[1][0, 0, 0] = -1.0
    return net


def half_mse(out: Tensor, y: Tensor) -> Tensor:
    """``½ Σ_j (out - y)²`` averaged over the inputs: the squared loss of Supp. Note 1."""
    return 0.5 * (out - y).pow(2).sum(-1).mean(-1)


def zero_loss_nullities(x: Tensor, *, generator_for, threshold: float = 1e-9) -> tuple[dict, dict]:
    """For every ``(kind, config)``: the :func:`half_active_net` (weights from ``generator_for()``, a
    fresh generator of the same stream each time), trained on its own outputs (zero loss, so the
    Hessian is the Gauss-Newton matrix), and the number of eigenvalues of its exact Hessian
    (:func:`lib.theory.curvature.exact_hessian`) with ``|λ| <= threshold · max|λ|``. Returns
    ``(nullity, spectra)`` keyed by ``(kind, config)``: the counts and the sorted ``|λ|``."""
    nullity, spectra = {}, {}
    for kind in ("plain", "residual"):
        for config in CONFIGS:
            net = half_active_net(kind, config, x, generator=generator_for())
            with torch.no_grad():
                target = net(x)
            f = C.FlatLoss(net, half_mse, x, target)
            ev = torch.linalg.eigvalsh(C.exact_hessian(f, f.theta)).abs()
            spectra[kind, config] = np.sort(ev.cpu().numpy())
            nullity[kind, config] = int((ev <= threshold * ev.max()).sum())
    return nullity, spectra


def flat_index(f: "C.FlatLoss", name: str, *index: int) -> int:
    """Position in the flat parameter vector of ``f`` (:class:`lib.theory.curvature.FlatLoss`) of
    entry ``index`` of parameter ``name``."""
    offsets = np.cumsum([0] + [int(np.prod(s)) for s in f.shapes])
    k = f.names.index(name)
    return int(offsets[k] + np.ravel_multi_index(index, f.shapes[k]))


def overlap_hessian_columns(f: "C.FlatLoss", *, layer: int = 2, units=(0, 1), target: int = 3, fan_in: int = 6) -> dict:
    """Supp. Note 1 in a :func:`half_active_net` with ``config="overlap"``: the exact Hessian of
    ``f`` and the absolute difference of its two columns for the outgoing weights of the
    overlapping ``units`` of hidden layer ``layer`` into unit ``target`` of the next layer
    (``diff``, ``(N,)``), with the rows of those units' incoming weights and biases (``incoming``)
    and all the others (``rest``). The paper says the two columns are identical; they are outside
    the incoming rows, and differ inside them."""
    H = C.exact_hessian(f, f.theta)
    a, b = (flat_index(f, f"weights.{layer}", 0, target, u) for u in units)
    incoming = ([flat_index(f, f"weights.{layer - 1}", 0, u, k) for u in units for k in range(fan_in)]
                + [flat_index(f, f"biases.{layer - 1}", 0, 0, u) for u in units])
    return {"hessian": H, "diff": (H[:, a] - H[:, b]).abs(), "incoming": incoming,
            "rest": np.setdiff1d(np.arange(f.N), incoming)}


def distance_to_singularities(net: Net) -> dict[str, np.ndarray]:
    """§2.4, Fig. 4c-d: how close every member of the ensemble ``net`` is to the elimination and
    overlap singularities of its hidden layers (the stem and every block, not the readout). The
    incoming weight vector of a unit is its row of the layer's weight matrix. ``norm (E,)`` is the
    mean l2-norm of those rows over all hidden units (small: close to elimination, Fig. 1a);
    ``overlap (E,)`` is the mean over layers of the mean positive part of the Pearson correlation
    between the rows of two distinct units of one layer (the paper's "average positive
    correlation between the incoming weights"; large: close to overlap, Fig. 1b). Float64 numpy."""
    hidden = net.weights[:-1] if net.arch.d_out is not None else net.weights
    norms, overlaps = [], []
    with torch.no_grad():
        for w in hidden:                                        # (E, out, in)
            w = w.double()
            norms.append(w.norm(dim=-1))                       # (E, out): one per unit
            c = w - w.mean(-1, keepdim=True)
            c = c / c.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
            r = c @ c.transpose(-1, -2)                         # (E, out, out) correlations
            m = r.shape[-1]
            off = r.clamp_min(0).sum((-2, -1)) - r.diagonal(dim1=-2, dim2=-1).clamp_min(0).sum(-1)
            overlaps.append(off / (m * (m - 1)))
    return {"norm": torch.cat(norms, -1).mean(-1).cpu().numpy(),
            "overlap": torch.stack(overlaps, -1).mean(-1).cpu().numpy()}


def best_and_worst(arch: Arch, X: Tensor, Y: Tensor, *, E: int, epochs: int, checkpoints, group: int,
                   generator: torch.Generator, lr: float = 5e-4, batch_size: int = 500, desc: str = "") -> dict:
    """§2.4, Fig. 4: ``E`` networks of ``arch`` (weights and independent mini-batch orders from
    ``generator``) trained as one ensemble with Adam (§2.3's settings), ranked by their mean training
    accuracy over the epochs after the start (the paper's statistic), and the ``group`` best and
    ``group`` worst compared. At the ``checkpoints`` every network's
    :func:`distance_to_singularities` is recorded. Returns ``acc (epochs + 1, E)``, ``mean_acc (E,)``,
    ``best`` and ``worst`` (index arrays, best first / worst first) and ``norm``, ``overlap``: dicts
    keyed by checkpoint epoch of ``(E,)`` arrays."""
    if not 1 <= group <= E // 2:
        raise ValueError(f"group={group}: need 1 <= group <= E // 2 = {E // 2} (best and worst must not overlap)")
    net = Net(arch, E=E, generator=generator, device=X.device)

    def at_checkpoint(ep, n):
        return {"cp": ep, **distance_to_singularities(n)} if ep in checkpoints else {}

    h = T.train(net, X, Y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adam", generator=generator,
                callback=at_checkpoint, independent_order=True, desc=desc)
    acc = torch.stack(h["accuracy"]).cpu().numpy()
    mean_acc = acc[1:].mean(0)
    order = np.argsort(-mean_acc, kind="stable")
    return {"acc": acc, "mean_acc": mean_acc, "best": order[:group], "worst": order[::-1][:group],
            **{key: dict(zip(h.get("cp", []), h.get(key, []))) for key in ("norm", "overlap")}}


def train_bias_regularised(arch: Arch, X: Tensor, Y: Tensor, *, E: int, epochs: int, mu: float, sigma: float,
                           lam: float, generator: torch.Generator, target_generator: torch.Generator,
                           lr: float = 5e-4, batch_size: int = 500, checkpoints=(), probe: int = 500,
                           desc: str = "") -> dict:
    """§2.6, Fig. 5a-b: BiasReg. ``E`` networks of ``arch`` (a net with biases), weights and
    mini-batch orders from ``generator``, target biases from ``target_generator``: every hidden unit
    gets a fixed target drawn from ``N(mu, sigma^2)`` and the loss of every mini-batch gets ``lam``
    times the squared distance of the hidden layers' biases from their targets (``mu = sigma = 0`` is
    BiasL2Reg, plain l2 regularisation of the biases; ``lam = 0`` the unregularised net). Trained
    with Adam as in §2.3. Called with generators in the same state, two variants start from the
    same weights and see the same mini-batches, so they can be compared network by network.
    Returns ``acc (epochs + 1, E)``, ``targets`` (one ``(E, 1, units)`` tensor per hidden layer) and
    ``layers``: for every epoch in ``checkpoints``, the per-layer signal and gradient norms of
    Fig. 6a (:func:`lib.experiments.layer_signals.layer_statistics`) on the first ``probe``
    training examples."""
    if not arch.bias:
        raise ValueError("train_bias_regularised: the architecture has no biases (Arch.bias=False)")
    if sigma < 0 or lam < 0:
        raise ValueError(f"train_bias_regularised: need sigma >= 0 and lam >= 0, got sigma={sigma}, lam={lam}")
    net = Net(arch, E=E, generator=generator, device=X.device)
    hidden = range(len(net.biases) - (arch.d_out is not None))
    targets = [mu + sigma * torch.randn(net.biases[i].shape, generator=target_generator, dtype=torch.float64,
                                        device=draw_device(target_generator, X.device)).to(X.device, net.biases[i].dtype)
               for i in hidden]

    def penalty(n: Net) -> Tensor:
        return lam * sum((n.biases[i] - t).pow(2).sum((-2, -1)) for i, t in zip(hidden, targets))

    def at(ep: int, model: Net) -> dict:
        return {"layers": (ep, LS.layer_statistics(model, X[:probe], Y[:probe]))} if ep in checkpoints else {}

    h = T.train(net, X, Y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adam", generator=generator,
                independent_order=True, penalty=penalty if lam > 0 else None, callback=at, desc=desc)
    return {"acc": torch.stack(h["accuracy"]).cpu().numpy(), "targets": targets, "layers": dict(h.get("layers", []))}


def bias_regularisation(arch: Arch, X: Tensor, Y: Tensor, *, E: int, epochs: int, variants: dict[str, tuple],
                        generator_for, stream: int, **kw) -> dict:
    """Fig. 5a-b and 6 as a paired experiment: every variant ``name -> (mu, sigma, lam)`` of
    :func:`train_bias_regularised` trains the same ``E`` networks (weights and mini-batch orders
    from a fresh ``generator_for(stream)``, targets from ``generator_for(stream + 1)``), so the
    difference between two variants is measured network by network. A variant
    ``(mu, sigma, lam, other_arch)`` trains ``other_arch`` instead of ``arch`` (it must have the same
    weight shapes, so it starts from the same weights: e.g. ``arch.with_(norm_at=i)``, Fig. 6b's
    BiasReg+BN). ``kw`` goes to every run (``checkpoints``, ``lr``). Returns ``{name: result}``."""
    out = {}
    for name, spec in variants.items():
        if len(spec) not in (3, 4):
            raise ValueError(f"bias_regularisation: variant {name!r} = {spec!r}; give (mu, sigma, lam) or "
                             "(mu, sigma, lam, arch)")
        mu, sigma, lam, a = (*spec, arch) if len(spec) == 3 else spec
        shape_fields = ("d_in", "width", "depth", "units", "d_out", "bias", "act", "order", "stem")
        if any(getattr(a, f) != getattr(arch, f) for f in shape_fields):
            raise ValueError(f"bias_regularisation: variant {name!r} has other weight shapes than the base architecture, "
                             "so it would not start from the same networks")
        out[name] = train_bias_regularised(a, X, Y, E=E, epochs=epochs, mu=mu, sigma=sigma, lam=lam,
                                           generator=generator_for(stream), target_generator=generator_for(stream + 1),
                                           desc=name, **kw)
    return out
