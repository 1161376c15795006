"""What a chapter is and which knobs it takes: :class:`Knob`, :class:`ChapterSpec`, the profiles and
dtypes, and :func:`resolve`, the pure validation of a chapter's parameters (no seeding, no device, no
I/O, so the runner calls it before a kernel starts). The registry (:mod:`.chapters`) is built from it
and :func:`lib.machinery.runtime.setup` reads both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

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
    #: at two threads (:data:`lib.machinery.chapters.QUICK_TIMED`), and on one H200 GPU
    #: (:data:`lib.machinery.chapters.GPU_QUICK_TIMED`). The README quotes them (a test keeps it in step) and
    #: the sweep starts the longest jobs first.
    quick_s: float = 0.0
    gpu_quick_s: float | None = None
    #: rules that involve several knobs: each takes (resolved knobs, the parameters as given, None
    #: where left unset) and returns None, or the message of the ``ValueError`` to raise
    constraints: tuple[Callable[[Mapping[str, Any], Mapping[str, Any]], str | None], ...] = ()

    def knob(self, name: str) -> Knob:
        for k in self.knobs:
            if k.name == name:
                return k
        raise KeyError(name)

    @property
    def knob_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)


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
    for rule in spec.constraints:
        message = rule(out, params)
        if message:
            raise ValueError(f"chapter {spec.slug!r}: {message}")
    return out
