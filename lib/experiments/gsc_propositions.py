"""Monte Carlo checks of Philipp et al.'s propositions about the GSC that are not tables: Prop. 2
(the GSC is the response to random relative changes of a layer), the second part of Prop. 3 (the
weight-change factor of a randomly initialised layer has inverse quadratic expectation 1) and
Prop. 7 (dilution of a composition of diluted blocks). Each returns what it measured beside what
the proposition predicts; the chapter states the tolerance."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..nets import data
from ..theory import dilution as D
from ..theory.ensembles import haar_orthogonal
from ..theory.measure import qm_norm, random_unit_vectors


def prop2_finite_differences(arch: "D.TableArch", *, weights_generator: torch.Generator, points_generator: torch.Generator,
                             directions_generator: torch.Generator, n_points: int = 8, n_directions: int = 4000,
                             eps: float = 1e-5, device=None, dtype=torch.float64) -> dict:
    """Prop. 2 (§E.2) in one random net of ``arch`` (weights from ``weights_generator``) at
    ``n_points`` Gaussian-noise inputs (``points_generator``): perturb the lowest layer ``f_L`` to
    ``f_L ± eps‖f_L‖u`` along ``n_directions`` uniform unit vectors ``u`` (central differences,
    the same directions for every target layer) and compare the quadratic mean of the relative
    change of ``f_l`` per ``eps`` with the exact ``GSC(L, l)`` from ``torch.func.jacrev``, for
    ``f_l`` the middle and the top layer. Returns ``exact`` (top operation index -> ``(n_points,)``
    GSCs) and ``worst_z``, the largest ``|estimate − exact| / s.e.`` over the (point, layer) pairs
    (the s.e. of the root of a mean by the delta method)."""
    ops = D.program(arch)
    ws = [w[0] for w in D.init_weights(arch, 1, generator=weights_generator, device=device, dtype=dtype)[0]]
    xs, _ = data.gaussian_noise(1, n_points, arch.d, arch.d, generator=points_generator, device=device, dtype=dtype)
    f_low = D.run_program(arch, ops, ws, xs[0], stop=1)
    start_state = directions_generator.get_state()
    exact, worst = {}, 0.0
    for top in (len(ops) // 2, len(ops)):
        up = lambda h, top=top: D.run_program(arch, ops, ws, h, start=1, stop=top)  # noqa: E731
        J = torch.func.vmap(torch.func.jacrev(up))(f_low)                        # (points, d_top, d)
        ex = (qm_norm(J) * f_low.norm(dim=-1) / up(f_low).norm(dim=-1)).cpu().numpy()
        directions_generator.set_state(start_state)
        u = random_unit_vectors(n_directions, arch.d, generator=directions_generator, device=device, dtype=dtype)
        for i in range(n_points):
            step = eps * f_low[i].norm() * u
            rel = ((up(f_low[i] + step) - up(f_low[i] - step)) / 2).norm(dim=-1).div(up(f_low[i]).norm() * eps).pow(2)
            se = rel.std().item() / math.sqrt(n_directions) / (2 * ex[i])
            worst = max(worst, abs(rel.mean().sqrt().item() - ex[i]) / se)
        exact[top] = ex
    return {"exact": exact, "worst_z": worst}


def prop3_inverse_factors(width: int, n_matrices: int, *, generator: torch.Generator, device=None) -> dict[str, np.ndarray]:
    """Prop. 3, second part (§E.3): ``X⁻²`` for ``n_matrices`` random layers ``θ``, each with its
    own input ``f = tanh(z)``, ``z`` standard Gaussian in ``R^width``
    (:func:`lib.theory.dilution.prop3_inverse_factor`), for Gaussian ``width × width`` matrices of
    variance ``1/width`` and Haar-orthogonal ``width/2 × width`` ones (a square or tall orthogonal
    matrix would give ``X = 1`` identically). The proposition says ``E X⁻² = 1`` for both. All draws
    come from ``generator`` in that order (inputs, Gaussian, orthogonal)."""
    f_in = torch.tanh(torch.randn(n_matrices, width, generator=generator, device=device, dtype=torch.float64))
    gauss = torch.randn(n_matrices, width, width, generator=generator, device=device, dtype=torch.float64) / math.sqrt(width)
    out = {"gaussian": D.prop3_inverse_factor(gauss, f_in)}
    out["orthogonal"] = D.prop3_inverse_factor(haar_orthogonal(n_matrices, width // 2, width, generator=generator, device=device), f_in)
    return {k: v.cpu().numpy() for k, v in out.items()}


def prop7_composition(scales, *, d: int, n_compositions: int, n_batches: int, generator: torch.Generator, device=None) -> dict:
    """Prop. 7 (§7.1, App. E.7) by Monte Carlo: compositions of ``len(scales)`` blocks
    ``f_b(v) = S_b v + c_b W₂ relu(W₁ v)`` with Haar-orthogonal ``S_b`` and Gaussian ``W₁`` (variance
    ``2/d``) and ``W₂`` (variance ``1/d``), fresh for every composition, applied to uniform unit
    inputs in ``R^d``. Per batch of ``n_compositions / n_batches`` compositions: the measured
    dilution of the whole composition (quadratic mean of its linear part over that of the rest),
    the proposition's prediction from the blocks' measured dilutions ``k_b``
    (:func:`lib.theory.dilution.composed_dilution`), and the ``k_b``. Returns ``measured``,
    ``predicted`` (batch means), ``se`` (batch-means standard error of their difference) and
    ``k_blocks`` (mean per block)."""
    rows = []
    for _ in range(n_batches):
        u = random_unit_vectors(n_compositions // n_batches, d, generator=generator, device=device, dtype=torch.float64)
        h, linear, ks = u, u, []
        n = u.shape[0]
        for c in scales:
            S = haar_orthogonal(n, d, d, generator=generator, device=device)
            W1 = torch.randn(n, d, d, generator=generator, device=device, dtype=torch.float64) * math.sqrt(2 / d)
            W2 = torch.randn(n, d, d, generator=generator, device=device, dtype=torch.float64) / math.sqrt(d)
            rho = c * torch.einsum("nij,nj->ni", W2, torch.relu(torch.einsum("nij,nj->ni", W1, h)))
            Sh = torch.einsum("nij,nj->ni", S, h)
            ks.append((Sh.pow(2).sum(-1).mean() / rho.pow(2).sum(-1).mean()).sqrt().item())
            h = Sh + rho
            linear = torch.einsum("nij,nj->ni", S, linear)
        k_total = (linear.pow(2).sum(-1).mean() / (h - linear).pow(2).sum(-1).mean()).sqrt().item()
        rows.append((k_total, D.composed_dilution(ks), *ks))
    rows = np.array(rows)
    return {"measured": rows[:, 0].mean(), "predicted": rows[:, 1].mean(),
            "se": (rows[:, 0] - rows[:, 1]).std(ddof=1) / math.sqrt(n_batches), "k_blocks": rows[:, 2:].mean(0)}


def prop3_weight_sensitivities(arch: "D.TableArch", *, weights_generator: torch.Generator, points_generator: torch.Generator,
                               n_points: int = 8, layers=(1, 6, 11), device=None) -> list[dict[str, float]]:
    """Prop. 3, first part (§E.3), in one random net of ``arch`` (float64) at ``n_points``
    Gaussian-noise inputs: for each input and weight matrix in ``layers``,
    :func:`lib.theory.dilution.weight_sensitivity` (``direct``: the quadratic-mean relative output
    change per relative random weight change, from the Jacobian with respect to the weights;
    ``gsc_form``: the proposition's expression, from the Jacobian with respect to the activation).
    Weights are drawn from ``weights_generator``, inputs from ``points_generator``."""
    ws = [w[0] for w in D.init_weights(arch, 1, generator=weights_generator, device=device, dtype=torch.float64)[0]]
    xs, _ = data.gaussian_noise(1, n_points, arch.d, arch.d, generator=points_generator, device=device, dtype=torch.float64)
    return [D.weight_sensitivity(arch, ws, xs[0, i], layer) for i in range(n_points) for layer in layers]
