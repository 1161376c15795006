"""Run-time set-up shared by every chapter: parameters, profiles, seeding, device and dtype.

Every chapter's second code cell is one call to :func:`setup`. It

1. validates every parameter of the chapter's ``parameters`` cell against the chapter's
   :class:`ChapterSpec` (registered in :mod:`lib.machinery.chapters`): an unknown profile, a knob of the
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
from typing import Any

import numpy as np
import torch

from . import chapters, checks, threads
from .spec import DTYPES, resolve


@dataclass
class Run:
    """The resolved set-up of one chapter run; knobs are attributes (``run.depth``)."""

    chapter: str
    profile: str
    device: torch.device
    dtype: torch.dtype
    seed: int
    knobs: dict[str, Any] = field(default_factory=dict)
    threads: int = 0   #: torch CPU threads of this process (lib.machinery.threads)

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

    def values(self, name: str, kind: type, ok, rule: str, *, min_count: int = 1) -> list:
        """The comma-separated knob ``name`` (e.g. ``depths = "1,2,4"``) as a sorted list of distinct
        values of type ``kind``, each accepted by ``ok``. Anything else -- a value that does not
        parse, one that ``ok`` rejects, fewer than ``min_count`` values -- raises one ``ValueError``
        naming the parameter, the offending values and ``rule`` (what is allowed, with an example)."""
        text = self.knobs[name]
        try:
            vals = sorted({kind(v) for v in str(text).split(",")})
        except ValueError:
            raise ValueError(f"parameter {name!r} = {text!r}: expected comma-separated {rule}") from None
        bad = [v for v in vals if not ok(v)]
        if bad or len(vals) < min_count:
            why = f"not allowed: {', '.join(map(str, bad))}" if bad else f"at least {min_count} distinct values needed"
            raise ValueError(f"parameter {name!r} = {text!r}: expected comma-separated {rule} ({why})")
        return vals

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



def setup(chapter: str, *, profile: str = "quick", device: str = "auto", seed: int = 0, **params: Any) -> Run:
    """Validate, resolve, seed, pick the device, reset the ledger and print the run header.

    Parameters are exactly the chapter's ``parameters`` cell: ``profile``, ``device``,
    ``seed`` and the chapter's knobs (each ``None`` = take it from the profile).
    Returns a :class:`Run` whose attributes are the resolved knobs.
    """

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
