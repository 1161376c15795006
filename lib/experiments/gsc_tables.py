"""Philipp et al.'s tables of the gradient scale coefficient measured: Table 1 (§I.2) and Table 3
(§B.1.2) passes over Gaussian-noise datasets, one random network per dataset, batched over the
datasets. The networks and the measurements are :mod:`lib.theory.dilution`'s."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..nets.data import gaussian_noise
from ..theory.dilution import (TABLE1, TABLE3, TableArch, block_dilution, init_weights, metrics,
                               table3_network, undiluted_rate)


def table1(rows, *, depth: int, d: int, n_datasets: int, n_points: int, generator: torch.Generator | None = None,
           device=None, dtype=torch.float32, chunk: int | None = None, progress: bool = False) -> tuple[dict, dict]:
    """Philipp et al. §I.2 / Table 1: for each row key ``(nonlin, norm, matrix, skip, width)`` draw
    ``n_datasets`` Gaussian-noise datasets of ``n_points`` points (dimension ``d``), one random
    network of ``depth`` linear layers per dataset, and measure :func:`metrics` (``chunk`` networks
    per pass). Returns ``(summary, profiles)``: per row the chapter's summary -- ``gsc``, ``se_gsc``,
    ``sd_gsc`` (mean, standard error, s.d. of GSC(L, 0) across datasets), ``log_gsc``, ``se_log``,
    ``sd_log`` (the same for log GSC), ``std``/``se_std`` and ``sign``/``se_sign`` (the highest
    nonlinearity layer's pre-activation st. dev. and sign diversity), ``sign_all`` (per dataset),
    ``paper`` (the printed row as floats, or None) -- and per row the layer profiles
    ``(mean GSC(l, 0) per layer, layer kinds, mean st. dev., mean sign diversity)``. ``chunk``
    defaults to :func:`~lib.theory.dilution.ensemble_chunk`."""
    from tqdm import tqdm

    summary, profiles = {}, {}
    for key in tqdm(list(rows), desc="Table 1 rows", disable=not progress, leave=False, mininterval=2.0):
        arch = TableArch(*key, depth=depth, d=d)
        x, y = gaussian_noise(n_datasets, n_points, d, d, generator=generator, device=device, dtype=dtype)
        ws, sk = init_weights(arch, n_datasets, generator=generator, device=device, dtype=dtype)
        m = metrics(arch, ws, sk, x, y, chunk=chunk)
        gL, st, sg = (m[f][:, i].double().cpu().numpy() for f, i in (("gsc", 0), ("std", -1), ("sign", -1)))
        lg, rt = np.log(gL), math.sqrt(n_datasets)
        summary[key] = dict(label=arch.label, gsc=gL.mean(), se_gsc=gL.std(ddof=1) / rt, sd_gsc=gL.std(ddof=1),
                            log_gsc=lg.mean(), se_log=lg.std(ddof=1) / rt, sd_log=lg.std(ddof=1),
                            std=st.mean(), se_std=st.std(ddof=1) / rt, sign=sg.mean(), se_sign=sg.std(ddof=1) / rt, sign_all=sg,
                            paper=tuple(map(float, TABLE1[key])) if key in TABLE1 else None)
        profiles[key] = (m["gsc"].double().mean(0).cpu().numpy(), m["kinds"], m["std"].double().mean(0).cpu().numpy(),
                         m["sign"].double().mean(0).cpu().numpy())
    return summary, profiles


def table3(*, depth: int, d: int, n_datasets: int, n_points: int, generator: torch.Generator | None = None,
           device=None, dtype=torch.float32, chunk: int | None = None) -> dict[tuple, dict[str, np.ndarray]]:
    """Table 3 (§B.1.2) measured: for every architecture of :data:`TABLE3`, one network per
    Gaussian-noise dataset (``n_datasets`` of ``n_points`` points, dimension ``d``), per network
    ``log10_gsc`` (GSC(L, 0)), ``log10_corrected`` (the dilution-corrected GSC: the product over
    blocks of the first-order undiluted rates ``1 + (k_b² + 1)(r_b - 1)`` of Fig. 3C, NaN where a
    factor is not positive), ``min_undiluted`` (the smallest such factor) and ``mean_log_k`` (mean
    over blocks of ``ln k_b``)."""
    out = {}
    for key in TABLE3:
        arch, ws, sk = table3_network(*key, depth=depth, d=d, E=n_datasets, generator=generator, device=device, dtype=dtype)
        x, y = gaussian_noise(n_datasets, n_points, d, d, generator=generator, device=device, dtype=dtype)
        gsc = metrics(arch, ws, sk, x, y, chunk=chunk)["gsc"][:, 0].double().cpu().numpy()
        bd = block_dilution(arch, ws, sk, x, y, chunk=chunk)
        und = undiluted_rate(bd["r_block"], bd["k"])
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.where(und.min(-1) > 0, np.log10(np.where(und > 0, und, 1.0)).sum(-1), np.nan)
        out[key] = {"log10_gsc": np.log10(gsc), "log10_corrected": corr, "min_undiluted": und.min(-1),
                    "mean_log_k": np.log(bd["k"]).mean(-1)}
    return out


def layer_positions(kinds) -> np.ndarray:
    """Fig. 1A's abscissa: each operation's position in linear layers from the input (a linear layer
    at an integer, its normalisation a third and its nonlinearity two thirds of the way on)."""
    lin_idx = np.cumsum([k == "linear" for k in kinds])
    return lin_idx - 1 + np.array([{"linear": 0.0, "norm": 0.33, "nonlin": 0.66}.get(k, 0) for k in kinds])


def explosion_rate(gsc_profile, kinds, depth: int) -> tuple[float, float]:
    """Def. 3: the rate ``r`` of a GSC that explodes as ``GSC(l, 0) ≈ c r^(L - l)``, from a least-squares
    fit of ``log GSC`` at the linear layers against their distance from the error, and the fit's
    ``R²`` (how log-linear the profile is)."""
    is_lin = np.array([k == "linear" for k in kinds])
    xs = (depth - layer_positions(kinds))[is_lin]
    lg = np.log(np.asarray(gsc_profile)[is_lin])
    coef = np.polyfit(xs, lg, 1)
    resid = lg - np.polyval(coef, xs)
    return float(math.exp(coef[0])), float(1 - resid.var() / lg.var())


def orthogonal_relu_std_with_gain(*, depth: int, d: int, n_datasets: int, n_points: int, generator: torch.Generator | None = None,
                                  device=None, dtype=torch.float32) -> float:
    """Table 1's orthogonal ReLU row without normalisation, re-measured with a ``√2`` gain on every
    orthogonal matrix after a ReLU (the gain the paper's printed St. Dev. of 0.20 implies; it
    leaves the GSC unchanged by Prop. 4): the mean over datasets of the highest nonlinearity
    layer's pre-activation standard deviation. Draws the data, then the weights, from ``generator``."""
    arch = TableArch("relu", "none", "orthogonal", depth=depth, d=d)
    x, y = gaussian_noise(n_datasets, n_points, d, d, generator=generator, device=device, dtype=dtype)
    ws, sk = init_weights(arch, n_datasets, generator=generator, device=device, dtype=dtype)
    ws = [w * (math.sqrt(2) if i > 0 else 1.0) for i, w in enumerate(ws)]
    return metrics(arch, ws, sk, x, y)["std"][:, -1].double().mean().item()


def log_gsc_by_batch_size(key: tuple, batch_sizes, *, depth: int, d: int, n_datasets: int, generator: torch.Generator | None = None,
                          device=None, dtype=torch.float32) -> dict[int, np.ndarray]:
    """§I.2 treats a whole dataset as one batch, so with batch norm the GSC depends on the batch
    size: for each size in ``batch_sizes``, ``log GSC(L, 0)`` of the Table 1 row ``key`` over
    ``n_datasets`` fresh datasets of that many points (one fresh network each), ``(n_datasets,)``."""
    arch = TableArch(*key, depth=depth, d=d)
    out = {}
    for n in batch_sizes:
        x, y = gaussian_noise(n_datasets, n, d, d, generator=generator, device=device, dtype=dtype)
        ws, sk = init_weights(arch, n_datasets, generator=generator, device=device, dtype=dtype)
        out[n] = np.log(metrics(arch, ws, sk, x, y)["gsc"][:, 0].double().cpu().numpy())
    return out


def resnet_block_dilution(rows, *, depth: int, d: int, n_datasets: int, n_points: int, generator: torch.Generator | None = None,
                          device=None, dtype=torch.float32) -> dict[str, dict[str, np.ndarray]]:
    """§7 and Fig. 3 in the ResNets among ``rows`` (Table 1 keys): per architecture (by label), over
    ``n_datasets`` Gaussian-noise datasets with one network each (:func:`block_dilution`), the
    means over networks per block (top block first) of the dilution ``k``, the branch rate
    ``r_branch``, the measured block rate ``r_block`` and Theorem 3's exact prediction
    ``predicted``; and Fig. 3's cumulative GSC from the error downward, ``gsc`` (the product of the
    block rates) and ``corrected`` (of the first-order undiluted rates ``1 + (k² + 1)(r − 1)``,
    Fig. 3C), at the block boundaries."""
    out = {}
    for key in rows:
        arch = TableArch(*key, depth=depth, d=d)
        x, y = gaussian_noise(n_datasets, n_points, d, d, generator=generator, device=device, dtype=dtype)
        ws, sk = init_weights(arch, n_datasets, generator=generator, device=device, dtype=dtype)
        bd = block_dilution(arch, ws, sk, x, y)
        s = {f: bd[f].mean(0) for f in ("k", "r_branch", "r_block", "predicted")}
        s["gsc"] = np.cumprod(s["r_block"][::-1])
        s["corrected"] = np.cumprod(undiluted_rate(s["r_block"], s["k"])[::-1])
        out[arch.label] = s
    return out


def rate_per_linear_layer(cumulative_gsc: np.ndarray, layers_per_step: int = 2) -> float:
    """The explosion rate per linear layer of a cumulative GSC sampled every ``layers_per_step``
    linear layers from the error downward: ``exp`` of the least-squares slope of its log."""
    xs = layers_per_step * np.arange(1, len(cumulative_gsc) + 1)
    return math.exp(np.polyfit(xs, np.log(cumulative_gsc), 1)[0])
