"""Curvature of the loss: Hessian-vector products, exact Hessians, Skilling's moment estimator
and stochastic Lanczos quadrature, for ensembles of networks.

Orhan & Pitkow (2018), Supplementary Note 3, estimate the spectral density of the Hessian of a
~10^6-parameter network from its first moments with Skilling's (1989) method:

* probe vectors ``r ~ N(0, I_N)``; ``m_k = rᵀ H^k r / N`` is unbiased for the k-th moment of the
  empirical spectral distribution, ``E m_k = tr(H^k) / N`` (Eq. 2), at every finite ``N``;
* ``H^k r`` needs only Hessian-vector products (Pearlmutter's R-operator, here forward-over-reverse
  ``torch.func.jvp(torch.func.grad(f))``): ``v_0 = r, v_k = H v_{k-1}`` (Eq. 3) and, because ``H`` is
  symmetric, ``m_{2k} = v_kᵀv_k / N``, ``m_{2k+1} = v_kᵀv_{k+1} / N`` (Eq. 4), so ``K`` moments
  cost ``⌈K/2⌉`` products per probe.

Everything works on a *flat* parameter vector. An ensemble :class:`lib.nets.models.Net` of ``E``
networks has a block-diagonal Hessian (no parameter is shared and the loss is the sum of the
members' losses), so one product with a probe that stacks ``E`` independent probes returns every
member's own ``H_e r_e``; per-member dot products are sums over the member's slice
(:attr:`FlatLoss.owner`). One batched computation therefore estimates the moments of ``E``
Hessians at once.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable

import torch
from torch import Tensor
from torch.func import functional_call, grad, jvp, vjp, vmap

# torch's forward-mode decompositions script themselves on first use and trip torch's own
# deprecation warning for torch.jit.script; it is not about this code, so it is silenced here.
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)


class FlatLoss:
    """The loss of an (ensemble) network as a function of one flat parameter vector.

    ``f = FlatLoss(net, loss_fn, x, y)``; ``f(theta)`` is ``loss_fn(net_theta(x), y).sum()`` where
    ``loss_fn`` returns one loss per ensemble member ``(E,)``. ``f.theta`` is the current
    parameter vector ``(N_total,)`` (a detached copy), ``f.owner`` the member index of each entry
    and ``f.sizes`` the number of parameters per member. Entries are ordered parameter by
    parameter, member-major inside each parameter tensor (whose leading dim is ``E``).
    """

    def __init__(self, net: torch.nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, y: Tensor):
        self.net, self.loss_fn, self.x, self.y = net, loss_fn, x, y
        named = [(k, p) for k, p in net.named_parameters()]
        self.names = [k for k, _ in named]
        self.shapes = [p.shape for _, p in named]
        E = getattr(net, "E", 1)
        self.E = E
        self.theta = torch.cat([p.detach().reshape(-1) for _, p in named])
        owner = [torch.arange(E, device=self.theta.device).repeat_interleave(p[0].numel()) for _, p in named]
        self.owner = torch.cat(owner)
        self.sizes = torch.bincount(self.owner, minlength=E)
        self.N = int(self.theta.numel())

    def params(self, theta: Tensor) -> dict[str, Tensor]:
        out, i = {}, 0
        for name, shape in zip(self.names, self.shapes):
            n = math.prod(shape)
            out[name] = theta[i:i + n].view(shape)
            i += n
        return out

    def per_member(self, theta: Tensor) -> Tensor:
        """Losses of the members at ``theta``, ``(E,)``."""
        return self.loss_fn(functional_call(self.net, self.params(theta), (self.x,)), self.y)

    def __call__(self, theta: Tensor) -> Tensor:
        return self.per_member(theta).sum()

    def member_dot(self, a: Tensor, b: Tensor) -> Tensor:
        """Per-member dot products of flat vectors (leading batch dims allowed): ``(..., E)``."""
        prod = a * b
        out = torch.zeros(*prod.shape[:-1], self.E, dtype=prod.dtype, device=prod.device)
        return out.index_add_(-1, self.owner, prod)

    def hvp(self, v: Tensor, theta: Tensor | None = None) -> Tensor:
        """Hessian-vector product ``H v`` (Pearlmutter's R-operator as forward-over-reverse AD)."""
        return hvp(self, self.theta if theta is None else theta, v)

    def grad(self, theta: Tensor | None = None) -> Tensor:
        return grad(self)(self.theta if theta is None else theta)


def hvp(f: Callable[[Tensor], Tensor], theta: Tensor, v: Tensor) -> Tensor:
    """``∇²f(theta) v`` by forward-mode differentiation of the gradient (Pearlmutter 1994's
    R-operator): one forward and one reverse sweep with dual numbers, a constant multiple of the
    cost of one gradient and no ``N × N`` matrix."""
    return jvp(grad(f), (theta,), (v,))[1]


#: probes per vmapped pullback in :func:`batched_hvp`, per device type, chosen by measurement
#: (``python -m lib bench``, "HVP" rows; README, "Performance"). On the 2-core CPU reverse mode with
#: 2 or 4 probes at a time was the fastest setting both for the skilling chapter's quick ensemble
#: (4 nets, N = 193,192, float64: 1.5x a gradient per HVP with 4, 1.7-2.1x with 8) and at the
#: paper's N = 709,652 (1.5x). On one H200 at the skilling paper profile's shape (N = 709,652, 5,000
#: examples, 100 probes; 2026-12-04), per HVP over one gradient in float64 with 4, 8, 16, 32 and all
#: probes per call: 0.35x, 0.19x, 0.13x, 0.12x, 0.11x, at a peak of 1.6, 2.4, 4.0, 7.2 and 21 GiB
#: per network (float32: 0.87x, 0.63x, 0.49x, 0.39x, 0.35x). 16 is within 15% of all at once and
#: keeps an ensemble of ten such networks near 40 GiB.
HVP_CHUNKS = {"cpu": 4, "cuda": 16}
HVP_CHUNK = HVP_CHUNKS["cpu"]


def hvp_chunk(device) -> int:
    """The probes per call of :func:`batched_hvp` on ``device`` (:data:`HVP_CHUNKS`; the CPU's for
    any other device type)."""
    return HVP_CHUNKS.get(torch.device(device).type, HVP_CHUNKS["cpu"])


def batched_hvp(f: Callable[[Tensor], Tensor], theta: Tensor, V: Tensor, chunk: int | None | str = "auto",
                mode: str = "reverse") -> Tensor:
    """``H v`` for every row of ``V (P, N)`` (``chunk`` rows at a time; ``None``: all at once;
    ``"auto"``: :func:`hvp_chunk` of ``theta``'s device).

    ``mode="reverse"`` (default): reverse-over-reverse, ``vjp(grad(f), theta)`` once and its VJP
    ``v -> vᵀ∇(∇f) = H v`` (``H`` symmetric) vmapped over the rows: the gradient's graph is built
    once for all probes. ``mode="forward"``: Pearlmutter's forward-over-reverse :func:`hvp` vmapped
    over the rows. Both are exact to round-off (tested against dense Hessians); on the 2-core CPU the
    reverse mode was 1.0-1.45x faster for the ensembles of Orhan & Pitkow's §2.3 (float32, 16 probes)."""
    if chunk == "auto":
        chunk = hvp_chunk(theta.device)
    if mode == "forward":
        return vmap(lambda v: hvp(f, theta, v), chunk_size=chunk)(V)
    if mode != "reverse":
        raise ValueError(f"mode={mode!r}: use 'reverse' or 'forward'")
    _, pull = vjp(grad(f), theta)
    return vmap(lambda v: pull(v)[0], chunk_size=chunk)(V)


def exact_hessian(f: Callable[[Tensor], Tensor], theta: Tensor, chunk: int | None = 256) -> Tensor:
    """The dense Hessian ``(N, N)`` as ``N`` Hessian-vector products with the basis vectors,
    symmetrised (for small networks only: ``N² `` numbers)."""
    eye = torch.eye(theta.numel(), dtype=theta.dtype, device=theta.device)
    H = batched_hvp(f, theta, eye, chunk=chunk)
    return 0.5 * (H + H.T)


def member_hessians(f: FlatLoss, chunk: int | None = 32) -> Tensor:
    """The dense Hessian of every member of an ensemble loss, ``(E, n, n)`` (``n`` parameters per
    member). The members do not share parameters, so the ensemble's Hessian is block-diagonal:
    ``n`` Hessian-vector products, the ``j``-th with the ``j``-th basis vector of every member at
    once, give every member's ``j``-th column (``E`` times fewer than :func:`exact_hessian`).
    ``chunk`` products per vmapped call: 16-64 were equally fast on the 2-core CPU for eight 20-layer
    nets of width 8 on 250 examples (14.6 s), 256 took 18.2 s and 1024 took 59 s."""
    n = int(f.sizes[0])
    if not bool((f.sizes == n).all()):
        raise ValueError(f"member_hessians needs members of one size; sizes are {f.sizes.tolist()}")
    idx = torch.stack([torch.nonzero(f.owner == e).squeeze(1) for e in range(f.E)])      # (E, n)
    V = torch.zeros(n, f.N, dtype=f.theta.dtype, device=f.theta.device)
    V.scatter_(1, idx.T, 1.0)                                                             # row j: e_j of every member
    HV = batched_hvp(f, f.theta, V, chunk=chunk)                                          # (n, N)
    H = HV[:, idx].permute(1, 0, 2)                                                       # (E, n, n): H[e, j, :]
    return 0.5 * (H + H.transpose(1, 2))


def skilling_moments(matvec: Callable[[Tensor], Tensor], probes: Tensor, n_moments: int,
                     dot: Callable[[Tensor, Tensor], Tensor] | None = None, sizes: Tensor | int | None = None) -> Tensor:
    """Skilling's moment estimates (Orhan & Pitkow Supp. Note 3, Eqs. 3-4) for every probe.

    ``matvec(V)`` maps probes ``(P, N)`` to ``H V`` row by row; ``probes`` are standard Gaussian
    ``r``'s. ``dot(a, b)`` reduces the last dim (per ensemble member with
    :meth:`FlatLoss.member_dot`; a plain sum by default) and ``sizes`` is ``N`` (per member).
    Returns ``(P, [E,] n_moments)`` with entry ``k-1`` the estimate of ``tr(H^k)/N``, from
    ``⌈n_moments/2⌉`` products per probe: ``m_{2j} = v_jᵀv_j / N``, ``m_{2j+1} = v_jᵀv_{j+1} / N``.
    """
    if n_moments < 1:
        raise ValueError("n_moments must be >= 1")
    dot = dot or (lambda a, b: (a * b).sum(-1))
    N = probes.shape[-1] if sizes is None else sizes
    vs = [probes]
    for _ in range((n_moments + 1) // 2):
        vs.append(matvec(vs[-1]))
    out = []
    for k in range(1, n_moments + 1):
        j = k // 2
        out.append(dot(vs[j], vs[j]) if k % 2 == 0 else dot(vs[j], vs[j + 1]))
    return torch.stack(out, dim=-1) / (N.to(probes.dtype).unsqueeze(-1) if isinstance(N, Tensor) else N)


def skilling_probe_variance(eigenvalues: Tensor, n_moments: int) -> Tensor:
    """The variance of one Gaussian probe's estimate ``rᵀHᵏr / N`` of ``tr(Hᵏ)/N``: a Gaussian
    quadratic form ``Σ_i λ_iᵏ z_i²`` has variance ``2 Σ_i λ_i²ᵏ``, so ``2 tr(H²ᵏ) / N²`` for
    ``k = 1 … n_moments`` (the mean of ``P`` probes has ``1/P`` of it)."""
    k = torch.arange(1, n_moments + 1, dtype=eigenvalues.dtype, device=eigenvalues.device)
    return 2 * (eigenvalues.unsqueeze(-1) ** (2 * k)).sum(0) / eigenvalues.shape[0] ** 2


def skilling_variance_by_group(eigenvalues: Tensor, z: Tensor, n_moments: int, group_sizes=(1, 4, 16)) -> tuple[Tensor, Tensor]:
    """Monte Carlo of :func:`skilling_probe_variance` in the eigenbasis: ``z (n, N)`` Gaussian probe
    coordinates (``z = Uᵀr``) give the single-probe estimates ``Σ_i λ_iᵏ z_i² / N``; for each ``P`` in
    ``group_sizes`` (dividing ``n``) the means of ``P`` probes are formed and ``P ×`` their sample
    variance returned with its standard error (from the fourth central moment), so each row should
    equal the single-probe variance whatever ``P``: ``(P × variance, its s.e.)``, each
    ``(len(group_sizes), n_moments)``."""
    k = torch.arange(1, n_moments + 1, dtype=eigenvalues.dtype, device=eigenvalues.device)
    single = (z ** 2) @ (eigenvalues.unsqueeze(-1) ** k) / eigenvalues.shape[0]       # (n, n_moments)
    rows = []
    for P in group_sizes:
        g = single.reshape(-1, P, n_moments).mean(1)
        var, c = g.var(0), g - g.mean(0)
        se = ((c ** 4).mean(0) - var ** 2).clamp_min(0).sqrt() / math.sqrt(g.shape[0])
        rows.append((P * var, P * se))
    return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])


def direct_moments(matvec: Callable[[Tensor], Tensor], probes: Tensor, n_moments: int) -> Tensor:
    """``rᵀ H^k r / N`` computed literally with ``k`` products each (the definition, Eq. 2),
    to compare with the even/odd shortcut of :func:`skilling_moments`. ``(P, n_moments)``."""
    N = probes.shape[-1]
    out, v = [], probes
    for _ in range(n_moments):
        v = matvec(v)
        out.append((probes * v).sum(-1) / N)
    return torch.stack(out, dim=-1)


def exact_moments(eigenvalues: Tensor, n_moments: int) -> Tensor:
    """Moments ``Σ λ_i^k / N`` of the empirical spectral distribution, ``k = 1..n_moments``."""
    k = torch.arange(1, n_moments + 1, device=eigenvalues.device, dtype=eigenvalues.dtype)
    return eigenvalues.unsqueeze(-1).pow(k).mean(-2)


def lanczos(matvec: Callable[[Tensor], Tensor], v0: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """``steps`` steps of Lanczos on symmetric ``H`` from ``v0`` (batched over leading dims of
    ``v0 (P, N)``), with full re-orthogonalisation. Returns the tridiagonal's diagonal
    ``alpha (P, m)`` and off-diagonal ``beta (P, m-1)`` (``m ≤ steps``; one product per step)."""
    q = v0 / v0.norm(dim=-1, keepdim=True)
    Q = [q]
    alphas, betas = [], []
    for i in range(steps):
        w = matvec(Q[-1])
        a = (w * Q[-1]).sum(-1)
        alphas.append(a)
        if i == steps - 1:
            break
        B = torch.stack(Q, dim=-2)                                 # (P, i+1, N)
        for _ in range(2):                                         # twice is enough (Parlett)
            w = w - torch.einsum("pi,pin->pn", torch.einsum("pin,pn->pi", B, w), B)
        b = w.norm(dim=-1)
        betas.append(b)
        Q.append(w / b.clamp_min(torch.finfo(w.dtype).tiny).unsqueeze(-1))
    alpha = torch.stack(alphas, -1)
    beta = torch.stack(betas, -1) if betas else alpha[..., :0]
    return alpha, beta


def gauss_quadrature(alpha: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """Golub-Welsch: nodes (Ritz values) and weights (squared first components of the
    eigenvectors) of the Lanczos tridiagonal. With a unit start vector ``q``, ``Σ w_i θ_i^k`` equals
    ``qᵀ H^k q`` exactly for ``k ≤ 2m - 1``. Returns ``(P, m)`` each."""
    T = torch.diag_embed(alpha) + torch.diag_embed(beta, 1) + torch.diag_embed(beta, -1)
    theta, vec = torch.linalg.eigh(T)
    return theta, vec[..., 0, :].pow(2)


def slq(matvec: Callable[[Tensor], Tensor], probes: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """Stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017; Ghorbani et al. 2019): the spectral
    distribution ``(1/N) Σ δ(λ - λ_i)`` is estimated by the average over probes of the Gauss
    quadrature measures ``Σ_i w_i δ(λ - θ_i)``. ``steps`` products per probe. Returns nodes and
    weights ``(P, m)``; the weights of each probe sum to 1."""
    alpha, beta = lanczos(matvec, probes, steps)
    return gauss_quadrature(alpha, beta)


def kaniel_paige_saad(eigenvalues: Tensor, top_vector: Tensor, probes: Tensor, steps: int) -> Tensor:
    """The Kaniel-Paige-Saad bound (Saad 1980, Thm 1; Golub & Van Loan §10.1.5) on how far the
    largest Ritz value ``θ₁`` of ``steps`` Lanczos steps from each probe ``q`` (rows of ``probes``,
    ``(P, N)``) can sit below the largest eigenvalue ``λ₁`` of a symmetric matrix with ascending
    ``eigenvalues`` and top unit eigenvector ``top_vector``:
    ``λ₁ - θ₁ ≤ (λ₁ - λ_N) (tan∠(q, u₁) / T_{m-1}(1 + 2γ))²`` with ``γ = (λ₁ - λ₂)/(λ₂ - λ_N)`` and
    ``T_k`` the Chebyshev polynomial (:func:`scipy.special.eval_chebyt`). Returns ``(P,)``."""
    from scipy.special import eval_chebyt

    lam = eigenvalues
    gamma = ((lam[-1] - lam[-2]) / (lam[-2] - lam[0])).item()
    cos = ((probes / probes.norm(dim=-1, keepdim=True)) @ top_vector).abs()
    tan2 = (1 - cos ** 2) / cos ** 2
    return (lam[-1] - lam[0]) * tan2 / float(eval_chebyt(steps - 1, 1 + 2 * gamma)) ** 2
