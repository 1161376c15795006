"""Gradients as sums over active paths (Balduzzi et al. 2017, §3 and Appendix A3).

Minimal model (A3.1): an ``(N, N, L-1)`` weight tensor with i.i.d. entries of mean 0 and variance
``σ²``; a path picks one neuron per layer; an activation configuration ``A`` is a binary
``N × L`` matrix; the path-sum ``pw(A)`` adds the weights of the paths whose neurons are all
active. Path weights are orthogonal in the covariance inner product (Eq. A3), so
``E[pw(A) pw(B)] = |A ∩ B| σ^{2(L-1)}`` (Lemma A1), where ``|A ∩ B|`` counts co-active paths.

Nothing here enumerates the ``N^L`` paths: with ``D_l = diag(A[:, l])`` the path-sum is
``1ᵀ D_1 W_1 D_2 W_2 ⋯ W_{L-1} D_L 1`` (a chain of matrix products, batched over Monte Carlo
samples of ``W``), and because every layer is fully connected the co-active count factorises,
``|A ∩ B| = Π_l Σ_n A[n, l] B[n, l]``.

The closed forms of Theorems 1-3 and Corollary 1 under the "typical datapoints" assumption
(half of the neurons active per layer, a quarter co-active) are :func:`feedforward_moments`,
:func:`resnet_moments`, :func:`resnet_bn_moments` (with the exact Gamma-function value of
Theorem 3's product) and :func:`highway_moments`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import gammaln
from torch import Tensor

from .ensembles import draw_device


def path_sum(A: Tensor, W: Tensor) -> Tensor:
    """``pw(A)`` for configurations ``A (..., N, L)`` (0/1) and weight tensors ``W (S, L-1, N, N)``
    (``W[s, l, i, j]`` connects neuron ``i`` of layer ``l`` to neuron ``j`` of layer ``l+1``).
    Returns ``(S, ...)``: one path-sum per weight sample and configuration."""
    L = A.shape[-1]
    if W.shape[1] != L - 1:
        raise ValueError(f"W has {W.shape[1]} weight layers; A has {L} layers, so {L - 1} are needed")
    v = A[..., :, 0].to(W.dtype).expand(W.shape[0], *A.shape[:-1])          # (S, ..., N): 1ᵀ D_1
    for l in range(L - 1):
        v = torch.einsum("s...i,sij->s...j", v, W[:, l]) * A[..., :, l + 1].to(W.dtype)
    return v.sum(-1)


def coactive_paths(A: Tensor, B: Tensor) -> Tensor:
    """``|A ∩ B|``: the number of paths active under both configurations (``A = B`` gives ``|A|``).
    ``(..., N, L) -> (...)``, exact in float64 up to ~1e15 paths."""
    return (A.to(torch.float64) * B.to(torch.float64)).sum(-2).prod(-1)


def feedforward_moments(L: int) -> tuple[float, float]:
    """Theorem 1 (He initialisation σ² = 2/N, typical datapoints): variance 1, covariance 2^{-L}."""
    return 1.0, 2.0 ** (-L)


def resnet_moments(L: int, alpha: float = 1.0) -> tuple[float, float]:
    """Theorem 2 (α = β = 1, no BN): variance ``2^L``, covariance ``(3/2)^L``; with α-rescaling
    (§3.3) each layer contributes ``α²(1 + 1)`` and ``α²(1 + ½)``."""
    return (2 * alpha**2) ** L, (1.5 * alpha**2) ** L


def resnet_bn_moments(L: int, beta: float) -> tuple[float, float]:
    """Theorem 3 (BN and β-rescaling), the products of the proof, evaluated exactly:

    variance ``Π_{l=1}^{L-1} (1 + β²/(β²(l-1)+1)) = β²(L-1) + 1`` (it telescopes);
    covariance ``Π_{l=1}^{L-1} (1 + ½ β²/(β²(l-1)+1))``. With ``a = 1/β² - 1`` each factor is
    ``(l + a + ½)/(l + a)``, so the covariance is
    ``Γ(L + a + ½) Γ(1 + a) / (Γ(a + 3/2) Γ(L + a))`` (log-gamma, no overflow)."""
    a = 1.0 / beta**2 - 1.0
    var = beta**2 * (L - 1) + 1.0
    log_cov = gammaln(L + a + 0.5) + gammaln(1 + a) - gammaln(a + 1.5) - gammaln(L + a)
    return var, float(np.exp(log_cov))


def resnet_bn_product(L: int, beta: float) -> tuple[float, float]:
    """The same two products multiplied out term by term (the reference for the closed forms)."""
    ls = np.arange(1, L)
    r = beta**2 / (beta**2 * (ls - 1) + 1)
    return float(np.prod(1 + r)), float(np.exp(np.sum(np.log1p(0.5 * r))))


def highway_moments(L: int, gamma2: float) -> tuple[float, float]:
    """Corollary 1 (γ₁² + γ₂² = 1): variance 1, correlation ``(γ₁² + ½γ₂²)^L``."""
    g1sq = 1.0 - gamma2**2
    return 1.0, (g1sq + 0.5 * gamma2**2) ** L


def paper_moments(kind: str, norm: str, a: float, b: float, L: int) -> tuple[float, float]:
    """The paper's (variance, covariance) of the input gradient for the network that
    :func:`lib.theory.shattering.gradient_moments` draws with these ``kind``, ``norm``, ``a``, ``b``
    and ``L`` blocks: Theorem 1 for feedforward nets (any normalisation), Theorem 3 for batch-normalised
    resnets (the paper's ``L`` counts the input layer: ``L`` blocks are its ``L + 1``), Theorem 2 with
    α-rescaling for ``a = b = α``, and Corollary 1 (``γ₂ = b``) otherwise."""
    if kind == "ff":
        return feedforward_moments(L)
    if norm == "bn":
        return resnet_bn_moments(L + 1, b)
    if a == b:
        return resnet_moments(L, alpha=a)
    return highway_moments(L, b)


def typical_configurations(N: int, L: int, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Two configurations that are "typical" exactly (Assumption 1): in every layer ``N/2`` neurons
    active in each and ``N/4`` co-active (``N`` divisible by 4), placed at random."""
    if N % 4:
        raise ValueError("N must be divisible by 4 for exactly typical configurations")
    A = torch.zeros(N, L)
    B = torch.zeros(N, L)
    for l in range(L):
        perm = torch.randperm(N, generator=generator, device=draw_device(generator)).cpu()
        q = N // 4
        A[perm[: 2 * q], l] = 1          # A: first half
        B[perm[q: 3 * q], l] = 1         # B: overlaps A on exactly a quarter
    return A, B


def sqrt_4L_over_pi(L) -> np.ndarray:
    """The paper's numerical approximation ``√(4(L+1)/π)`` of Theorem 3's β = 1 covariance."""
    return np.sqrt(4 * (np.asarray(L, dtype=float) + 1) / math.pi)


def subset_sum_mismatches(max_depth: int = 12, width: int = 8) -> int:
    """Theorem 2 as the subset sum of Lemma A3, in exact rational arithmetic: a resnet's gradient
    variance ``Σ_k C(L, k) (N/2 · σ²)^k`` and covariance ``Σ_k C(L, k) (N/4 · σ²)^k`` (``σ² = 2/N``,
    ``k`` the number of non-skipped layers) against ``2^L`` and ``(3/2)^L``, for ``L = 1…max_depth``.
    Returns the number of the ``2 · max_depth`` identities that fail (0 when the theorem holds)."""
    from fractions import Fraction

    half, quarter, s2 = Fraction(width, 2), Fraction(width, 4), Fraction(2, width)
    bad = 0
    for L in range(1, max_depth + 1):
        v = sum(math.comb(L, k) * (half * s2) ** k for k in range(L + 1))
        c = sum(math.comb(L, k) * (quarter * s2) ** k for k in range(L + 1))
        bad += (v != 2**L) + (c != Fraction(3, 2) ** L)
    return bad


def resnet_bn_closed_form_error(depths, betas) -> float:
    """Theorem 3: the largest relative difference between the closed forms
    :func:`resnet_bn_moments` and the products :func:`resnet_bn_product` they sum, over every
    ``L + 1`` for ``L`` in ``depths`` and every ``β`` in ``betas`` (variance and covariance)."""
    worst = 0.0
    for L in depths:
        for b in betas:
            v, c = resnet_bn_moments(L + 1, b)
            vp, cp = resnet_bn_product(L + 1, b)
            worst = max(worst, abs(v / vp - 1), abs(c / cp - 1))
    return worst


def resnet_bn_correlation(L: int, beta: float) -> float:
    """Theorem 3's gradient correlation of a batch-normalised resnet of ``L`` layers: the covariance
    over the variance of :func:`resnet_bn_moments`."""
    v, c = resnet_bn_moments(L, beta)
    return c / v


def enumeration_errors(cases, *, generator: torch.Generator | None = None, device=None) -> tuple[int, float]:
    """App. A3.1's path sums by matrix products (:func:`path_sum`, :func:`coactive_paths`) against
    enumerating all ``N^L`` paths, for each ``(N, L)`` in ``cases``: random configurations ``A``,
    ``B`` (each neuron active with probability 0.6) and three float64 weight tensors, drawn from
    ``generator`` in that order. Returns the number of cases whose co-active count is wrong and
    the largest relative error of the path sums (relative to the largest enumerated sum, at least 1)."""
    import itertools

    bad, worst = 0, 0.0
    for N, L in cases:
        A = (torch.rand(N, L, generator=generator, device=device) > 0.4).to(torch.float64)
        B = (torch.rand(N, L, generator=generator, device=device) > 0.4).to(torch.float64)
        W = torch.randn(3, L - 1, N, N, generator=generator, device=device, dtype=torch.float64)
        listed, count = torch.zeros(3, dtype=torch.float64, device=device), 0
        for path in itertools.product(range(N), repeat=L):
            if all(A[path[l], l] > 0 for l in range(L)):
                listed += torch.stack([W[:, l, path[l], path[l + 1]] for l in range(L - 1)]).prod(0)
            count += all(A[path[l], l] > 0 and B[path[l], l] > 0 for l in range(L))
        bad += int(coactive_paths(A, B).item() != count)
        worst = max(worst, (path_sum(A, W) - listed).abs().max().item() / listed.abs().max().clamp_min(1).item())
    return bad, worst


def sqrt_growth(depths) -> dict[str, np.ndarray | float]:
    """Theorem 3 at β = 1 against its large-``L`` forms, at the integer ``depths``: ``rel_fit``, the
    relative error of the paper's ``√(4(L+1)/π)`` (:func:`sqrt_4L_over_pi`); ``ratio_2L``, ``√(2L)``
    over the exact covariance (the paper's "grows as √(2L)"); and ``slope``, the log-log slope of
    ``rel_fit`` over the depths above 100 (−1 when the error is ``5/(8L)`` to leading order)."""
    Ls = np.asarray(depths)
    exact = np.array([resnet_bn_moments(int(L), 1.0)[1] for L in Ls])
    rel_fit = sqrt_4L_over_pi(Ls) / exact - 1
    slope = float(np.polyfit(np.log(Ls[Ls > 100]), np.log(rel_fit[Ls > 100]), 1)[0])
    return {"rel_fit": rel_fit, "ratio_2L": np.sqrt(2 * Ls) / exact, "slope": slope}
