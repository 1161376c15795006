"""Simplified convolutional plain and residual networks (Yu & Tomasi 2019, §2-5 and App. A-D).

**Architecture** (App. A, Figs. 4-5; :class:`ConvArch`): ``L = 3N + 2`` trainable layers -- a 3×3
convolution with ReLU (the *stem*), three groups of ``N`` depth-1 blocks with 16, 32 and 64
channels, global average pooling and a linear layer. The first block of groups 2 and 3 halves the
resolution (stride 2) and doubles the channels. A plain block computes ``y = relu(conv(x, p))``, a
residual block ``y = relu(x̃ + conv(x, r))``, where ``x̃`` is ``x`` itself, or, for a
channel-doubling block, ``x`` sampled at stride 2 and padded with zero channels (He et al.'s
option-A shortcut, which is exactly what the map T below produces).

**Parameters** are a dict of tensors with a leading ensemble dimension ``E`` (``"w0", "b0"`` stem,
``"w1".."w{3N}", "b1"..`` blocks, ``"fc_w", "fc_b"``), so one call runs ``E`` networks
(``torch.func.vmap`` over the dict), on CPU or CUDA, in any dtype.

**The map T** (§3, Eq. 1; :func:`transfer`): ``p = T(r) = r + ρ`` with ``ρ = 1`` on the *ID
entries* ``(c, c, 0, 0)`` (centre tap, ``c < min(C, D)``) of every block kernel and 0 elsewhere.

**Initialisations** (App. A, Eqs. 3-4; :func:`init_params`): KWI, ``N(0, 2/S)``, and HMWI,
``N(0, (1/S)²)``, with ``S = C·3·3`` the fan-in; biases zero; the linear layer takes PyTorch's
default ``U(-1/√64, 1/√64)`` (the paper does not say; this choice matches its Table 3, see the
chapter).

**Measurements**: weight statistics of Table 3 and their exact expectations
(:func:`weight_stats`, :func:`expected_weight_stats`); the per-sample layer cushion of §5 with the
Frobenius norm of the convolution *operator* (:func:`conv_operator_fro`, :func:`layer_cushion`);
the fraction ``σ^(ℓ)`` of dominant gradient flows of App. D.4.2, Eq. 13 (:func:`dominant_fraction`);
output change under weight noise (:func:`noise_sensitivity`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor
from tqdm import tqdm

from ..theory.ensembles import draw_device

KINDS = ("plain", "residual", "dominant")
INITS = ("kwi", "hmwi")


@dataclass(frozen=True)
class ConvArch:
    """Yu & Tomasi's simplified network with ``n_blocks = N`` blocks per group (depth ``3N + 2``).

    ``kind``: ``"plain"`` (PlnNet), ``"residual"`` (ResNet), or ``"dominant"`` (App. D.3's network
    with kernels ``T'``: every block kernel is diagonal in the channels, ``I + R`` with ``R``
    diagonal; a channel-doubling kernel is two such diagonal halves stacked; only the diagonal
    entries are parameters, the rest stay zero through training).
    """

    n_blocks: int
    kind: str = "plain"
    in_channels: int = 3
    n_classes: int = 10
    widths: tuple[int, int, int] = (16, 32, 64)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}: use one of {KINDS}")
        if self.n_blocks < 1 or self.in_channels < 1 or self.n_classes < 2:
            raise ValueError("ConvArch needs n_blocks >= 1, in_channels >= 1 and n_classes >= 2")

    @property
    def depth(self) -> int:
        """Trainable layers ``L = 3N + 2`` (stem, 3N blocks, linear layer)."""
        return 3 * self.n_blocks + 2

    def convs(self) -> list[tuple[int, int, int]]:
        """``(c_in, c_out, stride)`` of the stem (index 0) and the ``3N`` blocks (1..3N)."""
        w = self.widths
        out = [(self.in_channels, w[0], 1)]
        for g in range(3):
            for b in range(self.n_blocks):
                first = b == 0 and g > 0
                out.append((w[g - 1] if first else w[g], w[g], 2 if first else 1))
        return out

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter shapes (without the ensemble dimension)."""
        s: dict[str, tuple[int, ...]] = {}
        for k, (ci, co, _) in enumerate(self.convs()):
            s[f"w{k}"] = (co, ci, 3, 3)
            s[f"b{k}"] = (co,)
        s["fc_w"] = (self.n_classes, self.widths[2])
        s["fc_b"] = (self.n_classes,)
        return s

    def n_weights(self) -> int:
        """Number of trainable weights of the plain/residual network (biases excluded)."""
        return sum(math.prod(v) for k, v in self.shapes().items() if not k.startswith(("b", "fc_b")))

    def n_parameters(self) -> int:
        """Number of trainable parameters, weights and biases; for ``"dominant"`` only the free
        (diagonal) kernel entries of the blocks are counted."""
        shapes = self.shapes()
        if self.kind != "dominant":
            return sum(math.prod(v) for v in shapes.values())
        masks = diagonal_masks(self, device="cpu", dtype=torch.float64)
        return int(sum(math.prod(v) for k, v in shapes.items() if k not in masks)
                   + sum(int(m.sum()) for m in masks.values()))


def blocks_with_stride(arch: ConvArch) -> list[int]:
    """Indices of the channel-doubling (stride-2) blocks."""
    return [k for k, (_, _, s) in enumerate(arch.convs()) if s == 2]


def id_mask(arch: ConvArch, *, device=None, dtype=torch.float64) -> dict[str, Tensor]:
    """``ρ`` of Eq. (1): for every block kernel ``w_k (D, C, 3, 3)``, 1 at ``(c, c, 1, 1)`` for
    ``c < min(C, D)`` (the centre tap is index 1 of 3: the paper's offset 0), else 0."""
    rho = {}
    for k, (ci, co, _) in enumerate(arch.convs()):
        if k == 0:
            continue
        m = torch.zeros(co, ci, 3, 3, device=device, dtype=dtype)
        c = torch.arange(min(ci, co), device=device)
        m[c, c, 1, 1] = 1.0
        rho[f"w{k}"] = m
    return rho


def diagonal_masks(arch: ConvArch, *, device=None, dtype=torch.float64) -> dict[str, Tensor]:
    """The free entries of the ``T'`` kernels (App. D.3): the whole 3×3 array on the channel
    diagonal ``(c, c)``; for a ``2n × n`` kernel, on ``(c, c)`` and ``(c + n, c)``."""
    masks = {}
    for k, (ci, co, _) in enumerate(arch.convs()):
        if k == 0:
            continue
        m = torch.zeros(co, ci, 3, 3, device=device, dtype=dtype)
        c = torch.arange(ci, device=device)
        for off in range(0, co, ci):
            m[c + off, c] = 1.0
        masks[f"w{k}"] = m
    return masks


def _dominant_identity(arch: ConvArch, *, device=None, dtype=torch.float64) -> dict[str, Tensor]:
    """The ``I`` of ``T' = I + R``: 1 at the centre of every diagonal array (both halves of a
    channel-doubling kernel, as App. D.3 defines them "in a similar way")."""
    return {k: m * (torch.arange(3, device=device) == 1).to(dtype).outer((torch.arange(3, device=device) == 1).to(dtype))
            for k, m in diagonal_masks(arch, device=device, dtype=dtype).items()}


def init_params(arch: ConvArch, E: int, init: str, *, generator: torch.Generator | None = None,
                device=None, dtype=torch.float32) -> dict[str, Tensor]:
    """``E`` independent parameter sets.

    ``init="kwi"``: Kaiming, ``w ~ N(0, 2/S)`` (App. A, Eq. 3); ``"hmwi"``: Hardt-Ma,
    ``w ~ N(0, (1/S)²)`` (Eq. 4), ``S = C·3·3``. Conv biases are zero; the linear layer is
    ``U(±1/√64)`` (weights and bias). These are the *network's own* parameters: a ResNet's
    ``r₀``; its plain twin is :func:`transfer` of them. For ``kind="dominant"`` the block kernels
    are ``I + R`` restricted to :func:`diagonal_masks` (with ``R`` drawn from ``init``).
    """
    if init not in INITS:
        raise ValueError(f"init={init!r}: use one of {INITS}")
    p: dict[str, Tensor] = {}
    for k, (ci, co, _) in enumerate(arch.convs()):
        S = ci * 9
        std = math.sqrt(2.0 / S) if init == "kwi" else 1.0 / S
        p[f"w{k}"] = torch.randn(E, co, ci, 3, 3, generator=generator, device=device, dtype=torch.float64) * std
        p[f"b{k}"] = torch.zeros(E, co, device=device, dtype=torch.float64)
    bound = 1.0 / math.sqrt(arch.widths[2])
    p["fc_w"] = (torch.rand(E, arch.n_classes, arch.widths[2], generator=generator, device=device, dtype=torch.float64) * 2 - 1) * bound
    p["fc_b"] = (torch.rand(E, arch.n_classes, generator=generator, device=device, dtype=torch.float64) * 2 - 1) * bound
    if arch.kind == "dominant":
        eye = _dominant_identity(arch, device=device)
        for k, m in diagonal_masks(arch, device=device).items():
            p[k] = p[k] * m + eye[k]
    return {k: v.to(dtype) for k, v in p.items()}


def transfer(arch: ConvArch, params: dict[str, Tensor], sign: float = 1.0) -> dict[str, Tensor]:
    """``T(r) = r + ρ`` (Eq. 1) applied to every block kernel (``sign=-1``: ``T⁻¹(p) = p - ρ``).
    Works on parameter dicts with or without the ensemble dimension."""
    p0 = next(iter(params.values()))
    rho = id_mask(arch, device=p0.device, dtype=p0.dtype)
    return {k: (v + sign * rho[k] if k in rho else v) for k, v in params.items()}


def _shortcut(h: Tensor, c_out: int, stride: int) -> Tensor:
    """The identity that T's ID entries add: ``h`` at stride ``stride``, zero-padded channels."""
    if stride > 1:
        h = h[..., ::stride, ::stride]
    if c_out > h.shape[-3]:
        h = F.pad(h, (0, 0, 0, 0, 0, c_out - h.shape[-3]))
    return h


def _forward_one(arch: ConvArch, p: dict[str, Tensor], x: Tensor, kind: str,
                 taps: dict[int, Tensor] | None, noise: dict[str, Tensor] | None,
                 preacts: list | None = None) -> tuple[Tensor, Tensor]:
    """One network (no ensemble dim). ``x (B, C, H, W)``. Returns ``(logits (B, K), pooled (B, 64))``.
    ``taps[k]`` is added to the activation after conv layer ``k`` (zero tensors whose VJPs are
    the gradients with respect to those activations); ``noise`` is added to the weights; the
    pre-activations are appended to ``preacts`` when it is a list."""
    h = x
    for k, (_, co, stride) in enumerate(arch.convs()):
        w = p[f"w{k}"] if noise is None or f"w{k}" not in noise else p[f"w{k}"] + noise[f"w{k}"]
        z = F.conv2d(h, w, p[f"b{k}"], stride=stride, padding=1)
        if kind == "residual" and k > 0:
            z = z + _shortcut(h, co, stride)
        if preacts is not None:
            preacts.append(z)
        h = torch.relu(z)
        if taps is not None and k in taps:
            h = h + taps[k]
    pooled = h.mean(dim=(-2, -1))
    return pooled @ p["fc_w"].T + p["fc_b"], pooled


def forward(arch: ConvArch, params: dict[str, Tensor], x: Tensor, *, kind: str | None = None) -> Tensor:
    """Logits ``(E, B, K)`` of the ``E`` networks in ``params`` on ``x (B, C, H, W)`` (shared) or
    ``x (E, B, C, H, W)`` (one batch per network). ``kind`` overrides ``arch.kind``: evaluating the
    residual parameters ``r`` with ``kind="plain"`` is evaluating the plain net at ``r`` (not
    ``T(r)``). A ``"dominant"`` network runs as a plain one on its masked kernels."""
    kind = kind or arch.kind
    kind = "plain" if kind == "dominant" else kind
    fn = lambda p, xx: _forward_one(arch, p, xx, kind, None, None)[0]
    return torch.func.vmap(fn, in_dims=(0, 0 if x.dim() == 5 else None))(params, x)


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy per network, ``logits (E, B, K)``, ``labels (B,)`` -> ``(E,)``."""
    return F.cross_entropy(logits.flatten(0, 1), labels.repeat(logits.shape[0]), reduction="none").view(logits.shape[:2]).mean(-1)


def _minibatches(n: int, batch_size: int, steps: int, generator: torch.Generator | None, device) -> Tensor:
    """``steps`` index batches of size ``batch_size`` from successive random permutations of
    ``range(n)`` drawn from ``generator`` (a permutation's tail shorter than a batch is skipped),
    as ``(steps, batch_size)`` on ``device``."""
    per = n // batch_size
    if per < 1:
        raise ValueError(f"batch_size={batch_size} is larger than the {n} training points")
    perms = [torch.randperm(n, generator=generator, device=draw_device(generator, device))[:per * batch_size]
             for _ in range(-(-steps // per))]
    return torch.cat(perms).view(-1, batch_size)[:steps].to(device)


def _sgd_momentum_step(params: dict[str, Tensor], grads, bufs: dict[str, Tensor], *, lr: float, momentum: float,
                       weight_decay: float, centre: dict[str, Tensor] | None, masks: dict[str, Tensor]) -> None:
    """One in-place step of SGD with momentum on ``loss + λ||w - c||²`` (``c`` = ``centre[k]`` where
    given, else 0); gradients of masked parameters are multiplied by ``masks[k]``."""
    with torch.no_grad():
        for (k, v), gk in zip(list(params.items()), grads):
            c = centre.get(k) if centre is not None else None
            gk = gk + 2 * weight_decay * (v - c if c is not None else v)
            if k in masks:
                gk = gk * masks[k]
            bufs[k] = momentum * bufs[k] + gk
            params[k] = (v - lr * bufs[k]).detach()


def train(arch: ConvArch, params: dict[str, Tensor], x: Tensor, labels: Tensor, *, steps: int, batch_size: int,
          lr: float, momentum: float = 0.9, weight_decay: float = 1e-4, decay_center: dict[str, Tensor] | None = None,
          kind: str | None = None, generator: torch.Generator | None = None, record_every: int = 1,
          callback: Callable[[int, dict[str, Tensor]], dict] | None = None, progress: bool = True,
          desc: str = "train") -> tuple[dict[str, Tensor], dict[str, list]]:
    """SGD with momentum on the cost ``mean CE + λ ||w - c||²`` (weights and biases), ``E``
    networks at once, for ``steps`` mini-batches drawn from ``generator`` (the same sequence for
    every network, and for every call with an equally seeded generator).

    ``decay_center`` is ``c``: ``None`` for the usual ``||w||²``; ``id_mask(arch)`` for the plain
    twin of a ResNet, whose penalty §4.1 replaces by ``||T⁻¹(p)||²``. A ``"dominant"`` network's
    gradients are masked to its free entries. Returns the final parameters and a history with the
    training loss (on the mini-batch, per network) every ``record_every`` steps, plus whatever
    ``callback(step, params)`` returns.
    """
    if steps < 0 or batch_size < 1 or lr <= 0:
        raise ValueError("train() needs steps >= 0, batch_size >= 1 and lr > 0")
    kind = kind or arch.kind
    p = {k: v.detach().clone() for k, v in params.items()}
    buf = {k: torch.zeros_like(v) for k, v in p.items()}
    masks = diagonal_masks(arch, device=x.device, dtype=x.dtype) if kind == "dominant" else {}
    hist: dict[str, list] = {"step": [], "loss": []}
    batches = _minibatches(x.shape[0], batch_size, steps, generator, x.device)
    for step in tqdm(range(steps), desc=desc, disable=not progress, leave=False, mininterval=2.0):
        idx = batches[step]
        leaves = {k: v.requires_grad_(True) for k, v in p.items()}
        losses = cross_entropy(forward(arch, leaves, x[idx], kind=kind), labels[idx])
        grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
        _sgd_momentum_step(p, grads, buf, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           centre=decay_center, masks=masks)
        if step % record_every == 0 or step == steps - 1:
            hist["step"].append(step + 1)
            hist["loss"].append(losses.detach().cpu())
            if callback is not None:
                for key, val in callback(step + 1, p).items():
                    hist.setdefault(key, []).append(val)
    return p, hist


def _twin_arches(arch: ConvArch, x: Tensor) -> tuple[ConvArch, ConvArch, dict[str, Tensor]]:
    """The residual and plain versions of ``arch`` and the ID mask ``ρ`` (``T(r) = r + ρ``) in ``x``'s dtype."""
    ar = ConvArch(arch.n_blocks, "residual", arch.in_channels, arch.n_classes, arch.widths)
    ap = ConvArch(arch.n_blocks, "plain", arch.in_channels, arch.n_classes, arch.widths)
    return ar, ap, id_mask(ar, device=x.device, dtype=x.dtype)


def train_twins(arch: ConvArch, r0: dict[str, Tensor], x: Tensor, labels: Tensor, *, steps: int, batch_size: int,
                lr: float, momentum: float = 0.9, weight_decay: float = 1e-4,
                generator: torch.Generator | None = None, progress: bool = True) -> dict[str, Tensor]:
    """§4.1 and App. B: train a ResNet from ``r₀`` (penalty ``λ||r||²``) and its plain twin from
    ``T(r₀)`` (penalty ``λ||T⁻¹(p)||²``) on the same mini-batches, in ``x``'s dtype, step by step.

    Returns per step ``(steps, E)``: ``divergence`` = ``max |p_t - T(r_t)|`` over all parameters
    after the step, ``flips`` = the number of (sample, unit) pairs of that step's batch whose ReLU
    is on in one twin and off in the other (the "ratchet" of App. B), and ``loss_res``,
    ``loss_plain`` on the batch. In exact arithmetic ``divergence`` and ``flips`` are 0 throughout.
    """
    ar, ap, rho = _twin_arches(arch, x)
    nets = {"res": (ar, {k: v.detach().clone() for k, v in r0.items()}, {}),
            "plain": (ap, transfer(ar, {k: v.detach().clone() for k, v in r0.items()}), rho)}
    bufs = {n: {k: torch.zeros_like(v) for k, v in nets[n][1].items()} for n in nets}
    out = {"divergence": [], "flips": [], "loss_res": [], "loss_plain": []}
    for idx in tqdm(_minibatches(x.shape[0], batch_size, steps, generator, x.device), desc="twins",
                    disable=not progress, leave=False, mininterval=2.0):
        signs = {}
        for name, (a, p, centre) in nets.items():
            leaves = {k: v.requires_grad_(True) for k, v in p.items()}

            def one(pp, xx, kind=a.kind):
                pre: list = []
                logits, _ = _forward_one(a, pp, xx, kind, None, None, pre)
                return logits, tuple(z > 0 for z in pre)

            logits, on = torch.func.vmap(one, in_dims=(0, None))(leaves, x[idx])
            losses = cross_entropy(logits, labels[idx])
            grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
            _sgd_momentum_step(p, grads, bufs[name], lr=lr, momentum=momentum, weight_decay=weight_decay,
                               centre=centre, masks={})
            signs[name] = on
            out["loss_" + name].append(losses.detach())
        with torch.no_grad():
            tr = transfer(ar, nets["res"][1])
            out["divergence"].append(torch.stack([(tr[k] - nets["plain"][1][k]).flatten(1).abs().max(1).values
                                                  for k in tr]).max(0).values)
            out["flips"].append(sum((a != b).flatten(1).sum(1) for a, b in zip(signs["res"], signs["plain"])))
    res = {k: torch.stack(v).cpu() for k, v in out.items()}
    res["params"] = {"res": nets["res"][1], "plain": nets["plain"][1]}
    return res


def loss_and_decay(arch: ConvArch, params: dict[str, Tensor], x: Tensor, labels: Tensor, *,
                   weight_decay: float = 1e-4, centre: dict[str, Tensor] | None = None,
                   chunk: int = 512) -> tuple[Tensor, Tensor, Tensor]:
    """App. C, Table 4: the training loss ``L`` on ``(x, labels)`` (in chunks of ``chunk`` images),
    the weight-decay term ``λ||w - c||²`` over all parameters (``c`` = ``centre[k]`` where given,
    else 0: the penalty :func:`train` and :func:`train_twins` optimise) and the training accuracy,
    per network ``(E,)`` each."""
    centre = centre or {}
    with torch.no_grad():
        out = torch.cat([forward(arch, params, x[i:i + chunk]) for i in range(0, x.shape[0], chunk)], dim=1)
        decay = weight_decay * sum(((v - centre[k]) if k in centre else v).pow(2).flatten(1).sum(1)
                                   for k, v in params.items())
        acc = (out.argmax(-1) == labels).to(x.dtype).mean(-1)
    return cross_entropy(out, labels).cpu(), decay.cpu(), acc.cpu()


def twin_table(arch: ConvArch, params: dict[str, dict[str, Tensor]], x: Tensor, labels: Tensor, *,
               weight_decay: float = 1e-4) -> dict[str, dict[str, Tensor]]:
    """App. B, Table 2: the final training loss ``L``, training cost ``C = L + λ||r||²`` (for the plain
    twin ``λ||T⁻¹(p)||² = λ||p - ρ||²``, the same penalty it was trained with) and training accuracy
    of a pair trained by :func:`train_twins` (``params`` is its ``"params"``), on the full set
    ``x``. Returns ``{"res": {...}, "plain": {...}}`` with ``(E,)`` tensors; in exact arithmetic the
    two rows are equal."""
    ar, ap, rho = _twin_arches(arch, x)
    out = {}
    for name, a, centre in (("res", ar, None), ("plain", ap, rho)):
        L, dec, acc = loss_and_decay(a, params[name], x, labels, weight_decay=weight_decay, centre=centre)
        out[name] = {"L": L, "C": L + dec, "acc": acc}
    return out


# --------------------------------------------------------------------------------------------
# Table 3: weight statistics


def flat_weights(arch: ConvArch, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """All weights (conv kernels and the linear layer; no biases) flattened per network
    ``(E, n_weights)``, and a boolean mask of the ID entries ``(n_weights,)``."""
    p0 = params["w0"]
    rho = id_mask(arch, device=p0.device, dtype=p0.dtype)
    keys = [k for k in arch.shapes() if k.startswith("w") or k == "fc_w"]
    flat = torch.cat([params[k].flatten(1) for k in keys], dim=1)
    ids = torch.cat([(rho[k] if k in rho else torch.zeros(arch.shapes()[k], device=p0.device, dtype=p0.dtype)).flatten()
                     for k in keys]) > 0
    return flat, ids


def weight_stats(arch: ConvArch, params: dict[str, Tensor], threshold: float = 0.25) -> dict[str, Tensor]:
    """Yu & Tomasi Table 3 per network: mean, standard deviation, and the L1 mass of all weights,
    of the weights with ``|w| >= threshold``, and of the ID entries. Each value ``(E,)``."""
    w, ids = flat_weights(arch, params)
    a = w.abs()
    return {"mean": w.mean(1), "std": w.std(1), "mass_all": a.sum(1),
            "mass_large": (a * (a >= threshold)).sum(1), "mass_id": a[:, ids].sum(1)}


def _abs_moments_normal(mu: float, s: float, a: float) -> tuple[float, float]:
    """``E|w|`` and ``E[|w| 1{|w| >= a}]`` (``a >= 0``) for ``w ~ N(mu, s²)``, exactly: with
    ``E[w 1{w >= a}] = m Φ̄((a-m)/s) + s φ((a-m)/s)`` for mean ``m``, the tail above ``a`` plus the
    mirror image of the tail below ``-a``."""
    def upper(m: float) -> float:
        z = (a - m) / s
        return m * stats.norm.sf(z) + s * stats.norm.pdf(z)
    z0 = mu / s
    e_abs = mu * (1 - 2 * stats.norm.cdf(-z0)) + 2 * s * stats.norm.pdf(z0)
    return e_abs, upper(mu) + upper(-mu)


def expected_weight_stats(arch: ConvArch, init: str, *, transferred: bool, threshold: float = 0.25) -> dict[str, float]:
    """The exact expectations of :func:`weight_stats` at initialisation (``transferred``: of
    ``T(r₀)``), summing the Gaussian (and, for the linear layer, uniform) moments layer by layer.
    ``std`` is the root of the expected second moment about the expected mean (its sampling
    bias, of relative order 1/n_weights, is negligible)."""
    shapes = arch.shapes()
    total = arch.n_weights()
    s1 = s2 = m_all = m_large = m_id = 0.0
    for k, (ci, co, _) in enumerate(arch.convs()):
        S = ci * 9
        std = math.sqrt(2.0 / S) if init == "kwi" else 1.0 / S
        n = math.prod(shapes[f"w{k}"])
        n_id = min(ci, co) if (k > 0 and transferred) else 0
        ea, el = _abs_moments_normal(0.0, std, threshold)
        m_all += (n - n_id) * ea
        m_large += (n - n_id) * el
        s2 += (n - n_id) * std**2
        if k > 0:
            n_id_all = min(ci, co)
            mu = 1.0 if transferred else 0.0
            ea1, el1 = _abs_moments_normal(mu, std, threshold)
            m_id += n_id_all * ea1
            if transferred:
                m_all += n_id * ea1
                m_large += n_id * el1
                s1 += n_id * mu
                s2 += n_id * (mu**2 + std**2)
    b = 1.0 / math.sqrt(arch.widths[2])
    nfc = math.prod(shapes["fc_w"])
    m_all += nfc * b / 2
    m_large += nfc * max(b * b - threshold**2, 0.0) / (2 * b)
    s2 += nfc * b * b / 3
    mean = s1 / total
    return {"mean": mean, "std": math.sqrt(s2 / total - mean**2), "mass_all": m_all, "mass_large": m_large, "mass_id": m_id}


# --------------------------------------------------------------------------------------------
# §5: layer cushion, noise stability


def conv_operator_fro(w: Tensor, size: tuple[int, int], stride: int = 1) -> Tensor:
    """Frobenius norm of the linear map ``x -> conv2d(x, w, stride, padding=1)`` on ``H×W`` maps,
    as a matrix (the ``||A||_F`` of the cushion, Arora et al. 2018): a tap at offset ``(u, v)``
    meets a real input pixel at ``n_u(u)·n_v(v)`` output positions, so
    ``||A||_F² = Σ w_{dcuv}² n_u n_v``. ``w (..., D, C, 3, 3)`` -> ``(...)``."""
    H, W = size
    def counts(n: int) -> Tensor:
        out = torch.arange(0, n, stride, device=w.device)                 # output centre positions
        return torch.stack([((out + u >= 0) & (out + u < n)).sum() for u in (-1, 0, 1)]).to(w.dtype)
    cnt = counts(H).outer(counts(W))                                      # (3, 3)
    return (w.pow(2) * cnt).sum(dim=(-4, -3, -2, -1)).sqrt()


def layer_activations(arch: ConvArch, params: dict[str, Tensor], x: Tensor, *, kind: str | None = None) -> list[Tensor]:
    """Post-ReLU activations of every conv layer (stem first), each ``(E, B, C, H, W)``."""
    kind = "plain" if (kind or arch.kind) == "dominant" else (kind or arch.kind)

    def one(p, xx):
        pre: list = []
        _forward_one(arch, p, xx, kind, None, None, pre)
        return tuple(torch.relu(z) for z in pre)

    return list(torch.func.vmap(one, in_dims=(0, None))(params, x))


def activation_shapes(arch: ConvArch, height: int, width: int) -> list[tuple[int, int, int]]:
    """``(C, H, W)`` of every conv layer's output for ``height × width`` inputs (3×3 kernels,
    padding 1: a stride-``s`` layer maps ``H`` to ``(H - 1)//s + 1``)."""
    out = []
    for _, co, s in arch.convs():
        height, width = (height - 1) // s + 1, (width - 1) // s + 1
        out.append((co, height, width))
    return out


def layer_cushion(arch: ConvArch, params: dict[str, Tensor], x: Tensor, layer: int, *,
                  remove_identity: bool) -> Tensor:
    """Per-sample cushion of block ``layer`` (§5): ``||A x|| / (||A||_F ||x||)`` with ``x`` the
    layer's input (post-ReLU output of the previous layer) and ``A`` the block's convolution in
    the *plain* parameterisation (``params`` are plain weights, e.g. ``T(r)``). With
    ``remove_identity`` the Frobenius norm is that of ``T⁻¹`` of the kernel (the paper's choice for
    ResNets: the 1s of the ID entries are removed). Returns ``(E, B)``."""
    if not 1 <= layer <= 3 * arch.n_blocks:
        raise ValueError(f"layer={layer}: blocks are numbered 1..{3 * arch.n_blocks}")
    acts = layer_activations(arch, params, x, kind="plain")
    xin = acts[layer - 1]                                               # (E, B, C, H, W)
    _, _, stride = arch.convs()[layer]
    w = params[f"w{layer}"]
    Ax = torch.func.vmap(lambda xx, ww: F.conv2d(xx, ww, None, stride=stride, padding=1))(xin, w)
    wn = w - id_mask(arch, device=w.device, dtype=w.dtype)[f"w{layer}"] if remove_identity else w
    fro = conv_operator_fro(wn, tuple(xin.shape[-2:]), stride)           # (E,)
    return Ax.flatten(2).norm(dim=-1) / (fro[:, None] * xin.flatten(2).norm(dim=-1))


def noise_sensitivity(arch: ConvArch, params: dict[str, Tensor], x: Tensor, noise_std: float, *,
                      layers: list[int] | None = None, n_draws: int = 8,
                      generator: torch.Generator | None = None) -> Tensor:
    """Relative output change ``||f(x; w + δ) - f(x; w)|| / ||f(x; w)||`` (logits, per sample) under
    i.i.d. ``δ ~ N(0, noise_std²)`` added to the conv kernels of ``layers`` (default: every conv
    layer), the plain parameterisation; averaged over ``n_draws`` noise draws. Returns ``(E, B)``."""
    layers = list(range(len(arch.convs()))) if layers is None else layers
    base = forward(arch, params, x, kind="plain")
    out = torch.zeros(base.shape[:2], device=x.device, dtype=x.dtype)
    for _ in range(n_draws):
        noise = {f"w{k}": torch.randn(params[f"w{k}"].shape, generator=generator, device=x.device, dtype=x.dtype) * noise_std
                 for k in layers}
        fn = lambda p, nz: _forward_one(arch, p, x, "plain", None, nz)[0]
        pert = torch.func.vmap(fn)(params, noise)
        out += (pert - base).norm(dim=-1) / base.norm(dim=-1)
    return out / n_draws


# --------------------------------------------------------------------------------------------
# App. D.4.2: dominant gradient flows in real networks


def dominant_fraction(arch: ConvArch, params: dict[str, Tensor], x: Tensor, labels: Tensor, *,
                      kind: str | None = None) -> Tensor:
    """``σ^(ℓ)`` of Eq. (13) for every conv layer ``ℓ`` = 0 (stem) .. 3N-1 (the last block's output
    is ``a^(L)`` before pooling), averaged over the samples of ``x``: ``(E, 3N)``.

    ``Θ_{ijp}^(ℓ) = ∂a_j^(L)/∂a_{ip}^(ℓ) · ∂L/∂a_j^(L)`` with ``a^(L)`` the 64 pooled final
    activations; since ``Σ_j Θ_{ijp}`` is the whole gradient ``∂L/∂a_{ip}``, only the diagonal
    ``Θ_{iip}`` needs its own back-propagation: one VJP per final channel, batched by vmap.
    ``r_i = mean_p |Θ_iip| / |Σ_{j≠i} Θ_ijp|`` and ``σ^(ℓ) = mean_i 1[r_i > 1]`` per sample.
    """
    kind = kind or arch.kind
    kind = "plain" if kind == "dominant" else kind
    n_conv = len(arch.convs())
    layers = list(range(n_conv - 1))

    shapes = activation_shapes(arch, x.shape[-2], x.shape[-1])

    def one(p, xx, yy):
        taps0 = {k: torch.zeros(xx.shape[0], *shapes[k], device=xx.device, dtype=xx.dtype) for k in layers}

        def pooled_fn(taps):
            logits, pooled = _forward_one(arch, p, xx, kind, taps, None)
            return pooled, logits

        (pooled, logits), vjp_fn = torch.func.vjp(pooled_fn, taps0)
        # dL/d a^(L) per sample: the cross-entropy gradient through the linear layer
        probs = torch.softmax(logits, -1)
        onehot = F.one_hot(yy, logits.shape[-1]).to(logits.dtype)
        g_final = (probs - onehot) @ p["fc_w"]                              # (B, 64)
        C_L = g_final.shape[-1]
        full = vjp_fn((g_final, torch.zeros_like(logits)))[0]              # Σ_j Θ_ij·
        eye = torch.eye(C_L, device=xx.device, dtype=xx.dtype)
        diag = torch.func.vmap(lambda e: vjp_fn((g_final * e, torch.zeros_like(logits)))[0])(eye)
        sig = []
        for k in layers:
            Ck = shapes[k][0]
            th_ii = diag[k][torch.arange(Ck), :, torch.arange(Ck)]          # (Ck, B, H, W)
            rest = full[k].transpose(0, 1) - th_ii                         # Σ_{j≠i} Θ_ij
            r = (th_ii.abs() / rest.abs()).flatten(2).mean(-1)             # (Ck, B)
            sig.append((r > 1).to(xx.dtype).mean(0).mean(0))
        return torch.stack(sig)

    return torch.func.vmap(one, in_dims=(0, None, None))(params, x, labels)


def interlayer_cushion(block_fn: Callable[[Tensor], Tensor], x: Tensor,
                       batch_fn: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Per-sample interlayer cushion of §5, ``μ(x) = √n ||J x|| / (||J||_F ||x||)``, ``x (B, ...)``.

    ``block_fn`` maps one sample to the block's output; ``J`` is its Jacobian at ``x`` (dense, by
    ``torch.func.jacrev``, so keep blocks small) and ``n`` the size of ``x``. When the block uses
    batch statistics (batch norm), pass ``batch_fn`` (the map of the whole batch): ``J x`` is then
    its directional derivative along the whole batch -- what back-propagation through the
    statistics gives -- while ``||J||_F`` is that of ``block_fn`` (statistics held fixed).
    Returns ``(B,)``.
    """
    n = x[0].numel()
    jac = torch.func.vmap(torch.func.jacrev(block_fn))(x)                 # (B, *out, *in)
    fro = jac.flatten(1).norm(dim=-1)
    if batch_fn is None:
        jx = torch.func.vmap(lambda xx: torch.func.jvp(block_fn, (xx,), (xx,))[1])(x)
    else:
        jx = torch.func.jvp(batch_fn, (x,), (x,))[1]
    return math.sqrt(n) * jx.flatten(1).norm(dim=-1) / (fro * x.flatten(1).norm(dim=-1))


def bn_block_cushion(x: Tensor, w1: Tensor, w2: Tensor, *, residual: bool, eps: float = 0.0) -> Tensor:
    """§5's interlayer cushion (:func:`interlayer_cushion`) of the fully-fledged :func:`bn_block` on
    the batch ``x (B, C, H, W)``: ``J x`` through the batch statistics, ``||J||_F`` with them held
    fixed. With ``eps = 0`` the plain block is invariant to scaling its batch, so its cushion is 0
    up to round-off; with batch norm's ``eps`` the first normalisation's directional derivative
    along ``x`` is ``BN(z)·eps/(Var z + eps)``, so the cushion is ``eps·K/Var`` to first order."""
    _, st = bn_block(x, w1, w2, residual=residual, eps=eps)
    st = tuple((m.detach(), s_.detach()) for m, s_ in st)
    return interlayer_cushion(lambda v: bn_block(v, w1, w2, residual=residual, stats=st, eps=eps), x,
                              batch_fn=lambda X: bn_block(X, w1, w2, residual=residual, eps=eps)[0])


def bn_block(x: Tensor, w1: Tensor, w2: Tensor, *, residual: bool, stats: tuple | None = None,
             eps: float = 0.0) -> Tensor | tuple[Tensor, tuple]:
    """A fully-fledged basic block (He et al. 2016): conv-BN-ReLU-conv-BN (+ x) -ReLU, 3×3 convs
    with bias-free kernels ``w1, w2 (C, C, 3, 3)``, batch norm without affine parameters over the
    batch ``x (B, C, H, W)`` (``eps`` is batch norm's variance offset; PyTorch's default is 1e-5).
    ``stats`` (two pairs of per-channel mean and std) freezes the statistics (then ``x`` may be one sample ``(C, H, W)``); without it they are the batch's.
    Returns the output, and with ``stats=None`` also the statistics it used."""
    single = x.dim() == 3
    xb = x[None] if single else x
    used = []
    h = xb
    for i, w in enumerate((w1, w2)):
        z = F.conv2d(h, w, padding=1)
        if stats is None:
            mu, sd = z.mean(dim=(0, 2, 3), keepdim=True), z.var(dim=(0, 2, 3), unbiased=False, keepdim=True).add(eps).sqrt()
            used.append((mu, sd))
        else:
            mu, sd = stats[i]
        z = (z - mu) / sd
        h = torch.relu(z) if i == 0 else z
    out = torch.relu(h + xb) if residual else torch.relu(h)
    out = out[0] if single else out
    return (out, tuple(used)) if stats is None else out
