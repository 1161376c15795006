"""Random weight ensembles of the papers, drawn for ``E`` networks at once: Haar-orthogonal and
looks-linear matrices, Orhan & Pitkow's designed skip matrices, and the rule for which device a
seeded draw is made on (:func:`draw_device`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def draw_device(generator: torch.Generator | None, device=None):
    """The device random numbers must be drawn on: the generator's own (a CUDA generator cannot
    fill a CPU tensor, nor the reverse), else ``device``. Callers move the draw to where it is
    used, so the same seed gives the same numbers whatever the target device."""
    return generator.device if generator is not None else device


def haar_orthogonal(E: int, n: int, m: int, *, generator: torch.Generator | None = None,
                    device=None, dtype=torch.float64) -> Tensor:
    """``E`` Haar-distributed (semi-)orthogonal ``n × m`` matrices (Mezzadri 2007: QR of a
    Gaussian matrix with the signs of R's diagonal folded into Q)."""
    k = max(n, m)
    g = torch.randn(E, k, k, generator=generator, device=draw_device(generator, device), dtype=torch.float64).to(device)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    return q[:, :n, :m].to(dtype)


def repeated_orthonormal(E: int, n: int, k: int, *, generator: torch.Generator | None = None,
                         device=None, dtype=torch.float64) -> Tensor:
    """``E`` matrices ``n × n`` whose columns are ``k`` Haar-random orthonormal vectors, each repeated
    ``n / k`` times (the first ``k`` columns copied into the next ``k``, ...): the "less orthogonal"
    skip matrices of Orhan & Pitkow §2.7 / Fig. 7, labelled by ``k`` (``k = n`` is orthogonal)."""
    if n % k:
        raise ValueError(f"k = {k} must divide n = {n}")
    base = haar_orthogonal(E, n, k, generator=generator, device=device, dtype=dtype)
    return base.repeat(1, 1, n // k)


def designed_skip_parts(n: int, tau: float, *, E: int = 1, generator: torch.Generator | None = None
                        ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Orhan & Pitkow Supp. Note 5, for ``E`` independent draws at once (float64):
    ``S = Q Λ Qᵀ`` with ``Λ_ii = exp(-τ (i-1))`` and ``Q`` Haar-orthogonal, its correlation matrix
    ``R = D^{-1/2} S D^{-1/2}``, ``R = T Tᵀ`` (Cholesky), a second Haar-orthogonal ``O = U L U*``, and
    the skip matrix ``Σ = T U L U⁻¹ T⁻¹``. Since ``U L U⁻¹ = O`` is real, ``Σ = T O T⁻¹``: a similarity
    transform of ``O``, so its eigenvalues are ``O``'s (on the unit circle) and its eigenvectors,
    the columns of ``T U``, have Gram matrix ``R``. ``τ = 0`` gives ``Σ = O``.
    Returns ``(Σ, T, O, R)``, each ``(E, n, n)``."""
    if tau < 0:
        raise ValueError("tau must be >= 0")
    q = haar_orthogonal(E, n, n, generator=generator)
    o = haar_orthogonal(E, n, n, generator=generator)
    lam = torch.exp(-tau * torch.arange(n, dtype=torch.float64, device=q.device))
    s = (q * lam) @ q.transpose(-1, -2)
    d = torch.diagonal(s, dim1=-2, dim2=-1).rsqrt()
    r = d[..., :, None] * s * d[..., None, :]
    t = torch.linalg.cholesky(0.5 * (r + r.transpose(-1, -2)))
    sigma = t @ o @ torch.linalg.inv(t)
    return sigma, t, o, r


def designed_skip(n: int, tau: float, *, E: int = 1, generator: torch.Generator | None = None,
                  dtype=torch.float64) -> Tensor:
    """The skip matrices ``Σ`` of :func:`designed_skip_parts`, ``(E, n, n)`` in ``dtype``."""
    return designed_skip_parts(n, tau, E=E, generator=generator)[0].to(dtype)


def looks_linear_relu(E: int, out: int, inp: int, role: str, *, generator: torch.Generator | None = None,
                      device=None, dtype=torch.float64) -> Tensor:
    """Philipp et al. §H looks-linear weights for a ReLU MLP, ``(E, out, inp)``: rows (and, except
    for the lowest layer, columns) come in mirrored pairs ``(+W', -W')`` of a Haar-orthogonal
    ``W'`` scaled by ``max(√(m/n), 1)`` for its half-sizes. ``role`` is ``stem`` (lowest layer:
    only rows paired), ``readout`` (highest: only columns paired) or ``branch`` (both)."""
    row_pairs = role != "readout"
    col_pairs = role != "stem"
    m = out // 2 if row_pairs else out
    n = inp // 2 if col_pairs else inp
    c = max(math.sqrt(m / n), 1.0)
    wp = haar_orthogonal(E, m, n, generator=generator, device=device, dtype=dtype) * c
    if row_pairs:
        wp = torch.stack([wp, -wp], dim=-2).reshape(E, 2 * m, n)
    if col_pairs:
        wp = torch.stack([wp, -wp], dim=-1).reshape(E, wp.shape[1], 2 * n)
    return wp


def designed_skip_as_printed(n: int, tau: float, *, generator: torch.Generator | None = None) -> dict[str, float]:
    """Supp. Note 5's skip matrix built as printed, ``Σ = (TU) L (TU)⁻¹`` from an eigendecomposition
    ``O = U L U⁻¹`` of the Haar-orthogonal ``O`` of :func:`designed_skip_parts` (one draw), against
    that function's ``Σ = T O T⁻¹``: ``same`` (largest entry of the difference), ``unit_circle``
    (largest ``||λ| − 1|`` over ``Σ``'s eigenvalues), ``gram`` (largest entry of
    ``(TU)(TU)* − R``), ``column_cosine`` (``‖ΣᵀΣ − I‖_F / √n``, how far ``Σ`` is from orthogonal),
    and what the round-off bounds need: ``cond`` (of ``TU``, Bauer-Fike's factor), ``sigma_norm``
    (``‖Σ‖₂``), ``t_norm`` (``‖T‖₂``) and ``unitarity`` (``‖UU* − I‖₂``)."""
    sigma, t, o, r = (x[0] for x in designed_skip_parts(n, tau, generator=generator))
    lam, u = torch.linalg.eig(o)
    tu = t.to(torch.complex128) @ u
    printed = (tu @ torch.diag(lam) @ torch.linalg.inv(tu)).real
    eye = torch.eye(n, dtype=torch.complex128, device=u.device)
    return {"same": (printed - sigma).abs().max().item(),
            "unit_circle": (torch.linalg.eigvals(printed).abs() - 1).abs().max().item(),
            "gram": ((tu @ tu.conj().T).real - r).abs().max().item(),
            "column_cosine": (printed.T @ printed - eye.real).norm().item() / n ** 0.5,
            "cond": torch.linalg.cond(tu).item(), "sigma_norm": torch.linalg.matrix_norm(printed, 2).item(),
            "t_norm": torch.linalg.matrix_norm(t, 2).item(), "unitarity": torch.linalg.matrix_norm(u @ u.conj().T - eye, 2).item()}
