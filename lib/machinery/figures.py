"""Figures of measurement beside prediction that a chapter draws from an experiment's result, one
function per figure, named by what it shows (the experiments are :mod:`lib.experiments`'; each
function here only draws). Every function returns the figure, which the chapter shows and saves
with :func:`lib.machinery.plotting.show`."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..theory import dominant_flow as Df
from .checks import standard_error
from .plotting import MAX_WIDTH, beside, panels

#: colours of the three network families of Yu & Tomasi, the same in every figure
FAMILY_COLORS = {"plain": "C0", "residual": "C3", "dominant": "C2"}
_DEPTH_STYLES = ("-", "--", ":", "-.")


def twin_divergence(twins: dict) -> plt.Figure:
    """App. B / Fig. 6: ``max|p_t - T(r_t)|`` per step for every twin pair of
    :func:`lib.experiments.equivalence.twin_runs` (one panel per precision), the linear round-off
    bound ``4tu`` dashed, and each pair's first ReLU disagreement (its ``first``) dotted."""
    fig, axes = plt.subplots(1, len(twins), figsize=(MAX_WIDTH, 3.8), sharex=True, squeeze=False)
    for ax, (name, tw) in zip(axes[0], twins.items()):
        d = tw["divergence"]
        steps = np.arange(1, d.shape[0] + 1)
        for e, first in enumerate(tw["first"]):
            (line,) = ax.semilogy(steps, d[:, e], lw=1.2, label=f"twin pair {e}")
            if first is not None:
                ax.axvline(first, color=line.get_color(), ls=":", lw=1)
        ax.semilogy(steps, 4 * steps * torch.finfo(getattr(torch, name)).eps, "k--", lw=1, label="linear round-off bound 4tu")
        ax.set(title=name, xlabel="SGD step", ylabel="max |p_t - T(r_t)|")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Equivalent twins drift apart only after a ReLU disagrees (dotted: first disagreement)", fontsize=11)
    return fig


def training_and_degradation(trained: dict, histories: dict, depths) -> plt.Figure:
    """App. A, Table 1 and App. D.1, Fig. 9: the mini-batch loss during training (mean over seeds)
    of every family and depth of :func:`lib.experiments.equivalence.train_families`, and the final
    training loss against depth (every network, and the geometric mean per family)."""
    styles = dict(zip(depths, _DEPTH_STYLES))
    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.8))
    for (kind, L), h in histories.items():
        loss = torch.stack(h["loss"]).mean(-1).cpu().numpy()
        axes[0].semilogy(h["step"], loss, color=FAMILY_COLORS[kind], ls=styles.get(L, "-"), label=f"{kind} L={L}")
    axes[0].set(xlabel="SGD step", ylabel="mini-batch loss (mean over seeds)", title="training curves")
    axes[0].legend(fontsize=7, ncol=3)
    Ls = np.array(depths)
    for kind, c in FAMILY_COLORS.items():
        losses = np.array([trained[(kind, L)]["loss"].cpu().numpy() for L in depths])
        axes[1].semilogy(Ls, np.exp(np.log(losses).mean(1)), "o-", color=c, label=kind)
        axes[1].scatter(np.repeat(Ls, losses.shape[1]), losses.ravel(), color=c, s=10, alpha=0.5)
    axes[1].set(xlabel="depth L", ylabel="final training loss", title="degradation: loss against depth", xticks=list(depths))
    axes[1].legend()
    return fig


def weight_histograms(weights_p0: np.ndarray, weights_t0: np.ndarray, id_entries: np.ndarray, *, depth: int) -> plt.Figure:
    """App. C, Fig. 7: the weights of a KWI plain net ``p0`` and of the plain image ``t0 = T(r0)``
    of an HMWI ResNet (one network each, flat), and the ID entries of ``t0`` alone."""
    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.6))
    bins = np.linspace(-0.6, 1.2, 181)
    axes[0].hist(weights_p0, bins=bins, color="C0", alpha=0.6, label="p0 (KWI)")
    axes[0].hist(weights_t0, bins=bins, color="C3", alpha=0.6, label="t0 = T(r0) (HMWI)")
    axes[0].set(ylim=(0, 800), xlabel="weight", ylabel="count (clipped at 800)", title=f"all weights, depth {depth}")
    axes[0].legend()
    axes[1].hist(weights_t0[id_entries], bins=40, color="C3")
    axes[1].set(xlabel="weight", ylabel="count", title="ID entries of t0")
    return fig


def cushion_histograms(cushions: dict, *, layer: int, depth: int) -> plt.Figure:
    """§5, Fig. 3: the per-sample cushions of :func:`lib.experiments.equivalence.cushions`, one
    histogram per network (labelled with its median), on a log axis."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for (name, v), c in zip(cushions.items(), ("C0", "C3", "C1")):
        ax.hist(v.cpu().numpy(), bins=60, alpha=0.55, color=c, label=f"{name}: median {v.median():.3g}")
    ax.set(xscale="log", xlabel="per-sample cushion ||A x|| / (||A||_F ||x||)", ylabel="samples x seeds",
           title=f"layer {layer + 1} of depth-{depth} networks after training")
    ax.legend(fontsize=8)
    return fig


def phi_and_its_approximation(c_best: float) -> plt.Figure:
    """App. E, Eq. 15 and Fig. 13: ``φ(r) = (2/π) arctan r`` beside the paper's ``1/(1 + r^-1.2)``,
    and the error of ``1/(1 + r^-c)`` at the paper's ``c = 1.2``, the minimax ``c_best`` and the
    slope-matching ``4/π``."""
    rr = np.logspace(-3, 3, 400)
    fig, axes = panels(2, panel=(5.2, 3.6), layout="constrained")
    axes[0].semilogx(rr, Df.phi(rr), lw=2.5, label="phi(r) = (2/pi) arctan r")
    axes[0].semilogx(rr, Df.phi_approx(rr), "m", lw=1, label="1/(1 + r^-1.2) (paper)")
    axes[0].axhline(0.5, color="C3", lw=0.8)
    axes[0].axvline(1.0, color="C3", lw=0.8)
    axes[0].set(xlabel="r = sigma_X / sigma_Y", ylabel="P[|X| > |Y|]", title="Fig. 13 with the closed form")
    axes[0].legend(fontsize=8)
    for c, ls in ((1.2, "-"), (c_best, "--"), (4 / math.pi, ":")):
        axes[1].semilogx(rr, Df.phi_approx(rr, c) - Df.phi(rr), ls=ls, label=f"c = {c:.3f}")
    axes[1].set(xlabel="r", ylabel="approximation - phi(r)", title="error of 1/(1 + r^-c)")
    axes[1].legend(fontsize=8)
    return fig


def dominant_flow_sweeps(sweep: dict, sweeps: dict) -> plt.Figure:
    """App. D.4.1, Fig. 11: ``E[σ]`` simulated for the residual and the plain net beside the paper's
    approximation and the corrected variance with the exact ``φ``, one panel per variable of
    :func:`lib.theory.dominant_flow.trivial_sweeps`."""
    fig, axes = panels(len(sweeps), panel=(3.5, 3.2))
    for ax, (var, vals) in zip(axes, sweeps.items()):
        rows = [sweep[(var, v)] for v in vals]
        ax.plot(vals, [r["res"] for r in rows], "o-", color="C3", label="residual (simulated)")
        ax.plot(vals, [r["paper"] for r in rows], ":", color="C3", lw=2, label="paper's approximation")
        ax.plot(vals, [r["corrected"] for r in rows], "--", color="k", lw=1, label="corrected variance, exact phi")
        ax.plot(vals, [r["plain"] for r in rows], "s-", color="C0", label="plain (simulated)")
        if var in ("sigma_a", "sigma_v", "eps", "n"):
            ax.set_xscale("log")
        ax.set(xlabel=var, ylabel="E[sigma]", ylim=(0, 1.02))
    axes[0].legend(fontsize=7)
    fig.suptitle("Fig. 11: fraction of dominant gradient flows, one variable at a time", fontsize=11)
    fig.tight_layout()
    return fig


def dominant_fraction_by_layer(sig: dict, *, depth: int) -> plt.Figure:
    """App. D.4.2, Fig. 12a: ``σ^(ℓ)`` per layer of :func:`lib.experiments.equivalence.dominant_fractions`
    after the first SGD step (solid) and after training (dotted)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for (kind, when), v in sig.items():
        ax.plot(np.arange(1, len(v) + 1), v, "-" if when == "first" else ":", marker="o", ms=3, color=FAMILY_COLORS[kind],
                label=f"{kind}, {when} step")
    ax.set(xlabel="layer l (1 = stem)", ylabel="sigma^(l)", title=f"Fig. 12a: dominant gradient flows, depth {depth}", ylim=(0, 1))
    ax.legend(fontsize=8)
    return fig


def noise_injection(sens: dict, levels, depths) -> plt.Figure:
    """Noise stability measured directly: the mean relative change of the logits against the
    weight-noise std, per family and depth of :func:`lib.experiments.equivalence.noise_sensitivities`."""
    styles = dict(zip(depths, _DEPTH_STYLES))
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for (kind, L), v in sens.items():
        ax.loglog(levels, [x.mean().item() for x in v], "o" + styles.get(L, "-"), color=FAMILY_COLORS[kind],
                  label=f"{kind}, depth {L}")
    ax.set(xlabel="weight-noise std s", ylabel="relative change of the logits", title="noise stability, measured directly")
    ax.legend(fontsize=8)
    return fig


# --- Balduzzi et al., the shattered gradients problem --------------------------------------------


def gradient_moments_by_depth(results: dict, depths, betas) -> plt.Figure:
    """§3 and App. A: the measured gradient correlation (±2 s.e.) of every architecture of
    :func:`lib.experiments.gradient_covariance.real_network_moments` against depth beside the
    paper's prediction (dashed) and the mean-field / centred batch-norm forms (dotted), without and
    with batch norm; and the gradient variance of the batch-norm resnets (measured, the paper's
    Theorem 3, and the path sums evaluated with the measured statistics, ×)."""
    fig, axes = panels(3)
    groups = [("no batch norm", ["feedforward", "resnet a = b = 1", "highway g2^2 = 1/L"]),
              ("batch norm", ["feedforward + BN"] + [f"BN resnet beta = {b:g}" for b in betas])]
    for ax, (title, names) in zip(axes[:2], groups):
        for name in names:
            m = np.array([results[name, L]["corr"] for L in depths])
            se = np.array([results[name, L]["se_corr"] for L in depths])
            ax.errorbar(depths, np.clip(m, 1e-4, None), yerr=2 * se, marker="o", capsize=2, label=name)
            c = ax.lines[-1].get_color()
            ax.plot(depths, [results[name, L]["paper_corr"] for L in depths], ls="--", color=c)
            if results[name, depths[0]]["ours"] is not None:
                ax.plot(depths, [results[name, L]["ours"] for L in depths], ls=":", color=c)
        ax.set(yscale="log", xscale="log", xlabel="depth L", ylabel="gradient correlation", ylim=(1e-4, 1.2),
               title=f"correlation, {title}")
        ax.legend(fontsize=7)
    for b in betas:
        name = f"BN resnet beta = {b:g}"
        axes[2].plot(depths, [results[name, L]["var"] for L in depths], "o-", label=f"measured, beta = {b:g}")
        c = axes[2].lines[-1].get_color()
        axes[2].plot(depths, [results[name, L]["paper_var"] for L in depths], "--", color=c)
        axes[2].plot(depths, [results[name, L]["ps_var"] for L in depths], "x", color=c, ms=8)
    axes[2].set(xlabel="depth L", ylabel="gradient variance", yscale="log", title="variance, BN resnets")
    axes[2].legend(fontsize=7)
    fig.suptitle("measured (dots, ±2 s.e.), paper (dashed), mean-field / centred BN (dotted), path sums with measured "
                 "statistics (x)", fontsize=10)
    fig.tight_layout()
    return fig


def gradients_on_a_grid(grid: np.ndarray, gradients: dict) -> plt.Figure:
    """§1, Fig. 1: one network's gradient over a 1-D input grid (left) and the magnitude of its
    centred outer product, ``|z zᵀ| / var z`` (right, clipped at its 99th percentile), for every
    entry of ``gradients`` (``{title: (networks, grid points)}``; the first network is shown)."""
    fig, axes = plt.subplots(len(gradients), 2, figsize=(7, 2.3 * len(gradients)), gridspec_kw={"width_ratios": [2.2, 1]},
                             squeeze=False)
    for j, (title, g) in enumerate(gradients.items()):
        g0 = g[0].cpu().numpy()
        axes[j, 0].plot(grid, g0, lw=0.8)
        axes[j, 0].set_title(title, fontsize=10)
        z = g0 - g0.mean()
        cov = np.abs(np.outer(z, z)) / z.var()
        axes[j, 1].imshow(cov, cmap="gray_r", vmax=np.quantile(cov, 0.99))
        axes[j, 1].axis("off")
    fig.suptitle("Fig. 1: gradients over a 1-D grid (left) and their covariance (right)")
    fig.tight_layout()
    return fig


def autocorrelations(acf: dict, families, depths) -> plt.Figure:
    """§2, Fig. 2: the mean autocorrelation of the gradients over a grid against the lag, one panel
    per family (``acf[family, L]`` for each depth), beside brown (``acf["brown"]``, dashed) and white
    noise (``acf["white"]``, dotted)."""
    fig, axes = panels(len(families), sharey=True)
    for ax, fam in zip(axes, families):
        for L in depths:
            ax.plot(acf[fam, L], label=f"L = {L}")
        ax.plot(acf["brown"], "k--", lw=1, label="brown")
        ax.plot(acf["white"], "k:", lw=1, label="white")
        ax.set(title=f"Fig. 2: {fam}", xlabel="lag (grid points)", ylim=(-0.2, 1.02))
        ax.legend(fontsize=7)
    axes[0].set_ylabel("autocorrelation")
    fig.tight_layout()
    return fig


def bn_resnet_correlation_asymptotic(blocks: np.ndarray, exact: dict, asymptotic: dict) -> plt.Figure:
    """Theorem 3: the exact gradient correlation of a batch-norm resnet against the number of
    blocks beside its asymptotic form ``1/(β√L)`` (dotted), for each ``β`` of ``exact`` and
    ``asymptotic`` (``{β: (len(blocks),)}``); and the relative error of the asymptotic form against
    ``β²L``, with 10% marked."""
    fig, ax = plt.subplots(1, 2, figsize=(MAX_WIDTH, 4))
    for b, corr in exact.items():
        asym = asymptotic[b]
        ax[0].loglog(blocks, corr, label=fr"exact, $\beta$ = {b}")
        ax[0].loglog(blocks, asym, ls=":", color=ax[0].lines[-1].get_color())
        ax[1].semilogx(blocks * b**2, asym / corr - 1, label=fr"$\beta$ = {b}")
    ax[0].set(xlabel="blocks L", ylabel="correlation", title="Theorem 3: exact (solid) vs 1/(β√L) (dotted)", ylim=(1e-3, 2))
    ax[0].legend(fontsize=8)
    ax[1].axhline(0.1, color="k", lw=0.8, ls="--")
    ax[1].set(xlabel=r"$\beta^2 L$", ylabel="relative error of 1/(β√L)", title="the asymptotic needs β²L ≫ 1", ylim=(-0.2, 3))
    ax[1].legend(fontsize=8)
    return fig


def activation_fractions(plain: dict, batch_norm: dict, meanfield_coactive: np.ndarray, *, width: int,
                         n_networks: int) -> plt.Figure:
    """§3, Fig. 3: per layer of a feedforward net, the fraction of active units and of units
    co-active on two inputs, without and with batch norm (``act``, ``coact`` of
    :func:`lib.experiments.gradient_covariance.real_network_moments`), beside the mean-field
    co-activation without batch norm (dashed) and 1/4 (grey)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    layers = np.arange(1, len(plain["act"]) + 1)
    ax.plot(layers, plain["act"], "g-o", label="active, no BN")
    ax.plot(layers, batch_norm["act"], "g:s", label="active, BN")
    ax.plot(layers, plain["coact"], "b-o", label="co-active, no BN")
    ax.plot(layers, batch_norm["coact"], "b:s", label="co-active, BN")
    ax.plot(layers, meanfield_coactive, "k--", lw=1, label="mean-field co-activation (no BN)")
    ax.axhline(0.25, color="grey", lw=0.8)
    ax.set(xlabel="layer", ylabel="fraction", ylim=(0, 0.6), title=f"Fig. 3: feedforward nets, N = {width}, {n_networks} networks")
    ax.legend(fontsize=8)
    return fig


def gradient_covariance_images(images: dict, *, depth: int) -> plt.Figure:
    """§4, Figs. 5a-b: the covariance of the gradients of a mini-batch (``{family: (B, B)}`` in
    [0, 1]) as grey-scale images, one per family."""
    fig, axes = panels(len(images), panel=(4, 4))
    for ax, (fam, img) in zip(axes, images.items()):
        ax.imshow(img, cmap="gray_r", vmin=0, vmax=1)
        ax.set(title=f"Fig. 5{'a' if fam.startswith('feed') else 'b'}: {fam}, L = {depth}", xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def activation_rasters(rasters: dict, unit_activity: dict, run_lengths: dict, *, depth: int, grid_size: int) -> plt.Figure:
    """§2, Fig. 4: per family, which units of layer ``depth`` are active at each point of a 1-D
    grid (one network, ``rasters[family]`` of shape ``(networks, grid, units)``), the histogram of
    each unit's fraction of active inputs, and of the lengths of its runs of equal activity."""
    fig, axes = plt.subplots(len(rasters), 3, figsize=(MAX_WIDTH, 8.5 * len(rasters) / 3), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1, 1]})
    for i, (title, r) in enumerate(rasters.items()):
        axes[i, 0].imshow(r[0].T.cpu().numpy(), aspect="auto", cmap="gray_r", interpolation="nearest")
        axes[i, 0].set(title=f"{title}: layer {depth}", xlabel="input (grid)", ylabel="unit")
        axes[i, 0].grid(False)
        axes[i, 1].hist(unit_activity[title], bins=20, range=(0, 1), color="tab:blue")
        axes[i, 1].set(title="activity per unit", xlabel="fraction of inputs active")
        axes[i, 2].hist(run_lengths[title], bins=np.logspace(0, math.log10(grid_size), 20), color="tab:green")
        axes[i, 2].set(xscale="log", title="contiguity", xlabel="run length")
    fig.tight_layout()
    return fig


def accuracy_by_depth(accuracy: dict, families, depths, *, ylabel: str, title: str) -> plt.Figure:
    """A training comparison across depths: the mean accuracy of every family (``accuracy[family,
    L]``, one value per network) with ±2 standard errors, on a log depth axis."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for fam in families:
        a = [np.asarray(accuracy[fam, L], dtype=float) for L in depths]
        ax.errorbar(depths, [v.mean() for v in a], yerr=[2 * standard_error(v) for v in a], marker="o", capsize=2, label=fam)
    ax.set(xscale="log", xlabel="depth (hidden layers)", ylabel=ylabel, ylim=(0, 1.02), title=title)
    ax.set_xticks(depths, [str(L) for L in depths], minor=False)
    ax.minorticks_off()
    ax.legend(fontsize=8)
    return fig


# --- Orhan & Pitkow, skip connections eliminate singularities -----------------------------------


def training_accuracy_curves(runs: dict, *, title: str) -> plt.Figure:
    """Figs. 3a, 5, 7-8 at this scale: the training accuracy per epoch of every ensemble of
    ``runs`` (``{label: {"acc": (epochs + 1, networks)}}``), mean ±1 standard error
    (:func:`lib.machinery.plotting.beside`)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for k, h in runs.items():
        beside(ax, np.arange(len(h["acc"])), np.asarray(h["acc"], dtype=float).T, label=k, k=1, marker="-")
    ax.set(xlabel="epoch", ylabel="training accuracy", title=title)
    ax.legend(fontsize=8)
    return fig


def accuracy_and_tail_probability(runs: dict, *, title: str) -> plt.Figure:
    """Figs. 3a-b: the training accuracy per epoch (mean ±1 s.e. over networks) and the tail
    probability ``w`` of the four-moment fit at each checkpoint (``runs[k]["w"]``: ``{epoch:
    (networks,)}``, mean ±1 s.e., log scale) of every architecture of ``runs``."""
    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.9))
    for k, h in runs.items():
        beside(axes[0], np.arange(len(h["acc"])), np.asarray(h["acc"], dtype=float).T, label=k, k=1, marker="-")
        cps = sorted(h["w"])
        w = [np.asarray(h["w"][c], dtype=float) for c in cps]
        axes[1].errorbar(cps, [v.mean() for v in w], yerr=[standard_error(v) for v in w], marker="o", ms=3, capsize=2, label=k)
    axes[0].set(xlabel="epoch", ylabel="training accuracy", title=title)
    axes[1].set(xlabel="epoch", ylabel="tail probability w", yscale="log", title="Fig. 3b: fitted tail probability")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def stream_scale_and_gradients(init: dict, predicted: dict, layers: dict, *, epochs=(0, 1, 2)) -> plt.Figure:
    """Fig. 6a with the scale of the stream beside it. Left: the mean square of each hidden
    representation at initialisation per architecture (``init[name]["q"]``, ``(networks, layers)``),
    with the mean-field prediction ``predicted[name]`` (``(layers,)``) dashed where there is one.
    Right: the mean gradient norm with respect to each representation (``layers[name][epoch]["grad"]``)
    at each of ``epochs``, one line style per epoch. Both on log scales, ±2 s.e. bands."""
    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH, 4.0))
    colors = {}
    for name, st in init.items():
        H = st["q"].shape[-1]
        colors[name] = beside(axes[0], np.arange(1, H + 1), st["q"], predicted.get(name), label=name, log=True)
    _gradient_panel(axes[1], layers, epochs, colors)
    axes[0].set(xlabel="hidden layer", ylabel="mean square of the representation", title="at initialisation (dashed: mean field)")
    axes[0].legend(fontsize=7)
    return fig


def _gradient_panel(ax, layers: dict, epochs, colors: dict) -> None:
    """Fig. 6a on ``ax``: per architecture (``layers[name][epoch]["grad"]``, ``(networks, layers)``)
    the mean gradient norm with respect to each representation at each of ``epochs``, one line
    style per epoch, log scale, ±2 s.e. bands."""
    styles = dict(zip(epochs, _DEPTH_STYLES))
    for name, by_epoch in layers.items():
        for ep in epochs:
            g = by_epoch[ep]["grad"]
            colors[name] = beside(ax, np.arange(1, g.shape[-1] + 1), g, label=f"{name}, epoch {ep}", marker=styles[ep],
                                  color=colors.get(name), log=True)
    ax.set(xlabel="hidden layer", ylabel="mean |d loss / d representation|", title="Fig. 6a: gradient norms")
    ax.legend(fontsize=6, ncol=2)


def gradient_norms_by_layer(layers: dict, *, epochs=(0, 1, 2), title: str = "") -> plt.Figure:
    """Fig. 6a alone: the gradient-norm panel of :func:`stream_scale_and_gradients` for the
    architectures of ``layers`` (``layers[name][epoch]["grad"]``)."""
    fig, ax = plt.subplots(figsize=(MAX_WIDTH * 0.6, 4.0))
    _gradient_panel(ax, layers, epochs, {})
    if title:
        ax.set_title(title)
    return fig


def null_directions(spectra: dict, *, n_parameters: int) -> plt.Figure:
    """Supp. Note 1: the sorted ``|λ| / λ_max`` of zero-loss Hessians (``{(architecture,
    configuration): |eigenvalues| ascending}``; plain solid, residual dashed) with the 1e-9 line
    below which an eigenvalue counts as a null direction."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for k, s in spectra.items():
        ax.semilogy(np.arange(1, len(s) + 1), np.maximum(s / s[-1], 1e-18), "-" if k[0] == "plain" else "--",
                    label=f"{k[0]}, {k[1]}")
    ax.axhline(1e-9, color="gray", lw=0.8)
    ax.set(xlabel="eigenvalue index (sorted by |λ|)", ylabel="|λ| / λmax", ylim=(1e-18, 2),
           title=f"Zero-loss Hessians of a {n_parameters}-parameter ReLU net")
    ax.legend(fontsize=7, ncol=2)
    return fig


def exact_spectra_against_fit(exact: dict, *, epoch: int, bulk: float) -> plt.Figure:
    """Fig. 3b-c against exact spectra (``exact[k]``: :func:`lib.experiments.hessian_training.exact_tail_against_count`
    of architecture ``k``). Left: every network's fitted tail probability ``w`` against the
    fraction of its eigenvalues outside the bulk, ``|λ| > bulk``, at every checkpoint (the diagonal:
    what ``w`` stands for). Right, at ``epoch``: the fraction of eigenvalues with ``|λ| > t``
    (solid; the network with the median count of each architecture) and the same fraction under
    its fitted mixture (dashed)."""
    from ..theory import spectrum as S

    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.9))
    t = np.logspace(-6, 7, 300)
    for i, (k, h) in enumerate(exact.items()):
        c = f"C{i}"
        for j, cp in enumerate(sorted(h["w"])):
            axes[0].scatter(np.maximum(h["w"][cp], 1e-4), h["count"][cp], s=12, color=c, alpha=0.8,
                            label=k if j == 0 else None, marker="o" if cp == 0 else "^")
        e = int(np.argsort(h["count"][epoch])[len(h["count"][epoch]) // 2])
        lam = np.abs(h["eigenvalues"][epoch][e])
        axes[1].loglog(t, (lam[:, None] > t).mean(0), color=c, label=f"{k}: exact")
        if np.isfinite(h["fit"][epoch][e]).all():
            axes[1].loglog(t, S.mixture_tail(t, *h["fit"][epoch][e]), "--", color=c, label=f"{k}: fitted mixture")
    axes[0].plot([1e-4, 1], [1e-4, 1], color="gray", lw=0.8)
    axes[0].set(xscale="log", yscale="log", xlabel="fitted tail probability w", xlim=(1e-4, 1.5), ylim=(1e-3, 1.2),
                ylabel=f"fraction of |λ| > {bulk:g}", title="w against the count (o: initialisation)")
    axes[1].axvline(bulk, color="gray", lw=0.8, ls=":")
    axes[1].set(xlabel="t", ylabel="fraction of |λ| > t", ylim=(1e-4, 1.2), title=f"Fig. 3c, exact: epoch {epoch}")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def moment_identifiability(grid: np.ndarray, density_a: np.ndarray, density_b: np.ndarray, ws: np.ndarray,
                           profile: np.ndarray) -> plt.Figure:
    """Eq. 6 is not identifiable from four moments: two mixtures with the same moments (tail
    parts), and the best objective of a mixture as a function of its tail probability ``w`` (a
    flat profile: ``w`` within 0.05 of the best objective is dotted)."""
    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.7))
    axes[0].plot(grid, density_a, label="mixture A")
    axes[0].plot(grid, density_b, "--", label="mixture B")
    axes[0].set(xlabel="λ", ylabel="density (tail part)", ylim=(0, 0.012), title="Same four moments")
    axes[0].legend(fontsize=8)
    axes[1].loglog(ws, profile)
    axes[1].axhline(np.nanmin(profile) + 0.05, color="gray", lw=0.8, ls=":")
    axes[1].set(xlabel="tail probability w", ylabel="Eq. 6 objective of the best mixture at w",
                title="Small network: the profile in w")
    fig.tight_layout()
    return fig


def reduced_phase_portraits(saddles: dict, s: float) -> plt.Figure:
    """Supp. Fig. S2a: the gradient flow of the two-unit reduced model ``ab = s`` of every
    architecture (``saddles``: ``{kind: saddle point}``; offsets :func:`lib.theory.linear_nets.offsets`),
    its solutions (red) and its saddle."""
    from ..theory import linear_nets as LN

    fig, axes = plt.subplots(1, len(saddles), figsize=(MAX_WIDTH, 3.7), squeeze=False)
    grid = np.linspace(-3, 3, 41)
    GA, GB = np.meshgrid(grid, grid)
    pts = torch.tensor(np.stack([GA.ravel(), GB.ravel()], -1), dtype=torch.float64)
    for ax, (kind, pt) in zip(axes[0], saddles.items()):
        c = LN.offsets(kind, 2)
        g = -LN.energy_grad(pts, s, c).cpu().numpy()
        U, V = g[:, 0].reshape(GA.shape), g[:, 1].reshape(GA.shape)
        ax.streamplot(GA, GB, U, V, color=np.log10(np.hypot(U, V) + 1e-12), cmap="viridis", density=1.0, linewidth=0.7,
                      arrowsize=0.7)
        hyp = np.linspace(-3, 3, 400)
        with np.errstate(divide="ignore", invalid="ignore"):
            bb = s / (hyp + c[0].item()) - c[1].item()
        bb[np.abs(hyp + c[0].item()) < 0.05] = np.nan
        ax.plot(hyp, bb, "r-", lw=1.2, label="solutions ab = s (shifted)")
        ax.plot(*pt, "ko", ms=6, label="saddle")
        ax.set(xlim=(-3, 3), ylim=(-3, 3), xlabel="a", ylabel="b", title=f"{kind}: saddle at {pt}")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def end_to_end_maps(trajectories: dict, target: float) -> plt.Figure:
    """Supp. Fig. S2b: the median end-to-end map of 10-layer linear networks during gradient
    descent (``{kind: (steps, (steps, runs))}``), with the target ``s`` dotted."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for kind, (ts, us) in trajectories.items():
        ax.plot(ts, np.median(us, 1), label=kind)
    ax.axhline(target, color="gray", ls=":")
    ax.set(xlabel="gradient step", ylabel="end-to-end map u (median of 256)", yscale="symlog",
           title="Fig. S2b: 10-layer linear networks")
    ax.legend(fontsize=8)
    return fig


def two_mode_learning(panels_: dict, shift: np.ndarray) -> plt.Figure:
    """Supp. Fig. S1: the entries of the two modes' vectors during gradient descent, plain (blue)
    and residual (red, shown as ``a + v``), per panel ``{title: (plain (steps, 2, 2), residual)}``."""
    fig, axes = plt.subplots(1, len(panels_), figsize=(MAX_WIDTH, 3.6), squeeze=False)
    for ax, (title, (P, R)) in zip(axes[0], panels_.items()):
        for mode, ls in ((0, "-"), (1, "--")):
            for unit in range(2):
                ax.plot(P[:, mode, unit], color="C0", ls=ls, lw=1, label="plain" if mode == unit == 0 else None)
                ax.plot((R + shift)[:, mode, unit], color="C3", ls=ls, lw=1, label="residual (a + v)" if mode == unit == 0 else None)
        ax.set(xlabel="step", ylabel="entries of a^1 (solid), a^2 (dashed)", title=title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def spectrum_views(grid: np.ndarray, views: dict, *, title: str) -> plt.Figure:
    """Three estimates of one Hessian spectrum (``{label: density on grid}``; the first drawn as the
    reference), on a linear and a log density axis."""
    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.8))
    for ax, scale in zip(axes, ("linear", "log")):
        for (label, dens), style in zip(views.items(), ("k-", "C0--", "C3:")):
            ax.plot(grid, dens, style, label=label, **({"lw": 1.5} if style == "k-" else {}))
        ax.set(xlabel="eigenvalue", ylabel="density", yscale=scale)
    axes[1].set_ylim(1e-4, None)
    axes[0].set_title(title)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


# --- Philipp et al. (the dilution theorem) ----------------------------------------------------

def gsc_profiles(profiles: dict, labels: dict, *, depth: int) -> plt.Figure:
    """Fig. 1: for each architecture (``profiles``: key -> (GSC(l, 0) per operation, operation
    kinds, st. dev. and sign diversity per nonlinearity layer), :func:`lib.experiments.gsc_tables.table1`;
    ``labels``: key -> legend label) the GSC against the linear layers between the layer and the
    error (log scale), and the pre-activation st. dev. and sign diversity from the input up."""
    from ..experiments.gsc_tables import layer_positions

    fig, axes = panels(3)
    for key, (gsc, kinds, std, sign) in profiles.items():
        axes[0].plot(depth - layer_positions(kinds), gsc, label=labels[key])
        axes[1].plot(np.arange(1, len(std) + 1), std)
        axes[2].plot(np.arange(1, len(sign) + 1), sign)
    axes[0].set(yscale="log", xlabel="linear layers between the layer and the error", ylabel="GSC(l, 0)", title="Fig. 1A: GSC")
    axes[0].legend(fontsize=8)
    axes[1].set(yscale="log", xlabel="nonlinearity layer (from the input)", ylabel="pre-activation st. dev.", title="Fig. 1B")
    axes[2].set(xlabel="nonlinearity layer (from the input)", ylabel="sign diversity", title="Fig. 1C")
    fig.tight_layout()
    return fig


def gsc_direct_and_product(curves: dict) -> plt.Figure:
    """Prop. 5: per architecture (``curves``: label -> (direct slopes, product slopes, mean log GSC
    across m macro-layers, mean cumulative log of the one-step GSCs), as
    :func:`lib.experiments.gsc_products.gsc_direct_and_product` returns) the GSC across ``m``
    macro-layers (solid) and the product of the ``m`` one-step GSCs (dashed, same colour)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for lab, (_, _, direct, product) in curves.items():
        (line,) = ax.plot(np.arange(1, len(direct) + 1), np.exp(direct), "-", label=f"{lab}: GSC across m layers")
        ax.plot(np.arange(1, len(product) + 1), np.exp(product), "--", color=line.get_color(), label=f"{lab}: product")
    ax.set(yscale="log", xlabel="macro-layers m above the lowest layer", ylabel="GSC (geometric mean over points and nets)",
           title="Prop. 5: direct (solid) vs product (dashed)")
    ax.legend(fontsize=7)
    return fig


def dilution_first_order_error(r: np.ndarray, k: np.ndarray, error: np.ndarray) -> plt.Figure:
    """Thm 3: the relative under-estimate of the exact dilution rate by its first-order form on
    the grid ``r × k`` (``error``: shape ``(len(k), len(r))``), in per cent, with its 10% contour white."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    R, K = np.meshgrid(r, k)
    filled = ax.contourf(R, K, 100 * error, levels=[0, 1, 2, 5, 10, 20, 50], cmap="viridis")
    ax.contour(R, K, error, levels=[0.1], colors="w")
    fig.colorbar(filled, label="first-order under-estimate (%)")
    ax.set(xlabel="block growth rate r", ylabel="dilution k", title="Thm 3: first order vs exact (white: 10%)")
    return fig


def resnet_gsc_and_dilution_corrected(blocks: dict, vanilla: dict) -> plt.Figure:
    """Fig. 3A and 3C: per ResNet (``blocks``: label -> :func:`lib.experiments.gsc_tables.resnet_block_dilution`'s
    entry) its cumulative GSC at the block boundaries (left) and the dilution-corrected one
    (right, solid), beside the vanilla networks' GSC at their linear layers (``vanilla``: label ->
    GSC per linear layer from the input, dotted)."""
    fig, axes = panels(2)
    for lab, s in blocks.items():
        xs = 2 * np.arange(1, len(s["gsc"]) + 1)
        axes[0].plot(xs, s["gsc"], label=lab)
        axes[1].plot(xs, s["corrected"], label=lab)
    for lab, g in vanilla.items():
        axes[1].plot(np.arange(len(g))[::-1] + 1, g, ":", lw=1, label=f"vanilla {lab}")
    axes[0].set(yscale="log", xlabel="linear layers below the error (block boundaries)", ylabel="GSC", title="Fig. 3A: ResNets")
    axes[1].set(yscale="log", xlabel="linear layers below the error", title="Fig. 3C: dilution-corrected (solid) vs vanilla (dotted)")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=6)
    fig.tight_layout()
    return fig


def sign_diversity_by_layer(sign: dict) -> plt.Figure:
    """Fig. 3B: the pre-activation sign diversity of every nonlinearity layer, from the input up,
    for each network of ``sign`` (label -> per-layer values)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for lab, s in sign.items():
        ax.plot(np.arange(1, len(s) + 1), s, label=lab)
    ax.set(xlabel="nonlinearity layer (from the input)", ylabel="sign diversity", title="Fig. 3B: domain collapse in ResNets")
    ax.legend(fontsize=8)
    return fig


def taylor_expansion_error(trained: dict, *, depth: int, epochs: int) -> plt.Figure:
    """§G: the training error when the lowest layers are replaced by their first-order Taylor
    expansion, against how many linear layers were replaced, for every architecture of
    ``trained`` (:func:`lib.experiments.effective_depth.train_tracked` results)."""
    from ..experiments.effective_depth import linear_layers_below

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in trained.items():
        cuts, below = linear_layers_below(r)
        ax.plot(below, [r["taylor"][c].mean() for c in cuts], "o-", ms=3, label=name)
    ax.set(xlabel="linear layers replaced by their first-order Taylor expansion", ylabel="training error",
           title=f"§G on digits, {depth} linear layers, {epochs} epochs")
    ax.legend(fontsize=8)
    return fig


def effective_rank_and_snr(stats: dict, families, depths, *, dataset: str) -> plt.Figure:
    """Balduzzi et al. Figs. 5c-d: per family (``stats[family, L]``, as
    :func:`lib.theory.shattering.minibatch_gradient_stats` returns) the relative effective rank of
    a mini-batch's gradients and their per-pixel ``|mean| / s.d.`` against depth, mean over the
    mini-batches ± 2 s.e. (:func:`lib.machinery.plotting.beside`)."""
    fig, axes = panels(2, panel=(5.2, 4))
    for ax, (key, ylabel, title) in zip(axes, (("rank", "relative effective rank", "Fig. 5c"),
                                                ("snr", "|mean| / s.d. over the batch, per pixel", "Fig. 5d"))):
        for fam in families:
            beside(ax, np.array(depths), np.stack([stats[fam, L][key] for L in depths], 1), label=fam)
        ax.set(xscale="log", xlabel="depth L", ylabel=ylabel, title=f"{title} on {dataset} (fully connected)")
    axes[0].legend(fontsize=8)
    return fig


def scale_matched_training(runs: dict, *, title: str) -> plt.Figure:
    """The scale-matched plain-versus-residual comparison: one panel per optimiser (``runs``:
    ``{optimiser: {label: {"acc": (epochs + 1, networks)}}}``), training accuracy per epoch, mean
    ±1 standard error."""
    fig, axes = plt.subplots(1, len(runs), figsize=(MAX_WIDTH, 3.6), sharey=True, squeeze=False)
    for ax, (opt, by_label) in zip(axes[0], runs.items()):
        for k, h in by_label.items():
            beside(ax, np.arange(len(h["acc"])), np.asarray(h["acc"], dtype=float).T, label=k, k=1, marker="-")
        ax.set(xlabel="epoch", title=f"{title}: {opt}")
        ax.legend(fontsize=8)
    axes[0, 0].set(ylabel="training accuracy")
    fig.tight_layout()
    return fig


def best_and_worst_networks(pop: dict, *, title: str) -> plt.Figure:
    """Fig. 4a, c, d at this scale, from :func:`lib.experiments.singularities.best_and_worst`: the
    training accuracy of the best and the worst networks, and at every checkpoint the mean norm
    of the hidden units' incoming weights and their mean positive overlap (mean ±1 s.e. over the
    networks of each group)."""
    fig, axes = plt.subplots(1, 3, figsize=(MAX_WIDTH, 3.4))
    cps = sorted(pop["norm"])
    for label, idx in (("best", pop["best"]), ("worst", pop["worst"])):
        beside(axes[0], np.arange(len(pop["acc"])), pop["acc"][:, idx].T, label=f"{label} {len(idx)}", k=1, marker="-")
        for ax, key in zip(axes[1:], ("norm", "overlap")):
            beside(ax, np.array(cps), np.stack([pop[key][c][idx] for c in cps], -1), label=f"{label} {len(idx)}", k=1)
    axes[0].set(xlabel="epoch", ylabel="training accuracy", title=f"{title}: (a) accuracy")
    axes[1].set(xlabel="epoch", ylabel="mean incoming-weight norm", title="(c) distance from elimination")
    axes[2].set(xlabel="epoch", ylabel="mean positive overlap", title="(d) closeness to overlap")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def two_unit_plateaus(z: np.ndarray, smallest: dict, descent: dict, labels: list, plateau: float) -> plt.Figure:
    """Fig. 2 at this scale: (b) the smallest Hessian eigenvalue along the overlap line against the
    split ``z`` for every teacher of ``smallest`` (``{label: (len(z),)}``), elimination points
    ``z = ±1`` dashed; (c) the loss over the plateau loss against the step for every run of
    ``descent`` (:func:`lib.theory.two_unit.gradient_descent`: ``step (T,)``, ``loss``, ``h``, ``z``
    ``(T, runs)``), named by ``labels``; (d) the same runs in Wei et al.'s coordinates ``(z, h)``."""
    fig, axes = plt.subplots(1, 3, figsize=(MAX_WIDTH, 3.4))
    for label, ev in smallest.items():
        axes[0].plot(z, ev, label=label)
    for ax in (axes[0], axes[2]):
        for zz in (-1, 1):
            ax.axvline(zz, color="0.5", ls="--", lw=0.8)
    axes[0].axhline(0, color="k", lw=0.6)
    axes[0].set(xlabel="split z = (w1 - w2)/(w1 + w2)", ylabel="smallest Hessian eigenvalue", title="(b) the overlap line")
    for i, label in enumerate(labels):
        axes[1].plot(descent["step"], np.asarray(descent["loss"])[:, i] / plateau, label=label)
        axes[2].plot(np.asarray(descent["z"])[:, i], np.asarray(descent["h"])[:, i], label=label)
    axes[1].set(xlabel="gradient step", ylabel="loss / plateau loss", yscale="log", title="(c) plateaus")
    axes[2].set(xlabel="z", ylabel="h = |J1 - J2|", yscale="log", title="(d) in Wei et al.'s coordinates")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
