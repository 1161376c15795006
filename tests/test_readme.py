"""The README and CONTRIBUTING.md name only paths that exist (so a renamed file fails CI)."""

import re
import subprocess
from pathlib import Path

import pytest

from lib.machinery import chapters

ROOT = Path(__file__).resolve().parent.parent
EXT = (".py", ".md", ".yml", ".yaml", ".toml", ".txt", ".bib", ".cfg", ".ini", ".sh")
GENERATED = ("_build", "executed/", "ledger/", "figures/", "html/", "screenshots/", "bench/", "nbval/")
USER = ("data/", "../")    # a local CIFAR copy, the papers' texts beside the checkout: named by the README, not shipped


def named_paths(text: str) -> list[str]:
    """Backticked tokens that look like repository paths: a slash or a file extension, no
    placeholders (``<slug>``), no options, not under the generated ``_build/``."""
    out = []
    for tok in re.findall(r"`([^`\s]+)`", text):
        tok = tok.rstrip(".,;:")
        if not re.fullmatch(r"[\w.\-/]+", tok) or tok.startswith(("-", "http")) or tok.startswith(GENERATED + USER):
            continue
        if "/" in tok or tok.endswith(EXT):
            out.append(tok)
    return sorted(set(out))


def exists(tok: str, tracked: set[str]) -> bool:
    if (ROOT / tok).exists():
        return True
    name = tok.rstrip("/")
    return any(t == name or t.endswith("/" + name) or t.startswith(name + "/") or f"/{name}/" in t for t in tracked)


@pytest.mark.parametrize("doc", ["README.md", "CONTRIBUTING.md"])
def test_every_named_path_exists(doc):
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())
    toks = named_paths((ROOT / doc).read_text())
    assert len(toks) >= 5, f"{doc}: expected to find the paths it names, found {toks}"
    missing = [t for t in toks if not exists(t, tracked)]
    assert not missing, f"{doc} names paths that do not exist in the repository: {missing}"


def test_named_paths_finds_a_missing_file():
    toks = named_paths("see `lib/no_such_module.py`, `book/<slug>.md` and `--seeds`")
    assert toks == ["lib/no_such_module.py"] and not exists(toks[0], set())


# --- quoted timings ----------------------------------------------------------------------------

def recorded_seconds(slug: str) -> set[int]:
    """Every wall time recorded for a chapter in the registry: quick on the 2-core CPU, quick on the
    H200, and the seconds its ``paper_runtime`` states."""
    spec = chapters.get(slug)
    vals = {round(spec.quick_s)} | ({round(spec.gpu_quick_s)} if spec.gpu_quick_s else set())
    return vals | {int(n.replace(",", "")) for n in re.findall(r"(\d[\d,]*) s\b", spec.paper_runtime)}


def stale_timings(text: str) -> list[str]:
    """Statements ``<chapter slug> <N> s`` whose N is none of that chapter's recorded times."""
    out = []
    for slug in chapters.CHAPTERS:
        for m in re.finditer(rf"\b{re.escape(slug)}:?\s+(\d[\d,]*)\s+s\b", text):
            if int(m.group(1).replace(",", "")) not in recorded_seconds(slug):
                out.append(m.group(0))
    return out


def test_readme_timings_match_the_recorded_ones():
    """A chapter time quoted in the README is one recorded in the registry (``quick_s``,
    ``gpu_quick_s``, ``paper_runtime``), and the whole book's quick time is their sum, so a
    re-measured chapter whose README line is not updated fails here."""
    text = (ROOT / "README.md").read_text()
    quoted = sum(len(re.findall(rf"\b{re.escape(s)}:?\s+\d[\d,]*\s+s\b", text)) for s in chapters.CHAPTERS)
    assert quoted >= 2 * len(chapters.CHAPTERS), "the README should quote every chapter's quick time on the CPU and the GPU"
    assert not stale_timings(text), f"README timings not in the registry (lib/machinery/chapters.py): {stale_timings(text)}"
    total = round(sum(chapters.get(s).quick_s for s in chapters.CHAPTERS))
    row = next(line for line in text.splitlines() if line.startswith("| whole book, quick profile"))
    assert f"| {total} s (" in row, f"the whole-book row should say {total} s: {row[:200]}"
    assert chapters.QUICK_TIMED.split(",")[0] in row, f"the whole-book row should give the date {chapters.QUICK_TIMED}"


def test_stale_timing_is_caught():
    assert stale_timings("preliminaries 23 s, noise-stability: 9,999 s") == ["noise-stability: 9,999 s"]
