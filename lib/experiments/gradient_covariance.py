"""Balduzzi et al. 2017, §3 in real networks: the gradient's variance and the covariance of two
inputs' gradients, measured by Monte Carlo over random networks of every family the theorems are
about, beside the paper's prediction (Thms 1-3, Cor. 1), the path-sum model with measured
statistics, and our mean-field map.

A *family* is ``(name, kind, norm, ab)``: ``kind`` "ff" or "res", ``norm`` "none", "center" or
"bn", and ``ab(L) -> (a, b)`` the skip and branch scales at depth ``L`` (α and β of §3.2-3.4)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..theory import path_sums as PS
from ..theory import shattering as S

Family = tuple[str, str, str, Callable[[int], tuple[float, float]]]


def families(betas) -> list[Family]:
    """§3's networks: feedforward He nets without normalisation, with mean-centring (the
    normalisation of the paper's Figs. 1b and 2a) and with batch norm (Thm 1); resnets with
    ``α = β = 1`` (Thm 2) and ``α = β = 1/√2`` (§3.3); the highway net with ``γ₂² = 1/L``
    (Cor. 1); and batch-normalised resnets with each ``β`` of ``betas`` (Thm 3)."""
    r2 = 1 / math.sqrt(2)
    out: list[Family] = [
        ("feedforward", "ff", "none", lambda L: (1.0, 1.0)),
        ("feedforward + centring", "ff", "center", lambda L: (1.0, 1.0)),
        ("feedforward + BN", "ff", "bn", lambda L: (1.0, 1.0)),
        ("resnet a = b = 1", "res", "none", lambda L: (1.0, 1.0)),
        ("resnet a = b = 1/sqrt2", "res", "none", lambda L: (r2, r2)),
        ("highway g2^2 = 1/L", "res", "none", lambda L: (math.sqrt(1 - 1 / L), math.sqrt(1 / L)))]
    return out + [(f"BN resnet beta = {b_:g}", "res", "bn", (lambda b_: lambda L: (1.0, b_))(b_)) for b_ in betas]


def input_pair_correlations(width: int, *, n: int = 400, every: int = 40, generator=None, device=None) -> np.ndarray:
    """A sample of the correlations of two independent Gaussian inputs of norm ``√width`` (about
    ``N(0, 1/width)``): every ``every``-th off-diagonal entry of the Gram matrix of ``n`` of them.
    The mean-field predictions average over it."""
    x = S.gaussian_batch(1, n, width, generator=generator, device=device, dtype=torch.float64)[0]
    return (x @ x.T / width)[~torch.eye(n, dtype=torch.bool, device=x.device)].cpu().numpy()[::every]


def meanfield_prediction(kind: str, norm: str, a: float, b: float, L: int, c0: np.ndarray, batch: int) -> float | None:
    """Our prediction of the gradient correlation: the mean-field map averaged over the input-pair
    correlations ``c0`` (no normalisation: :func:`lib.theory.shattering.meanfield_feedforward`,
    :func:`~lib.theory.shattering.meanfield_resnet`), or Thm 3 with the centred variance and a
    batch of ``batch`` inputs (batch-normalised resnets); ``None`` for normalised feedforward nets."""
    if kind == "ff":
        return float(np.mean([S.meanfield_feedforward(L, c)[1][-1] for c in c0])) if norm == "none" else None
    if norm == "none":
        return float(np.mean([S.meanfield_resnet(L, c, a, b)[2][-1] for c in c0]))
    if norm == "bn":
        v, c = S.bn_resnet_moments_centered(L, b, batch=batch)
        return c / v
    return None


def real_network_moments(fams: list[Family], depths, *, batch: int, width: int, n_networks: int, c0: np.ndarray,
                         generator=None, device=None, dtype=torch.float32, progress: bool = False) -> dict:
    """Every family at every depth: :func:`lib.theory.shattering.gradient_moments` over
    ``n_networks`` networks, each with its own batch of ``batch`` inputs. Returns, keyed by
    ``(name, L)``: ``var``, ``corr`` and their standard errors across networks (``se_var``,
    ``se_corr``, delta method), the paper's ``paper_var`` and ``paper_corr``
    (:func:`lib.theory.path_sums.paper_moments`), the path-sum model with measured statistics
    (``ps_var``, ``ps_corr``, ``se_ps``), our ``ours`` (:func:`meanfield_prediction`), and the
    per-layer activation and co-activation fractions ``act``, ``coact`` with their s.e."""
    results = {}
    for name, kind, norm, ab in fams:
        for L in depths:
            a_, b_ = ab(L)
            r = S.gradient_moments(batch=batch, width=width, n_networks=n_networks, depth=L, kind=kind, norm=norm, a=a_,
                                   b=b_, generator=generator, device=device, dtype=dtype, progress=progress,
                                   desc=f"{name}, L = {L}")
            E = n_networks
            corr, se_corr = S.ratio_and_se(r["cov"], r["var"])
            pv, pc = PS.paper_moments(kind, norm, a_, b_, L)
            results[name, L] = dict(var=r["var"].mean(), se_var=r["var"].std(ddof=1) / math.sqrt(E), corr=corr,
                                    se_corr=se_corr, paper_var=pv, paper_corr=pc / pv, ps_var=r["pred_var"].mean(),
                                    ps_corr=r["pred_cov"].mean() / r["pred_var"].mean(),
                                    se_ps=(r["var"] - r["pred_var"]).std(ddof=1) / math.sqrt(E),
                                    ours=meanfield_prediction(kind, norm, a_, b_, L, c0, batch), act=r["act"].mean(0),
                                    coact=r["coact"].mean(0), se_act=r["act"].std(0, ddof=1) / math.sqrt(E),
                                    se_coact=r["coact"].std(0, ddof=1) / math.sqrt(E))
    return results


def per_layer(results: dict, name: str, what: str, depths) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """Per-layer factors ``q^(1/L)`` of the measured and the paper's ``what`` ("var" or "corr") of
    family ``name`` at ``depths``, and the delta-method s.e. of the measured factor: ``(depths,
    measured, paper, se)``. The theorems are about a constant per layer, and per-layer factors make
    the tolerances depth-free."""
    ds = list(depths)
    m = np.array([results[name, L][what] for L in ds])
    se = np.array([results[name, L]["se_" + what] for L in ds])
    p = np.array([results[name, L]["paper_" + what] for L in ds])
    Ls = np.array(ds, dtype=float)
    f = np.abs(m) ** (1 / Ls) * np.sign(m)
    return ds, f, p ** (1 / Ls), f * se / np.abs(m) / Ls


def per_layer_comparison(results: dict, name: str, what: str, depths, *, allow: tuple[float, str] = (0.0, ""),
                         resolved_only: bool = False, above: bool = False, n_se: float = 4.0) -> dict:
    """The per-layer factors of family ``name`` against the paper's, as the keyword arguments of
    ``lib.check``: ``measured`` (the factors ``q^(1/L)``), ``expected`` (the paper's), ``se``, ``tol``
    and a ``note`` naming depths and factors (:func:`per_layer`).

    The tolerance is ``n_se`` standard errors plus ``allow = (size, why)``, the first finite-size
    correction the paper's idealisation leaves out (``1/N`` for the width, ``1/M`` for the batch).
    ``resolved_only`` drops the depths where ``what`` is not above ``n_se`` of its standard errors
    (the factor of an unresolved moment is noise). ``above`` turns the comparison into the one-sided
    claim that every factor exceeds the paper's by more than ``n_se`` s.e. (``relation="ge"``)."""
    if resolved_only:
        depths = [L for L in depths if results[name, L][what] > n_se * results[name, L]["se_" + what]]
    ds, f, fp, se = per_layer(results, name, what, depths)
    note = (f"depths {ds}" + (f" (where it is resolved, > {n_se:g} s.e.)" if resolved_only else "")
            + f": per-layer factors {np.round(f, 4).tolist()} against {np.round(fp, 4).tolist()}")
    if above:
        return dict(measured=f, expected=fp + n_se * se, se=se, tol=0.0, relation="ge",
                    note=note + f"; each above by more than {n_se:g} s.e.")
    size, why = allow
    return dict(measured=f, expected=fp, se=se, tol=n_se * se + size,
                note=note + f"; tolerance {n_se:g} s.e." + (f" + {why}" if why else ""))


@dataclass
class BrownianTest:
    """What :func:`shallow_gradient_brownian` measures."""

    z_cov: float                 # largest |empirical - min(s, t)| / s.e. over the 8 x 8 grid pairs
    kl_var: np.ndarray           # variances of the first five Karhunen-Loeve coefficients (5,)
    kl_se: np.ndarray            # their standard errors across networks (5,)
    kl_exact: np.ndarray         # 1 / ((k - 1/2)^2 pi^2), k = 1..5
    kl_discretised: np.ndarray   # the same variances of min(s, t) on the midpoint grid (the discretisation's value)
    n_networks: int


def shallow_gradient_brownian(M: int, n_networks: int, N: int, *, generator=None, device=None) -> BrownianTest:
    """Prop. A1: the gradient of the one-hidden-layer net (:func:`lib.theory.shattering.shallow_gradients`,
    biases ``N(0, 1/N)``) at ``x = Φ⁻¹(t)/√N`` is, in ``t``, a Brownian motion: covariance ``min(s, t)``
    and Karhunen-Loeve variances ``1/((k - ½)² π²)``. ``M`` midpoints ``t = (i + ½)/M``, float64;
    the covariance is compared on 8 of them, the variances of the first five KL coefficients by
    the midpoint rule."""
    from scipy.stats import norm

    f64 = torch.float64
    t = (torch.arange(M, device=device, dtype=f64) + 0.5) / M
    x = torch.tensor(norm.ppf(t.cpu().numpy()) / math.sqrt(N), device=device, dtype=f64)
    G, _, _ = S.shallow_gradients(x, n_networks, N, generator=generator)
    idx = torch.linspace(0, M - 1, 8, device=device).long()
    sub = G[:, idx]
    prod = sub[:, :, None] * sub[:, None, :]
    emp, se_emp = prod.mean(0), prod.std(0) / math.sqrt(n_networks)
    z_cov = ((emp - torch.minimum(t[idx][:, None], t[idx][None, :])).abs() / se_emp).max().item()
    modes = torch.stack([math.sqrt(2) * torch.sin((k - 0.5) * math.pi * t) for k in range(1, 6)])   # (5, M)
    F = G @ modes.T / M                                                                          # (E, 5)
    K = torch.minimum(t[:, None], t[None, :])
    return BrownianTest(z_cov, (F ** 2).mean(0).cpu().numpy(), (F ** 2).std(0).cpu().numpy() / math.sqrt(n_networks),
                        S.brownian_kl_eigenvalues(5), ((modes @ K @ modes.T).diagonal() / M ** 2).cpu().numpy(), n_networks)


def lemma_a1_monte_carlo(width: int, depth: int, n_samples: int, *, p_active: float = 0.6, generator=None,
                         device=None) -> tuple[list[dict], float]:
    """App. A3.1, Lemma A1 by Monte Carlo: over ``n_samples`` weight tensors of ``depth - 1``
    ``width × width`` He layers (float64), the mean, variance and covariance of the path sums
    :func:`lib.theory.path_sums.path_sum` of two activation configurations, against the model's 0,
    ``|A ∩ A| σ^{2(L-1)}`` and ``|A ∩ B| σ^{2(L-1)}`` (:func:`lib.theory.path_sums.coactive_paths`).
    Two pairs of "typical" configurations (:func:`lib.theory.path_sums.typical_configurations`) and
    two of random ones (each unit active with probability ``p_active``), drawn in that order.
    Returns one row per estimate (configuration, moment, model, Monte Carlo mean, its standard
    error) and the largest ``|mean - model| / s.e.``."""
    f64 = torch.float64
    sig2 = 2.0 / width
    W = torch.randn(n_samples, depth - 1, width, width, generator=generator, device=device, dtype=f64) * math.sqrt(sig2)
    rows, zs = [], []
    for label in ("typical", "typical", "random", "random"):
        if label == "typical":
            seed = int(torch.randint(1 << 30, (1,), generator=generator, device=device))
            A, B = PS.typical_configurations(width, depth, generator=torch.Generator().manual_seed(seed))
            A, B = A.to(device, f64), B.to(device, f64)
        else:
            A = (torch.rand(width, depth, generator=generator, device=device) < p_active).to(f64)
            B = (torch.rand(width, depth, generator=generator, device=device) < p_active).to(f64)
        pa, pb = PS.path_sum(A, W), PS.path_sum(B, W)
        for what, prod, exact in (("mean", pa, 0.0), ("var", pa * pa, PS.coactive_paths(A, A).item() * sig2 ** (depth - 1)),
                                  ("cov", pa * pb, PS.coactive_paths(A, B).item() * sig2 ** (depth - 1))):
            m, se = prod.mean().item(), prod.std().item() / math.sqrt(n_samples)
            zs.append(abs(m - exact) / se)
            rows.append({"configuration": label, "moment": what, "model": exact, "Monte Carlo": m, "s.e.": se})
    return rows, max(zs)


def lemma_a2_three_ways(width: int, depth: int, *, generator=None, device=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """App. A3.1, Lemma A2 on one tiny random He ReLU net (``depth`` layers of ``width`` units,
    float64, redrawn until no input gradient is exactly zero): the gradient of the output with
    respect to each input by autograd, by the path sum :func:`lib.theory.path_sums.path_sum` of the
    net's activation configuration, and by listing every path. Returns the three ``(width,)``."""
    f64 = torch.float64
    g_auto = torch.zeros(width)
    while (g_auto == 0).any():          # a tiny random ReLU net is often dead somewhere: redraw until it is not
        W = torch.randn(1, depth, width, width, generator=generator, device=device, dtype=f64) * math.sqrt(2 / width)
        x = torch.randn(1, width, generator=generator, device=device, dtype=f64)
        _, acts, _ = S.chain(x, W, kind="ff", record=True)
        g_auto = S.ensemble_input_gradients(x, W, kind="ff")[0, 0]
    A = torch.cat([torch.zeros(width, 1, device=device, dtype=f64), acts[0, :, 0, :].T.to(f64)], 1)
    g_paths, g_list = [], []
    for i in range(width):
        Ai = A.clone()
        Ai[i, 0] = 1
        g_paths.append(PS.path_sum(Ai, W).item())
        g_list.append(sum(math.prod(W[0, l, p[l], p[l + 1]].item() for l in range(depth))
                          for p in itertools.product(range(width), repeat=depth + 1)
                          if p[0] == i and all(Ai[p[l], l] > 0 for l in range(depth + 1))))
    return g_auto.cpu().numpy(), np.array(g_paths), np.array(g_list)


def grid_gradients_of_random_nets(grid: torch.Tensor, kind: str, depth: int, n_networks: int, width: int, *, norm: str,
                                  b: float = 1.0, generator=None, device=None, dtype=torch.float32) -> torch.Tensor:
    """§1-2 (Figs. 1-2): the gradients over the 1-D ``grid`` (``(M,)``) of ``n_networks`` random He
    nets of ``depth`` layers of ``width`` units with a Gaussian read-out
    (:func:`lib.theory.shattering.grid_gradients`; weights, read-out and the grid pass draw from
    ``generator`` in that order): ``(n_networks, M)``."""
    W = S.he_weights(n_networks, depth, width, generator=generator, device=device, dtype=dtype)
    w = torch.randn(n_networks, width, generator=generator, device=device, dtype=dtype)
    return S.grid_gradients(grid, W, generator=generator, kind=kind, norm=norm, b=b, readout=w)


def autocorrelation_by_depth(grid: torch.Tensor, fams: dict, depths, max_lag: int, *, n_networks: int, width: int,
                             generator=None, device=None, dtype=torch.float32) -> tuple[dict, dict]:
    """§2, Fig. 2: for every family ``{name: (kind, norm, β)}`` and depth, the autocorrelation of
    the grid gradients of :func:`grid_gradients_of_random_nets` up to ``max_lag``, averaged over the
    networks (``acf[name, L]``), and its lag-1 value's mean and standard error over the networks
    (``lag1[name, L]``)."""
    acf, lag1 = {}, {}
    for fam, (kind, norm, b) in fams.items():
        for L in depths:
            a = S.autocorrelation(grid_gradients_of_random_nets(grid, kind, L, n_networks, width, norm=norm, b=b,
                                                                generator=generator, device=device, dtype=dtype), max_lag)
            acf[fam, L] = a.mean(0).cpu().numpy()
            lag1[fam, L] = (a[:, 1].mean().item(), a[:, 1].std().item() / math.sqrt(n_networks))
    return acf, lag1


def bn_resnet_per_layer(results: dict, betas, depths, *, batch: int) -> dict[str, tuple[np.ndarray, ...]]:
    """Theorem 3 in real batch-normalised resnets, corrected (beyond the paper): for ``"var"`` and
    ``"corr"``, over every ``(β, L)`` of ``betas × depths``, the per-layer factors ``q^(1/L)`` of
    the measured moment (``results["BN resnet beta = β", L]``, :func:`real_network_moments`), their
    delta-method standard errors, the factors of the centred-variance, finite-batch product
    (:func:`lib.theory.shattering.bn_resnet_moments_centered` with ``batch``) and the paper's:
    ``{"var": (measured, se, ours, paper), "corr": (...)}``. Also ``"ours"``: ``(β, L)`` -> that
    product's (variance, covariance)."""
    cells = [(b, L, results[f"BN resnet beta = {b:g}", L]) for b in betas for L in depths]
    ours = {(b, L): S.bn_resnet_moments_centered(L, b, batch=batch) for b, L, _ in cells}
    Ls = np.array([L for _, L, _ in cells], dtype=float)
    out: dict = {"ours": ours}
    for key in ("var", "corr"):
        m = np.array([q[key] for _, _, q in cells])
        o = np.array([ours[b, L][0] if key == "var" else ours[b, L][1] / ours[b, L][0] for b, L, _ in cells])
        f = m ** (1 / Ls)
        se = f * np.array([q["se_" + key] for _, _, q in cells]) / m / Ls
        out[key] = (f, se, o ** (1 / Ls), np.array([q["paper_" + key] for _, _, q in cells]) ** (1 / Ls))
    return out


def corrected_comparison(factors: tuple[np.ndarray, ...], *, allow: tuple[float, str], n_se: float = 4.0) -> dict:
    """One moment of :func:`bn_resnet_per_layer` (``(measured, se, ours, paper)`` per-layer factors)
    as the keyword arguments of ``lib.check``: the measured factors against the corrected product's,
    ``n_se`` s.e. plus ``allow = (size, why)`` apart at most, with the paper's factors as
    ``paper_value`` (outcome "confirmed with a correction") and a note giving both largest gaps."""
    f, se, ours, paper = factors
    size, why = allow
    return dict(measured=f, expected=ours, se=se, tol=n_se * se + size, outcome="confirmed with a correction",
                paper_value=paper.tolist(),
                note=f"{len(f)} (beta, depth) cells; largest |measured - ours| per layer {np.max(np.abs(f - ours)):.2g}, "
                     f"|measured - paper| {np.max(np.abs(f - paper)):.2g}; tolerance {n_se:g} s.e. + {why}")


def adjacent_differences(results: dict, names, depths, what: str = "corr") -> list[tuple[float, float]]:
    """Orderings along a list of families: at each depth, ``results[a, L][what] − results[b, L][what]``
    for every adjacent pair ``(a, b)`` of ``names``, with its standard error (independent
    estimates: the root sum of squares of the two): ``[(difference, se), …]``."""
    out = []
    for L in depths:
        qs = [results[n, L] for n in names]
        out += [(q1[what] - q2[what], math.hypot(q1["se_" + what], q2["se_" + what])) for q1, q2 in zip(qs, qs[1:])]
    return out


def fig1_gradients(grid: torch.Tensor, *, width: int, n_networks: int, seed: int, generator=None, device=None) -> dict[str, torch.Tensor]:
    """§1, Fig. 1: gradients over the 1-D ``grid`` of ``n_networks`` networks each -- a shallow net
    with ``N(0, 1)`` biases, a 24-layer centred feedforward net, a 50-layer batch-normalised resnet
    with β = 0.1 (drawn from ``generator`` in that order) -- beside brown and white noise of the
    same length (seeded from ``seed`` and ``seed + 1``): name -> ``(n_networks, len(grid))``."""
    M = grid.shape[0]
    shallow, _, _ = S.shallow_gradients(grid, n_networks, width, bias_std=1.0, generator=generator)
    kw = dict(width=width, generator=generator, device=device)
    return {"shallow (b ~ N(0,1))": shallow,
            "feedforward, 24 layers": grid_gradients_of_random_nets(grid, "ff", 24, n_networks, norm="center", **kw),
            "resnet, 50 layers, beta = 0.1": grid_gradients_of_random_nets(grid, "res", 50, n_networks, norm="bn", b=0.1, **kw),
            "brown noise": S.brown_noise(n_networks, M, generator=torch.Generator().manual_seed(seed)).to(grid.dtype),
            "white noise": S.white_noise(n_networks, M, generator=torch.Generator().manual_seed(seed + 1)).to(grid.dtype)}


def moments_table(results: dict) -> list[dict[str, str]]:
    """The rows of the real-network table of :func:`real_network_moments`: per (family, depth) the
    measured variance and correlation with their standard errors beside the paper's value, the
    path-sum model with measured statistics and (where there is one) our own prediction."""
    return [{"architecture": name, "L": L,
             "variance: measured · paper · path-sum*": f"{q['var']:.4g} ± {q['se_var']:.2g} · {q['paper_var']:.4g} · {q['ps_var']:.4g}",
             "correlation: measured · paper · path-sum* · ours": f"{q['corr']:.4f} ± {q['se_corr']:.2g} · {q['paper_corr']:.4f} · "
             f"{q['ps_corr']:.4f}" + ("" if q["ours"] is None else f" · {q['ours']:.4f}")} for (name, L), q in results.items()]


def reference_autocorrelations(panels: dict, max_lag: int) -> dict[str, np.ndarray]:
    """Fig. 2's references: the autocorrelation up to ``max_lag`` of white noise, brown noise and the
    shallow net's gradients of :func:`fig1_gradients`, averaged over their rows."""
    names = {"white": "white noise", "brown": "brown noise", "shallow": "shallow (b ~ N(0,1))"}
    return {k: S.autocorrelation(panels[n], max_lag).mean(0).cpu().numpy() for k, n in names.items()}
