"""The gradient scale coefficient and dilution (Philipp, Song & Carbonell 2018).

**Table 1 networks** (§I.1): MLPs of "compositional depth" ``D`` (``D`` linear layers), built as
a flat list of *layers* ``f_L, ..., f_1`` (the paper numbers from the error ``f_0`` downwards; we
keep a list in forward order and reverse it when reporting). A vanilla net is
``linear → [norm] → nonlinearity`` repeated, with the last linear layer followed only by its
norm; a ResNet is one linear layer, ``B`` residual blocks
``x + (norm → nonlin → linear → norm → nonlin → linear)(x)`` with an identity or Gaussian skip, and
a final norm. Every network of an ensemble ``E`` (one per dataset) has its own weights:
``Gaussian`` (variance ``2/fan_in`` after a ReLU, ``1/fan_in`` otherwise), ``orthogonal`` (Haar),
``looks-linear`` (§H, :func:`lib.theory.ensembles.looks_linear_relu`). Widths: 100, 200 (all but the last
linear layer) or ``100/200`` (alternating, the first 200).

**Metrics** (§I.2), from one forward and one backward pass over a dataset ``(E, n, d)`` with the
dot-product error ``f_0 = f_1·y`` (batch norm over all ``n`` points): the GSC of every layer,
``GSC(l, 0) = Q_D‖J_l^0‖_qm · Q_D‖f_l‖₂ / Q_D|f_0|`` with ``‖J_l^0‖_qm = ‖∂f_0/∂f_l‖₂/√d_l``; the
pre-activation standard deviation (quadratic mean over the units of each unit's standard
deviation over the data) and sign diversity (mean over units of ``min(pos, 1 - pos)``) at every
nonlinearity layer.

**Dilution** (§7, App. F.3, E.7): the exact GSC of a ``k``-diluted function
``√((k² + r²)/(k² + 1))`` and its first-order form ``1 + (r-1)/(k²+1)``; the dilution of a
composition (Prop. 7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .measure import random_unit_vectors
from .maps import activation, normalise
from .ensembles import haar_orthogonal, looks_linear_relu

NONLINS = ("relu", "tanh", "selu")
NORMS = {"none": "none", "layer": "layer", "LOlayer": "length", "batch": "batch"}
MATRICES = ("gaussian", "orthogonal", "looks-linear")
SKIPS = ("none", "identity", "gaussian")
WIDTHS = ("100", "200", "100/200")


@dataclass(frozen=True)
class TableArch:
    """One row of Philipp et al.'s Table 1 (§I.1)."""

    nonlin: str
    norm: str = "none"
    matrix: str = "gaussian"
    skip: str = "none"
    width: str = "100"       # "100": base width; "200": twice the base; "100/200": alternating
    depth: int = 50          # linear layers (vanilla); ResNets have 1 + sub_blocks * (depth // sub_blocks)
    d: int = 100             # data and label dimension, and the base width
    d_in: int | None = None  # input dimension when it differs from d (CIFAR / digits experiments, §I.1)
    d_out: int | None = None # output dimension of the last linear layer when it differs from d
    sub_blocks: int = 2      # norm -> nonlin -> linear sub-blocks per residual block (Table 3: 1)

    def __post_init__(self):
        for name, allowed in (("nonlin", NONLINS), ("norm", tuple(NORMS)), ("matrix", MATRICES), ("skip", SKIPS),
                              ("width", WIDTHS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"TableArch.{name} = {getattr(self, name)!r}: expected one of {', '.join(allowed)}")
        if self.matrix == "looks-linear" and (self.nonlin != "relu" or self.skip != "none"):
            raise ValueError("looks-linear initialisation is defined for vanilla ReLU networks (§H)")
        if self.matrix == "orthogonal" and self.width != "100":
            raise ValueError("orthogonal matrices are square: width must be 100")
        if self.skip != "none" and self.width != "100":
            raise ValueError("the ResNets of Table 1 have width 100")
        if self.depth < 2:
            raise ValueError("depth must be at least 2 linear layers")
        if self.d < 2 or self.d % 2:
            raise ValueError("the width d must be an even number >= 2")
        if self.sub_blocks < 1 or self.sub_blocks > self.depth:
            raise ValueError("sub_blocks must be between 1 and depth")

    @property
    def label(self) -> str:
        w = "" if self.width == "100" else f", width {self.d}/{2 * self.d}" if self.width == "100/200" else f", width {2 * self.d}"
        m = "" if self.matrix == "gaussian" else f", {self.matrix}"
        s = "" if self.skip == "none" else f", {self.skip} skip" + ("" if self.sub_blocks == 2 else f", {self.sub_blocks}-layer blocks")
        return f"{self.norm}-{self.nonlin}{m}{s}{w}"

    def widths(self) -> list[int]:
        """Output widths of the linear layers, input to output."""
        D, w = self.n_linear, self.d
        last = self.d_out or w
        if self.width == "100":
            return [w] * (D - 1) + [last]
        if self.width == "200":
            return [2 * w] * (D - 1) + [last]
        return [2 * w if i % 2 == 0 else w for i in range(D - 1)] + [last]

    @property
    def n_linear(self) -> int:
        return self.depth if self.skip == "none" else 1 + self.sub_blocks * self.n_blocks

    @property
    def n_blocks(self) -> int:
        """Residual blocks (0 for a vanilla network)."""
        return 0 if self.skip == "none" else self.depth // self.sub_blocks


def init_weights(arch: TableArch, E: int, *, generator: torch.Generator | None = None, device=None,
                 dtype=torch.float32) -> tuple[list[Tensor], list[Tensor]]:
    """Weights ``(E, out, in)`` of every linear layer (input to output) and skip matrices."""
    ws, prev, out = [], arch.d_in or arch.d, arch.widths()
    for i, m in enumerate(out):
        after_relu = i > 0 and arch.nonlin == "relu"
        if arch.matrix == "gaussian":
            w = torch.randn(E, m, prev, generator=generator, device=device, dtype=torch.float64)
            w = w * math.sqrt((2.0 if after_relu else 1.0) / prev)
        elif arch.matrix == "orthogonal":
            w = haar_orthogonal(E, m, prev, generator=generator, device=device)
        else:
            role = "stem" if i == 0 else ("readout" if i == len(out) - 1 else "branch")
            w = looks_linear_relu(E, m, prev, role, generator=generator, device=device)
        ws.append(w.to(dtype))
        prev = m
    skips = []
    if arch.skip == "gaussian":
        skips = [(torch.randn(E, arch.d, arch.d, generator=generator, device=device, dtype=torch.float64)
                  / math.sqrt(arch.d)).to(dtype) for _ in range(arch.n_blocks)]
    return ws, skips


KIND = {"linear": "linear", "norm": "norm", "act": "nonlin", "skip": "skip"}


def forward(arch: TableArch, ws: list[Tensor], skips: list[Tensor], x: Tensor):
    """All layers of the network on ``x (E, n, d)`` (one :func:`run_program` pass). Returns
    ``(layers, kinds, pre, blocks)``: every layer's output in forward order (``layers[0]`` = first
    linear layer = the paper's ``f_L``; the last = the top layer ``f_1``), its kind
    (``linear``/``norm``/``nonlin``/``skip``), the inputs of the nonlinearity layers, and for
    ResNets ``(v, s(v), ρ(v))`` per block (``ρ(v)`` is the tensor of the graph)."""
    ops = program(arch)
    keep: list[Tensor] = []
    run_program(arch, ops, ws, x, skips=skips, keep=keep)
    layers, kinds, pre, blocks, open_ = [], [], [], [], []
    for j, op in enumerate(ops):
        if op[0] == "start":
            open_.append(keep[j])
            continue
        if op[0] == "act":
            pre.append(keep[j - 1])
        if op[0] == "skip":
            v = open_.pop()
            blocks.append((v, v if arch.skip == "identity" else v @ skips[op[1]].transpose(-1, -2), keep[j - 1]))
        layers.append(keep[j])
        kinds.append(KIND[op[0]])
    return layers, kinds, pre, blocks


def ensemble_chunk(ws: list[Tensor], x: Tensor) -> int:
    """Networks per pass of :func:`metrics` / :func:`block_dilution` for the ensemble ``ws`` on data
    ``x`` ``(E, n, d)``: :func:`datasets_per_pass` at its widest layer and its number of layers."""
    return datasets_per_pass(x.shape[1], max(max(w.shape[-2:]) for w in ws), len(ws))


def _by_networks(ws: list[Tensor], skips: list[Tensor], x: Tensor, y: Tensor, chunk: int):
    """Slices of ``chunk`` networks (with their datasets) of an ensemble, for the passes above."""
    for i in range(0, x.shape[0], chunk):
        yield [w[i:i + chunk] for w in ws], [k[i:i + chunk] for k in skips], x[i:i + chunk], y[i:i + chunk]


def metrics(arch: TableArch, ws: list[Tensor], skips: list[Tensor], x: Tensor, y: Tensor, *,
            chunk: int | None = None) -> dict[str, Tensor]:
    """§I.2 metrics for every network of the ensemble: ``gsc (E, n_layers)`` in forward order
    (``gsc[:, 0]`` is ``GSC(L, 0)``), ``std`` and ``sign`` ``(E, n_nonlin)``, and the layer kinds.

    Each network sees only its own dataset, so the ensemble is processed ``chunk`` networks at a
    time with identical results (default :func:`ensemble_chunk`: the paper's 100 datasets x 10,000
    points at depth 50 need about 140 GB at once)."""
    chunk = chunk or ensemble_chunk(ws, x)
    if chunk < x.shape[0]:
        parts = [metrics(arch, *part, chunk=chunk) for part in _by_networks(ws, skips, x, y, chunk)]
        return {k: (parts[0][k] if k == "kinds" else torch.cat([p_[k] for p_ in parts])) for k in parts[0]}
    x = x.detach().requires_grad_(True)              # so that every layer is part of the graph
    layers, kinds, pre, _ = forward(arch, ws, skips, x)
    f0 = (layers[-1] * y).sum(-1)                                         # (E, n) dot-product error
    grads = torch.autograd.grad(f0.sum(), layers)
    q = lambda t: t.pow(2).mean(1).sqrt()                                 # quadratic mean over the data
    q0 = q(f0)
    gsc = torch.stack([q(g.norm(dim=-1) / math.sqrt(g.shape[-1])) * q(f.norm(dim=-1)) / q0
                       for f, g in zip(layers, grads)], -1)
    std = torch.stack([(p.detach() - p.detach().mean(1, keepdim=True)).pow(2).mean((1, 2)).sqrt() for p in pre], -1)   # torch's std over a middle dim is slow
    pos = [(p.detach() > 0).float().mean(1) for p in pre]                   # (E, units) per layer
    sign = torch.stack([torch.minimum(q_, 1 - q_).mean(-1) for q_ in pos], -1)
    return {"gsc": gsc.detach(), "std": std, "sign": sign, "kinds": kinds}


PAPER_POINTS = 10_000   #: §I.2: points per dataset, and with batch norm the batch size


def batch_size_matches(key: tuple, n_points: int) -> bool:
    """A batch-norm row's GSC depends on the batch (the whole dataset), so it is comparable with the
    paper only at the paper's 10,000 points; rows without batch norm always are."""
    return not (key[1] == "batch" and n_points != PAPER_POINTS)


def datasets_per_pass(n_points: int, d: int, depth: int, budget: float = 4e8) -> int:
    """Networks per :func:`metrics` pass so that activations and gradients stay near 8 GB
    (``budget`` floats of points x width x depth)."""
    return max(1, int(budget // (n_points * d * depth)))



# --- dilution -------------------------------------------------------------------------------

def diluted_rate(r, k):
    """Theorem 3, exact under its orthogonality assumptions (ours): the GSC of ``S v + ρ(v)``
    when ``ρ`` alone has growth rate ``r`` and ``Q‖Sv‖/Q‖ρ(v)‖ = k``: ``√((k² + r²)/(k² + 1))``."""
    r, k = np.asarray(r, dtype=float), np.asarray(k, dtype=float)
    return np.sqrt((k * k + r * r) / (k * k + 1))


def diluted_rate_first_order(r, k):
    """Theorem 3 as stated: ``1 + (r - 1)/(k² + 1)``."""
    r, k = np.asarray(r, dtype=float), np.asarray(k, dtype=float)
    return 1 + (r - 1) / (k * k + 1)


def undiluted_rate(r_b, k_b):
    """The paper's Fig. 3C correction: a block diluted by ``k_b`` whose measured rate is ``r_b``
    would have had rate ``1 + (k_b² + 1)(r_b - 1)`` without its skip (first-order inverse)."""
    return 1 + (np.asarray(k_b) ** 2 + 1) * (np.asarray(r_b) - 1)


@dataclass(frozen=True)
class RandomBlockRate:
    """One cell of :func:`random_block_rates`: the skip kind, the branch's power ``p`` and scale
    ``c``, the measured branch rate ``r``, dilution ``k`` and block rate ``r_f`` (batch means),
    ``dev`` = mean over batches of ``r_f - diluted_rate(r, k)`` with its standard error ``se``
    (``n_batch - 1`` degrees of freedom), and the first-order rate at the mean ``(r, k)``."""
    skip: str
    p: float
    c: float
    r: float
    k: float
    r_f: float
    dev: float
    se: float
    first_order: float
    n_batch: int

    @property
    def z(self) -> float:
        """``dev / se``: how many standard errors the block rate is from Theorem 3's exact form."""
        return self.dev / self.se


def random_block_rates(skips=("identity", "orthogonal", "gaussian"), powers=(1.5, 3.0), scales=(0.3, 1.0, 3.0), *,
                       d: int = 32, n: int = 4000, n_batch: int = 20, generator: torch.Generator | None = None,
                       device=None, rate=None) -> list[RandomBlockRate]:
    """Theorem 3 (§7, exact form in the proof, App. F.3) by Monte Carlo on random blocks
    ``f(u) = S u + ρ(u)`` with ``ρ(u) = c W₂ φ(W₁ u)``, ``φ(z) = sign(z)|z|^p`` (so ``ρ`` has a
    GSC above 1 that grows with ``p``), ``W₁, W₂`` Gaussian ``d × d`` with variance ``1/d``, and
    skip ``S`` the identity, a Haar orthogonal or a Gaussian matrix. ``u`` is a uniform unit vector
    and the backward vector ``g`` standard Gaussian, independent of everything: the assumptions of
    the theorem. Each of the ``n`` samples is one independent draw of ``(W₁, W₂, S, u, g)``; the
    samples are split into ``n_batch`` batches, and per batch the quadratic means give
    ``r = Q‖gJ_ρ‖ Q‖u‖ / (Q‖ρ‖ Q‖g‖)``, ``k = Q‖Su‖/Q‖ρ‖`` and the block's
    ``r_f = Q‖g(J_ρ + S)‖ Q‖u‖ / (Q‖ρ + Su‖ Q‖g‖)``. ``rate(r, k)`` is the prediction compared
    (default :func:`diluted_rate`). float64; one returned :class:`RandomBlockRate` per
    (skip, p, c) cell."""
    rate = diluted_rate if rate is None else rate
    dd = torch.float64
    m = n // n_batch
    q = lambda t: t.pow(2).sum(-1).mean().sqrt().item()
    out = []
    for skip in skips:
        for p in powers:
            for c in scales:
                vals = []
                for _ in range(n_batch):
                    W1 = torch.randn(m, d, d, generator=generator, device=device, dtype=dd) / math.sqrt(d)
                    W2 = torch.randn(m, d, d, generator=generator, device=device, dtype=dd) / math.sqrt(d)
                    if skip == "identity":
                        S = torch.eye(d, dtype=dd, device=device).expand(m, d, d)
                    elif skip == "orthogonal":
                        S = haar_orthogonal(m, d, d, generator=generator, device=device)
                    elif skip == "gaussian":
                        S = torch.randn(m, d, d, generator=generator, device=device, dtype=dd) / math.sqrt(d)
                    else:
                        raise ValueError(f"skip {skip!r}: use identity, orthogonal or gaussian")
                    u = random_unit_vectors(m, d, generator=generator, device=device, dtype=dd)
                    g = torch.randn(m, d, generator=generator, device=device, dtype=dd)
                    z = torch.einsum("nij,nj->ni", W1, u) * math.sqrt(d)          # pre-activations ~ N(0, 1)
                    rho = c * torch.einsum("nij,nj->ni", W2, torch.sign(z) * z.abs() ** p) / math.sqrt(d)
                    gR = c * torch.einsum("ni,nij->nj", torch.einsum("ni,nij->nj", g, W2) * p * z.abs() ** (p - 1), W1)
                    Su, gS = torch.einsum("nij,nj->ni", S, u), torch.einsum("ni,nij->nj", g, S)
                    r_hat = q(gR) * q(u) / (q(rho) * q(g))
                    k_hat = q(Su) / q(rho)
                    rf_hat = q(gR + gS) * q(u) / (q(rho + Su) * q(g))
                    vals.append((r_hat, k_hat, rf_hat, rf_hat - float(rate(r_hat, k_hat))))
                v = np.array(vals)
                out.append(RandomBlockRate(skip, p, c, *v[:, :3].mean(0), float(v[:, 3].mean()),
                                           float(v[:, 3].std(ddof=1) / math.sqrt(n_batch)),
                                           float(diluted_rate_first_order(v[:, 0].mean(), v[:, 1].mean())), n_batch))
    return out


def composed_dilution(ks) -> float:
    """Proposition 7: composing functions that are ``k_b``-diluted gives a
    ``((Π_b (1 + 1/k_b²)) - 1)^{-1/2}``-diluted function."""
    ks = np.asarray(ks, dtype=float)
    return float((np.prod(1 + 1 / ks**2) - 1) ** -0.5)


#: Philipp et al. Table 1 exactly as printed: (nonlinearity, normalisation, matrix, skip, width) ->
#: (GSC(L, 0), St. Dev., Sign Div.) as strings, so that the printed digits (and hence the rounding
#: of each number: "1.00" is +-0.005, "0.50" is +-0.005) survive; :func:`printed_half_unit` reads them.
TABLE1 = {
    ("relu", "none", "gaussian", "none", "100"): ("1.52", "0.22", "0.030"),
    ("relu", "layer", "gaussian", "none", "100"): ("1.16", "0.096", "0.029"),
    ("relu", "LOlayer", "gaussian", "none", "100"): ("1.30", "0.10", "0.030"),
    ("relu", "batch", "gaussian", "none", "100"): ("5728", "1.00", "0.41"),
    ("tanh", "none", "gaussian", "none", "100"): ("1.26", "0.096", "0.50"),
    ("tanh", "layer", "gaussian", "none", "100"): ("72.2", "1.00", "0.50"),
    ("tanh", "LOlayer", "gaussian", "none", "100"): ("71.9", "1.00", "0.50"),
    ("tanh", "batch", "gaussian", "none", "100"): ("93.6", "1.00", "0.50"),
    ("selu", "none", "gaussian", "none", "100"): ("6.36", "0.97", "0.42"),
    ("selu", "LOlayer", "gaussian", "none", "100"): ("7.00", "0.98", "0.42"),
    ("relu", "batch", "gaussian", "none", "200"): ("5556", "1.00", "0.42"),
    ("relu", "batch", "gaussian", "none", "100/200"): ("5527", "1.00", "0.41"),
    ("selu", "none", "gaussian", "none", "200"): ("5.86", "0.99", "0.45"),
    ("selu", "none", "gaussian", "none", "100/200"): ("6.09", "0.98", "0.43"),
    ("relu", "none", "orthogonal", "none", "100"): ("1.29", "0.20", "0.03"),
    ("relu", "layer", "orthogonal", "none", "100"): ("1.00", "0.10", "0.03"),
    ("relu", "batch", "orthogonal", "none", "100"): ("5014", "1.00", "0.42"),
    ("tanh", "none", "orthogonal", "none", "100"): ("1.18", "0.10", "0.50"),
    ("tanh", "layer", "orthogonal", "none", "100"): ("56.3", "1.00", "0.50"),
    ("tanh", "batch", "orthogonal", "none", "100"): ("54.6", "1.00", "0.50"),
    ("selu", "none", "orthogonal", "none", "100"): ("5.47", "1.00", "0.49"),
    ("relu", "none", "looks-linear", "none", "100"): ("1.00", "1.00", "0.50"),
    ("relu", "layer", "looks-linear", "none", "100"): ("1.00", "1.00", "0.50"),
    ("relu", "batch", "looks-linear", "none", "100"): ("1.00", "1.00", "0.50"),
    ("relu", "layer", "gaussian", "identity", "100"): ("1.08", "0.56", "0.19"),
    ("relu", "batch", "gaussian", "identity", "100"): ("4.00", "1.00", "0.48"),
    ("tanh", "layer", "gaussian", "identity", "100"): ("1.63", "1.00", "0.50"),
    ("tanh", "batch", "gaussian", "identity", "100"): ("1.57", "1.00", "0.50"),
    ("selu", "layer", "gaussian", "identity", "100"): ("1.31", "0.99", "0.48"),
    ("relu", "layer", "gaussian", "gaussian", "100"): ("1.17", "0.56", "0.18"),
    ("relu", "batch", "gaussian", "gaussian", "100"): ("4.50", "1.00", "0.48"),
    ("tanh", "layer", "gaussian", "gaussian", "100"): ("1.97", "1.00", "0.50"),
    ("tanh", "batch", "gaussian", "gaussian", "100"): ("1.71", "1.00", "0.50"),
    ("selu", "layer", "gaussian", "gaussian", "100"): ("1.53", "9.97", "0.48"),
}


TABLE1_COLUMNS = ("GSC", "St. Dev.", "Sign Div.")


def printed_half_unit(text: str) -> float:
    """Half a unit of the last digit a printed number shows: its rounding error bound
    ("1.00" -> 0.005, "0.030" -> 0.0005, "5728" -> 0.5)."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10.0 ** -decimals


def sign_diversity_bias(s: float, n_points: int) -> float:
    """Bound on how far the estimated sign diversity falls below the true one (§I.2 metric).

    Per neuron the estimate is ``min(p_hat, 1 - p_hat)`` with ``p_hat`` the fraction of ``n_points``
    positive pre-activations; ``min`` is concave, so it is biased low, by
    ``b(p) = E|p_hat - 1/2| - |p - 1/2| <= 2 min(p, 1 - p) b_max`` with ``b_max = (2 pi n)^(-1/2)``
    the bias at ``p = 1/2`` (the inequality checked against the exact binomial expectation for
    n = 1,000 and 10,000 in ``tests/test_dilution.py``). Averaged over neurons of mean sign
    diversity ``s`` the bias is at most ``2 s b_max``: 0.013 at s = 1/2 and n = 1,000, but only
    0.0008 for the ReLU rows' s = 0.03."""
    return float(min(1.0, 2.0 * s) * (2 * math.pi * n_points) ** -0.5)


#: Table 1 rows whose GSC(L, 0) is heavy-tailed across datasets: the unnormalised and the
#: layer-normalised ReLU nets with Gaussian weights, and the orthogonal ReLU nets without or with
#: layer norm. Measured once on 192 datasets per row (1,000 points, depth 50): the standard
#: deviation of log GSC is 0.40-0.64 in these five rows and at most 0.21 in the other 18 rows
#: without batch norm. A mean of few such values is skewed, and so is its Student-t score: a
#: sample without the rare large values has both a low mean and a small standard error.
#: Resampling those 192 values, a cell compared at 16 datasets fails by chance with probability
#: 1e-4 to 4e-4 (1.2e-3 for the five together, against the claim's budget of 1e-3 for all 23), at
#: 32 datasets 2e-5 to 1.5e-4, at 64 below 1e-5.
HEAVY_TAILED = frozenset({("relu", "none", "gaussian", "none", "100"), ("relu", "layer", "gaussian", "none", "100"),
                          ("relu", "LOlayer", "gaussian", "none", "100"), ("relu", "none", "orthogonal", "none", "100"),
                          ("relu", "layer", "orthogonal", "none", "100")})
HEAVY_TAILED_MIN_DATASETS = 64   #: datasets a :data:`HEAVY_TAILED` row needs before its GSC is compared


def gsc_comparable(key: tuple, n_datasets: int, n_points: int) -> bool:
    """Whether a row's GSC(L, 0) from ``n_datasets`` datasets of ``n_points`` points can be compared
    with the paper's printed mean: batch-norm rows only at the paper's batch of 10,000 points
    (:func:`batch_size_matches`), heavy-tailed rows only from :data:`HEAVY_TAILED_MIN_DATASETS`
    datasets on."""
    return batch_size_matches(key, n_points) and (key not in HEAVY_TAILED or n_datasets >= HEAVY_TAILED_MIN_DATASETS)


def table1_cell(q: dict, key: tuple, n_datasets: int, n_points: int, k: float, column: str, *,
                printed: str | None = None, outcome: str = "confirmed", correction: str = "", paper_says: str = "",
                resolve_below: float | None = None) -> dict:
    """One cell of :func:`table1_comparison`: ``q`` is the chapter's summary of row ``key``.
    ``printed`` replaces the paper's printed text by a corrected reading (e.g. ``"0.997"`` for a
    printed ``"9.97"``), compared by the same rule; ``outcome`` is the cell's declared verdict and
    ``paper_says`` the paper's row as printed (required by :func:`lib.check_table` for "not reproduced").
    ``resolve_below``: the declared verdict needs a tolerance of at most this (log units for the GSC);
    a less precise run, which could not tell it from agreement, records the cell as not resolved."""
    col = TABLE1_COLUMNS.index(column)
    paper_text = TABLE1[key][col]
    text = printed or paper_text
    ref = float(text)
    half = printed_half_unit(text)
    resolved = True
    if column == "GSC":
        val, se, sd = q["gsc"], q["se_gsc"], q["sd_gsc"]
        tol = k * math.hypot(se, sd / 10) / val + half / ref     # log scale: relative s.e.; rounding as a relative allowance
        resolved = gsc_comparable(key, n_datasets, n_points)
        note = (f"mean over {n_datasets} datasets, compared on the log scale; "
                + (f"{k:.2f} combined s.e. + rounding {half:g}" if resolved
                   else "batch norm over the whole dataset: the GSC depends on the batch size, compared at 10,000 points"
                   if not batch_size_matches(key, n_points)
                   else f"heavy-tailed across datasets: compared from {HEAVY_TAILED_MIN_DATASETS} datasets on"))
    else:
        name = "std" if column == "St. Dev." else "sign"
        val, se = q[name], q[f"se_{name}"]
        sd = se * math.sqrt(n_datasets)
        tol = k * math.hypot(se, sd / 10) + half
        note = f"{k:.2f} combined s.e. + rounding {half:g}"
        if column == "Sign Div.":
            bias = sign_diversity_bias(max(ref, val), n_points)
            tol += bias
            note += f" + estimator bias bound {bias:.2g}"
    if resolve_below is not None and tol > resolve_below:
        resolved = False
        note += f"; the declared verdict needs a tolerance below {resolve_below:g}"
    if printed:
        note = f"compared with {printed} ({correction}); " + note
    return {"cells": f"{'/'.join(key)}: {column}", "measured": val, "expected": ref, "tol": tol,
            "se": se,
            "paper_value": float(paper_text), "outcome": outcome if resolved else "not resolved at this scale", "note": note,
            "paper_says": paper_says}


def table1_comparison(measured: dict, n_datasets: int, n_points: int, k: float, column: str,
                      cells: dict | None = None) -> dict[str, list]:
    """Per-cell comparison of a measured Table 1 with the paper's printed one (Philipp et al. §I.2).

    ``measured`` maps a Table 1 key to the chapter's summary of ``n_datasets`` datasets: for the
    GSC column ``gsc``, ``se_gsc``, ``sd_gsc`` (mean, standard error and s.d. of GSC(L, 0)
    across datasets); for ``"St. Dev."`` and ``"Sign Div."`` ``std``/``se_std`` and ``sign``/``se_sign``.
    ``k`` is the number of combined standard errors a cell may be off (a family-wise quantile,
    :func:`lib.machinery.checks.k_family`). The combined standard error adds the paper's own sampling error
    (its mean over 100 datasets has standard error ``sd / 10``). On top come half a unit of the
    paper's last printed digit and, for sign diversity, :func:`sign_diversity_bias`.

    The GSC is the arithmetic mean over datasets, as the paper prints it, compared on the log scale
    (the tolerance in log units is the relative combined standard error; the geometric mean would
    sit below the paper's mean by ``exp(sd_log²/2)``, up to 20% in the ReLU rows). Rows with batch
    norm normalise over the whole dataset, so their GSC depends on the batch size: at any batch
    other than the paper's 10,000 points their GSC cell is returned as not comparable (``outcome =
    "not resolved at this scale"``); so are the :data:`HEAVY_TAILED` rows below
    :data:`HEAVY_TAILED_MIN_DATASETS` datasets (:func:`gsc_comparable`). ``cells`` maps a key to the keyword arguments
    of :func:`table1_cell` for that cell (a corrected reading, a declared "not reproduced"): every
    cell is compared by the same rule. Returns one list per field of :func:`lib.machinery.checks.check_table`."""
    if column not in TABLE1_COLUMNS:
        raise ValueError(f"column={column!r}: use one of {TABLE1_COLUMNS}")
    cells = cells or {}
    out: dict[str, list] = {f: [] for f in ("cells", "measured", "expected", "tol", "se", "paper_value", "outcome", "note",
                                            "paper_says")}
    for key, q in measured.items():
        if key not in TABLE1:
            continue
        for f, v in table1_cell(q, key, n_datasets, n_points, k, column, **cells.get(key, {})).items():
            out[f].append(v)
    return out


def table1_combined(measured: dict, n_datasets: int, p: float = 1e-3) -> dict[str, float]:
    """A combined test of Table 1's GSC column over the rows without batch norm (whose GSC does not
    depend on the batch size) that :func:`gsc_comparable` admits at ``n_datasets`` (the heavy-tailed
    rows only from :data:`HEAVY_TAILED_MIN_DATASETS` on): for each row the log-scale distance to the printed value beyond its
    rounding, over the combined standard error (ours and the paper's ``sd/10``, as in
    :func:`table1_cell`), is a Student-t score with ``n_datasets - 1`` degrees of freedom; its
    two-sided p-value is mapped to the normal score with the same p-value, and the sum of their
    squares is compared with the chi-square quantile at ``p`` for that many rows. Many small
    deviations that no single row can resolve -- a network one layer too deep or too shallow
    moves every exploding row the same way -- add up here. Returns ``stat``, ``df`` (rows),
    ``critical`` and the p-value ``p_value``."""
    from scipy import stats

    zz = []
    for key, q in measured.items():
        if key not in TABLE1 or key[1] == "batch" or not gsc_comparable(key, n_datasets, PAPER_POINTS):
            continue
        text = TABLE1[key][0]
        d = abs(math.log(q["gsc"]) - math.log(float(text))) - printed_half_unit(text) / float(text)
        t = max(d, 0.0) / (math.hypot(q["se_gsc"], q["sd_gsc"] / 10) / q["gsc"])
        zz.append(stats.norm.isf(stats.t.sf(t, n_datasets - 1)) if t > 0 else 0.0)
    stat = float(np.sum(np.square(zz)))
    return {"stat": stat, "df": len(zz), "critical": float(stats.chi2.isf(p, len(zz))),
            "p_value": float(stats.chi2.sf(stat, len(zz)))}


# --- dilution block by block (§7, Fig. 3) and the dynamical-systems ResNets (§B.1.2, Table 3) --

def block_dilution(arch: TableArch, ws: list[Tensor], skips: list[Tensor], x: Tensor, y: Tensor, *,
                   chunk: int | None = None) -> dict[str, np.ndarray]:
    """Per residual block of every network (§7, Fig. 3), from one forward pass and vector-Jacobian
    products with the dot-product error ``f_0 = f_1·y``, quadratic means over each dataset:
    the dilution ``k_b = Q‖s_b(v)‖/Q‖ρ_b(v)‖``, the branch's rate ``r_b = Q‖gR‖Q‖v‖/(Q‖ρ‖Q‖g‖)``
    (``g`` the gradient arriving at the block's output, ``R`` the branch Jacobian), the block's
    measured rate ``r_f`` and Theorem 3's exact prediction ``diluted_rate(r_b, k_b)``. Returns
    arrays ``(E, blocks)`` in forward order (block 0 is the lowest), float64 on the CPU; ``chunk``
    networks per pass (default :func:`ensemble_chunk`), as in :func:`metrics`."""
    if arch.skip == "none":
        raise ValueError("block_dilution needs a ResNet (skip 'identity' or 'gaussian')")
    chunk = chunk or ensemble_chunk(ws, x)
    if chunk < x.shape[0]:
        parts = [block_dilution(arch, *part, chunk=chunk) for part in _by_networks(ws, skips, x, y, chunk)]
        return {k: np.concatenate([p_[k] for p_ in parts]) for k in parts[0]}
    xg = x.detach().clone().requires_grad_(True)
    layers, kinds, _, blocks = forward(arch, ws, skips, xg)
    f0 = (layers[-1] * y).sum(-1)
    hs = [h for h, k in zip(layers, kinds) if k == "skip"]
    g_out = torch.autograd.grad(f0.sum(), hs, retain_graph=True)
    Q = lambda t: t.pow(2).sum(-1).mean(1).sqrt()                         # (E,) quadratic mean of ||.|| over the data
    out = {"k": [], "r_branch": [], "r_block": [], "predicted": []}
    for b, ((v, s_, r_), g) in enumerate(zip(blocks, g_out)):
        gR = torch.autograd.grad(r_, v, g, retain_graph=True)[0]          # g R(v): through the branch only
        gS = g if arch.skip == "identity" else g @ skips[b]
        k_ = Q(s_) / Q(r_)
        r_rho = Q(gR) * Q(v) / (Q(r_) * Q(g))
        r_f = Q(gR + gS) * Q(v) / (Q(s_ + r_) * Q(g))
        for key, val in (("k", k_), ("r_branch", r_rho), ("r_block", r_f)):
            out[key].append(val.detach().double().cpu().numpy())
        out["predicted"].append(diluted_rate(out["r_branch"][-1], out["k"][-1]))
    return {k: np.stack(v, -1) for k, v in out.items()}


#: Table 3 (§B.1.2): base-10 logs of GSC(L, 0) and of the dilution-corrected GSC, as printed
TABLE3 = {("relu", "batch", "gaussian"): ("0.337", "4.23"), ("relu", "batch", "skew"): ("0.329", "4.06"),
          ("relu", "batch", "neg-def"): ("6.164", "68.37"), ("relu", "batch", "correlated"): ("0.313", "7.22"),
          ("tanh", "layer", "gaussian"): ("0.136", "2.17"), ("tanh", "layer", "skew"): ("0.114", "1.91"),
          ("tanh", "layer", "neg-def"): ("3.325", "5.46"), ("tanh", "layer", "correlated"): ("0.143", "2.31")}
DYNAMICAL_INITS = ("gaussian", "skew", "neg-def", "correlated")


def dynamical_weights(init: str, n: int, E: int, d: int, *, generator: torch.Generator | None = None, device=None,
                      correlation: float = 0.5) -> Tensor:
    """The branch matrices of Table 3's ResNets (§B.1.2), ``(n, E, d, d)`` float64, each scaled to
    unit qm norm (``‖W‖_F = √d``): ``gaussian`` (i); ``skew`` = ``A - Aᵀ`` (ii, skip and branch
    orthogonal with probability 1 at the block's linear layer); ``neg-def`` = ``-CᵀC`` (iii, a
    Jacobian with eigenvalues of negative real part); ``correlated`` (iv): successive blocks'
    Gaussian matrices with correlation ``correlation``, ``W_b = c W_{b-1} + √(1-c²) Z_b``."""
    if init not in DYNAMICAL_INITS:
        raise ValueError(f"init {init!r}: use one of {', '.join(DYNAMICAL_INITS)}")
    Z = torch.randn(n, E, d, d, generator=generator, device=device, dtype=torch.float64) / math.sqrt(d)
    if init == "skew":
        Z = Z - Z.transpose(-1, -2)
    elif init == "neg-def":
        Z = -Z.transpose(-1, -2) @ Z
    elif init == "correlated":
        for b in range(1, n):
            Z[b] = correlation * Z[b - 1] + math.sqrt(1 - correlation ** 2) * Z[b]
    return Z * (math.sqrt(d) / Z.pow(2).sum((-1, -2), keepdim=True).sqrt())


def table3_network(nonlin: str, norm: str, init: str, *, depth: int, d: int, E: int,
                   generator: torch.Generator | None = None, device=None, dtype=torch.float32):
    """One Table 3 architecture: an identity-skip ResNet of ``depth`` single-layer blocks
    ``x + W(nonlin(norm(x)))`` after a Gaussian stem, with :func:`dynamical_weights` branches.
    Returns ``(arch, ws, skips)`` for :func:`metrics` and :func:`block_dilution`."""
    arch = TableArch(nonlin, norm, skip="identity", depth=depth, d=d, sub_blocks=1)
    ws, sk = init_weights(arch, E, generator=generator, device=device, dtype=dtype)
    br = dynamical_weights(init, arch.n_blocks, E, d, generator=generator, device=device).to(dtype)
    return arch, [ws[0]] + list(br.unbind(0)), sk



def table3_comparison(res: dict, n_points: int, k: float, column: int, cells: dict | None = None) -> dict[str, list]:
    """Per-cell comparison of :func:`table3` with the printed Table 3, ``column`` 0 (log10 GSC) or
    1 (log10 dilution-corrected GSC), in the fields of :func:`lib.machinery.checks.check_table`. As for
    Table 1 (:func:`table1_comparison`) a cell may be off by ``k`` combined standard errors (ours
    and the paper's, taken as ``sd/10``) plus half a unit of the printed last digit; batch-norm rows
    depend on the batch size and are compared only at the paper's 10,000 points. Column 1 leaves
    out the correlated-block rows (iv), whose most diluted blocks (``k_b`` about 12) turn the noise
    of a measured rate into a 150-fold larger error of the undiluted one; a cell where some network's
    product is undefined (a non-positive factor) is recorded as not resolved, with the mean and
    standard error over the networks where it is defined.

    ``cells`` maps ``(key, column)`` to a declared verdict, as :func:`table1_cell` takes one:
    ``outcome``, ``paper_says`` (the printed row, required for "not reproduced") and
    ``resolve_below`` (the verdict needs a tolerance of at most this, in decades; a less precise
    run records the cell as not resolved). Every cell is compared by the same rule."""
    cells = cells or {}
    out: dict[str, list] = {f: [] for f in ("cells", "measured", "expected", "tol", "se", "paper_value", "outcome", "note",
                                            "paper_says")}
    name = ("log10_gsc", "log10_corrected")[column]
    for key, q in res.items():
        if column == 1 and key[2] == "correlated":
            continue
        v = q[name]
        defined = bool(np.all(np.isfinite(v)))
        v = v[np.isfinite(v)]
        text = TABLE3[key][column]
        se, sd = v.std(ddof=1) / math.sqrt(v.size), v.std(ddof=1)
        tol = k * math.hypot(se, sd / 10) + printed_half_unit(text)
        resolved = batch_size_matches(key, n_points) and defined
        decl = cells.get((key, column), {})
        note = f"mean over {v.size} datasets; " + (
            f"{k:.2f} combined s.e. + rounding {printed_half_unit(text):g}" if resolved
            else "batch norm over the whole dataset: depends on the batch size, compared at 10,000 points" if key[1] == "batch"
            else "a block's first-order undiluted rate came out non-positive in some networks (mean over the others)")
        if resolved and decl.get("resolve_below") is not None and tol > decl["resolve_below"]:
            resolved = False
            note += f"; the declared verdict needs a tolerance below {decl['resolve_below']:g}"
        out["cells"].append(f"{'/'.join(key)}: {('log10 GSC', 'log10 corrected GSC')[column]}")
        out["measured"].append(float(v.mean()))
        out["expected"].append(float(text))
        out["tol"].append(tol)
        out["se"].append(se)
        out["paper_value"].append(float(text))
        out["outcome"].append(decl.get("outcome", "confirmed") if resolved else "not resolved at this scale")
        out["note"].append(note)
        out["paper_says"].append(decl.get("paper_says", ""))
    return out


# --- Proposition 3 (§E.3) and Theorem 1 (§F.1) -------------------------------------------------

def weight_sensitivity(arch: TableArch, ws: list[Tensor], x: Tensor, layer: int) -> dict[str, float]:
    """Proposition 3 at one input ``x (d,)`` of one network (matrices ``(out, in)``, no batch norm):
    both sides of "``GSC(k, 0)·‖θ_k‖‖f_{k+1}‖/(‖f_k‖√d_{k+1})`` is the quadratic expectation of the
    relative change of the output ``f_0`` per relative random change of the weight matrix
    ``θ_k``", for ``θ_k = ws[layer]`` (``f_{k+1}`` its input, ``f_k`` its output, the paper's
    numbering from the top).

    ``direct``: ``‖θ_k‖/‖f_0‖ · ‖∂f_0/∂θ_k‖_F/√(d_k d_{k+1})`` -- the quadratic mean of
    ``‖∂f_0/∂θ_k · U‖ ‖θ_k‖/‖f_0‖`` over a uniform unit direction ``U`` in the ``d_k d_{k+1}``
    weight entries (``E[UUᵀ] = I/(d_k d_{k+1})``), from the exact Jacobian with respect to the
    weights. ``gsc_form``: the proposition's right side, with ``GSC(k, 0) =
    ‖∂f_0/∂f_k‖_qm ‖f_k‖/‖f_0‖`` from the Jacobian with respect to the activation ``f_k``.
    ``factor``: ``‖θ_k‖‖f_{k+1}‖/(‖f_k‖√d_{k+1})``. Norms are Frobenius / Euclidean."""
    ops = program(arch)
    j = ops.index(("linear", layer))
    below = run_program(arch, ops, ws, x, stop=j)                       # f_{k+1}
    w = ws[layer]
    above = lambda h: run_program(arch, ops, ws, h, start=j + 1)
    fk = below @ w.T
    f0 = above(fk)
    J_act = torch.func.jacrev(above)(fk)                                # (d_0, d_k)
    J_w = torch.func.jacrev(lambda w_: above(below @ w_.T))(w)          # (d_0, d_k, d_{k+1})
    dk, dk1 = w.shape
    gsc = (J_act.norm() / math.sqrt(dk)) * fk.norm() / f0.norm()
    factor = w.norm() * below.norm() / (fk.norm() * math.sqrt(dk1))
    direct = w.norm() / f0.norm() * J_w.norm() / math.sqrt(dk * dk1)
    return {"direct": direct.item(), "gsc_form": (gsc * factor).item(), "gsc": gsc.item(), "factor": factor.item()}


def prop3_inverse_factor(w: Tensor, f: Tensor) -> Tensor:
    """``X⁻² = d_{k+1}‖θ f‖² / (‖θ‖² ‖f‖²)`` per matrix of ``w (E, d_k, d_{k+1})`` for inputs
    ``f (E, d_{k+1})``. Proposition 3's second part, ``Q⁻¹_θ X = (E X⁻²)^{-1/2} = 1`` for randomly
    initialised ``θ``, is ``E X⁻² = 1``: it holds exactly for any rotation-invariant law of
    ``θ`` independent of ``f`` (``θ/‖θ‖`` is uniform on the sphere, ``E[(θ/‖θ‖) f]`` has squared
    length ``‖f‖²/d_{k+1}``)."""
    wf = torch.einsum("eij,ej->ei", w, f)
    return w.shape[-1] * wf.pow(2).sum(-1) / (w.pow(2).sum((-1, -2)) * f.pow(2).sum(-1))


def geometric_elementary_sum(lam: int, r: float):
    """``Σ_{φ ⊂ {1,2,...}, |φ| = λ} Π_{n∈φ} r^{-n} = q^{λ(λ+1)/2} / Π_{j=1..λ}(1 - q^j)`` with ``q = 1/r``
    (the generating function of partitions into ``λ`` distinct parts), as an mpmath number: the
    exact value of the sum the proof of Theorem 1 (§F.1) bounds through ``K(λ, n)``."""
    import mpmath as mp
    q = mp.mpf(1) / r
    return q ** (lam * (lam + 1) // 2) / mp.qp(q, q, lam)


def thm1_update_budget(Lam: int, r: float, c: float, c_prime: float, h: float):
    """Theorem 1 (§F.1), assumption 4: at most ``T = c h^{1/Λ} (ln r)³ r^{Λ/4} / (32 r c')`` updates
    (the proof uses ``h^{1/λ}``; with ``h ≤ 1`` the bound at ``λ = Λ`` is the binding one)."""
    import mpmath as mp
    return c * mp.mpf(h) ** (mp.mpf(1) / Lam) * mp.log(r) ** 3 * mp.mpf(r) ** (mp.mpf(Lam) / 4) / (32 * r * c_prime)


def thm1_residual_bound(Lam: int, r: float, c: float, c_prime: float, T, terms: int = 400):
    """The quantity the proof of Theorem 1 bounds by ``h``, evaluated exactly instead:
    ``c' Σ_{λ≥Λ} (T/c)^{λ+1} Σ_{|φ|=λ} Π_{n∈φ} r^{-n}`` (its third line, with ``r^{-N} ≤ 1``), the sum
    over ``λ`` truncated after ``terms`` terms (they decrease like ``r^{-λ²/2}``)."""
    import mpmath as mp
    x = mp.mpf(T) / c
    return c_prime * mp.fsum(x ** (lam + 1) * geometric_elementary_sum(lam, r) for lam in range(Lam, Lam + terms))


def thm1_power_sum(lam: int, r: float):
    """``Σ_{n≥1} n^λ r^{-n} = Li_{-λ}(1/r)`` (a polylogarithm), and the proof's bound for it,
    ``λ^λ (ln r)^{-λ}``: returns ``(exact, claimed_bound)`` as mpmath numbers."""
    import mpmath as mp
    return mp.polylog(-lam, mp.mpf(1) / r), mp.mpf(lam) ** lam * mp.log(r) ** (-lam)


def thm1_study(*, depths=(1, 2, 3, 5, 10, 20, 40), rates=(1.01, 1.05, 1.1, 1.5, 2.0, 5.0, 10.0), hs=(1e-6, 1e-3, 0.1, 1.0),
               enumerated=((1, 2.0), (2, 1.7), (3, 3.0)), n_max: int = 59, steps=((1, 2, 3, 5, 8), (1.1, 2.0, 5.0)),
               dps: int = 50) -> dict:
    """Theorem 1 (§4.3, §F.1) evaluated exactly, in ``dps``-digit arithmetic (``c' = 1``, the worst
    case; ``c`` cancels):

    - ``s_over_h``: the proof's bound ``S`` (:func:`thm1_residual_bound`, 60 terms) at the largest
      update budget the theorem allows (:func:`thm1_update_budget`), over ``h``, for every
      ``(Λ, r, h)`` of ``depths × rates × hs`` (the theorem says ``S/h ≤ 1``), with ``grid``;
    - ``identity_error``: the largest relative error of the closed form
      :func:`geometric_elementary_sum` against enumerating the ``λ``-subsets of ``{1..n_max}``, for
      the ``(λ, r)`` of ``enumerated`` (truncation ``r^{-(n_max+1)}`` or smaller);
    - ``step``: ``(λ, r, Li_{-λ}(1/r), λ^λ (ln r)^{-λ})`` for ``λ, r`` in ``steps`` (the proof's step
      claims the first below the second), and ``false_steps``, the ``(λ, r)`` where it is not."""
    import itertools

    import mpmath as mp

    with mp.workdps(dps):
        grid = [(L, r, h) for L in depths for r in rates for h in hs]
        s_over_h = [float(thm1_residual_bound(L, r, 1.0, 1.0, thm1_update_budget(L, r, 1.0, 1.0, h), terms=60) / h)
                    for L, r, h in grid]
        brute = max(abs(float(mp.fsum(mp.mpf(r) ** -sum(phi) for phi in itertools.combinations(range(1, n_max + 1), lam))
                              / geometric_elementary_sum(lam, r)) - 1) for lam, r in enumerated)
        step = [(lam, r, *map(float, thm1_power_sum(lam, r))) for lam in steps[0] for r in steps[1]]
    return {"grid": grid, "s_over_h": s_over_h, "identity_error": brute, "step": step,
            "false_steps": [(lam, r) for lam, r, exact, bound in step if exact >= bound]}


#: the seven vanilla architectures of Fig. 1
FIG1 = [("relu", "none"), ("relu", "layer"), ("relu", "batch"), ("tanh", "none"), ("tanh", "layer"), ("tanh", "batch"),
        ("selu", "none")]


# --- training, effective depth (§D.2) and the Taylor test (§G) ---------------------------------

def program(arch: TableArch) -> list[tuple]:
    """The network as a list of operations in forward order: ``("linear", i)`` (the ``i``-th
    weight matrix), ``("norm",)``, ``("act",)``, ``("start",)`` (a residual block begins: its input
    is saved) and ``("skip", b)`` (the block's input, times skip matrix ``b`` unless the skips are
    identities, is added back). :func:`forward` and the training experiments both run it."""
    ops: list[tuple] = []
    if arch.skip == "none":
        for i in range(arch.n_linear):
            ops.append(("linear", i))
            if arch.norm != "none":
                ops.append(("norm",))
            if i < arch.n_linear - 1:
                ops.append(("act",))
        return ops
    nrm = [("norm",)] if arch.norm != "none" else []
    ops.append(("linear", 0))
    for b in range(arch.n_blocks):
        ops.append(("start",))
        for j in range(1, arch.sub_blocks + 1):
            ops += nrm + [("act",), ("linear", arch.sub_blocks * b + j)]
        ops.append(("skip", b))
    if arch.norm != "none":
        ops.append(("norm",))
    return ops


def run_program(arch: TableArch, ops: list[tuple], ws: list[Tensor], x: Tensor, *, start: int = 0,
                stop: int | None = None, skips: list[Tensor] | None = None, keep: list | None = None) -> Tensor:
    """Run ``ops[start:stop]`` on ``x (E, n, d)`` with weights ``(E, out, in)``, or on one sample
    ``(d,)`` of one network with matrices ``(out, in)`` (no batch norm then); ``skips`` are the
    Gaussian skip matrices; ``keep`` collects every operation's output (for per-layer gradients)."""
    norm = NORMS[arch.norm]
    saved: list[Tensor] = []
    h = x
    for op in ops[start:stop]:
        if op[0] == "linear":
            h = h @ ws[op[1]].transpose(-1, -2)
        elif op[0] == "norm":
            h = normalise(norm, h)
        elif op[0] == "act":
            h = activation(arch.nonlin, h)
        elif op[0] == "start":
            saved.append(h)
        else:
            v = saved.pop()
            h = h + (v if arch.skip == "identity" else v @ skips[op[1]].transpose(-1, -2))
        if keep is not None:
            keep.append(h)
    return h


def taylor_output(arch: TableArch, ops: list[tuple], ws0: list[Tensor], ws: list[Tensor], x: Tensor, cut: int) -> Tensor:
    """Philipp et al. §G: the trained network with its bottom ``cut`` operations replaced by the
    first-order Taylor approximation ``T`` in the residual functions ``r_k = f_k(θ) - f_k(θ⁽⁰⁾)``
    (only linear layers have them). Going up from the input, with ``a`` the initial network's
    activations and ``δ`` the first-order propagation of all lower residuals through the initial
    layers: a linear layer gives ``T ← W⁰T + ΔW a + ΔW δ`` and ``δ ← W⁰δ + ΔW a``; an
    unparametrised layer ``T ← f(T)`` and ``δ ← Df(a) δ`` (a Jacobian-vector product); a skip adds
    the block input's ``T``, ``δ`` and ``a``. The lowest layer is kept exact (``T_L = f_L(θ, X)``).
    ``cut`` must be at a point where no residual block is open. Identity skips only. Returns the
    network output."""
    if arch.skip not in ("none", "identity"):
        raise ValueError("the Taylor expansion is implemented for identity skips")
    norm = NORMS[arch.norm]

    def unpar(op, h):
        return normalise(norm, h) if op[0] == "norm" else activation(arch.nonlin, h)

    a = T = d = None
    stack = []
    for j, op in enumerate(ops[:cut]):
        if op[0] == "linear":
            W0, dW = ws0[op[1]], ws[op[1]] - ws0[op[1]]
            if j == 0:
                a, d = x @ W0.transpose(-1, -2), x @ dW.transpose(-1, -2)
                T = a + d
            else:
                T = T @ W0.transpose(-1, -2) + (a + d) @ dW.transpose(-1, -2)
                d = d @ W0.transpose(-1, -2) + a @ dW.transpose(-1, -2)
                a = a @ W0.transpose(-1, -2)
        elif op[0] in ("norm", "act"):
            T = unpar(op, T)
            a, d = torch.func.jvp(lambda h: unpar(op, h), (a,), (d,))
        elif op[0] == "start":
            stack.append((a, T, d))
        else:
            a0, T0, d0 = stack.pop()
            a, T, d = a + a0, T + T0, d + d0
    if stack:
        raise ValueError(f"cut = {cut} is inside a residual block")
    return run_program(arch, ops, ws, T, start=cut)


def effective_depth_update(ops: list[tuple], grads_norm: list[Tensor], branch_norm: list, res_op: list[Tensor],
                                   in_norm: list[Tensor], lr: float) -> list:
    """Philipp et al. §D.2 for a network given as :func:`program` operations, including the ResNet
    modification: inside a residual block the gradient ratios use the gradient flowing through the
    branch only (``branch_norm``), and at the block's input the skip adds back the state at the block's
    output times ``(‖df0/df_m‖ - ‖df0/dρ·dρ/df_m‖)/‖df0/df_n‖``. All lists are in forward order (one
    entry per operation; ``branch_norm[j]`` is ``None`` outside blocks; a ``start`` operation's entry
    stands for the block input ``f_m``). Per-sample tensors are ``(E, B)``, ``res_op`` ``(E,)``.
    Returns one ``(E, λ_max + 1)`` tensor per operation (``None`` unless linear): the estimated
    λ-contributions of that linear layer summed over the batch, index λ = terms with λ or more
    residual Jacobians. For a vanilla network this is exactly the paper's first programme, run once
    for all layers (the state after the layers above a layer is shared by all lower ones)."""
    E, B = grads_norm[0].shape
    dt, dv = grads_norm[0].dtype, grads_norm[0].device
    arr = torch.ones(E, B, 1, dtype=dt, device=dv)
    prev_g = torch.ones(E, B, dtype=dt, device=dv)
    r_prev = torch.zeros(E, dtype=dt, device=dv)
    out: list = [None] * len(ops)
    saved: list = []                                    # (arr at the block output, ||df0/df_n||) per open block

    def ratio_(num, den):
        # a sample whose loss gradient underflows to exactly zero (a saturated softmax in float32) has zero
        # gradients at every layer: the telescoping product these ratios stand for is then 0, not 0/0
        return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))

    def step(arr, ratio, r):
        new = torch.cat([arr * ratio[..., None], torch.zeros_like(arr[..., :1])], -1)
        new[..., 1:] = new[..., 1:] + arr * r[:, None, None]
        return new

    for j in range(len(ops) - 1, -1, -1):               # top down
        op = ops[j]
        if op[0] == "skip":                              # the block output f_n: cross the layer above as usual
            arr = step(arr, ratio_(grads_norm[j], prev_g), r_prev)
            saved.append((arr.clone(), grads_norm[j]))
            prev_g, r_prev = grads_norm[j], torch.zeros_like(r_prev)
            continue
        if op[0] == "start":                             # the block input f_m
            arr_copy, g_n = saved.pop()
            arr = step(arr, ratio_(branch_norm[j], prev_g), r_prev)
            w = ratio_(grads_norm[j] - branch_norm[j], g_n)[..., None]
            k = arr_copy.shape[-1]
            arr = torch.cat([arr[..., :k] + arr_copy * w, arr[..., k:]], -1)
            prev_g, r_prev = grads_norm[j], torch.zeros_like(r_prev)
            continue
        g_here = branch_norm[j] if branch_norm[j] is not None else grads_norm[j]
        arr = step(arr, ratio_(g_here, prev_g), r_prev)
        if op[0] == "linear":
            tail = torch.flip(torch.cumsum(torch.flip(arr, [-1]), -1), [-1])
            out[j] = (tail * lr * in_norm[j][..., None]).sum(1)
        prev_g = g_here
        r_prev = res_op[j] if op[0] == "linear" else torch.zeros_like(r_prev)
    return out
