"""lib's layers (issue 16, DESIGN.md "lib conventions"): imports point one way only,
machinery -> experiments -> nets -> theory, and no module imports itself back through a cycle.

The imports are read from the source with ``ast`` (function-level imports included, since a lazy
import is still a dependency), so a new module or a new import is checked without being listed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "lib"
#: a layer may import its own layer and the layers after it in this list, never one before it
LAYERS = ("machinery", "experiments", "nets", "theory")
#: the package's facade (``import lib``) and the CLI entry point stand above every layer
FACADE = {"lib", "lib.__main__"}


def module_name(path: Path, root: Path = LIB) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(name: str, source: str, is_package: bool = False) -> set[str]:
    """The lib modules ``name`` imports (absolute dotted names), at any nesting level."""
    pkg = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name == "lib" or a.name.startswith("lib.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not (mod == "lib" or mod.startswith("lib.")):
                continue
            out.add(mod)
            # ``from lib.nets import models`` imports the module lib.nets.models
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def layer(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def violations(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Every upward import (a layer importing a layer before it in :data:`LAYERS`), every module
    outside a layer other than the facade, and every import cycle among the modules of
    ``sources`` (name -> (source, is_package))."""
    known = set(sources)
    graph = {n: {m for m in imports(n, s, p) if m in known and m != n} for n, (s, p) in sources.items()}
    bad = []
    for n, deps in sorted(graph.items()):
        if n in FACADE:
            continue
        ln = layer(n)
        if ln is None:
            bad.append(f"{n} is in no layer (put it in lib/{'|'.join(LAYERS)}/)")
            continue
        for m in sorted(deps):
            lm = layer(m)
            if m in FACADE or lm is None:
                if m != f"lib.{ln}":
                    bad.append(f"{n} imports {m}, which is above every layer")
            elif LAYERS.index(lm) < LAYERS.index(ln):
                bad.append(f"{n} ({ln}) imports {m} ({lm}): imports must point down ({' -> '.join(LAYERS)})")
    # cycles: depth-first search over module -> module edges (a package's own __init__ excluded,
    # since importing lib.nets.models necessarily runs lib.nets)
    edges = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                bad.append("import cycle: " + " -> ".join(stack[stack.index(m):] + [n, m]) if m in stack
                           else f"import cycle: {n} -> {m}")
            elif m not in state:
                visit(m, stack + [n])
        state[n] = 2

    for n in sorted(edges):
        if n not in state and n not in FACADE:
            visit(n, [])
    return bad


def lib_sources() -> dict[str, tuple[str, bool]]:
    return {module_name(p): (p.read_text(), p.name == "__init__.py") for p in LIB.rglob("*.py")}


def test_lib_has_the_four_layers_and_nothing_loose():
    found = {p.name for p in LIB.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert found == set(LAYERS), f"lib's subpackages are {sorted(found)}, expected {LAYERS}"
    loose = sorted(p.name for p in LIB.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert not loose, f"modules outside the layers: {loose}"


def test_imports_point_down_and_there_are_no_cycles():
    bad = violations(lib_sources())
    assert not bad, "\n".join(bad)


def test_theory_imports_nothing_else_from_lib():
    srcs = lib_sources()
    for n, (s, p) in srcs.items():
        if layer(n) == "theory":
            outside = sorted(m for m in imports(n, s, p) if layer(m) != "theory" and m != "lib.theory")
            assert not outside, f"{n} imports {outside}"


@pytest.mark.parametrize("sources, expected", [
    # theory importing nets: upward
    ({"lib.theory.a": ("from ..nets import b\n", False), "lib.nets.b": ("", False)}, "imports must point down"),
    # a lazy import inside a function counts as well
    ({"lib.nets.b": ("def f():\n    from ..machinery.c import x\n", False), "lib.machinery.c": ("", False)},
     "imports must point down"),
    # two machinery modules importing each other (the old chapters <-> runtime circle)
    ({"lib.machinery.chapters": ("from .runtime import Knob\n", False),
      "lib.machinery.runtime": ("def setup():\n    from . import chapters\n", False)}, "import cycle"),
    # a module in no layer
    ({"lib.loose": ("", False)}, "in no layer"),
    # the facade imported from inside a layer
    ({"lib": ("", True), "lib.theory.a": ("import lib\n", False)}, "above every layer"),
])
def test_the_layer_check_finds_each_kind_of_violation(sources, expected):
    bad = violations(sources)
    assert any(expected in b for b in bad), bad


def test_the_layer_check_accepts_a_clean_graph():
    ok = {"lib": ("from .machinery import runtime\n", True), "lib.machinery.runtime": ("from ..theory.a import f\n", False),
          "lib.theory.a": ("from .b import g\n", False), "lib.theory.b": ("", False), "lib.theory": ("", True),
          "lib.machinery": ("", True)}
    assert violations(ok) == []
