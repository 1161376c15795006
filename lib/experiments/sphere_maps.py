"""Philipp et al. §4.3, Theorem 2 and Prop. 6 in three dimensions: a length-only-normalised
nonlinear macro-layer maps the sphere of radius √d onto itself; since it is a surjection, its
Jacobian restricted to the tangent spaces has ``E|det| >= 1`` over the sphere (Prop. 6), and by the
AM-GM inequality ``E ||J||_qm^2 >= 1`` follows (Thm 2: such layers cannot shrink gradients on
average). The averages over the sphere are computed by a Fibonacci-lattice quadrature, on the CPU
(batched 3x3 QR and determinants are faster there than on a GPU)."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

CPU = torch.device("cpu")


def fibonacci_sphere(n: int, dtype=torch.float64) -> Tensor:
    """``n`` nearly uniform points on the unit sphere S² (the Fibonacci lattice), ``(n, 3)``."""
    i = torch.arange(n, dtype=dtype, device=CPU) + 0.5
    phi, th = torch.acos(1 - 2 * i / n), math.pi * (1 + 5 ** 0.5) * i
    return torch.stack([torch.cos(th) * torch.sin(phi), torch.sin(th) * torch.sin(phi), torch.cos(phi)], 1)


def tangent_basis(v: Tensor) -> Tensor:
    """An orthonormal basis ``(d, d - 1)`` of the tangent space of the sphere at ``v``."""
    d = v.shape[-1]
    Q, _ = torch.linalg.qr(torch.cat([v[:, None], torch.eye(d, dtype=v.dtype, device=v.device)], 1))
    return Q[:, 1:d]


def sphere_averages(g: Callable[[Tensor], Tensor], n: int) -> tuple[float, float]:
    """For a map ``g`` of the sphere of radius √3 onto itself: the averages over ``n`` lattice points
    of ``|det J_t|`` and ``||J_t||_qm² = ||J_t||_F² / 2``, ``J_t`` the Jacobian between the tangent
    spaces at ``x`` and ``g(x)``."""
    X = fibonacci_sphere(n) * math.sqrt(3)
    J = torch.vmap(torch.func.jacrev(g))(X)
    Jt = torch.vmap(tangent_basis)(torch.vmap(g)(X)).transpose(1, 2) @ J @ torch.vmap(tangent_basis)(X)
    return torch.linalg.det(Jt).abs().mean().item(), ((Jt ** 2).sum((1, 2)) / 2).mean().item()


def normalised_layer(W: Tensor, nonlinearity: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``x -> z / Q(z)``, ``z = W σ(x)``: a macro-layer with length-only normalisation (quadratic mean 1)."""
    def g(x: Tensor) -> Tensor:
        z = W @ nonlinearity(x)
        return z / z.pow(2).mean().sqrt()
    return g


def volume_quadrature(g: Callable[[Tensor], Tensor], sizes=(50_000, 100_000, 200_000)) -> tuple[float, float, float]:
    """``E|det J_t|`` at the largest lattice, the larger of its two changes on halving the lattice
    twice (one change can be small by chance), and ``E||J_t||_qm²`` at the largest lattice."""
    (d0, _), (d1, _), (d2, q2) = (sphere_averages(g, n) for n in sizes)
    return d2, max(abs(d2 - d1), abs(d1 - d0)), q2


def random_layer_volumes(nonlinearities=("tanh", "selu"), n_matrices: int = 3, *, generator: torch.Generator,
                         device=None) -> list[tuple[str, float, float, float]]:
    """Prop. 6 and Thm 2 on ``S²``: for each nonlinearity (a name in ``torch``), ``n_matrices``
    random 3×3 matrices ``W`` with ``N(0, 1/3)`` entries (drawn from ``generator`` on ``device``,
    nonlinearity by nonlinearity), the macro-layer :func:`normalised_layer` and its
    :func:`volume_quadrature`: rows ``(nonlinearity, E|det J|, quadrature change, E||J||_qm²)``."""
    rows = []
    for name in nonlinearities:
        for _ in range(n_matrices):
            W = torch.randn(3, 3, generator=generator, device=device, dtype=torch.float64).cpu() / math.sqrt(3)
            rows.append((name, *volume_quadrature(normalised_layer(W, getattr(torch, name)))))
    return rows
