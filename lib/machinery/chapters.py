"""The registry of chapters: slug, title, paper, and the knobs of each ``parameters`` cell.

The runner (``python -m lib list|run``) reads it to list chapters and to validate ``-p`` values
before a kernel starts; :func:`lib.machinery.runtime.setup` reads it inside the chapter. A test checks that
each chapter's ``parameters`` cell names exactly these knobs.
"""

from __future__ import annotations

from ..theory.dilution import PAPER_POINTS
from .spec import ChapterSpec, Knob

#: when and where each chapter's ``quick_s`` was measured (``python -m lib run``, one chapter at a time)
QUICK_TIMED = "2026-12-03/06, 2-core CPU, two threads (dilution-theorem re-timed on 2026-12-05; skilling-moments re-timed on 2026-12-06 with Fig. 6b's BiasReg+BN and a 30-layer residual net)"
#: when and where ``gpu_quick_s`` was measured (``device=cuda``; torch 2.11 there)
GPU_QUICK_TIMED = "2026-11-23, one NVIDIA H200"

_SPECS = (
    ChapterSpec(
        slug="preliminaries",
        title="Preliminaries: plain and residual networks, variance, qm norm, GSC",
        paper="shared background (He et al. 2015; Balduzzi et al. 2017; Philipp et al. 2018)",
        dtype="float64",
        paper_runtime="11 s alone on one H200 GPU (2026-11-23); 17 s and 25 s sharing it with other chapters (2026-12-04, seeds 0 and 851); over 10 minutes on a 2-core CPU",
        quick_s=23, gpu_quick_s=6,
        knobs=(
            Knob("depth", int, 20, 50, "blocks after the stem", low=1, high=1000),
            Knob("width", int, 64, 256, "units per hidden layer", low=2, high=8192),
            Knob("n_nets", int, 2000, 20000, "networks in the Monte Carlo ensemble", low=10, high=10**6),
            Knob("n_probes", int, 4000, 100000, "random unit vectors for the qm-norm estimate", low=10, high=10**7),
        ),
    ),
    ChapterSpec(
        slug="skilling-moments",
        title="Orhan & Pitkow: skip connections eliminate singularities (Hessian spectra by Skilling's moments)",
        paper="Orhan & Pitkow 2018, Skip connections eliminate singularities (ICLR)",
        dtype="float64",
        paper_runtime="not timed on a GPU yet (it needs CIFAR-100, which the GPU machine did not have)",
        quick_s=326, gpu_quick_s=87,
        knobs=(
            Knob("depth", int, 20, 20, "hidden layers L of the trained networks (the paper: 20)", low=2, high=200),
            Knob("width", int, 48, 128, "units per hidden layer (the paper: 128)", low=4, high=4096),
            Knob("n_probes", int, 16, 100, "Gaussian probes per Skilling moment estimate during training", low=2, high=10**5),
            Knob("n_moments", int, 4, 4, "spectral moments estimated (the mixture fit uses the first four)", low=4, high=12),
            Knob("dataset", str, "digits", "cifar100-coarse", "training set: embedded digits or local CIFAR",
                 choices=("digits", "cifar10", "cifar100-coarse")),
            Knob("epochs", int, 40, 100, "training epochs (Adam, lr 5e-4, batch 500)", low=1, high=10**4),
            Knob("n_seeds", int, 12, 12, "independent runs per architecture, trained as one ensemble (the paper: 10)", low=2, high=256),
            Knob("hessian_batch", int, 250, 5000, "training examples in the loss whose Hessian is probed (quick: 250, which halves "
                 "the Hessian-vector products that dominate the chapter's run time)", low=10, high=10**6),
            Knob("exact_width", int, 6, 12, "units per hidden layer of the narrow nets whose Hessians are diagonalised "
                 "exactly (always trained on the digits: n^2 numbers per net)", low=2, high=64),
            Knob("exact_nets", int, 4, 16, "narrow nets per architecture with exact Hessian spectra", low=2, high=256),
            Knob("fig4_nets", int, 40, 80, "plain nets trained for Fig. 4, whose best and worst eighths are compared "
                 "(the paper: 80, best and worst 10)", low=4, high=1024),
            Knob("deep_nets", int, 12, 24, "nets per variant in the scale-matched plain-versus-residual comparison "
                 "and the bias regularisation of Fig. 5", low=2, high=256),
        ),
    ),
    ChapterSpec(
        slug="legendre-asymptotics",
        title="Littwin & Wolf: residual nets as dynamic ensembles (path weights, Legendre asymptotics, spin glasses)",
        paper="Littwin & Wolf 2016, The loss surface of residual networks: ensembles and the role of batch normalization",
        dtype="float64",
        paper_runtime="83 s alone on one H200 GPU (2026-11-23); 98 s and 114 s sharing it with other chapters (2026-12-04, seeds 0 and 851)",
        quick_s=30, gpu_quick_s=20,
        knobs=(
            Knob("p_max", int, 100_000, 1_000_000, "largest depth p of the exact-vs-asymptotic comparisons", low=100, high=10**7),
            Knob("betas", str, "0.1,0.5,2", "0.1,0.5,2", "comma-separated values of beta (Fig. 1a-c)"),
            Knob("epochs", int, 3, 30, "training epochs of the 10-block BN residual net (SGD, batch 50)", low=1, high=10**4),
            Knob("n_samples", int, 10_000, 10_000, "training points of the 10-class Gaussian mixture in 50-D", low=100, high=10**7),
            Knob("n_nets", int, 200, 5000, "random networks in the batch-norm Monte Carlo", low=10, high=10**6),
        ),
    ),
    ChapterSpec(
        slug="path-sum-covariance",
        title="Balduzzi et al.: the shattered gradients problem (path sums and the covariance of gradients)",
        paper="Balduzzi, Frean, Leary, Lewis, Ma & McWilliams 2017, The shattered gradients problem (ICML)",
        dtype="float32",
        paper_runtime="49 s alone on one H200 GPU with dataset=digits (2026-11-23); 82 s and 104 s sharing it with other chapters (2026-12-04, seeds 0 and 851); Fig. 5c on CIFAR-10 not timed",
        quick_s=60, gpu_quick_s=20,
        knobs=(
            Knob("width", int, 128, 200, "units per hidden layer N (the paper: 200 in Figs. 1-2, 100 in Fig. 3)", low=8, high=4096),
            Knob("depths", str, "1,2,4,10,24,50", "1,2,4,10,24,50", "comma-separated depths L of the deep nets"),
            Knob("betas", str, "0.1,0.5,1", "0.1,0.3,0.5,1", "comma-separated residual scalings beta (Thm 3, Figs. 2c and 5c)"),
            Knob("n_networks", int, 600, 10000, "random networks per Monte Carlo estimate (Figs. 2-4 use at most 100)", low=20, high=10**6),
            Knob("grid_size", int, 256, 256, "points M of the 1-D input grid on [-2, 2] (Figs. 1, 2, 4)", low=16, high=65536),
            Knob("dataset", str, "digits", "cifar10", "images of Fig. 5c: embedded digits or local CIFAR-10",
                 choices=("digits", "cifar10")),
        ),
    ),
    ChapterSpec(
        slug="dilution-theorem",
        title="Philipp et al.: gradients explode, the GSC and the dilution theorem",
        paper="Philipp, Song & Carbonell 2018, Gradients explode - Deep networks are shallow - ResNet explained",
        dtype="float32",
        paper_runtime="235 s and 238 s on one H200 (2026-12-04, seeds 0 and 858 sharing the GPU, every claim evaluated); Table 1 alone took 35 s there",
        quick_s=426, gpu_quick_s=37,
        knobs=(
            Knob("depth", int, 50, 50, "linear layers of the Table 1 networks (the paper: 50)", low=4, high=1000),
            Knob("width", int, 100, 100, "width and data dimension of the Table 1 networks (the paper: 100)", low=4, high=4096),
            Knob("n_datasets", int, 16, 100, "Gaussian-noise datasets (one random network each) per Table 1 row; "
                 "at least 8, or the standard errors across datasets mean little", low=8, high=10**5),
            Knob("n_points", int, 1000, 10000, "points per dataset (batch norm uses all of them as one batch)", low=20, high=10**6),
            Knob("bn_datasets", int, 4, 100, "datasets per batch-norm row in a separate pass at the paper's 10,000 points (one batch), "
                 "run only when n_points is not 10,000: the batch-norm GSC depends on the batch size", low=3, high=10**5),
            Knob("architectures", str, "table1", "table1", "which rows: every Table 1 row, or the seven vanilla nets of Fig. 1",
                 choices=("table1", "fig1")),
            Knob("epochs", int, 3, 20, "SGD epochs of the training experiments (Props. 1 and 4; effective depth and Taylor test)", low=1, high=10**4),
        ),
        constraints=(
            lambda k, given: (f"parameter 'width' = {k['width']}: must be even (looks-linear initialisation pairs units)"
                              if k["width"] % 2 else None),
            lambda k, given: ("parameter 'bn_datasets' applies only when n_points is not 10,000 (the batch-norm rows then get "
                              "their own pass at 10,000 points); with n_points = 10,000 they use n_datasets: drop bn_datasets"
                              if given.get("bn_datasets") is not None and k["n_points"] == PAPER_POINTS else None),
        ),
    ),
    ChapterSpec(
        slug="noise-stability",
        title="Yu & Tomasi: identity connections, the plain-net equivalence and noise stability",
        paper="Yu & Tomasi 2019, Identity Connections in Residual Nets Improve Noise Stability",
        dtype="float32",
        paper_runtime="not timed on a GPU yet (it needs CIFAR-10, which the GPU machine did not have); the CIFAR-10 training alone is "
                      "9 networks x 200 epochs per seed",
        quick_s=155, gpu_quick_s=28,
        knobs=(
            Knob("depths", str, "8,20", "20,32,44", "comma-separated depths L = 3N + 2 of the trained networks "
                 "(quick: the shallowest and the deepest, as the checks compare them; add 14 for a middle point)"),
            Knob("n_seeds", int, 2, 10, "independently initialised networks per architecture, trained as one ensemble "
                 "(at least 2: the comparisons are Welch tests over networks)", low=2, high=256),
            Knob("epochs", int, 16, 200, "training epochs (SGD, momentum 0.9, batch 128, weight decay 1e-4)", low=1, high=10**4),
            Knob("lr", float, 0.02, 0.01, "SGD learning rate (the paper: 0.01; quick runs few steps)", low=1e-6, high=10.0),
            Knob("dataset", str, "digits", "cifar10", "training images: embedded digits (8x8x1) or local CIFAR-10 (32x32x3)",
                 choices=("digits", "cifar10")),
            Knob("twin_steps", int, 200, 5000, "SGD steps of the plain/residual twins (App. B; float64 and float32)", low=1, high=10**6),
            Knob("n_experiments", int, 10000, 100000, "Monte Carlo experiments per setting of the trivial-case sweeps (App. D.4.1; "
                 "four times as many at the paper's own setting)",
                 low=100, high=10**8),
        ),
    ),
)

CHAPTERS = {s.slug: s for s in _SPECS}


def get(slug: str) -> ChapterSpec:
    """The spec of chapter ``slug``; ``ValueError`` listing the chapters otherwise."""
    try:
        return CHAPTERS[slug]
    except KeyError:
        raise ValueError(f"unknown chapter {slug!r}: the chapters are {', '.join(CHAPTERS)}") from None
