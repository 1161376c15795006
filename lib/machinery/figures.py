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
from .plotting import MAX_WIDTH, panels

#: colours of the three network families of Yu & Tomasi, the same in every figure
FAMILY_COLORS = {"plain": "C0", "residual": "C3", "dominant": "C2"}
_DEPTH_STYLES = ("-", "--", ":", "-.")


def twin_divergence(twins: dict) -> plt.Figure:
    """App. B / Fig. 6: ``max|p_t - T(r_t)|`` per step for every twin pair of
    :func:`lib.experiments.equivalence.twin_runs` (one panel per precision), the linear round-off
    bound ``4tu`` dashed, and each pair's first ReLU disagreement dotted."""
    fig, axes = plt.subplots(1, len(twins), figsize=(MAX_WIDTH, 3.8), sharex=True, squeeze=False)
    for ax, (name, tw) in zip(axes[0], twins.items()):
        d, fl = tw["divergence"], tw["flips"]
        steps = np.arange(1, d.shape[0] + 1)
        for e in range(d.shape[1]):
            (line,) = ax.semilogy(steps, d[:, e], lw=1.2, label=f"twin pair {e}")
            on = torch.nonzero(fl[:, e]).flatten()
            if len(on):
                ax.axvline(on[0].item() + 1, color=line.get_color(), ls=":", lw=1)
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
