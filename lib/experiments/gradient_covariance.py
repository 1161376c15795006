"""Balduzzi et al. 2017, §3 in real networks: the gradient's variance and the covariance of two
inputs' gradients, measured by Monte Carlo over random networks of every family the theorems are
about, beside the paper's prediction (Thms 1-3, Cor. 1), the path-sum model with measured
statistics, and our mean-field map.

A *family* is ``(name, kind, norm, ab)``: ``kind`` "ff" or "res", ``norm`` "none", "center" or
"bn", and ``ab(L) -> (a, b)`` the skip and branch scales at depth ``L`` (α and β of §3.2-3.4)."""

from __future__ import annotations

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
