"""Claims stated in a chapter's text.

A chapter states a claim where it discusses it, as a MyST admonition of class ``claim``::

    ```{admonition} Claim thm1-rate · §3, Thm 1 · exact
    :class: claim
    |argmax_r epsilon_r / p - beta/(1+beta)| <= 1/p at every p up to p_max, both normalisations
    ```

The title carries the claim's id, where in the paper it stands and its kind (exact, statistical,
asymptotic, reproduction); the body is the statement. The book shows it as a boxed claim in the
text, and the code cell after it checks it with ``lib.check(claim="thm1-rate", measured=...,
expected=..., tol=...)``: the check takes source, statement and kind from the text, so a claim is
stated once, in prose, and the ledger records exactly what the reader read. A claim whose
statement depends on the run (an f-string) is still stated in the check itself.
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

KINDS = ("exact", "statistical", "asymptotic", "reproduction")
_BLOCK = re.compile(r"^```\{admonition\} Claim (?P<claim>[^\s`·]+) · (?P<source>[^`\n]+?) · (?P<kind>[a-z]+)[ \t]*\n"
                    r":class: claim[ \t]*\n(?P<body>.*?)\n```[ \t]*$", re.M | re.S)
_TITLE = re.compile(r"^```\{admonition\} Claim\b", re.M)


@dataclass(frozen=True)
class Declaration:
    """One claim as the chapter states it."""

    claim: str
    source: str
    kind: str
    statement: str


def parse(text: str) -> dict[str, Declaration]:
    """Every claim block of a chapter's MyST source, by id. A block that looks like a claim but
    does not parse (a missing ``:class: claim``, an unknown kind), a duplicate id, or an empty
    statement is a ``ValueError`` naming it."""
    out: dict[str, Declaration] = {}
    for m in _BLOCK.finditer(text):
        if m.group("kind") not in KINDS:
            raise ValueError(f"claim {m.group('claim')!r}: kind {m.group('kind')!r} is not one of {', '.join(KINDS)}")
        statement = " ".join(line.strip() for line in m.group("body").splitlines() if line.strip())
        if not statement:
            raise ValueError(f"claim {m.group('claim')!r} has no statement")
        if m.group("claim") in out:
            raise ValueError(f"claim {m.group('claim')!r} is stated twice")
        out[m.group("claim")] = Declaration(m.group("claim"), m.group("source"), m.group("kind"), statement)
    n_titles = len(_TITLE.findall(text))
    if n_titles != len(out):
        raise ValueError(f"{n_titles - len(out)} claim block(s) do not parse: the form is "
                         "```{admonition} Claim <id> · <source> · <kind> (no backticks: a fence's info string may "
                         "not contain any), then :class: claim, then the statement")
    return out


_cache: dict[str, tuple[float, dict[str, Declaration]]] = {}


def declarations(path: str | os.PathLike) -> dict[str, Declaration]:
    """The claims stated in the chapter source at ``path`` (re-read when the file changes; none
    when there is no such file)."""
    p = Path(path)
    if not p.exists():
        return {}
    key, mtime = str(p), p.stat().st_mtime
    if key not in _cache or _cache[key][0] != mtime:
        _cache[key] = (mtime, parse(p.read_text()))
    return _cache[key][1]


def block(d: Declaration, width: int = 100) -> str:
    """The MyST source of a claim block (the statement wrapped at ``width``; :func:`parse` reads back
    exactly ``d``)."""
    lines = textwrap.wrap(d.statement, width=width, break_long_words=False, break_on_hyphens=False)
    text = f"```{{admonition}} Claim {d.claim} · {d.source} · {d.kind}\n:class: claim\n" + "\n".join(lines) + "\n```\n"
    back = parse(text)
    if back.get(d.claim) != d:
        raise ValueError(f"claim {d.claim!r} does not survive the round trip through the text: {back}")
    return text


_CELL = re.compile(r"(```\{code-cell\} ipython3\n)(.*?)(\n```\n)", re.S)
_LIFTABLE = {"check": None, "check_table": None, "check_difference": "reproduction"}


def _shift(seg: str, delta: int) -> str:
    """Move the continuation lines of a value written over several lines by ``delta`` columns, so
    that they keep their place relative to the value's first line."""
    lines = seg.split("\n")
    out = [lines[0]]
    for ln in lines[1:]:
        out.append(" " * delta + ln if delta >= 0 else ln[min(-delta, len(ln) - len(ln.lstrip(" "))):])
    return "\n".join(out)


def _format_call(func: str, items: list[tuple[str, str, int]], col: int, width: int = 120) -> str:
    """``lib.<func>(arg=value, ...)`` starting at column ``col``, filled to ``width``; ``items`` are
    ``(name, source of the value, the value's original column)``."""
    head = f"lib.{func}("
    indent = " " * (col + len(head))
    lines, cur = [], head
    for i, (name, seg, old_col) in enumerate(items):
        end = ", " if i < len(items) - 1 else ")"
        first = f"{name}={seg.split(chr(10), 1)[0]}{end}"
        if cur != head and cur.strip() and col + len(cur) + len(first.rstrip()) > width:
            lines.append(cur.rstrip())
            cur = indent
        new_col = (col if not lines else 0) + len(cur) + len(name) + 1
        piece = f"{name}={_shift(seg, new_col - old_col)}{end}"
        cur += piece
        if "\n" in piece:                      # a value written over several lines keeps its own layout
            done, cur = cur.rsplit("\n", 1)
            lines.append(done)
            cur = cur if cur.strip() else indent
    lines.append(cur)
    return "\n".join(lines)


def lift(text: str, width: int = 100) -> tuple[str, int]:
    """Move the source, statement and kind of every check whose claim, source and statement are
    literal strings out of the chapter's code cells and into claim blocks in the text just before
    the cell (the authoring step behind "a claim is stated once, in prose"). Only top-level
    ``lib.check``/``lib.check_table``/``lib.check_difference`` calls with keyword arguments are
    moved; a claim computed at run time stays where it is. Returns the new text and the number of
    claims moved."""
    import ast

    moved = 0

    def one(m: re.Match) -> str:
        nonlocal moved
        head, body, tail = m.group(1), m.group(2), m.group(3)
        opts = re.match(r"((?::[\w-]+:.*\n)*)", body).group(1)
        code = body[len(opts):]
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return m.group(0)
        lines = code.split("\n")
        offsets = [0]
        for ln in lines:
            offsets.append(offsets[-1] + len(ln) + 1)
        edits, blocks = [], []
        for stmt in tree.body:
            call = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
                    and call.func.value.id == "lib" and call.func.attr in _LIFTABLE and not call.args
                    and all(k.arg is not None for k in call.keywords)):
                continue
            kw = {k.arg: k.value for k in call.keywords}
            lit = {n: kw[n].value for n in ("claim", "source", "statement", "kind")
                   if isinstance(kw.get(n), ast.Constant) and isinstance(kw[n].value, str)}
            kind = lit.get("kind", _LIFTABLE[call.func.attr] if "kind" not in kw else None)
            if not {"claim", "source", "statement"} <= set(lit) or kind is None:
                continue
            d = Declaration(lit["claim"], lit["source"], kind, lit["statement"])
            try:
                blocks.append(block(d, width))
            except ValueError:
                continue
            items = [(k.arg, ast.get_source_segment(code, k.value), k.value.col_offset) for k in call.keywords
                     if k.arg not in ("source", "statement", "kind")]
            start = offsets[call.lineno - 1] + call.col_offset
            end = offsets[call.end_lineno - 1] + call.end_col_offset
            edits.append((start, end, _format_call(call.func.attr, items, call.col_offset)))
            moved += 1
        for s, e, new in sorted(edits, reverse=True):
            code = code[:s] + new + code[e:]
        return "\n".join(blocks) + ("\n" if blocks else "") + head + opts + code + tail

    return _CELL.sub(one, text), moved
