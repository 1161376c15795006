"""The errata page: every chapter's "Where the paper is loose or wrong" section, gathered.

Each chapter has one section whose heading starts with ``## Where the`` and is preceded by the
label ``(<slug>-errata)=``; its items are Markdown bullets (``* ...``, continuation lines
indented). An item names the checks that support it in backticks (```eq34-degeneracy```, or a
prefix with ``*`` such as ```eq34-*```); :func:`page_markdown` links each to its row of the
ledger page (``ledger.html#claim-<slug>-<claim>``) when the chapter's ledger holds it, and
fails when an item names a check that the chapter did not record -- so the errata cannot cite a
check that does not exist.
"""

from __future__ import annotations

import json
import re

from . import chapters
from .checks import ROOT, claim_anchor, ledger_dir

BOOK = ROOT / "book"


def section_items(slug: str) -> list[str]:
    """The bullets of chapter ``slug``'s errata section, each as one Markdown string."""
    text = (BOOK / f"{slug}.md").read_text()
    label = f"({slug}-errata)="
    start = text.find(label)
    if start < 0:
        raise ValueError(f"chapter {slug!r} has no errata section: add `{label}` above its '## Where the ...' heading")
    body = text[start:].split("\n", 2)
    if not body[1].startswith("## Where the"):
        raise ValueError(f"chapter {slug!r}: the line after {label} must be a '## Where the ...' heading")
    section = body[2].split("\n## ", 1)[0]
    items: list[str] = []
    for line in section.splitlines():
        if line.startswith("* "):
            items.append(line[2:].strip())
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    if not items:
        raise ValueError(f"chapter {slug!r}: its errata section has no bullet items")
    return items


def claims_named(item: str, claims: list[str]) -> list[str]:
    """Ledger claim ids named in backticks in ``item`` (``prefix-*`` expands to every match)."""
    out: list[str] = []
    for tok in re.findall(r"(?<!})`([A-Za-z0-9][A-Za-z0-9_.*-]*)`", item):   # not {role}`target`
        if tok.endswith("*"):
            hits = [c for c in claims if c.startswith(tok[:-1])]
        elif tok in claims:
            hits = [tok]
        else:                                   # a reproduced table, named by its id: its first cell's row
            hits = [c for c in claims if c.startswith(tok + ":")][:1]
        if not hits and re.fullmatch(r"[a-z0-9]+(-[a-z0-9*]+)+", tok):
            raise ValueError(f"errata item names check `{tok}`, which the chapter's ledger does not hold: {item[:80]}...")
        out += [h for h in hits if h not in out]
    return out


def page_markdown() -> str:
    """The whole errata page body as MyST Markdown."""
    parts = []
    for slug, spec in chapters.CHAPTERS.items():
        path = ledger_dir() / f"{slug}.json"
        if not path.exists():
            raise RuntimeError(f"no ledger for chapter {slug!r}: run `python -m lib run` first")
        claims = [r["claim"] for r in json.loads(path.read_text())]
        parts.append(f"**{{doc}}`{spec.title} <{slug}>`** (in the chapter: {{ref}}`{slug}-errata`)\n")
        for item in section_items(slug):
            named = claims_named(item, claims)
            links = ", ".join(f'<a href="ledger.html#{claim_anchor(slug, c)}">{c.split(":", 1)[0]}</a>' for c in named)
            parts.append(f"* {item}" + (f" *Ledger:* {links}." if links else ""))
        parts.append("")
    return "\n".join(parts) + "\n"
