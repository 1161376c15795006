"""Claim checks and the claims ledger (DESIGN.md, "Checks and the claims ledger").

Every claim a chapter makes is checked by one call to :func:`check`. The call compares a
measured value with an expected one under a tolerance whose justification the chapter states
next to it, appends a record to ``_build/ledger/<chapter>.json`` and raises an
``AssertionError`` with a readable message when the claim fails, so that papermill, nbval and CI
fail with it.

Three outcomes can be recorded, and each is itself a check that can fail:

* ``"confirmed"`` -- the measurement agrees with the paper's value within ``tol``;
* ``"confirmed with a correction"`` -- the measurement agrees with a *corrected* value derived in
  the chapter (``expected``); the paper's own value goes in ``paper_value``;
* ``"not reproduced"`` -- the measurement *disagrees* with the paper's value by more than ``tol``;
  the check fails if a later run suddenly agrees, so the finding stays honest.

Tolerance helpers: :func:`roundoff_tol` (float64/float32 round-off for exact identities) and
:func:`se_tol` (k standard errors from Monte-Carlo samples).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

OUTCOMES = ("confirmed", "confirmed with a correction", "not reproduced")
KINDS = ("exact", "statistical", "asymptotic", "reproduction")

ROOT = Path(__file__).resolve().parent.parent


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
        tol = self["tolerance"]
        tol = max(tol) if isinstance(tol, list) else tol
        rel = " (relative)" if self.get("relative") else ""
        relation = self.get("relation", "eq")
        if relation != "eq":
            sign = ">=" if relation == "ge" else "<="
            return (f"{self['status']}: {self['claim']} ({self['kind']}): measured {sign} expected "
                    f"{'-' if relation == 'ge' else '+'} tolerance{rel}, worst shortfall {self['max_error']:.3g} "
                    f"(0 means it holds), tolerance up to {tol:.3g}")
        return (f"{self['status']}: {self['claim']} ({self['kind']}): max {bar}measured - expected{bar} = "
                f"{self['max_error']:.3g}, tolerance{rel} up to {tol:.3g}")

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


def check(
    claim: str,
    source: str,
    statement: str,
    measured: Any,
    expected: Any,
    tol: Any,
    kind: str,
    *,
    relative: bool = False,
    relation: str = "eq",
    outcome: str = "confirmed",
    paper_value: Any = None,
    note: str = "",
) -> Record:
    """Check one claim, record it in the ledger, raise ``AssertionError`` if it fails.

    Parameters
    ----------
    claim : short id, unique within the chapter (``"thm1-covariance"``).
    source : where in the paper (``"Balduzzi et al. 2017, Thm 1(b)"``).
    statement : one line saying what is claimed.
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
    paper_value : the paper's own value when ``expected`` is a corrected one.
    """
    run = _state["run"]
    if run is None:
        raise RuntimeError("lib.check() called before lib.setup(): call setup first")
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: use one of {KINDS}")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome={outcome!r}: use one of {OUTCOMES}")
    if outcome == "confirmed with a correction" and paper_value is None:
        raise ValueError("outcome 'confirmed with a correction' needs the paper's own value in paper_value")
    if relation not in ("eq", "ge", "le"):
        raise ValueError(f"relation={relation!r}: use 'eq', 'ge' or 'le'")
    m, e, t = _as_array(measured), _as_array(expected), _as_array(tol)
    if np.any(t < 0) or np.any(~np.isfinite(t)):
        raise ValueError(f"claim {claim!r}: tolerance must be finite and non-negative, got {tol!r}")
    if relation == "eq":
        err = np.abs(m - e)
    elif relation == "ge":
        err = np.maximum(e - m, 0.0)
    else:
        err = np.maximum(m - e, 0.0)
    bound = t * np.abs(e) if relative else t
    finite = np.all(np.isfinite(m))
    within = bool(finite and np.all(err <= bound))
    passed = within if outcome != "not reproduced" else bool(finite and not within)
    rec = Record({
        "chapter": run.chapter,
        "claim": claim,
        "source": source,
        "statement": statement,
        "kind": kind,
        "measured": _plain(measured),
        "expected": _plain(expected),
        "tolerance": _plain(tol),
        "relative": relative,
        "relation": relation,
        "max_error": float(np.max(err)) if err.size else 0.0,
        "passed": passed,
        "status": outcome if passed else "FAILED",
        "paper_value": _plain(paper_value),
        "note": note,
        "profile": run.profile,
        "seed": run.seed,
    })
    records = [r for r in _state["records"] if r["claim"] != claim] + [rec]
    _state["records"] = records
    _write(run.chapter, records)
    if not passed:
        worst = int(np.argmax(err - bound)) if err.size > 1 else 0
        what = "relative " if relative else ""
        if outcome == "not reproduced":
            raise AssertionError(
                f"claim {claim!r} ({source}) was recorded as NOT reproduced, but the measurement now "
                f"agrees with the paper's value within the {what}tolerance (max |error| {float(np.max(err)):.3g}). "
                "Re-examine the finding."
            )
        raise AssertionError(
            f"claim {claim!r} failed ({source}): {statement}\n"
            f"  measured {float(np.broadcast_to(m, err.shape).ravel()[worst]):.10g}, expected "
            f"{'' if relation == 'eq' else ('>= ' if relation == 'ge' else '<= ')}"
            f"{float(np.broadcast_to(e, err.shape).ravel()[worst]):.10g}, "
            f"{'|error|' if relation == 'eq' else 'shortfall'} = {err.ravel()[worst]:.3g} > "
            f"{what}tolerance {np.broadcast_to(bound, err.shape).ravel()[worst]:.3g}"
            f" (worst of {err.size} compared value(s); finite: {finite})"
        )
    return rec


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


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (a bare ``|`` would end the cell)."""
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(recs: Iterable[dict], columns: str = "chapter") -> str:
    """A Markdown table of ledger records (``columns='chapter'`` for the claims-at-a-glance view,
    ``'ledger'`` for the book-wide ledger page with measured/expected/tolerance)."""
    recs = [{k: (_cell(v) if isinstance(v, str) else v) for k, v in r.items()} for r in recs]
    if columns == "chapter":
        head = "| id | where in the paper | claim | kind | status |\n|---|---|---|---|---|\n"
        rows = [f"| `{r['claim']}` | {r['source']} | {r['statement']} | {r['kind']} | **{r['status']}** |" for r in recs]
    else:
        head = ("| chapter | id | where | kind | measured | expected | tolerance | status | profile | seed |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n")
        rows = [
            f"| {r['chapter']} | <a id=\"claim-{r['chapter']}-{r['claim']}\"></a>`{r['claim']}` | {r['source']} | "
            f"{r['kind']} | {_fmt(r['measured'])} | "
            f"{_REL.get(r.get('relation', 'eq'), '')}{_fmt(r['expected'])} | {_fmt(r['tolerance'])}{' (rel.)' if r.get('relative') else ''} | "
            f"**{r['status']}** | {r['profile']} | {r['seed']} |"
            for r in recs
        ]
    return head + "\n".join(r.replace("\n", " ") for r in rows) + "\n"


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
