"""Run-time set-up shared by every chapter: parameters, profiles, seeding, device and dtype.

Every chapter's second code cell is one call to :func:`setup`. It

1. validates every parameter of the chapter's ``parameters`` cell against the chapter's
   :class:`ChapterSpec` (registered in :mod:`lib.chapters`): an unknown profile, a knob of the
   wrong type or out of range, an unknown choice, or a device that is not there raises one
   ``ValueError`` naming the parameter and what is allowed;
2. resolves every knob left at ``None`` from the profile (``quick`` or ``paper``);
3. seeds Python, NumPy and torch;
4. resolves the device (``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is an
   error, never a silent CPU run);
5. clears the chapter's ledger so that the ledger holds exactly the checks of this run;
6. prints one header line (chapter, profile, device, dtype, seed, torch version, knobs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

PROFILES = ("quick", "paper")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Knob:
    """One chapter parameter: its type, its quick and paper values, and what is allowed.

    ``kind`` is one of ``int``, ``float``, ``str``, ``bool``; ``low``/``high`` bound numbers
    (inclusive); ``choices`` restricts strings.
    """

    name: str
    kind: type
    quick: Any
    paper: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: Sequence[str] | None = None

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        parts = [self.kind.__name__]
        if self.low is not None:
            parts.append(f">= {self.low}")
        if self.high is not None:
            parts.append(f"<= {self.high}")
        return " ".join(parts)

    def validate(self, value: Any) -> Any:
        """Return ``value`` converted to the knob's type, or raise a ``ValueError``."""
        bad = ValueError(
            f"parameter {self.name!r} = {value!r} is not allowed: expected {self.allowed()} "
            f"({self.help}); leave it None to take the profile's value"
        )
        if self.kind is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise bad
            return bool(value)
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise bad
            value = int(value)
        elif self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise bad
            value = float(value)
            if not np.isfinite(value):
                raise bad
        elif self.kind is str:
            if not isinstance(value, str):
                raise bad
        if self.choices is not None and value not in self.choices:
            raise bad
        if self.low is not None and value < self.low:
            raise bad
        if self.high is not None and value > self.high:
            raise bad
        return value


@dataclass(frozen=True)
class ChapterSpec:
    """What a chapter is and which knobs it takes (see DESIGN.md, "The chapter contract")."""

    slug: str
    title: str
    paper: str
    knobs: tuple[Knob, ...]
    dtype: str = "float64"
    paper_runtime: str = "not measured yet"
    #: recorded wall time of the quick profile (seconds, one chapter at a time): on the 2-core CPU
    #: at two threads (:data:`lib.chapters.QUICK_TIMED`), and on one H200 GPU
    #: (:data:`lib.chapters.GPU_QUICK_TIMED`). The README quotes them (a test keeps it in step) and
    #: the sweep starts the longest jobs first.
    quick_s: float = 0.0
    gpu_quick_s: float | None = None

    def knob(self, name: str) -> Knob:
        for k in self.knobs:
            if k.name == name:
                return k
        raise KeyError(name)

    @property
    def knob_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)


@dataclass
class Run:
    """The resolved set-up of one chapter run; knobs are attributes (``run.depth``)."""

    chapter: str
    profile: str
    device: torch.device
    dtype: torch.dtype
    seed: int
    knobs: dict[str, Any] = field(default_factory=dict)
    threads: int = 0   #: torch CPU threads of this process (lib.threads)

    def __getattr__(self, name: str) -> Any:
        knobs = self.__dict__.get("knobs", {})
        if name in knobs:
            return knobs[name]
        raise AttributeError(name)

    def generator(self, stream: int = 0) -> torch.Generator:
        """A torch generator on the run's device, seeded from (seed, stream)."""
        g = torch.Generator(device=self.device)
        g.manual_seed(derive_seed(self.seed, stream))
        return g

    def header(self) -> str:
        knobs = " ".join(f"{k}={v}" for k, v in self.knobs.items())
        return (
            f"[{self.chapter}] profile={self.profile} device={self.device} "
            f"dtype={str(self.dtype).replace('torch.', '')} seed={self.seed} "
            f"torch={torch.__version__}" + (f" threads={self.threads}" if self.threads else "") + f" | {knobs}"
        )


def derive_seed(seed: int, stream: int) -> int:
    """A deterministic 63-bit seed for sub-stream ``stream`` of the run seed ``seed``."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0] >> 1)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and all GPUs)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def draw_device(generator: torch.Generator | None, device=None):
    """The device random numbers must be drawn on: the generator's own (a CUDA generator cannot
    fill a CPU tensor, nor the reverse), else ``device``. Callers move the draw to where it is
    used, so the same seed gives the same numbers whatever the target device."""
    return generator.device if generator is not None else device


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``.

    ``cuda`` (or ``cuda:N``) without such a GPU raises ``ValueError``; nothing falls back
    silently to the CPU.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"parameter 'device' = {device!r} is not allowed: use 'auto', 'cpu' or 'cuda'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"parameter 'device' = {device!r}, but torch sees no CUDA GPU on this machine "
                f"(torch {torch.__version__}, torch.cuda.is_available() is False); "
                "use device='auto' or device='cpu' to run on the CPU"
            )
        dev = torch.device(device)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"parameter 'device' = {device!r}, but only {torch.cuda.device_count()} GPU(s) are visible"
            )
        return dev
    raise ValueError(f"parameter 'device' = {device!r} is not allowed: use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def resolve(spec: ChapterSpec, profile: str, seed: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``params`` against ``spec`` and fill ``None`` from the profile.

    Pure: no seeding, no device, no I/O, so the runner can call it before starting a kernel.
    """
    if profile not in PROFILES:
        raise ValueError(f"parameter 'profile' = {profile!r} is not allowed: use one of {', '.join(map(repr, PROFILES))}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"parameter 'seed' = {seed!r} is not allowed: expected a non-negative int")
    unknown = sorted(set(params) - set(spec.knob_names))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for chapter {spec.slug!r}; "
            f"its parameters are profile, device, seed, {', '.join(spec.knob_names)}"
        )
    missing = sorted(set(spec.knob_names) - set(params))
    if missing:
        raise ValueError(f"chapter {spec.slug!r}: setup() was not given parameter(s) {', '.join(missing)}")
    out = {}
    for knob in spec.knobs:
        value = params[knob.name]
        out[knob.name] = knob.validate(getattr(knob, profile) if value is None else value)
    return out


def setup(chapter: str, *, profile: str = "quick", device: str = "auto", seed: int = 0, **params: Any) -> Run:
    """Validate, resolve, seed, pick the device, reset the ledger and print the run header.

    Parameters are exactly the chapter's ``parameters`` cell: ``profile``, ``device``,
    ``seed`` and the chapter's knobs (each ``None`` = take it from the profile).
    Returns a :class:`Run` whose attributes are the resolved knobs.
    """
    from . import chapters, checks, threads

    spec = chapters.get(chapter)
    knobs = resolve(spec, profile, seed, params)
    dev = resolve_device(device)
    seed_everything(int(seed))
    # float32 means float32: cuDNN convolutions default to TF32 on Ampere and later GPUs, which
    # rounds inputs to 10 mantissa bits and would silently change every float32 claim on a GPU
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    n_threads = threads.apply()   # BOOK_THREADS, else what the launcher set (OMP_NUM_THREADS), else all cores
    run = Run(chapter=chapter, profile=profile, device=dev, dtype=DTYPES[spec.dtype], seed=int(seed), knobs=knobs, threads=n_threads)
    checks.start(run)
    print(run.header())
    return run
