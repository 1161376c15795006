"""Fully connected networks of the five papers, as ensembles of E independent networks.

One builder, :class:`Net` configured by an :class:`Arch`, covers every fully connected
architecture the book uses:

* **plain** ``x_{l+1} = U_l(x_l)`` (Orhan & Pitkow §2 (i); Philipp et al. §I.1 vanilla MLPs);
* **residual** ``x_{l+1} = α (s·S x_l + β F_l(x_l))`` with a fixed skip matrix ``S`` (identity,
  Haar-orthogonal, Gaussian N(0, 1/w) or any given matrix) -- Orhan & Pitkow §2 (ii)
  (α = β = 1, one post-activation unit), Balduzzi et al. Eq. (2) (α- and β-rescaling,
  pre-activation with batch norm), Philipp et al. §I.1 ResNet (two pre-activation units);
* **hyper** residual ``x_{l+1} = F_l(x_l) + x_l + Σ_{k<l} Q_k x_k`` with fixed ``Q_k``
  (Orhan & Pitkow §2 (iii), Supp. Note 2);
* **highway** with scalar gates ``x_{l+1} = γ₁ x_l + γ₂ F_l(x_l)``, ``γ₁² + γ₂² = 1``
  (Balduzzi et al. §3.4, Corollary 1).

The residual branch ``F_l`` is ``units`` units. A *post* unit is linear → norm → nonlinearity
(Orhan's ``f(W x + b)``); a *pre* unit is norm → nonlinearity → linear (He et al. 2016
pre-activation, Balduzzi Eq. (2), Philipp §I.1). The network is
``stem → depth blocks → [final norm] → [readout]``; the stem is one post unit (post order) or a
bare linear layer (pre order) from ``d_in`` to the width.

Normalisations carry no trainable scale or shift (Philipp et al. §I.1): ``batch`` (over the
batch, per network), ``layer`` (over features), ``length`` (divide by the quadratic mean of
the entries), ``none``. ``norm_at = i`` batch-normalises the pre-activation of the single post
unit whose weights are ``weights[i]`` (0 the stem) in a net with ``norm='none'``: Orhan & Pitkow's
"single batch normalization layer in the middle of the network" (Fig. 6b, BiasReg+BN). Nonlinearities: ``relu``, ``tanh``, ``selu``, ``crelu``
(``x ↦ (ρ(x), ρ(-x))``, doubles the width; Balduzzi §5), ``linear``.

Initialisations (weights ``W`` of shape ``(out, in)``): ``he`` N(0, 2/in); ``lecun`` N(0, 1/in);
``glorot`` N(0, 2/(in+out)); ``gaussian`` = Philipp §I.1 (2/in after a ReLU/CReLU, 1/in
otherwise); ``orthogonal`` Haar (semi-)orthogonal; ``looks-linear`` (Balduzzi §5 mirrored
blocks ``(W, -W)`` for CReLU; Philipp §H interleaved mirrored blocks for ReLU) which makes the
network exactly linear at initialisation; ``hardt-ma`` N(0, 1/in²) (σ = 1/S as in Yu & Tomasi's
HMWI); ``malicious`` = Glorot minus the identity on residual-branch weights (Orhan & Pitkow §2.5,
whose networks are Glorot-initialised).

Parameters carry a leading ensemble dimension ``E``: weights are ``(E, out, in)`` and the
forward pass on ``x`` of shape ``(B, d_in)`` (shared by all networks) or ``(E, B, d_in)`` returns
``(E, B, d_out)`` with batched matrix products, so Monte Carlo over initialisations is one
computation, on CPU or CUDA, in float32 or float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from ..theory.ensembles import draw_device, haar_orthogonal, looks_linear_relu, repeated_orthonormal
from ..theory.maps import activation, normalise

KINDS = ("plain", "residual", "hyper", "highway")
ACTS = ("relu", "tanh", "selu", "crelu", "linear")
NORMS = ("none", "batch", "layer", "length")
INITS = ("he", "lecun", "glorot", "gaussian", "orthogonal", "looks-linear", "hardt-ma", "malicious")
SKIPS = ("identity", "orthogonal", "gaussian")
ORDERS = ("post", "pre")


@dataclass(frozen=True)
class Arch:
    """Architecture of a fully connected network (see the module docstring).

    ``depth`` counts blocks (residual blocks, or units of a plain net) after the stem.
    ``skip`` is a name in ``SKIPS`` or a fixed ``(w, w)``/``(E, w, w)`` tensor.
    ``gamma`` is γ₂ of a highway net (γ₁ = √(1-γ₂²)). ``hyper_q`` is ``orthogonal`` or
    ``identity`` for the fixed matrices ``Q_k`` of the hyper-residual net.
    """

    d_in: int
    width: int
    depth: int
    d_out: int | None = None
    kind: str = "plain"
    units: int = 1
    order: str = "post"
    act: str = "relu"
    norm: str = "none"
    init: str = "he"
    skip: Any = "identity"
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float | None = None
    hyper_q: str | int = "orthogonal"
    bias: bool = False
    stem: bool = True
    final_norm: bool = False
    norm_eps: float = 0.0
    norm_at: int | None = None

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> ValueError:
            return ValueError(f"Arch.{name} = {getattr(self, name)!r} is not allowed: {allowed}")

        for name in ("d_in", "width"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise bad(name, "a positive int")
        if not isinstance(self.depth, int) or self.depth < 0:
            raise bad("depth", "a non-negative int")
        if self.d_out is not None and (not isinstance(self.d_out, int) or self.d_out < 1):
            raise bad("d_out", "a positive int or None (no readout layer)")
        if not isinstance(self.units, int) or self.units < 1:
            raise bad("units", "a positive int")
        for name, allowed in (("kind", KINDS), ("act", ACTS), ("norm", NORMS), ("init", INITS), ("order", ORDERS)):
            if getattr(self, name) not in allowed:
                raise bad(name, "one of " + ", ".join(allowed))
        if isinstance(self.skip, str) and self.skip not in SKIPS:
            raise bad("skip", "one of " + ", ".join(SKIPS) + " or a fixed matrix")
        if self.kind == "highway" and (self.gamma is None or not 0 <= self.gamma <= 1):
            raise bad("gamma", "a number in [0, 1] (the highway gate γ₂) for kind='highway'")
        if self.kind != "highway" and self.gamma is not None:
            raise bad("gamma", "only used by kind='highway'")
        if not (self.hyper_q in ("orthogonal", "identity") or (
                isinstance(self.hyper_q, int) and not isinstance(self.hyper_q, bool)
                and self.hyper_q >= 1 and self.rep_width % self.hyper_q == 0)):
            raise bad("hyper_q", "'orthogonal', 'identity' or an int K dividing the width "
                      "(K orthonormal columns, each repeated width/K times: Orhan & Pitkow Supp. Note 2)")
        if self.init == "looks-linear":
            if self.act not in ("relu", "crelu"):
                raise bad("init", "'looks-linear' needs act='relu' or 'crelu'")
            if self.act == "relu" and self.width % 2:
                raise bad("width", "even for ReLU looks-linear initialisation (Philipp et al. §H)")
            if self.order != "post" or not self.stem:
                raise bad("order", "'post' with a stem for looks-linear initialisation")
        if self.init == "malicious" and self.kind == "plain":
            raise bad("init", "'malicious' (W - I, Orhan & Pitkow §2.5) is defined for residual nets")
        if self.norm_eps < 0:
            raise bad("norm_eps", "non-negative")
        if self.final_norm and self.norm == "none":
            raise bad("final_norm", "False when norm='none' (there is no normalisation to apply)")
        if self.norm_at is not None:
            units = int(self.stem) + self.depth * self.units
            if self.order != "post" or self.norm != "none":
                raise bad("norm_at", "None unless order='post' and norm='none' (one batch-norm unit in an unnormalised net)")
            if not isinstance(self.norm_at, int) or isinstance(self.norm_at, bool) or not 0 <= self.norm_at < units:
                raise bad("norm_at", f"None or the index of a hidden unit's weights, 0 to {units - 1}")
        if not self.stem and self.d_in != self.width:
            raise bad("stem", "True unless d_in == width")

    @property
    def mult(self) -> int:
        """Width factor of the nonlinearity (2 for CReLU)."""
        return 2 if self.act == "crelu" else 1

    @property
    def rep_width(self) -> int:
        """Width of the representation ``x_l`` between blocks."""
        return self.width * self.mult if self.order == "post" else self.width

    @property
    def skip_scale(self) -> float:
        return math.sqrt(1.0 - self.gamma**2) if self.kind == "highway" else 1.0

    @property
    def branch_scale(self) -> float:
        return self.gamma if self.kind == "highway" else self.beta

    def with_(self, **kw: Any) -> "Arch":
        return replace(self, **kw)


@dataclass
class Trace:
    """Per-layer tensors of one forward pass, all ``(E, B, ·)``.

    ``pre``: inputs of every nonlinearity (pre-activations, after the norm), in order;
    ``act``: outputs of every nonlinearity; ``hidden``: the representations ``x_1 … x_depth+1``
    (stem output and every block output). Gradients flowing into any of them come from
    :func:`lib.theory.measure.trace_grads`.
    """

    pre: list[Tensor] = field(default_factory=list)
    act: list[Tensor] = field(default_factory=list)
    hidden: list[Tensor] = field(default_factory=list)




class Net(nn.Module):
    """An ensemble of ``E`` independent random networks of architecture ``arch``.

    ``Net(arch, E=256, generator=g, device='cuda', dtype=torch.float32)``. ``net(x)`` returns
    ``(E, B, d_out)``; ``net(x, trace=True)`` returns ``(out, Trace)``. ``net.member(e)`` is the
    single network ``e`` as a ``Net`` with ``E = 1`` (same parameters, copied).
    """

    def __init__(self, arch: Arch, E: int = 1, *, generator: torch.Generator | None = None,
                 device: Any = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not isinstance(E, int) or E < 1:
            raise ValueError(f"ensemble size E = {E!r} must be a positive int")
        self.arch, self.E = arch, E
        a = arch
        shapes: list[tuple[int, int, str]] = []  # (out, in, role)
        if a.stem:
            shapes.append((a.width, a.d_in, "stem"))
        for _ in range(a.depth):
            for u in range(a.units):
                if a.order == "post":
                    d_in = a.rep_width if u == 0 else a.width * a.mult
                    shapes.append((a.width, d_in, "branch"))
                else:
                    shapes.append((a.width, a.width * a.mult, "branch"))
        if a.order == "post" and a.kind != "plain" and a.units > 1:
            raise ValueError("post-order residual blocks with units > 1 change width mid-block; use order='pre'")
        if a.d_out is not None:
            shapes.append((a.d_out, a.rep_width, "readout"))
        self.roles = [s[2] for s in shapes]
        kw = dict(device=device, dtype=dtype)
        self.weights = nn.ParameterList(
            [nn.Parameter(self._init_weight(o, i, role, idx, len(shapes), generator, device, dtype))
             for idx, (o, i, role) in enumerate(shapes)]
        )
        self.biases = nn.ParameterList(
            [nn.Parameter(torch.zeros(E, 1, o, **kw)) for (o, _, _) in shapes] if a.bias else []
        )
        if a.kind in ("residual", "hyper", "highway") and a.depth > 0:
            self.register_buffer("skip", self._skip_matrix(generator, device, dtype))
        else:
            self.skip = None
        if a.kind == "hyper" and a.depth > 1:
            w = a.rep_width
            if a.hyper_q == "identity":
                q = torch.eye(w, **kw).expand(a.depth - 1, E, w, w).clone()
            elif isinstance(a.hyper_q, int):
                q = torch.stack([repeated_orthonormal(E, w, a.hyper_q, generator=generator, device=device, dtype=dtype)
                                 for _ in range(a.depth - 1)])
            else:
                q = torch.stack([haar_orthogonal(E, w, w, generator=generator, device=device, dtype=dtype)
                                 for _ in range(a.depth - 1)])
            self.register_buffer("hyper_q", q)
        else:
            self.hyper_q = None

    # -- initialisation ---------------------------------------------------------------------
    def _init_weight(self, out: int, inp: int, role: str, idx: int, n: int,
                     g: torch.Generator | None, device: Any, dtype: torch.dtype) -> Tensor:
        a, E = self.arch, self.E
        # Post order: the stem sees raw inputs, every other layer a nonlinearity's output.
        # Pre order: branch layers see a nonlinearity's output, stem and readout do not.
        after_act = role != "stem" if a.order == "post" else role == "branch"
        gain = 2.0 if (after_act and a.act in ("relu", "crelu")) else 1.0

        def gauss(var: float) -> Tensor:
            return torch.randn(E, out, inp, generator=g, device=draw_device(g, device), dtype=torch.float64).mul_(math.sqrt(var)).to(device=device, dtype=dtype)

        if a.init == "he":
            return gauss(2.0 / inp)
        if a.init == "lecun":
            return gauss(1.0 / inp)
        if a.init == "glorot":
            return gauss(2.0 / (inp + out))
        if a.init == "gaussian":
            return gauss(gain / inp)
        if a.init == "hardt-ma":
            return gauss(1.0 / inp**2)
        if a.init == "malicious":
            w = gauss(2.0 / (inp + out))
            if role == "branch":
                w = w - torch.eye(out, inp, device=device, dtype=dtype)
            return w
        if a.init == "orthogonal":
            return haar_orthogonal(E, out, inp, generator=g, device=device, dtype=dtype)
        if a.init == "looks-linear":
            return self._looks_linear(out, inp, role, g, device, dtype)
        raise AssertionError(a.init)

    def _looks_linear(self, out: int, inp: int, role: str, g, device, dtype) -> Tensor:
        """Balduzzi et al. §5 (CReLU: ``(W', -W')``) and Philipp et al. §H (ReLU: interleaved
        mirrored pairs with scale ``max(sqrt(m/n'), 1)``)."""
        E = self.E
        if self.arch.act == "crelu":
            if role == "stem":
                return haar_orthogonal(E, out, inp, generator=g, device=device, dtype=dtype)
            half = inp // 2
            w = haar_orthogonal(E, out, half, generator=g, device=device, dtype=dtype)
            return torch.cat([w, -w], dim=-1)
        return looks_linear_relu(E, out, inp, role, generator=g, device=device, dtype=dtype)

    def _skip_matrix(self, g, device, dtype) -> Tensor:
        a, E, w = self.arch, self.E, self.arch.rep_width
        s = a.skip
        if isinstance(s, Tensor):
            s = s.to(device=device, dtype=dtype)
            if s.shape == (w, w):
                return s.expand(E, w, w).clone()
            if s.shape == (E, w, w):
                return s.clone()
            raise ValueError(f"fixed skip matrix has shape {tuple(s.shape)}; expected ({w}, {w}) or ({E}, {w}, {w})")
        if s == "identity":
            return torch.eye(w, device=device, dtype=dtype).expand(E, w, w).clone()
        if s == "orthogonal":
            return haar_orthogonal(E, w, w, generator=g, device=device, dtype=dtype)
        return torch.randn(E, w, w, generator=g, device=draw_device(g, device), dtype=torch.float64).div_(math.sqrt(w)).to(device=device, dtype=dtype)

    # -- forward ----------------------------------------------------------------------------
    def _linear(self, h: Tensor, i: int) -> Tensor:
        z = torch.matmul(h, self.weights[i].transpose(-1, -2))
        if self.arch.bias:
            z = z + self.biases[i]
        return z

    def _unit(self, h: Tensor, i: int, tr: Trace | None, act: bool = True) -> Tensor:
        a = self.arch
        if a.order == "post":
            z = normalise("batch" if i == a.norm_at else a.norm, self._linear(h, i), a.norm_eps)
            if not act:
                return z
            out = activation(a.act, z)
            if tr is not None:
                tr.pre.append(z)
                tr.act.append(out)
            return out
        z = normalise(a.norm, h, a.norm_eps)
        y = activation(a.act, z)
        if tr is not None:
            tr.pre.append(z)
            tr.act.append(y)
        return self._linear(y, i)

    def forward(self, x: Tensor, trace: bool = False):
        a = self.arch
        if x.dim() == 2:
            x = x.unsqueeze(0)
        if x.dim() != 3 or x.shape[-1] != a.d_in or x.shape[0] not in (1, self.E):
            raise ValueError(f"input of shape {tuple(x.shape)}; expected (B, {a.d_in}) or ({self.E}, B, {a.d_in})")
        tr = Trace() if trace else None
        i = 0
        if a.stem:
            h = self._unit(x, 0, tr) if a.order == "post" else self._linear(x, 0)
            i = 1
        else:
            h = x.expand(self.E, *x.shape[1:])
        if tr is not None:
            tr.hidden.append(h)
        hist = [h]
        for b in range(a.depth):
            f = h
            for _ in range(a.units):
                f = self._unit(f, i, tr)
                i += 1
            if a.kind == "plain":
                h = f
            else:
                skip = torch.matmul(h, self.skip.transpose(-1, -2))
                h_new = a.alpha * (a.skip_scale * skip + a.branch_scale * f)
                if a.kind == "hyper" and b >= 1:
                    # Σ_{k<b} Q_k x_k, accumulated so each Q_k x_k is computed once
                    q_term = torch.matmul(hist[b - 1], self.hyper_q[b - 1].transpose(-1, -2))
                    hyper_acc = q_term if b == 1 else hyper_acc + q_term
                    h_new = h_new + hyper_acc
                h = h_new
            hist.append(h)
            if tr is not None:
                tr.hidden.append(h)
        if a.final_norm:
            h = normalise(a.norm, h, a.norm_eps)
        if a.d_out is not None:
            h = self._linear(h, i)
        return (h, tr) if trace else h

    # -- utilities --------------------------------------------------------------------------
    def member(self, e: int) -> "Net":
        """Network ``e`` of the ensemble as a stand-alone ``Net`` with ``E = 1``."""
        new = Net.__new__(Net)
        nn.Module.__init__(new)
        new.arch, new.E, new.roles = self.arch, 1, self.roles
        new.weights = nn.ParameterList([nn.Parameter(w[e:e + 1].detach().clone()) for w in self.weights])
        new.biases = nn.ParameterList([nn.Parameter(b[e:e + 1].detach().clone()) for b in self.biases])
        if self.skip is not None:
            new.register_buffer("skip", self.skip[e:e + 1].clone())
        else:
            new.skip = None
        if self.hyper_q is not None:
            new.register_buffer("hyper_q", self.hyper_q[:, e:e + 1].clone())
        else:
            new.hyper_q = None
        return new

    def n_params(self) -> int:
        """Trainable parameters of *one* network of the ensemble."""
        return sum(p[0].numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return f"E={self.E}, arch={self.arch}"
