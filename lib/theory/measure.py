"""Measurements shared by several chapters: Jacobians and gradients through ``torch.func``,
the quadratic-mean (qm) norm, quadratic expectation and the gradient scale coefficient.

Definitions follow Philipp, Song & Carbonell (2018), §2: the quadratic expectation
``Q[X] = E[X²]^{1/2}``; the qm norm of an ``m × n`` matrix (Definition 1)
``‖A‖_qm = (Σ_i s_i² / n)^{1/2} = Q_u ‖A u‖₂`` over uniform unit ``u``, so that
``√n ‖A‖_qm = ‖A‖_F``; and the gradient scale coefficient (Definition 2)
printed as ``GSC(k, l) = ‖J_k^l‖_qm² ‖f_k‖₂² / ‖f_l‖₂²``, while Propositions 2, 4, 5 (§E) and the
§I.2 protocol all use the unsquared ratio ``‖J_k^l‖_qm ‖f_k‖₂ / ‖f_l‖₂``. We use the unsquared
form throughout (:func:`gsc`); every statement of the book about rates holds for either form with
the rate squared. Layers are indexed as in the paper: ``f_0`` is the error, larger indices are
closer to the input, ``J_k^l = d f_l / d f_k``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor
from torch.func import jacrev, vjp, vmap


def quadratic_expectation(x: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    """``Q[X] = E[X²]^{1/2}`` along ``dim`` (all dims when None). Philipp et al. §2."""
    x2 = x.pow(2)
    return (x2.mean() if dim is None else x2.mean(dim=dim)).sqrt()


def qm_norm(a: Tensor) -> Tensor:
    """qm norm of the matrices in the last two dims of ``a`` (Philipp et al. Definition 1):
    ``‖A‖_F / √n`` with ``n`` the right (input) dimension. Shape ``(..., m, n) -> (...)``."""
    return torch.linalg.matrix_norm(a, ord="fro") / a.shape[-1] ** 0.5


def qm_norm_svd(a: Tensor) -> Tensor:
    """The same norm from the definition: quadratic mean of the singular values over ``n``."""
    s = torch.linalg.svdvals(a)
    return (s.pow(2).sum(-1) / a.shape[-1]).sqrt()


def spectral_norms(a: Tensor, method: str = "auto", squarings: int = 16) -> Tensor:
    """Largest singular value ``‖A‖₂`` of every matrix in the last two dims of ``a (..., m, n)``.

    ``method="svd"``: LAPACK's singular values (``torch.linalg.matrix_norm(a, ord=2)``).
    ``method="squaring"``: the Gram matrix ``G`` (``AᵀA`` or ``AAᵀ``, the smaller) in float64, squared
    ``squarings`` times with a Frobenius normalisation each time, so that its columns lie in the top
    eigenspace up to a weight ``(σ₂/σ₁)^(2^(squarings+1))``; ``‖A‖₂²`` is then the Rayleigh
    quotient of ``G`` at the column of largest norm. The quotient is a lower bound whose error is
    quadratic in the column's error, and where ``σ₂`` is so close to ``σ₁`` that the weight stays
    large, mixing costs at most ``σ₁ - σ₂``; the unit test holds it to ``svdvals``. It exists for
    the GPU, where an SVD is one solver call per matrix (about 0.5 s per training step of Philipp et
    al.'s 51-layer ensembles, §D.2), while squaring is ``squarings`` batched products.
    ``method="auto"``: squaring on CUDA, the SVD elsewhere (so CPU runs keep LAPACK's values)."""
    if method == "auto":
        method = "squaring" if a.device.type == "cuda" else "svd"
    if method == "svd":
        return torch.linalg.matrix_norm(a, ord=2)
    if method != "squaring":
        raise ValueError(f"method={method!r}: use 'auto', 'svd' or 'squaring'")
    a64 = a.to(torch.float64)
    g = a64.mT @ a64 if a.shape[-1] <= a.shape[-2] else a64 @ a64.mT
    tiny = torch.finfo(torch.float64).tiny
    m = g
    for _ in range(squarings):
        m = m / torch.linalg.matrix_norm(m).clamp_min(tiny)[..., None, None]
        m = m @ m
    col = m.norm(dim=-2).argmax(-1)                                  # the column of largest norm
    v = torch.take_along_dim(m, col[..., None, None], dim=-1).squeeze(-1)
    rq = (v * (g @ v.unsqueeze(-1)).squeeze(-1)).sum(-1) / (v * v).sum(-1).clamp_min(tiny)
    return rq.clamp_min(0).sqrt().to(a.dtype)


def random_unit_vectors(n_vec: int, dim: int, *, generator=None, device=None, dtype=torch.float64) -> Tensor:
    """``n_vec`` independent uniform unit vectors in R^dim (normalised Gaussians), ``(n_vec, dim)``."""
    u = torch.randn(n_vec, dim, generator=generator, device=device, dtype=dtype)
    return u / u.norm(dim=-1, keepdim=True)


def qm_norm_probes(a: Tensor, u: Tensor) -> Tensor:
    """Per-probe squared lengths ``‖A u_j‖²`` for probes ``u`` of shape ``(P, n)``; their mean is an
    unbiased estimate of ``‖A‖_qm²`` (Philipp et al. Definition 1, second form). Returns ``(..., P)``."""
    return torch.matmul(a, u.T).pow(2).sum(-2)


def jacobian(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Per-sample Jacobians of ``fn: (d_in,) -> (d_out,)`` at every row of ``x`` ``(B, d_in)``:
    ``(B, d_out, d_in)`` via ``vmap(jacrev(fn))``."""
    return vmap(jacrev(fn))(x)


def ensemble_input_jacobian(net: torch.nn.Module, x: Tensor) -> Tensor:
    """Input-output Jacobians of every network of an ensemble at every sample.

    ``x`` is ``(B, d_in)`` or ``(E, B, d_in)``; returns ``(E, B, d_out, d_in)``. One ``vjp`` of the
    batched forward pass is pulled back along each output coordinate with ``vmap``; this equals
    the per-sample Jacobian because samples and networks do not interact -- so batch
    normalisation (which couples samples) is refused.
    """
    if getattr(net.arch, "norm", "none") == "batch":
        raise ValueError("per-sample input Jacobians are not defined under batch normalisation (the batch couples samples)")
    x = x.expand(net.E, *x.shape[-2:]) if x.dim() == 2 else x
    out, pull = vjp(net, x)
    d_out = out.shape[-1]
    basis = torch.eye(d_out, dtype=out.dtype, device=out.device)
    cot = basis[:, None, None, :].expand(d_out, *out.shape)
    (jt,) = vmap(pull)(cot)  # (d_out, E, B, d_in)
    return jt.permute(1, 2, 0, 3)


def trace_grads(loss: Tensor, tensors: Sequence[Tensor], retain_graph: bool = False) -> list[Tensor]:
    """Gradients of a scalar ``loss`` with respect to recorded intermediate tensors (e.g. a
    :class:`lib.nets.models.Trace`'s ``hidden`` or ``pre`` lists): the gradient flowing into each layer."""
    return list(torch.autograd.grad(loss, list(tensors), retain_graph=retain_graph))


def dot_error(out: Tensor, y: Tensor) -> Tensor:
    """Philipp et al. §I.1 dot-product error layer ``f_0 = f_1 · y``, per sample: ``(E, B)``."""
    return (out * y).sum(-1)


def gsc(net: torch.nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Expected gradient scale coefficient ``GSC(l, 0)`` at every representation ``x_l`` of the
    network (stem output, block outputs) and at the output, per Philipp et al. §I.2:
    ``Q_D ‖J_l^0‖_qm · Q_D ‖f_l‖₂ / Q_D |f_0|`` with the dot-product error ``f_0 = f_1 · y``.

    ``J_l^0`` is the gradient of the per-sample error with respect to ``f_l``, a ``1 × d_l``
    matrix, so ``‖J_l^0‖_qm = ‖g_l‖₂ / √d_l``. With batch norm the batch is the whole of ``x`` and
    the gradient includes the (small) dependence through the batch statistics, as in the paper.
    Returns ``(E, depth + 2)``: one column per ``x_1 … x_{depth+1}`` and a last one for the output.
    """
    out, tr = net(x, trace=True)
    f0 = dot_error(out, y)
    layers = tr.hidden + [out]
    grads = trace_grads(f0.sum(), layers)
    cols = []
    for f, g in zip(layers, grads):
        jq = quadratic_expectation(g.norm(dim=-1) / g.shape[-1] ** 0.5, dim=1)
        fq = quadratic_expectation(f.norm(dim=-1), dim=1)
        cols.append(jq * fq / quadratic_expectation(f0, dim=1))
    return torch.stack(cols, dim=-1).detach()


@torch.no_grad()
def zero_response_probability(net: torch.nn.Module, x: Tensor, chunk: int = 2048) -> Tensor:
    """Orhan & Pitkow §2.7, Fig. 7b: the probability that a hidden unit's response is exactly
    zero, averaged over all hidden units (every nonlinearity of ``net``, a :class:`lib.nets.models.Net`
    ensemble) and all inputs ``x`` (``(B, d)``), per member: shape ``(E,)``. Inputs are taken in
    chunks of ``chunk`` so that the trace of a deep net fits in memory."""
    zeros, count = None, 0
    for i in range(0, x.shape[-2], chunk):
        _, tr = net(x[..., i:i + chunk, :], trace=True)
        z = sum((a == 0).sum(dim=(-2, -1)).to(torch.float64) for a in tr.act)
        zeros = z if zeros is None else zeros + z
        count += sum(a.shape[-2] * a.shape[-1] for a in tr.act)
    return zeros / count
