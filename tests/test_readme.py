"""The README and CONTRIBUTING.md name only paths that exist (so a renamed file fails CI)."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXT = (".py", ".md", ".yml", ".yaml", ".toml", ".txt", ".bib", ".cfg", ".ini", ".sh")
GENERATED = ("_build", "executed/", "ledger/", "figures/", "html/", "screenshots/", "bench/", "nbval/")
USER = ("data/",)          # where the user puts a local CIFAR copy: named by the README, not shipped


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
