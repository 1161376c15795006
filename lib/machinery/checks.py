"""Claim checks and the claims ledger (DESIGN.md, "Checks and the claims ledger").

Every claim a chapter makes is checked by one call to :func:`check`. The call compares a
measured value with an expected one under a tolerance whose justification the chapter states
next to it, appends a record to ``_build/ledger/<chapter>.json`` and raises an
``AssertionError`` with a readable message when the claim fails, so that papermill, nbval and CI
fail with it.

Four outcomes can be recorded; the first three are themselves checks that can fail:

* ``"confirmed"`` -- the measurement agrees with the paper's value within ``tol``;
* ``"confirmed with a correction"`` -- the measurement agrees with a *corrected* value derived in
  the chapter (``expected``); the paper's own value goes in ``paper_value``;
* ``"not reproduced"`` -- the measurement *disagrees* with the paper's value by more than ``tol``;
  the check fails if a later run suddenly agrees, so the finding stays honest;
* ``"not resolved at this scale"`` -- the run is too small to tell the effect from its noise: the
  record keeps the measured effect and its standard error (``se``) and asserts nothing about its
  sign (only that both are finite numbers); the chapter says which size or profile resolves it.
  Which outcome a claim takes is decided by the sample sizes of the run (``resolved = n >= ...``),
  never by the profile's name.

``measured`` is always the quantity the statement names and ``expected`` the value it is compared
with (for a one-sided claim, the bound); the signed distance to the bound goes in ``margin``, and
``paper_value`` is what the paper prints. A reproduced table is checked with :func:`check_table`:
one record per cell.

Tolerance helpers: :func:`roundoff_tol` (float64/float32 round-off for exact identities),
:func:`se_tol` (k standard errors from Monte-Carlo samples) and :func:`k_sigma` (the number of
standard errors that keeps a correct claim's chance of failing below 1e-3).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from . import claims

NOT_RESOLVED = "not resolved at this scale"
OUTCOMES = ("confirmed", "confirmed with a correction", "not reproduced", NOT_RESOLVED)
FALSE_FAILURE = 1e-3  # the largest chance that a correct claim fails by chance, per claim (DESIGN.md)
KINDS = ("exact", "statistical", "asymptotic", "reproduction")

ROOT = Path(__file__).resolve().parents[2]   # lib/machinery/checks.py -> the repository


def build_dir() -> Path:
    """``_build/`` of the repository (``BOOK_BUILD_DIR`` overrides it)."""
    return Path(os.environ.get("BOOK_BUILD_DIR", ROOT / "_build"))


def ledger_dir() -> Path:
    return build_dir() / "ledger"


_state: dict[str, Any] = {"run": None, "records": []}


def start(run: Any) -> None:
    """Begin a chapter run: the chapter's ledger file is reset to hold this run's checks only."""
    _state["run"] = run
    _state["records"] = []
    _write(run.chapter, [])


def _write(chapter: str, records: list[dict]) -> None:
    d = ledger_dir()
    d.mkdir(parents=True, exist_ok=True)
    if paths_only():
        records = [{**r, "paths_only": True} for r in records]
    tmp = d / f".{chapter}.json.tmp"
    tmp.write_text(json.dumps(records, indent=1))
    os.replace(tmp, d / f"{chapter}.json")


def _plain(x: Any) -> Any:
    """JSON-friendly copy of a number, array or tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x.tolist() if x.size > 1 else _plain(x.item())
    if isinstance(x, (np.floating, float)):
        return float(x)
    if isinstance(x, (np.integer, int)) and not isinstance(x, bool):
        return int(x)
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().cpu().numpy()
    return np.asarray(x, dtype=float)


class Record(dict):
    """A ledger record (a plain ``dict``) that displays as one line in a notebook."""

    def summary(self, bar: str = "|") -> str:
        if self["status"] == NOT_RESOLVED:
            return (f"{self['status']}: {self['claim']} ({self['kind']}): measured {_fmt(self['measured'])} "
                    f"± {_fmt(self['se'])} (1 s.e.); nothing is asserted about its sign at this size")
        tol = self["tolerance"]
        tol = max(tol) if isinstance(tol, list) else tol
        rel = " (relative)" if self.get("relative") else (" (on the log scale)" if self.get("log_scale") else "")
        relation = self.get("relation", "eq")
        if relation != "eq":
            sign = ">=" if relation == "ge" else "<="
            return (f"{self['status']}: {self['claim']} ({self['kind']}): measured {_fmt(self['measured'])} {sign} "
                    f"{_fmt(self['expected'])} {'-' if relation == 'ge' else '+'} tolerance{rel} {tol:.3g}; "
                    f"worst shortfall {self['max_error']:.3g} (0 means it holds)")
        return (f"{self['status']}: {self['claim']} ({self['kind']}): measured {_fmt(self['measured'])}, expected "
                f"{_fmt(self['expected'])}, max {bar}measured - expected{bar} = {self['max_error']:.3g}, tolerance{rel} up to {tol:.3g}")

    def __repr__(self) -> str:
        return self.summary()

    def _repr_markdown_(self) -> str:
        return self.summary(bar="\\|")


def roundoff_tol(dtype: torch.dtype | str, scale: float = 1.0, ops: float = 1.0) -> float:
    """Tolerance for an identity that holds exactly in real arithmetic.

    ``ops * eps(dtype) * scale`` with ``eps`` the unit round-off: a sum of ``ops`` terms of size
    ``scale`` accumulates at most about ``ops * eps * scale`` error (a deliberately pessimistic
    linear bound; the square-root bound of random round-off is tighter).
    """
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return float(ops * torch.finfo(dtype).eps * scale)


def standard_error(samples: Any, dim: int = 0) -> np.ndarray:
    """Standard error of the mean of i.i.d. ``samples`` along ``dim`` (ddof = 1)."""
    a = _as_array(samples)
    n = a.shape[dim]
    if n < 2:
        raise ValueError("a standard error needs at least two samples")
    return a.std(axis=dim, ddof=1) / math.sqrt(n)


def se_tol(samples: Any, k: float = 4.0, dim: int = 0) -> np.ndarray:
    """``k`` standard errors of the mean of ``samples``.

    With ``k = 4`` a correct claim fails by chance with probability ~6e-5 per compared number
    (normal approximation); the seed is fixed, so the outcome is reproducible.
    """
    return k * standard_error(samples, dim=dim)


def k_sigma(p: float = FALSE_FAILURE, *, two_sided: bool = True, df: float | None = None) -> float:
    """How many standard errors a correct claim may be off so that it fails with probability at
    most ``p``: the normal quantile ``z_{1-p/2}`` (two-sided; 3.29 for p = 1e-3) or ``z_{1-p}``
    (one-sided; 3.09), or Student's t quantile with ``df`` degrees of freedom when the standard
    error itself is estimated from few samples (e.g. 5.96 two-sided, 5.21 one-sided, for df = 6)."""
    from scipy import stats

    q = 1 - p / 2 if two_sided else 1 - p
    return float(stats.norm.ppf(q) if df is None else stats.t.ppf(q, df))


def k_family(n: int, p: float = FALSE_FAILURE, *, two_sided: bool = True, df: float | None = None) -> float:
    """:func:`k_sigma` for a claim made of ``n`` compared numbers (a reproduced table): Bonferroni's
    per-number level ``p / n`` keeps the chance that *any* of them fails by chance below ``p``, so a
    table of 100 cells is as safe in a ten-seed sweep as a single number."""
    if n < 1:
        raise ValueError(f"k_family needs at least one compared number, got n={n}")
    return k_sigma(p / n, two_sided=two_sided, df=df)


def _evaluate(claim, source, statement, measured, expected, tol, kind, *, relative=False, relation="eq",
              outcome="confirmed", paper_value=None, note="", se=None, extra=None,
              log_scale=False, paper_says="") -> tuple[Record, str]:
    """The record of one claim and, when it fails, the message (empty when it passes)."""
    run = _state["run"]
    if run is None:
        raise RuntimeError("lib.check() called before lib.setup(): call setup first")
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: use one of {KINDS}")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome={outcome!r}: use one of {OUTCOMES}")
    if outcome == "confirmed with a correction" and paper_value is None:
        raise ValueError("outcome 'confirmed with a correction' needs the paper's own value in paper_value")
    if outcome == "not reproduced" and not str(paper_says or "").strip():
        raise ValueError(f"claim {claim!r}: outcome 'not reproduced' needs paper_says, the paper's own words (or number) "
                         "that the measurement refutes, with where they stand; a result the paper does not state is "
                         "'beyond the paper' and is recorded as our own finding, not as a refutation")
    if outcome == NOT_RESOLVED and se is None:
        raise ValueError(f"claim {claim!r}: outcome {NOT_RESOLVED!r} needs the standard error of the measured effect in se")
    if relation not in ("eq", "ge", "le"):
        raise ValueError(f"relation={relation!r}: use 'eq', 'ge' or 'le'")
    m, e, t = _as_array(measured), _as_array(expected), _as_array(tol)
    if m.size == 0:
        raise ValueError(f"claim {claim!r}: the measurement is empty, so the check would pass without comparing anything")
    bad_tol = bool(np.any(t < 0) or np.any(~np.isfinite(t)))
    if bad_tol and not _record_only():
        raise ValueError(f"claim {claim!r}: tolerance must be finite and non-negative, got {tol!r}")
    if log_scale:
        if relative:
            raise ValueError(f"claim {claim!r}: log_scale already compares ratios; do not combine it with relative")
        if np.any(e <= 0):
            raise ValueError(f"claim {claim!r}: log_scale needs positive expected values, got {expected!r}")
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(m > 0, np.log(np.where(m > 0, m, 1.0)), np.nan)
        e = np.log(e)
    if relation == "eq":
        err = np.abs(m - e)
    elif relation == "ge":
        err = np.maximum(e - m, 0.0)
    else:
        err = np.maximum(m - e, 0.0)
    bound = t * np.abs(e) if relative else t
    # a tolerance that is not a finite number (a standard error from too few samples, under a
    # mutation or in a paths-only run, where it is recorded rather than raised) decides nothing
    finite = bool(np.all(np.isfinite(m))) and not bad_tol
    within = bool(finite and np.all(err <= bound))
    if outcome == NOT_RESOLVED:
        s_ = _as_array(se)
        passed = bool(finite and np.all(np.isfinite(s_)) and np.all(s_ >= 0))
    elif outcome == "not reproduced":
        passed = bool(finite and not within)
    else:
        passed = within
    rec = Record({
        "chapter": run.chapter,
        "claim": claim,
        "source": source,
        "statement": statement,
        "kind": kind,
        "measured": _plain(measured),
        "expected": _plain(expected),
        "paper_value": _plain(paper_value),
        "tolerance": _plain(tol),
        "relative": relative,
        "log_scale": log_scale,
        "relation": relation,
        "margin": _plain(m - e) if relation != "eq" else None,
        "se": _plain(se),
        "max_error": float(np.max(err)) if err.size else 0.0,
        "passed": passed,
        "status": outcome if passed else "FAILED",
        "note": note,
        "paper_says": paper_says or "",
        "profile": run.profile,
        "seed": run.seed,
        **(extra or {}),
    })
    if passed:
        return rec, ""
    what = "relative " if relative else ("log-scale " if log_scale else "")
    if outcome == NOT_RESOLVED:
        return rec, (f"claim {claim!r} ({source}): the effect or its standard error is not a finite number (se >= 0) "
                     f"(measured {rec['measured']!r}, se {rec['se']!r})")
    if outcome == "not reproduced":
        return rec, (f"claim {claim!r} ({source}) was recorded as NOT reproduced, but the measurement now "
                     f"agrees with the paper's value within the {what}tolerance (max |error| {float(np.max(err)):.3g}). "
                     "Re-examine the finding.")
    worst = int(np.argmax(err - bound)) if err.size > 1 else 0
    return rec, (f"claim {claim!r} failed ({source}): {statement}\n"
                 f"  measured {float(np.broadcast_to(m, err.shape).ravel()[worst]):.10g}, expected "
                 f"{'' if relation == 'eq' else ('>= ' if relation == 'ge' else '<= ')}"
                 f"{float(np.broadcast_to(e, err.shape).ravel()[worst]):.10g}, "
                 f"{'|error|' if relation == 'eq' else 'shortfall'} = {err.ravel()[worst]:.3g} > "
                 f"{what}tolerance {np.broadcast_to(bound, err.shape).ravel()[worst]:.3g}"
                 f" (worst of {err.size} compared value(s); finite: {finite})")


#: ``BOOK_PATHS_ONLY=1``: a run that tests code paths, not claims (the tests run each chapter's
#: ``paper`` profile at tiny sizes, where no claim is meant to hold): failing checks are recorded as
#: FAILED and the chapter goes on; every record of such a run is marked ``"paths_only": true``.
PATHS_ONLY_ENV = "BOOK_PATHS_ONLY"


def paths_only() -> bool:
    return os.environ.get(PATHS_ONLY_ENV, "").strip() not in ("", "0")


def _record_only() -> bool:
    """Under a mutation (``BOOK_MUTATION`` = :data:`lib.machinery.mutations.ENV`; checks does not import the
    mutations module, which sits above it) or in a paths-only run (:func:`paths_only`) a failing
    check is recorded as FAILED and the chapter goes on, so that every claim is evaluated."""
    return bool(os.environ.get("BOOK_MUTATION", "").strip()) or paths_only()


STOP_ENV = "BOOK_STOP_AFTER"


class StopAfterClaims(Exception):
    """Raised once every claim named by ``BOOK_STOP_AFTER`` has a record: a mutation run that only
    needs those claims (``python -m lib mutate --stop-early``) ends the chapter there."""


def claim_matches(claim: str, pattern: str) -> bool:
    """``pattern`` is a claim id, or a prefix ending in ``*`` (the ids a chapter makes in a loop)."""
    return claim.startswith(pattern[:-1]) if pattern.endswith("*") else claim == pattern


def _keep(recs: list[Record]) -> None:
    run = _state["run"]
    ids = {r["claim"] for r in recs}
    _state["records"] = [r for r in _state["records"] if r["claim"] not in ids] + list(recs)
    _write(run.chapter, _state["records"])
    wanted = [w for w in os.environ.get(STOP_ENV, "").split(",") if w.strip()]
    if wanted and all(any(claim_matches(r["claim"], w) or claim_matches(r.get("table") or "", w) for r in _state["records"])
                      for w in wanted):
        raise StopAfterClaims(f"{STOP_ENV}: every claim it names ({', '.join(wanted)}) is recorded; the chapter stops here")


def _declared(claim: str, source: str | None, statement: str | None, kind: str | None, *,
              default_kind: str | None = None) -> tuple[str, str, str]:
    """A claim's source, statement and kind: from the chapter's text when it states the claim there
    (:mod:`lib.machinery.claims`), else as the check gives them. Stating a claim in both places,
    or in neither, is an error naming the claim and the fix."""
    run = _state["run"]
    chapter = getattr(run, "chapter", None)
    decl = claims.declarations(ROOT / "book" / f"{chapter}.md").get(claim) if chapter else None
    given = [n for n, v in (("source", source), ("statement", statement), ("kind", kind)) if v is not None]
    if decl is not None:
        if given:
            raise ValueError(f"claim {claim!r} is stated in the text of book/{chapter}.md; remove its "
                             f"{', '.join(given)} from the check (one statement, in the text)")
        return decl.source, decl.statement, decl.kind
    kind = kind if kind is not None else default_kind
    missing = [n for n, v in (("source", source), ("statement", statement), ("kind", kind)) if v is None]
    if missing:
        raise ValueError(f"claim {claim!r}: no {', '.join(missing)} given, and no claim block in book/{chapter}.md "
                         f"states it (```{{admonition}} Claim {claim} · <source> · <kind>, :class: claim, statement)")
    return source, statement, kind


def _require(claim: str, **values: Any) -> None:
    """The values a check cannot do without (they default to None only so that source, statement
    and kind may be left to the chapter's text)."""
    for name, v in values.items():
        if v is None:
            raise TypeError(f"check {claim!r}: {name} is required")


def check(
    claim: str,
    source: str | None = None,
    statement: str | None = None,
    measured: Any = None,
    expected: Any = None,
    tol: Any = None,
    kind: str | None = None,
    *,
    relative: bool = False,
    relation: str = "eq",
    outcome: str = "confirmed",
    paper_value: Any = None,
    note: str = "",
    se: Any = None,
    log_scale: bool = False,
    paper_says: str = "",
) -> Record:
    """Check one claim, record it in the ledger, raise ``AssertionError`` if it fails.

    Parameters
    ----------
    claim : short id, unique within the chapter (``"thm1-covariance"``).
    source : where in the paper (``"Balduzzi et al. 2017, Thm 1(b)"``).
    statement : one line saying what is claimed.
        ``source``, ``statement`` and ``kind`` are left out when the chapter states the claim in
        its text (:mod:`lib.machinery.claims`); they are taken from there, and giving them
        twice is an error.
    measured, expected : numbers or arrays of the same shape (broadcastable).
    tol : absolute tolerance (or relative, with ``relative=True``), scalar or per element;
        justify it in the chapter text next to the call.
    relation : ``"eq"`` (default): ``|measured - expected| <= tol``; ``"ge"``: the one-sided claim
        ``measured >= expected - tol`` (e.g. "A trains faster than B": a difference ``>= 0`` with
        ``tol`` a number of standard errors below it allowed -- or ``expected`` set to a positive
        margin); ``"le"``: ``measured <= expected + tol``. For one-sided relations the recorded
        error is the shortfall (0 when the claim holds).
    kind : ``exact`` | ``statistical`` | ``asymptotic`` | ``reproduction``.
    outcome : see the module docstring. For ``"not reproduced"`` the check passes when
        ``|measured - expected| > tol`` somewhere, i.e. the paper's value is refuted.
    paper_value : the number the paper prints (required for ``"confirmed with a correction"``,
        where ``expected`` is the corrected value).
    se : the standard error of ``measured`` (statistical claims; required for
        ``"not resolved at this scale"``).
    log_scale : compare ``log(measured)`` with ``log(expected)`` (``tol`` in log units, i.e. a
        factor ``exp(tol)`` either way); the record keeps the quantities themselves.
    paper_says : the paper's own words (or printed number) the claim is about, quoted verbatim with
        where they stand; required for ``"not reproduced"``, so that only what the paper states can
        be refuted (tests/test_paper_accounting.py finds each quote in the paper's text).
    """
    source, statement, kind = _declared(claim, source, statement, kind)
    _require(claim, measured=measured, expected=expected, tol=tol)
    rec, msg = _evaluate(claim, source, statement, measured, expected, tol, kind, relative=relative, relation=relation,
                         outcome=outcome, paper_value=paper_value, note=note, se=se, log_scale=log_scale,
                         paper_says=paper_says)
    _keep([rec])
    if msg and not _record_only():
        raise AssertionError(msg)
    return rec


def remaining_error(measured: Any, se: Any, paper: Any, model: Any, *, miss_k: float = 4.0, share: float = 0.25,
                    p: float = FALSE_FAILURE) -> dict[str, np.ndarray]:
    """How much of a paper's error a better model leaves, per measured moment (a "beyond the paper" claim).

    Only the moments where the paper misses by more than ``miss_k`` standard errors are compared
    (``|m - paper| > miss_k * se``): elsewhere there is no error to explain. For them ``left`` is
    the model's log error ``log(m / model)``, and ``allow`` is ``share * |log(m / paper)|`` (the
    model must remove at least ``1 - share`` of the paper's log error) plus ``k * se / m``, the
    measurement's own noise on the log scale with ``k`` the family-wise normal quantile over the
    compared moments at false-failure probability ``p``: the ratio ``|log(m/model)| / |log(m/paper)|``
    alone is dominated by noise where the paper's miss is barely resolved. Inputs are 1-D arrays of
    positive numbers (means of Monte Carlo estimates, with their standard errors ``se``). Returns
    ``index`` (the compared positions), ``left``, ``allow``, ``fraction`` (``|left| / |log(m/paper)|``),
    ``se_log`` (``se / m``) and ``k``."""
    m, se, pa, mo = (np.asarray(v, dtype=float).ravel() for v in (measured, se, paper, model))
    if not (m.shape == se.shape == pa.shape == mo.shape):
        raise ValueError(f"remaining_error: shapes differ ({m.shape}, {se.shape}, {pa.shape}, {mo.shape})")
    idx = np.flatnonzero(np.abs(m - pa) > miss_k * se)
    k = k_family(len(idx), p) if len(idx) else float("nan")
    m_, se_log = m[idx], se[idx] / m[idx]
    left, paper_err = np.log(m_ / mo[idx]), np.abs(np.log(m_ / pa[idx]))
    return {"index": idx, "left": left, "allow": share * paper_err + k * se_log, "fraction": np.abs(left) / paper_err,
            "se_log": se_log, "k": k}


def check_remaining(claim: str, source: str | None = None, statement: str | None = None, rem: dict | None = None, *,
                    what: str, model: str) -> Record:
    """Record a :func:`remaining_error` comparison as one claim: the model's log error in every
    moment where the paper misses, within a quarter of the paper's log error plus the
    measurement's noise. Where the paper misses nowhere by more than 4 s.e. there is no error to
    explain at this precision: the claim is *not resolved at this scale* (a comparison over no
    moments would pass vacuously). Prints one summary line."""
    _require(claim, rem=rem)
    # stated in the text (no source or statement here) or in the call; check() refuses both and neither
    stated = {} if source is None and statement is None else dict(source=source, statement=statement, kind="statistical")
    n = len(rem["left"])
    if n == 0:
        print(f"the paper misses by > 4 s.e. in none of the {what}: nothing for {model} to explain at this precision")
        return check(claim=claim, **stated, measured=0, expected=0, tol=0.0, outcome=NOT_RESOLVED, se=0.0,
                     note=f"no {what} where the paper misses by > 4 s.e. (measured: their number)")
    frac = rem["fraction"]
    print(f"{n} {what} where the paper misses by > 4 s.e.; fraction of its log error left by {model}: "
          f"max {frac.max():.3f}, median {np.median(frac):.3f}")
    return check(claim=claim, **stated, measured=rem["left"], expected=0.0, tol=rem["allow"], se=rem["se_log"],
                 note=f"{n} {what}; tolerance 0.25 |log(measured/paper)| + {rem['k']:.2f} s.e. (log scale, family-wise 1e-3); "
                      f"median remaining fraction {np.median(frac):.3f}")


def welch(a: Any, b: Any) -> tuple[float, float, float]:
    """Difference of means of two independent samples, its standard error and the
    Welch-Satterthwaite degrees of freedom: ``(mean(a) - mean(b), se, df)``."""
    a, b = _as_array(a).ravel(), _as_array(b).ravel()
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1)) if se > 0 else float(a.size + b.size - 2)
    return float(a.mean() - b.mean()), se, float(df)


def check_difference(claim: str, source: str | None = None, statement: str | None = None, a: Any = None, b: Any = None, *,
                     min_effect: float, resolved: bool, outcome: str = "confirmed", p: float = FALSE_FAILURE,
                     established: bool = False, kind: str | None = None,
                     paper_value: Any = None, note: str = "", paper_says: str = "") -> Record:
    """A claim that ``A`` exceeds ``B`` by at least ``min_effect`` (e.g. "residual nets train to a
    higher accuracy than plain nets", with the gap the paper shows), from independent samples
    ``a``, ``b`` (one value per network or run).

    ``measured`` is the difference of the means and ``se`` its Welch standard error; ``k`` is the
    one-sided Student-t quantile (Welch degrees of freedom) for a false-failure probability ``p``.
    ``"confirmed"`` asserts ``diff >= min_effect - k se`` (it fails by chance with probability at
    most ``p`` when the true gap is ``min_effect`` or more); ``"not reproduced"`` asserts the
    complement, ``diff < min_effect - k se`` (the paper's gap is excluded at level ``p``). With
    ``min_effect = 0`` a confirmation says only that the ordering is not significantly reversed:
    give the paper's gap where it shows one. When the
    run is too small for either to mean anything, the chapter passes ``resolved=False`` -- decided
    from the run's sample sizes, never from the profile -- and the record is ``"not resolved at this
    scale"``: the difference and its standard error are kept, nothing is asserted about its sign.

    With ``established=True`` a confirmation asks more: the data must *establish* the gap,
    ``diff >= min_effect + k se`` (a one-sided test that rejects a true gap of ``min_effect`` or less
    at level ``p``), so an effect that vanishes fails. It fails by chance with probability at most
    ``p`` only when the true gap is ``min_effect + 2 k se`` or more: use it where the effect is that
    wide at every seed of a sweep. The record's ``expected`` is then the bar ``min_effect + k se``
    and its ``tolerance`` 0."""
    source, statement, kind = _declared(claim, source, statement, kind, default_kind="reproduction")
    if established and outcome != "confirmed":
        raise ValueError(f"check_difference({claim!r}): established=True sets the bar of a confirmation; "
                         f"outcome {outcome!r} keeps the default test")
    diff, se, df = welch(a, b)
    k = k_sigma(p, two_sided=False, df=df)
    bar, tol = (min_effect + k * se, 0.0) if established else (min_effect, k * se)
    rec, msg = _evaluate(claim, source, statement, diff, bar, tol, kind, relation="ge",
                         outcome=outcome if resolved else NOT_RESOLVED, paper_value=paper_value, note=note, se=se,
                         paper_says=paper_says, extra={"k": k, "df": df, "n": [int(_as_array(a).size), int(_as_array(b).size)],
                                                       "established": established, "min_effect": min_effect})
    _keep([rec])
    if msg and not _record_only():
        raise AssertionError(msg)
    return rec


def check_above_zero(claim: str, source: str | None = None, statement: str | None = None, diffs: Any = None, *,
                     n_se: float = 4.0, kind: str | None = None, note: str = "") -> Record:
    """A claim that one quantity exceeds another, from estimates already reduced to differences
    (paired over the same networks or mini-batches, or independent with the standard errors added
    in quadrature): ``diffs`` is one ``(difference, se)`` pair or a list of them, and every
    difference must lie at least ``n_se`` standard errors above 0: a one-sided test that a true
    difference of 0 passes with probability below 3.2e-5 per difference at ``n_se = 4`` (the normal
    tail). It fails by chance only when the true difference is within a few standard errors of the
    bar, so the chapter uses it where the effect is many standard errors wide (and a sweep over
    seeds shows it). The record keeps the differences as ``measured``, the bar
    ``n_se * se`` as ``expected`` and the standard errors as ``se``; the note ends by naming the bar."""
    _require(claim, diffs=diffs)
    pairs = [diffs] if np.ndim(diffs) == 1 else list(diffs)
    if not pairs or any(len(p) != 2 for p in pairs):
        raise ValueError(f"check_above_zero({claim!r}): diffs must be a (difference, se) pair or a non-empty list of them")
    d = [float(p[0]) for p in pairs]
    e = [float(p[1]) for p in pairs]
    one = np.ndim(diffs) == 1
    bar = f"{'the difference is' if one else 'each difference'} at least {n_se:g} s.e. above 0"
    # "above 0" is strict: with a zero standard error (two identical runs) a difference of exactly 0 must fail
    bars = [n_se * x if n_se * x > 0 else float(np.nextafter(0.0, 1.0)) for x in e]
    return check(claim=claim, source=source, statement=statement, measured=d[0] if one else d,
                 expected=bars[0] if one else bars, se=e[0] if one else e, tol=0.0, relation="ge",
                 kind=kind, note=f"{note}; {bar}" if note else bar)


def check_table(
    claim: str,
    source: str | None = None,
    statement: str | None = None,
    cells: Iterable[str] = (),
    measured: Any = None,
    expected: Any = None,
    tol: Any = None,
    kind: str | None = None,
    *,
    paper_value: Any = None,
    outcome: Any = "confirmed",
    se: Any = None,
    relative: bool = False,
    relation: str = "eq",
    note: Any = "",
    log_scale: bool = False,
    paper_says: Any = "",
) -> list[Record]:
    """Check a reproduced table cell by cell: one ledger record per cell, with id
    ``"<claim>:<cell>"`` and the statement ``"<statement> [<cell>]"``.

    ``measured``, ``expected``, ``tol``, ``paper_value``, ``se``, ``outcome``, ``note`` and
    ``paper_says`` are one value per cell (or one value for all). A table is one claim of many numbers: set its
    statistical tolerances with :func:`k_family` so that the whole table, not each cell, fails by
    chance with probability at most 1e-3. Every cell is recorded before the first failure is raised, so the
    ledger shows the whole table even when a cell fails."""
    source, statement, kind = _declared(claim, source, statement, kind)
    _require(claim, measured=measured, expected=expected, tol=tol)
    cells = list(cells)
    n = len(cells)
    if len(set(cells)) != n:
        raise ValueError(f"claim {claim!r}: cell names must be distinct")

    def per_cell(x: Any, name: str) -> list:
        if isinstance(x, (str, type(None))) or np.ndim(_plain(x)) == 0:
            return [x] * n
        vals = list(x.detach().cpu().tolist() if isinstance(x, torch.Tensor) else x)
        if len(vals) != n:
            raise ValueError(f"claim {claim!r}: {name} has {len(vals)} values for {n} cells")
        return vals

    cols = {k: per_cell(v, k) for k, v in dict(measured=measured, expected=expected, tol=tol, paper_value=paper_value,
                                                se=se, outcome=outcome, note=note, paper_says=paper_says).items()}
    recs, msgs = [], []
    for i, cell in enumerate(cells):
        rec, msg = _evaluate(f"{claim}:{cell}", source, f"{statement} [{cell}]", cols["measured"][i], cols["expected"][i],
                             cols["tol"][i], kind, relative=relative, relation=relation, outcome=cols["outcome"][i],
                             paper_value=cols["paper_value"][i], note=cols["note"][i], se=cols["se"][i],
                             extra={"table": claim, "cell": cell}, log_scale=log_scale,
                             paper_says=cols["paper_says"][i])
        recs.append(rec)
        if msg:
            msgs.append(msg)
    _keep(recs)
    if msgs and not _record_only():
        raise AssertionError(f"{len(msgs)} of {n} cells of {claim!r} failed:\n" + "\n".join(msgs))
    return recs


def records(chapter: str | None = None) -> list[dict]:
    """The records of the current run, or of ``chapter`` read from its ledger file."""
    if chapter is None:
        return list(_state["records"])
    p = ledger_dir() / f"{chapter}.json"
    return json.loads(p.read_text()) if p.exists() else []


def _fmt(x: Any) -> str:
    if isinstance(x, list):
        if len(x) > 4:
            return f"[{_fmt(x[0])}, …, {_fmt(x[-1])}] ({len(x)} values)"
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


_REL = {"ge": "≥ ", "le": "≤ "}


def claim_anchor(chapter: str, claim: str) -> str:
    """The HTML id of a claim's row on the ledger page (letters, digits and dashes only: a table
    cell's id such as ``"table1-gsc:relu/none/gaussian/none/100: GSC"`` has slashes and spaces)."""
    import re

    return "claim-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{chapter}-{claim}").strip("-")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (a bare ``|`` would end the cell)."""
    return text.replace("|", "\\|").replace("\n", " ")


def _measured_cell(r: dict) -> str:
    m = _fmt(r["measured"])
    if r.get("se") is not None and not isinstance(r["se"], list):
        m += f" ± {_fmt(r['se'])}"
    return m


def _expected_cell(r: dict) -> str:
    if r["status"] == NOT_RESOLVED:
        return f"(sign of effect vs {_fmt(r['expected'])})"
    return f"{_REL.get(r.get('relation', 'eq'), '')}{_fmt(r['expected'])}"


def markdown_table(recs: Iterable[dict], columns: str = "chapter") -> str:
    """A Markdown table of ledger records (``columns='chapter'`` for the claims-at-a-glance view,
    ``'ledger'`` for the book-wide ledger page: one table per chapter, under a line naming the
    chapter, its profile and seed, with the tolerance). Both show the status right
    after the id, then the measured quantity (± its standard error where one was recorded), the
    value it is compared with and the paper's printed value side by side; the long texts come last,
    so that what a reader scans for fits the page."""
    recs = [{k: (_cell(v) if isinstance(v, str) else v) for k, v in r.items()} for r in recs]

    def core(r: dict) -> str:        # the cells every view shows, in this order: status, measured, compared with, paper
        paper = _fmt(r["paper_value"]) if r.get("paper_value") is not None else "–"
        return f"**{r['status']}** | {_measured_cell(r)} | {_expected_cell(r)} | {paper}"

    def where(r: dict) -> str:       # the place in the paper, and for a refutation the paper's words it refutes
        q = r.get("paper_says")
        if not q:
            return r["source"]
        if any(ch in q for ch in "\\$*_`"):    # a formula as printed: verbatim, so Markdown does not eat * and _
            return r["source"] + ": “``" + q.replace("`", "'") + "``”"
        return r["source"] + f": *“{q}”*"

    if columns == "chapter":
        head = ("| id | status | measured | compared with | paper | claim | where in the paper |\n"
                "|---|---|---|---|---|---|---|\n")
        rows = [f"| `{r['claim']}` | {core(r)} | {r['statement']} | {where(r)} |" for r in recs]
        return head + "\n".join(r.replace("\n", " ") for r in rows) + "\n"
    parts = []
    for chapter in dict.fromkeys(r["chapter"] for r in recs):
        mine = [r for r in recs if r["chapter"] == chapter]
        runs = ", ".join(sorted({f"{r['profile']} profile, seed {r['seed']}" for r in mine}))
        first_cells = {}
        for r in mine:                 # a reproduced table is named by its id: its first cell's row carries that anchor too
            if r.get("table"):
                first_cells.setdefault(r["table"], r["claim"])

        def anchors(r: dict) -> str:
            ids = [r["claim"]] + [t for t, c in first_cells.items() if c == r["claim"]]
            return "".join(f"<a id=\"{claim_anchor(r['chapter'], i)}\"></a>" for i in ids)

        rows = [
            f"| {anchors(r)}`{r['claim']}` | {core(r)} | "
            f"{_fmt(r['tolerance'])}{' (rel.)' if r.get('relative') else (' (log)' if r.get('log_scale') else '')} | "
            f"{where(r)} |"
            for r in mine
        ]
        parts.append(f"**{chapter}** ({len(mine)} records; {runs})\n\n"
                     "| id | status | measured | compared with | paper | tolerance | where |\n"
                     "|---|---|---|---|---|---|---|\n" + "\n".join(r.replace("\n", " ") for r in rows) + "\n")
    return "\n".join(parts)


NOT_ATTEMPTED = "not attempted"
CONTEXT_ONLY = "context only"


#: the section of a chapter that holds its paper inventory as a Markdown table
INVENTORY_HEADING = "## The paper, item by item"


def inventory_from_source(chapter: str, text: str | None = None) -> dict[str, Any]:
    """The paper inventory a chapter states in its text: the first Markdown table of its section
    :data:`INVENTORY_HEADING`, two columns, ``| paper item | checked by, or why not |``. The second
    column is either the claim ids that check the item, in backticks (```thm1-rate`, `thm1-mode` ``),
    or ``not attempted: <reason>`` or ``context only: <reason>``. Returns the items as
    :func:`inventory` takes them. ``text`` is the chapter's source (read from ``book/`` when not
    given). A ``|`` inside a cell is written ``\\|``."""
    import re

    if text is None:
        text = (ROOT / "book" / f"{chapter}.md").read_text()
    lines = text.splitlines()
    where = f"{chapter}: the paper inventory"
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == INVENTORY_HEADING)
    except StopIteration:
        raise ValueError(f"{where}: no section '{INVENTORY_HEADING}' in the chapter") from None
    table: list[str] = []
    for line in lines[start + 1:]:
        if line.startswith("#") or (table and not line.lstrip().startswith("|")):
            break
        if line.lstrip().startswith("|"):
            table.append(line.strip())
    if len(table) < 3:
        raise ValueError(f"{where}: section '{INVENTORY_HEADING}' has no table '| paper item | checked by, or why not |' "
                         "with at least one row")
    items: dict[str, Any] = {}
    for row in table[2:]:
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        if len(cells) != 2:
            raise ValueError(f"{where}: row {row!r} has {len(cells)} cells, not 2 (paper item, checked by or why not)")
        item, what = cells
        if item in items:
            raise ValueError(f"{where}: item {item!r} is listed twice")
        m = re.fullmatch(r"(not attempted|context only):\s*(.*)", what)
        if m:
            items[item] = (m.group(1), m.group(2))
            continue
        ids = re.findall(r"`([^`]+)`", what)
        rest = re.sub(r"\band\b", "", re.sub(r"`[^`]+`", "", what)).strip(" ,;")
        if not ids or rest:
            raise ValueError(f"{where}: item {item!r}: {what!r} is neither claim ids in backticks nor "
                             "'not attempted: <reason>' nor 'context only: <reason>'")
        items[item] = ids
    return items


def inventory(items: dict[str, Any] | None = None, *, strict: bool = True):
    """The paper inventory of the running chapter: every numbered result of the paper (theorem,
    lemma, proposition, corollary, table, figure, the equations the chapter relies on) with what
    the chapter does with it. Without ``items`` they are read from the chapter's text
    (:func:`inventory_from_source`), where the reader sees them as a table. A value is a claim id or a list of them (the item is *checked* by
    those records; a reproduced table is named by its id), or ``(NOT_ATTEMPTED, reason)`` or
    ``(CONTEXT_ONLY, reason)`` (a definition or a cited result that carries no claim of its own).

    Fails (``ValueError``) when an item has none of these or an empty reason, when a named claim
    has no record in this run (with ``strict``; pass ``strict=False`` when a parameter leaves some
    experiments out on purpose: those items then read "not run with these parameters"), or when a
    record of this run is named by no item -- so a claim cannot be added without saying which of
    the paper's results it checks. Writes ``_build/ledger/<chapter>.inventory.json`` and returns
    the inventory as a Markdown table for display (only its summary line when the table is the
    chapter's own)."""
    from IPython.display import Markdown

    run = _state["run"]
    if run is None:
        raise RuntimeError("lib.inventory() called before lib.setup(): call setup first")
    from_text = items is None
    if from_text:
        items = inventory_from_source(run.chapter)
    have = {r.get("table", r["claim"]) for r in _state["records"]}
    rows, named, errors = [], set(), []
    for item, what in items.items():
        if isinstance(what, tuple):
            if len(what) != 2 or what[0] not in (NOT_ATTEMPTED, CONTEXT_ONLY) or not str(what[1]).strip():
                errors.append(f"{item!r}: use (lib.machinery.checks.NOT_ATTEMPTED, reason) or (lib.machinery.checks.CONTEXT_ONLY, reason), got {what!r}")
                continue
            rows.append({"item": item, "status": what[0], "claims": [], "reason": str(what[1])})
            continue
        ids = [what] if isinstance(what, str) else list(what)
        if not ids or not all(isinstance(c, str) and c for c in ids):
            errors.append(f"{item!r}: name the claim ids that check it, or give a reason it is not attempted")
            continue
        missing = [c for c in ids if c not in have]
        if missing and strict:
            errors.append(f"{item!r}: no record of {', '.join(missing)} in this run")
        named.update(ids)
        rows.append({"item": item, "status": "checked" if not missing else "not run with these parameters",
                     "claims": ids, "reason": ""})
    unlisted = sorted(have - named)
    if unlisted:
        errors.append(f"records named by no inventory item: {', '.join(unlisted)}")
    if errors:
        raise ValueError(f"inventory of {run.chapter}: " + "; ".join(errors))
    d = ledger_dir()
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{run.chapter}.inventory.json").write_text(json.dumps(rows, indent=1))
    counts = {s_: sum(r["status"] == s_ for r in rows) for s_ in ("checked", NOT_ATTEMPTED, CONTEXT_ONLY)}
    summary = f"{counts['checked']} items checked, {counts[NOT_ATTEMPTED]} not attempted, {counts[CONTEXT_ONLY]} context only."
    if from_text:
        unrun = [r["item"] for r in rows if r["status"] not in ("checked", NOT_ATTEMPTED, CONTEXT_ONLY)]
        return Markdown(f"Inventory verified against this run: {summary} Every record of the run is named by an item"
                        + (f"; not run with these parameters: {'; '.join(unrun)}." if unrun else
                           ", and every claim the table names was checked."))
    lines = [summary, "", "| paper item | status | checked by / reason |", "| --- | --- | --- |"]
    for r in rows:
        by = ", ".join(f"`{c}`" for c in r["claims"]) or r["reason"]
        lines.append(f"| {_cell(r['item'])} | {r['status']} | {_cell(by)} |")
    return Markdown("\n".join(lines))


_MARK = {"confirmed": "✓", "confirmed with a correction": "✓ corrected", "not reproduced": "✗ not reproduced",
         NOT_RESOLVED: "? not resolved", "FAILED": "**FAILED**"}


def reproduced_table(tables: Iterable[str], *, sep: str = ": ", row_label: str = "row"):
    """A reproduced table as a reader sees it in the paper: one row per row of the paper's table, one
    column per column, each cell "measured ± s.e. · paper P" and the verdict of its check (✓, ✗, ?).
    Built from the records of :func:`check_table` calls named ``tables`` in the current run, whose
    cell names are ``"<row><sep><column>"`` (a cell name without ``sep`` is one column, "value").
    Returns Markdown (an HTML table in the book, wrapped to the page by its style sheet)."""
    from IPython.display import Markdown

    tables = list(tables)
    recs = [r for r in _state["records"] if r.get("table") in tables]
    if not recs:
        raise RuntimeError(f"no records of {tables} in this run: call lib.check_table first")
    rows: dict[str, dict[str, str]] = {}
    cols: list[str] = []
    for r in recs:
        row, _, col = r["cell"].rpartition(sep) if sep in r["cell"] else (r["cell"], "", "value")
        if col not in cols:
            cols.append(col)
        paper = _fmt(r["paper_value"]) if r.get("paper_value") is not None else _fmt(r["expected"])
        se = r.get("se")
        meas = _fmt(r["measured"]) + (f" ± {se:.2g}" if isinstance(se, (int, float)) else "")
        rows.setdefault(row, {})[col] = f"{meas} · paper {paper} {_MARK.get(r['status'], r['status'])}"
    out = [f"| {row_label} | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    out += [f"| {_cell(row)} | " + " | ".join(_cell(v.get(c, "–")) for c in cols) + " |" for row, v in rows.items()]
    out.append("")
    out.append("Each cell: our measurement (± its standard error) · the paper's printed value; ✓ agrees within "
               "the check's tolerance, ✗ not reproduced, ? not resolved at this scale.")
    return Markdown("\n".join(out))


def inventory_markdown(chapter: str, rows: list[dict]) -> str:
    """The paper inventory of ``chapter`` (rows of ``<chapter>.inventory.json``) as a Markdown
    table for the ledger page: item, status, and the claims that check it as links to their rows
    there (or the reason it is not attempted)."""
    out = ["| paper item | status | checked by / reason |", "| --- | --- | --- |"]
    for r in rows:
        by = ", ".join(f'<a href="#{claim_anchor(chapter, c)}"><code>{c}</code></a>' for c in r["claims"]) or _cell(r["reason"])
        out.append(f"| {_cell(r['item'])} | {r['status']} | {by} |")
    return "\n".join(out) + "\n"


def claims_table(glue_name: str = "claims_table"):
    """Glue the claims-at-a-glance table of the current run for the chapter's top section
    (``{glue:md} claims_table`` with ``:format: myst``) and return it for display."""
    from IPython.display import Markdown

    recs = records()
    if not recs:
        raise RuntimeError("no claim was checked in this run: the claims table would be empty")
    md = Markdown(markdown_table(recs))
    try:
        from myst_nb import glue

        glue(glue_name, md, display=False)
    except ImportError:  # pragma: no cover - myst-nb is a pinned dependency
        pass
    return md
