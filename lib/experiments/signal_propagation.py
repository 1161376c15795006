"""The preliminaries' experiments: how the second moment of the signal moves through plain and
residual He-initialised ReLU ensembles (He et al. 2015, Eq. 10; Balduzzi et al. 2017, Eq. 2 and
§3.3), the two faces of Philipp et al.'s qm norm (Definition 1), and the rescaling that changes
raw gradients but not the gradient scale coefficient (Philipp et al. 2018, Prop. 4).

Each function returns plain arrays; the chapter compares them with their predictions through
``lib.check`` and draws them with ``lib.plotting.beside``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..nets.models import Arch, Net
from ..theory.measure import dot_error, gsc, qm_norm, qm_norm_probes, qm_norm_svd, random_unit_vectors, trace_grads


def he_relu(width: int, depth: int, *, kind: str = "plain", alpha: float = 1.0, d_out: int | None = None) -> Arch:
    """A He-initialised ReLU net of ``depth`` blocks of ``width`` units, no biases: ``plain`` is
    post-activation, ``x_{l+1} = ρ(W_l x_l)``; ``residual`` is the pre-activation block of
    He et al. 2016 / Balduzzi et al. Eq. 2 without batch norm, ``x_{l+1} = α(x_l + W_l ρ(x_l))``."""
    order = "post" if kind == "plain" else "pre"
    return Arch(d_in=width, width=width, depth=depth, kind=kind, order=order, init="he", alpha=alpha,
                **({} if d_out is None else {"d_out": d_out}))


@dataclass
class Moments:
    """Per network of an ensemble, ``h[e, l] = ‖x_{l+1}‖² / ‖x_1‖²`` and
    ``pos[e, l] = ‖ρ(x_{l+1})‖² / ‖x_1‖²`` for ``l = 0 … depth`` (``(E, depth + 1)`` arrays)."""

    h: np.ndarray
    pos: np.ndarray
    alpha: float | None = None   #: the residual scaling α; None for a plain net

    def symmetric_law(self) -> np.ndarray:
        """The law that holds when every coordinate is symmetric about zero: ``E‖x_{l+1}‖² = ‖x_1‖²``
        for a plain net, ``(2α²)^l ‖x_1‖²`` for a residual one (no growth at ``α = 1/√2``)."""
        growth = 1.0 if self.alpha is None else 2 * self.alpha**2
        return growth ** np.arange(self.h.shape[1])

    def positive_fraction(self) -> np.ndarray:
        """``E‖ρ(x_l)‖² / E‖x_l‖²`` per depth: ½ for a stream whose coordinates are symmetric."""
        return self.pos.mean(0) / self.h.mean(0)

    def one_step_residual(self) -> np.ndarray:
        """Paired per-network residual of the exact one-step identity (the preliminaries'
        proposition "One residual step"), ``‖x_{l+2}‖² - α²(‖x_{l+1}‖² + 2‖ρ(x_{l+1})‖²)``,
        divided by the mean prediction: ``(E, depth)``, mean zero when the identity holds."""
        if self.alpha is None:
            raise ValueError("the one-step identity is the residual block's; these are a plain net's moments")
        pred = self.alpha**2 * (self.h[:, :-1] + 2 * self.pos[:, :-1])
        return (self.h[:, 1:] - pred) / pred.mean(0)


def second_moments(arch: Arch, E: int, x0: Tensor, *, generator: torch.Generator | None = None,
                   max_bytes: int = 2**31) -> Moments:
    """Push one fixed input ``x0 (1, d_in)`` through ``E`` independent networks of ``arch`` and
    return their :class:`Moments`. Networks are drawn and run in batches of as many as fit in
    ``max_bytes`` of float64 weights (the paper profile's 20,000 nets of depth 50 and width 256
    would need 0.5 TB at once), all from ``generator`` in turn (so a different ``max_bytes`` draws
    different networks from the same law)."""
    per_net = (arch.d_in + arch.depth * arch.width) * arch.width * 8
    batch = max(1, min(E, max_bytes // per_net))
    hs, ps = [], []
    for start in range(0, E, batch):
        net = Net(arch, E=min(batch, E - start), generator=generator, device=x0.device, dtype=x0.dtype)
        with torch.no_grad():
            _, tr = net(x0, trace=True)
        hs.append(torch.stack([t.pow(2).sum(-1)[:, 0] for t in tr.hidden], dim=-1))
        ps.append(torch.stack([torch.relu(t).pow(2).sum(-1)[:, 0] for t in tr.hidden], dim=-1))
    h, pos = torch.cat(hs), torch.cat(ps)
    return Moments((h / h[:, :1]).cpu().numpy(), (pos / h[:, :1]).cpu().numpy(),
                   arch.alpha if arch.kind == "residual" else None)


@dataclass
class QmFaces:
    """Philipp et al. Definition 1 and its two other faces, measured: per matrix ``√n ‖A‖_qm`` from
    the singular values (``svd_side``) beside ``‖A‖_F`` (``frobenius``) and ``min(m, n)``
    (``min_dim``, for the round-off bound); for one matrix, the squared lengths ``‖A u_j‖²``
    over uniform unit vectors (``probes``) beside ``‖A‖_qm²`` (``qm2``)."""

    svd_side: np.ndarray
    frobenius: np.ndarray
    min_dim: np.ndarray
    probes: np.ndarray
    qm2: float


def qm_faces(shapes: list[tuple[int, int]], n_probes: int, *, probe_index: int = 0, generator: torch.Generator | None = None,
             device=None, dtype=torch.float64) -> QmFaces:
    """Gaussian matrices of the given shapes (the ``j``-th scaled by ``1 + j``), the identity
    ``√n ‖A‖_qm = ‖A‖_F`` on each, and ``n_probes`` random directions on matrix ``probe_index``."""
    mats = [torch.randn(m, k, generator=generator, device=device, dtype=dtype) * (1 + j) for j, (m, k) in enumerate(shapes)]
    A = mats[probe_index]
    u = random_unit_vectors(n_probes, A.shape[-1], generator=generator, device=device, dtype=dtype)
    return QmFaces(svd_side=np.array([math.sqrt(a.shape[-1]) * qm_norm_svd(a).item() for a in mats]),
                   frobenius=np.array([torch.linalg.matrix_norm(a, "fro").item() for a in mats]),
                   min_dim=np.array([min(a.shape) for a in mats]),
                   probes=qm_norm_probes(A, u).cpu().numpy(), qm2=qm_norm(A).item() ** 2)


@dataclass
class Rescaling:
    """Philipp et al. Prop. 4 on one ensemble: the original and the rescaled network's outputs'
    largest relative difference (``output_change``), raw gradient sizes ``Q_D‖∂f_0/∂x_l‖`` at every
    representation (``grad``, ``grad_rescaled``: ``(E, depth + 1)``), the factor each gradient must
    change by, ``1 / (a_0 ⋯ a_{l-1})`` (``predicted_factor``), and the GSC profiles (``gsc``,
    ``gsc_rescaled``: ``(E, depth + 2)``)."""

    output_change: float
    grad: np.ndarray
    grad_rescaled: np.ndarray
    predicted_factor: np.ndarray
    gsc: np.ndarray
    gsc_rescaled: np.ndarray


def _gradient_sizes(net: Net, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    out, tr = net(x, trace=True)
    gs = trace_grads(dot_error(out, y).sum(), tr.hidden)
    return out.detach(), torch.stack([g.norm(dim=-1).pow(2).mean(-1).sqrt() for g in gs], -1)


def rescaling_invariance(arch: Arch, E: int, x: Tensor, y: Tensor, *, spread: float = 10.0,
                         generator: torch.Generator | None = None, weight_seed: int = 0) -> Rescaling:
    """Draw ``E`` networks of ``arch`` (from ``weight_seed``), then the same networks with the
    weights of layer ``l`` (stem and every block) multiplied by ``a_l``, log-uniform in
    ``[1/spread, spread]`` (from ``generator``), and the read-out divided by ``∏ a_l``: a ReLU net
    without biases is positively homogeneous, so it computes the same function. Inputs ``x (B, d)``
    and labels ``y (B, d_out)`` are shared by all networks. Returns a :class:`Rescaling`."""
    kw = dict(E=E, device=x.device, dtype=x.dtype)
    net = Net(arch, generator=torch.Generator(x.device).manual_seed(weight_seed), **kw)
    scaled = Net(arch, generator=torch.Generator(x.device).manual_seed(weight_seed), **kw)
    L = arch.depth
    a = torch.exp((2 * torch.rand(L + 1, generator=generator, device=x.device, dtype=x.dtype) - 1) * math.log(spread))
    with torch.no_grad():
        for i in range(L + 1):
            scaled.weights[i].mul_(a[i].item())
        scaled.weights[L + 1].div_(torch.prod(a).item())
    out1, g1 = _gradient_sizes(net, x, y)
    out2, g2 = _gradient_sizes(scaled, x, y)
    return Rescaling(output_change=((out2 - out1).abs().max() / out1.abs().max()).item(),
                     grad=g1.cpu().numpy(), grad_rescaled=g2.cpu().numpy(),
                     predicted_factor=(1 / torch.cumprod(a, 0)).cpu().numpy(),
                     gsc=gsc(net, x, y).cpu().numpy(), gsc_rescaled=gsc(scaled, x, y).cpu().numpy())
