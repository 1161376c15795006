"""lib.machinery.mutations: the declared mutations exist, perturb what they say, and turn a failing check into
a recorded FAILED (not an exception) so that every claim of a mutated chapter is evaluated."""

import importlib
import re

import numpy as np
import pytest
import torch

import lib
from lib.machinery import chapters
from lib.machinery import mutations
from lib.machinery.checks import ROOT


@pytest.mark.parametrize("name", sorted(mutations.MUTATIONS))
def test_declared_mutations_point_at_real_functions_and_claims(name):
    m = mutations.MUTATIONS[name]
    assert m.chapter in chapters.CHAPTERS and m.size.strip() and m.catches
    mod, attr = m.target.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(mod), attr))
    src = (ROOT / "book" / f"{m.chapter}.md").read_text()
    for c in m.catches:      # the claim is checked in that chapter (a literal id, or an f-string prefix of a table)
        assert re.search(rf'claim=f?"{re.escape(c)}["{{]', src), f"{name}: {m.chapter} checks no claim {c!r}"


def test_apply_perturbs_the_module_attribute_and_undo_restores_it():
    from lib.theory import dilution as D

    r, k = np.array([1.5, 2.0]), np.array([0.5, 3.0])
    original = D.diluted_rate
    exact = original(r, k)
    mutations.apply("diluted-rate-2pct")
    try:
        np.testing.assert_allclose(D.diluted_rate(r, k), 1.02 * exact)
        # lib's own calls go through the module attribute too: the Monte Carlo compares with the mutated rate
        kw = dict(skips=("identity",), powers=(3.0,), scales=(0.3,), d=8, n=800, n_batch=8)
        mutated = D.random_block_rates(generator=torch.Generator().manual_seed(0), **kw)
        clean = D.random_block_rates(generator=torch.Generator().manual_seed(0), rate=original, **kw)
        for a, b in zip(mutated, clean):     # same networks; the prediction compared with is 2% higher
            assert a.r_f == b.r_f and abs((b.dev - a.dev) - 0.02 * (b.r_f - b.dev)) < 0.02 * 0.05 * b.r_f
    finally:
        mutations.undo("diluted-rate-2pct")
    np.testing.assert_allclose(D.diluted_rate(r, k), exact)
    mutations.apply("diluted-rate-first-order")
    try:
        np.testing.assert_allclose(D.diluted_rate(r, k), D.diluted_rate_first_order(r, k))
    finally:
        mutations.undo("diluted-rate-first-order")


def test_unknown_mutation_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(mutations.ENV, "no-such-thing")
    with pytest.raises(ValueError, match="not a known mutation"):
        mutations.active()
    monkeypatch.delenv(mutations.ENV)
    assert mutations.active() is None


def test_a_failing_check_is_recorded_not_raised_under_a_mutation(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_BUILD_DIR", str(tmp_path / "_build"))
    lib.setup("preliminaries", profile="quick", device="cpu", seed=1, depth=None, width=None, n_nets=None, n_probes=None)
    with pytest.raises(AssertionError):
        lib.check("a", "s", "x", measured=2.0, expected=1.0, tol=0.1, kind="exact")
    monkeypatch.setenv(mutations.ENV, "qm-norm-5pct")
    rec = lib.check("b", "s", "x", measured=2.0, expected=1.0, tol=0.1, kind="exact")
    recs = lib.check_table("t", "s", "x", ["c1"], measured=[2.0], expected=1.0, tol=0.1, kind="exact")
    assert rec["status"] == "FAILED" and recs[0]["status"] == "FAILED"
    m = mutations.MUTATIONS["qm-norm-5pct"]
    assert mutations.verdicts(m, [{"claim": "qm-random-direction", "status": "FAILED"}]) == {"qm-random-direction": "caught"}
    assert mutations.verdicts(m, [{"claim": "qm-random-direction", "status": "confirmed"}]) == {"qm-random-direction": "missed"}
    assert mutations.verdicts(m, []) == {"qm-random-direction": "not reached"}


def test_report_markdown_escapes_table_bars():
    rep = {"seed": 0, "declared": 1, "caught": 1, "mutations": [
        {"mutation": "phi-1pct", "chapter": "noise-stability", "target": "lib.theory.dominant_flow.phi",
         "size": "a 1% error in P[|X| > |Y|]", "verdicts": {"phi-closed-form": "caught"}, "all_red": ["phi-closed-form"]}]}
    row = mutations.markdown(rep).splitlines()[-1]
    assert row.count(" | ") == 6 and "P[\\|X\\| > \\|Y\\|]" in row
