"""Shattered gradients in real networks (Balduzzi et al. 2017, §1-5 and Figs. 1-5).

The path-sum model (:mod:`lib.theory.path_sums`) assumes "typical datapoints"; this module measures what
real rectifier networks do, batched over an ensemble of ``E`` random networks.

**Networks** (:func:`chain`): a stream ``x_0 -> x_1 -> ... -> x_L`` of width ``N`` with one of

* ``"ff"``       feedforward, ``x_l = ρ(n(x_{l-1} W_l))`` (Lemma A2's network);
* ``"res"``      residual, ``x_l = a·x_{l-1} + b·ρ(n(x_{l-1})) W_l`` (Eq. 2 with ``a = α``,
                 ``b = αβ``; the modified highway layer of §3.4 is ``a = γ₁, b = γ₂``),

where ``n`` is no normalisation, per-unit mean-centring, or batch normalisation (centre and scale,
no affine parameters) over the batch of inputs. Batch statistics are computed from the batch and
then held fixed when differentiating, so the derivative at one input is that input's own
derivative (the analysis of §3 treats batch norm as a per-layer rescaling in the same way). The
output is ``s_L = Σ_j x_{L,j}`` as in Lemma A2. Weights ``W (E, L, N, N)`` have variance ``σ²``;
``σ² = 2/N`` (He) throughout the paper.

**Measurements**: input gradients by forward mode (scalar inputs, :func:`grid_gradients`) or by a
vector-Jacobian product (vector inputs, :func:`ensemble_input_gradients`); activation and co-activation
fractions (Fig. 3); contiguity of activation rasters (Fig. 4); the autocorrelation function
(Fig. 2); the relative effective rank (Fig. 5c).

**Beyond the paper**: the exact mean-field correlation map of ReLU layers (the arc-cosine kernel
of degree 1, Cho & Saul 2009) replaces the coin-flip assumption: two inputs whose
pre-activations have correlation ``c`` are co-active with probability
``1/4 + arcsin(c)/(2π)`` and their post-layer correlation is ``(√(1-c²) + (π - arccos c) c)/π``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .ensembles import draw_device

NORMS = ("none", "center", "bn")

KINDS = ("ff", "res")


def he_weights(E: int, L: int, N: int, *, sigma2: float | None = None, generator: torch.Generator | None = None,
               device=None, dtype=torch.float32) -> Tensor:
    """``(E, L, N, N)`` i.i.d. Gaussian weights of variance ``σ²`` (default He, ``2/N``)."""
    s2 = 2.0 / N if sigma2 is None else sigma2
    return torch.randn(E, L, N, N, generator=generator, device=device, dtype=dtype) * math.sqrt(s2)


def _normalise(z: Tensor, norm: str, eps: float = 1e-12) -> Tensor:
    """Per-unit normalisation over the batch dimension ``-2`` of ``(E, M, N)``, statistics frozen."""
    if norm == "none":
        return z
    zd = z.detach()
    mu = zd.mean(-2, keepdim=True)
    if norm == "center":
        return z - mu
    if norm == "bn":
        return (z - mu) / torch.sqrt(zd.var(-2, unbiased=False, keepdim=True) + eps)
    raise ValueError(f"norm = {norm!r}: expected one of {', '.join(NORMS)}")


def chain(x: Tensor, W: Tensor, *, kind: str = "ff", norm: str = "none", a: float = 1.0, b: float = 1.0,
          readout: Tensor | None = None, record: bool = False):
    """Run the ensemble on a batch. ``x (M, N)`` or ``(E, M, N)``; ``W (E, L, N, N)``; the output
    is ``Σ_j w_j x_{L,j}`` with ``readout = w (E, N)``, or Lemma A2's plain sum when ``None``.

    Returns ``s_L (E, M)`` and, with ``record=True``, also the activation patterns
    ``(E, L, M, N)`` (bool: the rectifier of layer ``l`` is active) and the pre-normalisation
    batch variances ``(E, L, N)`` of the tensor each layer normalises."""
    if kind not in KINDS:
        raise ValueError(f"kind = {kind!r}: expected one of {', '.join(KINDS)}")
    E, L = W.shape[:2]
    h = x.expand(E, *x.shape[-2:]) if x.dim() == 2 else x
    acts, var = [], []
    for l in range(L):
        if kind == "ff":
            z = h @ W[:, l]
            if record:
                var.append(z.detach().var(-2, unbiased=False))
            u = _normalise(z, norm)
            h = torch.relu(u)
        else:
            if record:
                var.append(h.detach().var(-2, unbiased=False))
            u = _normalise(h, norm)
            h = a * h + b * (torch.relu(u) @ W[:, l])
        if record:
            acts.append(u.detach() > 0)
    s = h.sum(-1) if readout is None else (h * readout[:, None, :]).sum(-1)
    if record:
        return s, torch.stack(acts, 1), torch.stack(var, 1)
    return s


def ensemble_input_gradients(x: Tensor, W: Tensor, **kw) -> Tensor:
    """``∂s_L/∂x_0`` at every input of the batch for every network, ``(E, M, N)`` (Lemma A2's
    gradient): one vector-Jacobian product for the whole ensemble. ``x (M, N)`` is shared by the
    networks, ``(E, M, N)`` gives each its own batch. Batch statistics are frozen, so the sum over
    the batch separates into per-input gradients."""
    x = x.expand(W.shape[0], *x.shape[-2:]).detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(chain(x, W, **kw).sum(), x)
    return g


def embedding_1d(E: int, N: int, *, generator: torch.Generator | None = None, device=None,
                 dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """The scalar-input embedding ``x_0 = x v + c`` of Figs. 1, 2 and 4: ``v, c ~ N(0, 1)`` per unit
    and network, each ``(E, 1, N)``. The offsets ``c`` break the positive homogeneity that would
    make the gradient of a bias-free ReLU net piecewise constant with one jump at 0."""
    v = torch.randn(E, 1, N, generator=generator, device=device, dtype=dtype)
    c = torch.randn(E, 1, N, generator=generator, device=device, dtype=dtype)
    return v, c


def embed_1d(x: Tensor, E: int, N: int, *, generator: torch.Generator | None = None) -> Tensor:
    """Scalar inputs ``x (M,)`` embedded by :func:`embedding_1d`, ``(E, M, N)``."""
    v, c = embedding_1d(E, N, generator=generator, device=x.device, dtype=x.dtype)
    return x[None, :, None] * v + c


def grid_gradients(x: Tensor, W: Tensor, *, generator: torch.Generator | None = None, **kw) -> Tensor:
    """``ds_L/dx`` on a 1-D grid ``x (M,)`` for every network through :func:`embedding_1d`,
    ``(E, M)``, by one forward-mode product (``torch.func.jvp`` with tangent 1 at every point)."""
    E, _, N, _ = W.shape
    v, c = embedding_1d(E, N, generator=generator, device=x.device, dtype=x.dtype)
    _, d = torch.func.jvp(lambda t: chain(t[None, :, None] * v + c, W, **kw), (x,), (torch.ones_like(x),))
    return d


def expected_kinks_outside(n_units: int, half_width: float, bias_std: float) -> float:
    """Expected number of the shallow net's ``n_units`` kinks (at ``x = b_i``, ``b_i ~ N(0, bias_std²)``)
    that fall outside ``|x| < half_width``: ``2 n Φ̄(half_width / bias_std)``."""
    from scipy.stats import norm
    return float(2 * n_units * norm.sf(half_width / bias_std))


def shallow_gradients(x: Tensor, E: int, N: int, *, bias_std: float | None = None,
                      generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """The one-hidden-layer net of §1.1 / Prop. A1, ``f(x) = wᵀρ(x·1 - b)``, ``w ~ N(0, 1/N)`` and
    ``b ~ N(0, bias_std²)`` (the paper's ``1/N`` by default). Returns ``(df/dx (E, M), w (E, N),
    b (E, N))``; ``df/dx(x) = Σ_{i: x > b_i} w_i`` (Eq. A2)."""
    w = torch.randn(E, N, generator=generator, device=x.device, dtype=x.dtype) / math.sqrt(N)
    b = torch.randn(E, N, generator=generator, device=x.device, dtype=x.dtype) * (1 / math.sqrt(N) if bias_std is None else bias_std)
    active = (x[None, :, None] - b[:, None, :]) > 0
    return (active.to(x.dtype) * w[:, None, :]).sum(-1), w, b


# --- statistics of activation patterns (Figs. 3 and 4) ---------------------------------------

def activation_fraction(acts: Tensor) -> Tensor:
    """Fig. 3 (green): the fraction of (input, unit) pairs that are active, per layer.
    ``acts (E, L, M, N)`` -> ``(E, L)``."""
    return acts.float().mean((-2, -1))


def coactivation_fraction(acts: Tensor) -> Tensor:
    """Fig. 3 (blue): the fraction of units active for both inputs of a pair, averaged over the
    ``M(M-1)/2`` distinct pairs of the batch, per layer. ``(E, L, M, N)`` -> ``(E, L)``.
    Uses ``Σ_{i≠j} a_i a_j = (Σ a)² - Σ a`` per unit, so it costs O(MN)."""
    a = acts.float()
    M = a.shape[-2]
    s = a.sum(-2)
    pairs = (s * s - s).sum(-1) / 2
    return pairs / (M * (M - 1) / 2) / a.shape[-1]


def activation_rasters(x: Tensor, families: dict[str, tuple[str, str, float]], depth: int, E: int, N: int, *,
                       generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """§2, Fig. 4: the last layer's activation pattern of ``E`` random nets of each family
    (``name -> (kind, norm, b)`` of :func:`chain`, He weights, ``depth`` layers of width ``N``) over
    scalar inputs ``x (M,)`` embedded by :func:`embed_1d`: ``name -> (E, M, N)`` bool. Weights and
    embedding are drawn from ``generator`` family by family, weights first."""
    out = {}
    for name, (kind, norm, b) in families.items():
        W = he_weights(E, depth, N, generator=generator, device=x.device, dtype=x.dtype)
        x0 = embed_1d(x, E, N, generator=generator)
        _, acts, _ = chain(x0, W, kind=kind, norm=norm, b=b, record=True)
        out[name] = acts[:, -1]
    return out


def unit_activity(acts: Tensor) -> Tensor:
    """Fig. 4, left histograms: each unit's fraction of active inputs, ``(E, L, M, N) -> (E, L, N)``."""
    return acts.float().mean(-2)


def run_lengths(raster: Tensor) -> np.ndarray:
    """Fig. 4, right histograms ("contiguity"): the lengths of the maximal runs of equal values
    along the input axis of a raster ``(..., M, N)`` (inputs ordered along the grid), pooled over
    units and leading dimensions. Vectorised: a run starts at every row start and every change."""
    r = raster.detach().transpose(-1, -2).reshape(-1, raster.shape[-2]).cpu().numpy()
    starts = np.ones_like(r, dtype=bool)
    starts[:, 1:] = r[:, 1:] != r[:, :-1]
    idx = np.flatnonzero(starts.ravel())
    return np.diff(np.append(idx, r.size))


def mean_run_length(raster: Tensor) -> Tensor:
    """The mean of :func:`run_lengths` per leading index: ``(E, M, N) -> (E,)``, the inputs per
    unit divided by the runs per unit (``M·N / runs``)."""
    changes = (raster[..., 1:, :] != raster[..., :-1, :]).sum((-2, -1))
    return raster.shape[-2] * raster.shape[-1] / (changes + raster.shape[-1]).to(torch.float64)


# --- gradients as random processes (Figs. 1, 2, 5) -------------------------------------------

def autocorrelation(g: Tensor, max_lag: int) -> Tensor:
    """The sample ACF of each row of ``g (..., M)`` at lags ``0..max_lag`` (mean removed, lag-0
    normalised; the usual biased estimator). Returns ``(..., max_lag+1)``."""
    z = g - g.mean(-1, keepdim=True)
    den = (z * z).sum(-1)
    M = g.shape[-1]
    return torch.stack([(z[..., : M - k] * z[..., k:]).sum(-1) / den for k in range(max_lag + 1)], -1)


def effective_rank(D: Tensor) -> Tensor:
    """``r(Δ) = tr(ΔᵀΔ)/‖Δ‖₂²`` (§4, after Vershynin 2012) of each matrix ``(..., m, n)``."""
    sv = torch.linalg.svdvals(D)
    return (sv**2).sum(-1) / sv[..., 0] ** 2


def gradient_correlations(D: Tensor) -> Tensor:
    """Figs. 5a-b: the correlation matrix of the per-example gradients of a mini-batch.
    ``D (..., m, n)`` holds ``m`` gradients of ``n`` coordinates; the result ``(..., m, m)`` has
    entry ``(i, j)`` = the cosine of the angle between gradients ``i`` and ``j`` after removing each
    gradient's mean over coordinates (the paper's ``(g - ḡ)(g - ḡ)ᵀ/σ²`` per pair)."""
    Z = D - D.mean(-1, keepdim=True)
    Z = Z / Z.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    return Z @ Z.transpose(-1, -2)


def mean_abs_offdiagonal(C: Tensor) -> Tensor:
    """Mean ``|C_ij|`` over ``i != j`` of each ``(..., m, m)`` matrix: about ``√(2/(π n))`` for
    independent white gradients of ``n`` coordinates, larger when the gradients share structure."""
    m = C.shape[-1]
    off = ~torch.eye(m, dtype=torch.bool, device=C.device)
    return C.abs()[..., off].mean(-1)


def brown_noise(E: int, M: int, *, generator=None, dtype=torch.float64) -> Tensor:
    """Fig. 1d: ``B(t) = Σ_{s≤t} W_s``, ``W_s ~ N(0, 1/M)``, ``(E, M)``."""
    return torch.cumsum(torch.randn(E, M, generator=generator, device=draw_device(generator), dtype=dtype) / math.sqrt(M), -1)


def white_noise(E: int, M: int, *, generator=None, dtype=torch.float64) -> Tensor:
    """Fig. 1e: i.i.d. ``N(0, 1)``, ``(E, M)``."""
    return torch.randn(E, M, generator=generator, device=draw_device(generator), dtype=dtype)


def brownian_kl_eigenvalues(k: int) -> np.ndarray:
    """Karhunen-Loève eigenvalues of Brownian motion on [0, 1] (App. A2): ``1/((j-½)²π²)``."""
    j = np.arange(1, k + 1)
    return 1.0 / ((j - 0.5) ** 2 * math.pi**2)


# --- the exact correlation map (beyond the paper) --------------------------------------------

def relu_correlation(c):
    """Correlation of ``ρ(u), ρ(v)``'s *second moments*: for unit-variance Gaussians with
    correlation ``c``, ``E[ρ(u)ρ(v)] / E[ρ(u)²] = (√(1-c²) + (π - arccos c) c)/π`` (the degree-1
    arc-cosine kernel). It maps the pre-activation correlation of layer ``l`` to that of ``l+1``
    in a He-initialised feedforward net without normalisation."""
    c = np.clip(np.asarray(c, dtype=float), -1, 1)
    return (np.sqrt(1 - c * c) + (math.pi - np.arccos(c)) * c) / math.pi


def coactive_probability(c):
    """``P(u > 0, v > 0) = 1/4 + arcsin(c)/(2π)`` for centred Gaussians with correlation ``c``
    (Sheppard's formula); ``1/4`` exactly when ``c = 0`` (the paper's typical datapoints)."""
    return 0.25 + np.arcsin(np.clip(np.asarray(c, dtype=float), -1, 1)) / (2 * math.pi)


def meanfield_feedforward(L: int, c0: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean-field prediction for the He feedforward net of Lemma A2 at two inputs whose
    correlation is ``c0``: per-layer pre-activation correlations ``c_1..c_L`` and the gradient
    correlation after ``l`` layers, ``Π_{k≤l} 2·P(co-active | c_k)`` (variance stays 1)."""
    cs = [float(c0)]
    for _ in range(L - 1):
        cs.append(float(relu_correlation(cs[-1])))
    cs = np.array(cs)
    return cs, np.cumprod(2 * coactive_probability(cs))


def meanfield_resnet(L: int, c0: float, a: float = 1.0, b: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean-field prediction for the residual stream without normalisation,
    ``x_l = a x_{l-1} + b ρ(x_{l-1}) W_l`` with He weights, at two inputs of correlation ``c0``
    and unit second moment. The stream's second moment ``q`` and cross moment ``k`` follow
    ``q' = a²q + b²q``, ``k' = a²k + b²·q·relu_correlation(k/q)``; the gradient's variance and
    covariance factors are ``a² + b²`` and ``a² + 2b²·P(co-active | k/q)`` (each layer's units
    gate both paths). Returns the per-layer stream correlation and the gradient variance and
    correlation after ``l`` layers."""
    q, k = 1.0, float(c0)
    cs, vf, cf = [], [], []
    for _ in range(L):
        c = k / q
        cs.append(c)
        vf.append(a * a + b * b)
        cf.append(a * a + 2 * b * b * float(coactive_probability(c)))
        k = a * a * k + b * b * q * float(relu_correlation(c))
        q = (a * a + b * b) * q
    var = np.cumprod(vf)
    return np.array(cs), var, np.cumprod(cf) / var


# --- looks-linear initialisation (§5) --------------------------------------------------------

def crelu(z: Tensor) -> Tensor:
    """Concatenated rectifier ``z -> (ρ(z), ρ(-z))`` along the last axis (Shang et al. 2016)."""
    from .maps import activation

    return activation("crelu", z)


def looks_linear_weights(E: int, L: int, N: int, *, orthogonal: bool = True, generator=None,
                         dtype=torch.float64) -> Tensor:
    """§5's mirrored block weights ``(W  -W)`` acting on CReLU outputs: ``(E, L, 2N, N)`` with
    ``W`` orthogonal (the paper's choice) or He-Gaussian. Rows ``:N`` multiply ``ρ(z)``, rows
    ``N:`` multiply ``ρ(-z)``."""
    if orthogonal:
        from .ensembles import haar_orthogonal

        W = haar_orthogonal(E * L, N, N, generator=generator, dtype=dtype).reshape(E, L, N, N)
    else:
        W = torch.randn(E, L, N, N, generator=generator, device=draw_device(generator), dtype=dtype) * math.sqrt(1.0 / N)
    return torch.cat([W, -W], -2)


def crelu_chain(x: Tensor, W2: Tensor) -> Tensor:
    """The CReLU feedforward net ``x_l = crelu(x_{l-1}) W2_l`` (no normalisation), output
    ``s_L = Σ_j x_{L,j}``. ``x (..., M, N)`` broadcast against ``W2 (E, L, 2N, N)`` -> ``(E, M)``."""
    h = x
    for l in range(W2.shape[1]):
        h = crelu(h) @ W2[:, l]
    return h.sum(-1)


def pathsum_prediction(acts: Tensor, var: Tensor, *, kind: str, norm: str, a: float = 1.0, b: float = 1.0,
                       sigma2N: float = 2.0) -> tuple[Tensor, Tensor]:
    """The path-sum model of §3 fed with the *measured* activation statistics instead of the
    typical-datapoint assumption: each layer multiplies the gradient's second moment by
    ``a² + b²σ²N·⟨A_j/s_j²⟩`` and the covariance at a pair by ``a² + b²σ²N·⟨A_j A'_j/s_j²⟩``,
    where ``A_j`` is unit ``j``'s activation, ``s_j²`` the batch variance that batch norm divides
    by (1 without it) and ``⟨⟩`` averages over units and inputs (pairs of distinct inputs).
    ``a = 0, b = 1`` is the feedforward net. With ``⟨A⟩ = ½``, ``⟨AA'⟩ = ¼`` and the paper's
    ``s²`` it reduces to Theorems 1-3. ``acts (E, L, M, N)``, ``var (E, L, N)`` from
    :func:`chain` with ``record=True``. Returns the predicted variance and covariance ``(E,)``
    (products over layers, one per network)."""
    A = acts.to(var.dtype)
    inv = 1.0 / var if norm == "bn" else torch.ones_like(var)
    M = A.shape[-2]
    act_w = (A * inv[:, :, None, :]).mean((-2, -1))
    s = A.sum(-2)
    co_w = (((s * s - s) * inv).sum(-1) / (M * (M - 1))) / A.shape[-1]
    a2 = 0.0 if kind == "ff" else a * a
    return (a2 + b * b * sigma2N * act_w).prod(-1), (a2 + b * b * sigma2N * co_w).prod(-1)


def gaussian_batch(E: int, M: int, N: int, *, generator: torch.Generator | None = None, device=None,
                   dtype=torch.float32) -> Tensor:
    """``(E, M, N)``: for each network its own batch of ``M`` independent standard Gaussian inputs
    rescaled to norm ``√N`` (pairs are nearly orthogonal: correlations ``~ N(0, 1/N)``)."""
    x = torch.randn(E, M, N, generator=generator, device=device, dtype=dtype)
    return x / x.norm(dim=-1, keepdim=True) * math.sqrt(N)


def gradient_moments(*, batch: int, width: int, n_networks: int, depth: int, kind: str, norm: str, a: float = 1.0,
                     b: float = 1.0, chunk: int = 200, generator: torch.Generator | None = None, device=None,
                     dtype=torch.float32, progress: bool = False, desc: str = "") -> dict[str, np.ndarray]:
    """Monte Carlo over ``n_networks`` random networks (He weights, a Gaussian readout of
    variance 1), each with its own :func:`gaussian_batch` of ``batch`` inputs, of the input
    gradient, in chunks of ``chunk`` networks batched on ``device``.

    Per network it returns: ``var`` = the gradient's second moment averaged over inputs and
    coordinates, ``cov`` = the product moment averaged over the ``M(M-1)`` ordered pairs of
    distinct inputs and coordinates, the :func:`pathsum_prediction` ``pred_var`` / ``pred_cov``,
    and the per-layer activation and co-activation fractions ``act``, ``coact`` (``(E, L)``).
    Networks are independent, so standard errors are across networks."""
    from tqdm.auto import tqdm

    M, N = batch, width
    out: dict[str, list] = {k: [] for k in ("var", "cov", "pred_var", "pred_cov", "act", "coact")}
    starts = range(0, n_networks, chunk)
    for s0 in tqdm(starts, desc=desc, disable=not progress, leave=False):
        E = min(chunk, n_networks - s0)
        W = he_weights(E, depth, N, generator=generator, device=device, dtype=dtype)
        w = torch.randn(E, N, generator=generator, device=device, dtype=dtype)
        kw = dict(kind=kind, norm=norm, a=a, b=b, readout=w)
        xe = gaussian_batch(E, M, N, generator=generator, device=device, dtype=dtype).requires_grad_(True)
        s, acts, var = chain(xe, W, record=True, **kw)
        (G,) = torch.autograd.grad(s.sum(), xe)
        with torch.no_grad():
            g2 = (G * G).sum(1)
            gs = G.sum(1)
            out["var"].append((G * G).mean((1, 2)))
            out["cov"].append(((gs * gs - g2).sum(-1) / (M * (M - 1)) / N))
            pv, pc = pathsum_prediction(acts, var, kind=kind, norm=norm, a=a, b=b)
            out["pred_var"].append(pv)
            out["pred_cov"].append(pc)
            out["act"].append(activation_fraction(acts))
            out["coact"].append(coactivation_fraction(acts))
    return {k: torch.cat(v).double().cpu().numpy() for k, v in out.items()}


def ratio_and_se(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """``mean(num)/mean(den)`` over independent samples and its delta-method standard error."""
    n = len(num)
    mn, md = num.mean(), den.mean()
    r = mn / md
    resid = (num - r * den) / md
    return float(r), float(resid.std(ddof=1) / math.sqrt(n))


def bn_coactive_probability(batch: int) -> float:
    """Co-activation of two inputs of one batch-normalised batch of ``M`` inputs (beyond the
    paper). Centring over the batch forces the mean pairwise correlation of a unit's
    pre-activations to ``-1/(M-1)`` (the centred values sum to zero), so Sheppard's formula
    gives ``1/4 + arcsin(-1/(M-1))/(2π)`` instead of the paper's ``1/4``: 0.2449 at ``M = 32``."""
    if batch < 2:
        raise ValueError(f"batch = {batch}: batch norm needs at least 2 inputs")
    return float(coactive_probability(-1.0 / (batch - 1)))


def bn_feedforward_growth(batch: int, kappa: float = 1 - 1 / math.pi) -> float:
    """Per-layer growth of the input-gradient variance of a He feedforward net with batch norm,
    layers 2 and up (beyond the paper, which has 1 for every He net). The gradient of a unit is
    divided by its pre-activation's batch standard deviation ``σ̂_j``, so a layer multiplies the
    variance by ``E[ρ'²] σ_w² N E[1/σ̂²] = E[1/σ̂²]``. The layer's inputs ``ρ(z)``, ``z``
    standardised over the batch, have per-unit batch variance ``(1 - 1/π)/2 = κ/2`` (``ρ(z)`` has
    mean ``1/√(2π)``), so ``E σ̂² = σ_w² N κ/2 = κ``: without the finite batch the growth would be
    ``1/κ = 1.467`` per layer. But ``σ̂_j² = w_jᵀ Ĉ w_j`` with ``Ĉ`` the batch covariance, of rank
    ``M - 1``; for isotropic ``Ĉ`` it is ``κ χ²_{M-1}/(M-1)`` and ``E[1/σ̂²] = (M-1)/((M-3)κ)``.
    ``w ↦ 1/(wᵀĈw)`` averaged over Gaussian ``w`` is convex in the eigenvalues of ``Ĉ`` and
    symmetric, so for a fixed trace the isotropic ``Ĉ`` minimises it: this value is a lower bound,
    and the anisotropy of a real batch adds a second-order term."""
    if batch <= 3:
        raise ValueError(f"batch = {batch}: E[1/variance] over a batch of M <= 3 inputs is infinite")
    return (batch - 1) / ((batch - 3) * kappa)


def bn_resnet_moments_centered(L: int, beta: float, kappa: float = 1 - 1 / math.pi,
                               batch: int | None = None) -> tuple[float, float]:
    """Theorem 3 redone for batch norm that divides by the *centred* batch variance (beyond the
    paper). Each residual branch ``β W ρ(BN(x))`` adds ``β²`` to the stream's second moment but
    only ``κβ² = β²(1 - 1/π)`` to its per-unit batch variance, because ``ρ`` of a standardised
    unit has mean ``1/√(2π)`` and the branch's per-unit batch mean ``β Σ_k W_jk/√(2π)`` has
    variance ``β²/π`` over the weights. With ``s²_m = 1 + κβ²m`` after ``m`` branches, ``L``
    blocks give variance ``Π_{m<L}(1 + β²/s²_m)`` and covariance ``Π_{m<L}(1 + ½β²/s²_m)``; with
    ``c = 1/(κβ²)`` and ``d = 1/κ`` these are ``Γ(L+c+d)Γ(c)/(Γ(c+d)Γ(L+c)) ~ L^{1/κ}`` and the
    same with ``d/2``, so the correlation decays like ``L^{-1/(2κ)} = L^{-0.73}``, not ``L^{-1/2}``.

    ``batch = M`` adds the two first-order finite-batch terms. The stream's values of one unit
    over the batch are close to ``M`` independent Gaussians of variance ``s²_m`` (its bulk is the
    fresh input batch), so batch norm's biased batch variance is ``s²_m χ²_{M-1}/M`` and
    ``E[1/σ̂²] = M/((M-3) s²_m)``: ``β²/s²_m`` becomes ``f β²/s²_m`` with ``f = M/(M-3)``. And the
    co-active fraction ``1/4`` becomes :func:`bn_coactive_probability` ``p_M``, so ``½`` becomes
    ``2 p_M f``. Both products keep their Gamma form, with ``d = f/κ`` and ``2 p_M f/κ``."""
    from scipy.special import gammaln

    if batch is not None and batch <= 3:
        raise ValueError(f"batch = {batch}: E[1/variance] over a batch of M <= 3 inputs is infinite")
    f, half = (1.0, 0.5) if batch is None else (batch / (batch - 3), 2 * bn_coactive_probability(batch))
    c, d = 1.0 / (kappa * beta**2), f / kappa
    dc = half * f / kappa
    lv = gammaln(L + c + d) + gammaln(c) - gammaln(c + d) - gammaln(L + c)
    lc = gammaln(L + c + dc) + gammaln(c) - gammaln(c + dc) - gammaln(L + c)
    return float(np.exp(lv)), float(np.exp(lc))


def finite_batch_sweep(batches, *, width: int, n_networks: int, depth: int, generator: torch.Generator | None = None,
                       device=None, dtype=torch.float32, progress: bool = False) -> dict[int, dict]:
    """Batch-normalised He feedforward nets at several batch sizes ``M`` (beyond the paper: the
    finite-batch terms of :func:`bn_feedforward_growth` and :func:`bn_coactive_probability`).

    For each ``M`` in ``batches`` it runs :func:`gradient_moments` at depth 1 and at ``depth``
    and returns ``growth``, the per-layer growth of the gradient variance over layers 2..depth,
    ``(var_depth / var_1)^(1/(depth-1))``, with its delta-method standard error ``se_growth``
    (the two depths use independent networks), ``first`` = the depth-1 variance and its ``se_first``,
    and ``coact`` / ``se_coact``, the co-active fraction of each of the ``depth`` layers ``(depth,)``."""
    if depth < 2:
        raise ValueError(f"depth = {depth}: the per-layer growth needs depth >= 2")
    out = {}
    for M in batches:
        kw = dict(batch=int(M), width=width, n_networks=n_networks, kind="ff", norm="bn", generator=generator,
                  device=device, dtype=dtype, progress=progress)
        v1 = gradient_moments(depth=1, desc=f"BN feedforward, M = {M}, L = 1", **kw)["var"]
        r = gradient_moments(depth=depth, desc=f"BN feedforward, M = {M}, L = {depth}", **kw)
        vL = r["var"]
        m1, mL = v1.mean(), vL.mean()
        s1, sL = v1.std(ddof=1) / math.sqrt(len(v1)), vL.std(ddof=1) / math.sqrt(len(vL))
        g = (mL / m1) ** (1 / (depth - 1))
        out[int(M)] = dict(growth=float(g), se_growth=float(g / (depth - 1) * math.hypot(sL / mL, s1 / m1)),
                           first=float(m1), se_first=float(s1), coact=r["coact"].mean(0),
                           se_coact=r["coact"].std(0, ddof=1) / math.sqrt(len(vL)))
    return out


def finite_batch_predictions(sweep: dict[int, dict]) -> dict[str, np.ndarray]:
    """:func:`finite_batch_sweep`'s measurements beside their finite-batch predictions, as arrays:
    per batch size ``M`` (shape ``(len(sweep),)``) ``M``, ``growth``, ``se_growth`` and ``g_M`` =
    :func:`bn_feedforward_growth`; per batch size and layer, flattened in that order, ``coact``,
    ``se_coact`` and ``p_M`` = :func:`bn_coactive_probability` repeated over the layers."""
    Ms = list(sweep)
    per_M = {k: np.array([sweep[M][k] for M in Ms], dtype=float) for k in ("growth", "se_growth")}
    return dict(M=np.array(Ms), **per_M, g_M=np.array([bn_feedforward_growth(M) for M in Ms]),
                coact=np.concatenate([np.asarray(sweep[M]["coact"]) for M in Ms]),
                se_coact=np.concatenate([np.asarray(sweep[M]["se_coact"]) for M in Ms]),
                p_M=np.concatenate([np.full(len(sweep[M]["coact"]), bn_coactive_probability(M)) for M in Ms]))


def minibatch_gradient_stats(X: Tensor, families: dict[str, tuple[str, float]], depths, *, width: int, n_batches: int,
                             batch: int = 256, generator: torch.Generator | None = None) -> dict:
    """§4, Figs. 5a-d on images ``X (n, d)`` with fully connected batch-normalised networks.

    For each depth ``L`` in ``depths`` it draws ``n_batches`` mini-batches of ``batch`` images, a
    Gaussian input layer ``V (d, width)`` (variance ``1/d``) and He weights per mini-batch, and
    runs *every* family on the same draws (common random numbers, so the differences between
    families are paired): ``families`` maps a name to ``(kind, b)`` of :func:`chain` with
    ``norm="bn"``. The per-example input gradients ``Δ (batch, d)`` of a Gaussian readout give,
    per mini-batch: ``rank`` = :func:`effective_rank` of ``Δ`` over that of a Gaussian matrix of
    the same shape (Fig. 5c), ``snr`` = ``|batch mean| / batch s.d.`` per pixel averaged over pixels
    (Fig. 5d) and ``offdiag`` = :func:`mean_abs_offdiagonal` of :func:`gradient_correlations`
    (Figs. 5a-b). Returns ``{(name, L): {"rank", "snr", "offdiag": (n_batches,) arrays,
    "image": (batch, batch) |correlations| of the first mini-batch}}``."""
    dev, dt = X.device, X.dtype
    n, d = X.shape
    if batch > n:
        raise ValueError(f"batch = {batch} is larger than the {n} images")
    r_white = effective_rank(torch.randn(64, batch, d, generator=generator, device=dev, dtype=dt)).mean()
    out = {}
    for L in depths:
        idx = torch.stack([torch.randperm(n, generator=generator, device=dev)[:batch] for _ in range(n_batches)])
        V = torch.randn(n_batches, d, width, generator=generator, device=dev, dtype=dt) / math.sqrt(d)
        W = he_weights(n_batches, L, width, generator=generator, device=dev, dtype=dt)
        w = torch.randn(n_batches, width, generator=generator, device=dev, dtype=dt)
        for name, (kind, b) in families.items():
            x0 = (X[idx] @ V).detach().requires_grad_(True)
            (g0,) = torch.autograd.grad(chain(x0, W, kind=kind, norm="bn", b=b, readout=w).sum(), x0)
            D = g0 @ V.transpose(1, 2)                                   # gradients w.r.t. the images
            C = gradient_correlations(D)
            out[name, L] = {"rank": (effective_rank(D) / r_white).cpu().numpy(),
                            "snr": (D.mean(1).abs() / D.std(1)).mean(-1).cpu().numpy(),
                            "offdiag": mean_abs_offdiagonal(C).cpu().numpy(), "image": C[0].abs().cpu().numpy()}
    return out


def paired_mean_se(stats: dict, key: str, family: str, L: int, minus: str | None = None) -> tuple[float, float]:
    """The mean over mini-batches of :func:`minibatch_gradient_stats`' ``key`` for ``family`` at depth
    ``L`` and its standard error; with ``minus``, of the paired difference ``family - minus`` (every
    family saw the same mini-batches and weights, so the difference's s.e. is the right one)."""
    x = stats[family, L][key] - (0 if minus is None else stats[minus, L][key])
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))





def meanfield_power_law(depth: int = 20_000, *, fit_from: int = 1000) -> tuple[float, float]:
    """The arc-cosine map at its fixed point (:func:`meanfield_feedforward` from ``c₀ = 0``): the
    log-log slopes, over layers ``fit_from + 1 … depth``, of the feedforward gradient correlation
    (−3 asymptotically: it decays like ``L⁻³``) and of ``1 − c_l`` (−2)."""
    c, r = meanfield_feedforward(depth, 0.0)
    logL = np.log(np.arange(1, depth + 1)[fit_from:])
    return float(np.polyfit(logL, np.log(r[fit_from:]), 1)[0]), float(np.polyfit(logL, np.log(1 - c[fit_from:]), 1)[0])


def activity_fractions(activity: np.ndarray) -> tuple[float, float]:
    """Fig. 4's two statistics of per-unit activity fractions (the fraction of inputs on which each
    unit is active, :func:`unit_activity`): the fraction of units always on or always off, and the
    fraction active on between a quarter and three quarters of the inputs."""
    a = np.asarray(activity)
    return float(np.mean((a == 0) | (a == 1))), float(np.mean(np.abs(a - 0.5) <= 0.25))
