"""The scale of the hidden stream of Orhan & Pitkow's fully connected ReLU nets at initialisation
(§2.3: Glorot-normal weights, zero biases), in the mean-field limit of infinite width.

A stem ``x_1 = ρ(W_0 x_0)`` with ``W_0 ~ N(0, 2/(d + n))`` is followed by ``L - 1`` blocks of width
``n``, whose weights ``N(0, 2/(n + n)) = N(0, 1/n)`` give a pre-activation ``z = W x`` that is,
given ``x``, ``N(0, q̂)`` in every unit with ``q̂ = |x|²/n`` -- independent of any one coordinate
``x_i``. With ``q = E x_i²`` and ``m = E x_i`` (per example, over units and weights):

* plain, ``x' = ρ(z)``: ``q' = q/2`` and ``m' = √(q/2π)`` -- the signal halves per layer;
* residual, ``x' = ρ(z) + x``: ``q' = q + q/2 + 2 m √(q/2π)`` and ``m' = m + √(q/2π)``, because
  ``E[ρ(z) x_i] = E[x_i] E[ρ(z)]`` when ``z`` does not depend on ``x_i``. The stream's mean, the
  sum of the ReLU outputs it has collected, makes the second moment grow faster than the 3/2 per
  block that the variances alone would give (about 2 per block from the start);
* the §2.5 "malicious" residual block with ``W = W' − I``: ``ρ(W'x + b − x) + x = max(W'x + b, x)``
  exactly, elementwise, for every input and every weight (:func:`malicious_block`). Subtracting the
  identity does not cancel the skip: it turns the block into the maximum of a plain layer and the
  stream.

The recursions are homogeneous of degree one in ``q`` (``m`` scales as ``√q``), so only the input
norms set their scale."""

from __future__ import annotations

import math

import torch
from torch import Tensor

KINDS = ("plain", "residual")


def stem_variance(x0: Tensor, width: int) -> Tensor:
    """The stem pre-activation variance ``2 |x_0|² / (d + n)`` of each input row of ``x0 (B, d)``
    under Glorot-normal weights (``n = width``), in float64: ``(B,)``."""
    d = x0.shape[-1]
    return 2.0 * x0.double().pow(2).sum(-1) / (d + width)


def glorot_stream_moments(s0: Tensor, blocks: int, kind: str) -> Tensor:
    """Mean-field second moments ``q_l = E x_{l,i}²`` of the hidden stream after the stem
    (``l = 1``) and each of ``blocks`` blocks of a ``kind`` net ("plain" or "residual"), averaged over
    the examples whose stem pre-activation variances are ``s0 (B,)`` (:func:`stem_variance`):
    ``(blocks + 1,)`` float64. Per example ``q_1 = s0/2`` and ``m_1 = √(s0/2π)``; then the module
    docstring's recursion."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: use one of {KINDS}")
    if blocks < 0:
        raise ValueError(f"blocks={blocks}: need a number >= 0")
    s0 = torch.as_tensor(s0, dtype=torch.float64)
    q, m = s0 / 2, torch.sqrt(s0 / (2 * math.pi))
    out = [q.mean()]
    for _ in range(blocks):
        r = torch.sqrt(q / (2 * math.pi))          # E ρ(z) for z ~ N(0, q)
        if kind == "plain":
            q, m = q / 2, r
        else:
            q, m = 1.5 * q + 2 * m * r, m + r
        out.append(q.mean())
    return torch.stack(out)


def malicious_block(w_prime: Tensor, b: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """One §2.5 residual block with ``W = W' − I``, computed two ways: as written,
    ``ρ((W' − I) x + b) + x``, and as the elementwise maximum ``max(W'x + b, x)``. ``w_prime (..., n, n)``,
    ``b (..., n)``, ``x (..., B, n)``; returns both ``(..., B, n)`` so that their difference is round-off."""
    n = w_prime.shape[-1]
    eye = torch.eye(n, dtype=w_prime.dtype, device=w_prime.device)
    pre = torch.matmul(x, w_prime.transpose(-1, -2)) + b.unsqueeze(-2)
    as_written = torch.relu(torch.matmul(x, (w_prime - eye).transpose(-1, -2)) + b.unsqueeze(-2)) + x
    return as_written, torch.maximum(pre, x)
