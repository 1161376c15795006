"""The claims ledger: checks pass, fail loudly, record, and the 'not reproduced' outcome."""

import json

import numpy as np
import pytest

import lib
from lib.machinery import checks


@pytest.fixture()
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_BUILD_DIR", str(tmp_path / "_build"))
    return lib.setup("preliminaries", profile="quick", device="cpu", seed=1,
                     depth=None, width=None, n_nets=None, n_probes=None)


def ledger(tmp_path):
    return json.loads((tmp_path / "_build" / "ledger" / "preliminaries.json").read_text())


def test_setup_resets_the_ledger(run, tmp_path):
    assert ledger(tmp_path) == []


def test_passing_check_is_recorded(run, tmp_path):
    rec = lib.check("c1", "Paper, Eq. 1", "one equals one", measured=1.0 + 1e-12, expected=1.0, tol=1e-9, kind="exact")
    assert rec["passed"] and rec["status"] == "confirmed"
    (r,) = ledger(tmp_path)
    for key in ("chapter", "claim", "source", "statement", "kind", "measured", "expected", "tolerance", "passed", "profile", "seed"):
        assert key in r
    assert r["profile"] == "quick" and r["seed"] == 1 and r["chapter"] == "preliminaries"


def test_failing_check_raises_and_is_recorded(run, tmp_path):
    with pytest.raises(AssertionError, match=r"(?s)claim .c2. failed .*measured 1\.1, expected 1,"):
        lib.check("c2", "Paper, Thm 2", "close to one", measured=[1.0, 1.1], expected=1.0, tol=0.05, kind="statistical")
    (r,) = ledger(tmp_path)
    assert r["passed"] is False and r["status"] == "FAILED"


def test_relative_tolerance(run):
    lib.check("r1", "s", "rel", measured=1001.0, expected=1000.0, tol=2e-3, relative=True, kind="exact")
    with pytest.raises(AssertionError):
        lib.check("r2", "s", "rel", measured=1003.0, expected=1000.0, tol=2e-3, relative=True, kind="exact")


def test_nan_never_passes(run):
    with pytest.raises(AssertionError):
        lib.check("n", "s", "nan", measured=float("nan"), expected=1.0, tol=1e9, kind="exact")


def test_not_reproduced_asserts_the_disagreement(run):
    rec = lib.check("nr", "Paper, Table 1", "paper says 0.1", measured=0.3, expected=0.1, tol=0.05,
                    kind="reproduction", outcome="not reproduced", paper_says="Table 1 prints 0.1")
    assert rec["status"] == "not reproduced" and rec["paper_says"] == "Table 1 prints 0.1"
    assert "Table 1 prints 0.1" in lib.machinery.checks.markdown_table([rec])
    rec2 = lib.check("nr3", "Eq. 50", "x", measured=0.3, expected=0.1, tol=0.05, kind="exact", outcome="not reproduced",
                     paper_says=r"\theta_{k}(\epsilon^{*})")
    assert "``\\theta_{k}(\\epsilon^{*})``" in lib.machinery.checks.markdown_table([rec2])   # a formula stays verbatim
    with pytest.raises(AssertionError, match="NOT reproduced"):
        lib.check("nr2", "Paper", "paper says 0.1", measured=0.11, expected=0.1, tol=0.05,
                  kind="reproduction", outcome="not reproduced", paper_says="0.1")


def test_a_refutation_quotes_the_paper(run):
    """Only what the paper states can be 'not reproduced': without its words the call is refused."""
    for says in ("", "   "):
        with pytest.raises(ValueError, match="paper_says"):
            lib.check("nq", "Paper", "x", measured=0.3, expected=0.1, tol=0.05, kind="reproduction",
                      outcome="not reproduced", paper_says=says)
    with pytest.raises(ValueError, match="paper_says"):
        lib.check_table("tq", "P", "x", ["a", "b"], measured=[1.0, 5.0], expected=1.0, tol=0.1, kind="exact",
                        outcome=["confirmed", "not reproduced"])


def test_correction_needs_paper_value(run):
    with pytest.raises(ValueError, match="paper_value"):
        lib.check("c", "s", "t", measured=1, expected=1, tol=0, kind="exact", outcome="confirmed with a correction")
    rec = lib.check("c", "s", "t", measured=1, expected=1, tol=0, kind="exact",
                    outcome="confirmed with a correction", paper_value=2)
    assert rec["paper_value"] == 2


def test_bad_arguments(run):
    with pytest.raises(ValueError, match="kind"):
        lib.check("k", "s", "t", measured=1, expected=1, tol=0, kind="vibes")
    with pytest.raises(ValueError, match="tolerance"):
        lib.check("k", "s", "t", measured=1, expected=1, tol=-1, kind="exact")


def test_tolerance_helpers():
    assert checks.roundoff_tol("float64", scale=2.0, ops=10) == pytest.approx(10 * 2.0 * np.finfo(np.float64).eps)
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert checks.standard_error(x) == pytest.approx(np.std(x, ddof=1) / 2)
    assert checks.se_tol(x, k=3) == pytest.approx(3 * np.std(x, ddof=1) / 2)
    with pytest.raises(ValueError):
        checks.standard_error([1.0])


def test_markdown_tables(run):
    lib.check("t1", "Paper, Eq. 3", "a claim", measured=[1.0, 2.0], expected=[1.0, 2.0], tol=0, kind="exact")
    md = checks.markdown_table(checks.records())
    assert "| `t1` | **confirmed** | [1, 2] | [1, 2] | – | a claim | Paper, Eq. 3 |" in md
    ledger = checks.markdown_table(checks.records(), columns="ledger")
    assert "`t1` | **confirmed** | [1, 2] | [1, 2] | – | 0 | Paper, Eq. 3 |" in ledger
    assert ledger.startswith("**") and "seed" in ledger.splitlines()[0]


def test_pipes_are_escaped_in_tables(run):
    lib.check("p1", "s", "E||x_l||^2 = 1", measured=1.0, expected=1.0, tol=0, kind="exact")
    row = [l for l in checks.markdown_table(checks.records()).splitlines() if "p1" in l][0]
    assert row.count("|") - row.count("\\|") == 8  # eight cell borders, the statement's pipes escaped


def test_one_sided_relations(run):
    rec = lib.check("g1", "s", "a >= b", measured=0.3, expected=0.0, tol=0.0, relation="ge", kind="statistical")
    assert rec["passed"] and rec["max_error"] == 0.0 and "shortfall" in rec.summary()
    lib.check("g2", "s", "within tol below", measured=-0.1, expected=0.0, tol=0.2, relation="ge", kind="statistical")
    with pytest.raises(AssertionError, match="shortfall"):
        lib.check("g3", "s", "a >= b", measured=-0.3, expected=0.0, tol=0.2, relation="ge", kind="statistical")
    lib.check("l1", "s", "a <= b", measured=[1.0, 2.0], expected=2.0, tol=0.0, relation="le", kind="exact")
    with pytest.raises(AssertionError):
        lib.check("l2", "s", "a <= b", measured=[1.0, 2.5], expected=2.0, tol=0.1, relation="le", kind="exact")
    # a one-sided claim recorded as not reproduced passes only while it fails
    lib.check("n1", "s", "paper: a >= b", measured=-1.0, expected=0.0, tol=0.1, relation="ge",
              outcome="not reproduced", kind="reproduction", paper_says="a >= b")
    with pytest.raises(ValueError, match="relation"):
        lib.check("x", "s", "bad", measured=1.0, expected=1.0, tol=0.0, relation="gt", kind="exact")
    table = lib.machinery.checks.markdown_table(lib.machinery.checks.records(), columns="ledger")
    assert "≥ 0" in table and "≤ 2" in table


def test_k_sigma_false_failure_rate():
    assert checks.k_sigma() == pytest.approx(3.2905, abs=1e-4)
    assert checks.k_sigma(two_sided=False) == pytest.approx(3.0902, abs=1e-4)
    assert checks.k_sigma(df=6) == pytest.approx(5.9588, abs=1e-3)
    assert checks.k_sigma(df=6, two_sided=False) == pytest.approx(5.2076, abs=1e-3)


def test_not_resolved_records_effect_and_se(run):
    rec = lib.check("u1", "s", "A beats B", measured=-0.02, expected=0.0, tol=0.0, relation="ge", se=0.03,
                    kind="reproduction", outcome=checks.NOT_RESOLVED)
    assert rec["passed"] and rec["status"] == checks.NOT_RESOLVED and rec["se"] == 0.03 and rec["measured"] == -0.02
    assert "± 0.03" in rec.summary() and "± 0.03" in checks.markdown_table([rec])
    with pytest.raises(ValueError, match="se"):
        lib.check("u2", "s", "no se", measured=0.1, expected=0.0, tol=0.0, kind="reproduction", outcome=checks.NOT_RESOLVED)
    with pytest.raises(AssertionError, match="finite"):
        lib.check("u3", "s", "nan", measured=float("nan"), expected=0.0, tol=0.0, se=0.1, kind="reproduction",
                  outcome=checks.NOT_RESOLVED)


def test_one_sided_record_keeps_both_quantities(run):
    rec = lib.check("q1", "s", "acc_a >= acc_b", measured=0.8, expected=0.7, tol=0.05, relation="ge", kind="statistical")
    assert rec["measured"] == 0.8 and rec["expected"] == 0.7 and rec["margin"] == pytest.approx(0.1)


def test_check_table_one_record_per_cell(run):
    recs = checks.check_table("tab", "Paper, Table 1", "GSC", ["a", "b", "c"], measured=[1.0, 2.0, 3.1],
                              expected=[1.0, 2.0, 3.0], tol=0.2, paper_value=[1.0, 2.0, 3.0], kind="statistical")
    assert [r["claim"] for r in recs] == ["tab:a", "tab:b", "tab:c"] and recs[2]["paper_value"] == 3.0
    with pytest.raises(AssertionError, match="1 of 3 cells"):
        checks.check_table("bad", "s", "x", ["a", "b", "c"], measured=[1.0, 5.0, 3.0], expected=[1.0, 2.0, 3.0],
                           tol=0.2, kind="statistical")
    # every cell is in the ledger, the failing one too
    ids = {r["claim"]: r["status"] for r in checks.records()}
    assert ids["bad:a"] == "confirmed" and ids["bad:b"] == "FAILED" and ids["bad:c"] == "confirmed"
    with pytest.raises(ValueError, match="2 values for 3 cells"):
        checks.check_table("len", "s", "x", ["a", "b", "c"], measured=[1.0, 2.0], expected=1.0, tol=0.1, kind="exact")


def test_check_difference(run):
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.1, 10), rng.normal(0.5, 0.1, 10)
    rec = checks.check_difference("d1", "s", "A > B by 0.3", a, b, min_effect=0.3, resolved=True)
    diff, se, df = checks.welch(a, b)
    assert rec["measured"] == pytest.approx(diff) and rec["se"] == pytest.approx(se) and 9 <= df <= 18
    assert rec["tolerance"] == pytest.approx(checks.k_sigma(two_sided=False, df=df) * se)
    with pytest.raises(AssertionError):  # a gap of 1.0 is excluded by these samples
        checks.check_difference("d2", "s", "A > B by 1", a, b, min_effect=1.0, resolved=True)
    checks.check_difference("d3", "s", "A > B by 1", a, b, min_effect=1.0, resolved=True, outcome="not reproduced",
                            paper_says="A beats B by 1")
    rec = checks.check_difference("d4", "s", "A > B by 1", a, b, min_effect=1.0, resolved=False)
    assert rec["status"] == checks.NOT_RESOLVED and rec["passed"]


def test_check_difference_established_needs_the_gap_shown_not_only_not_excluded(run):
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.1, 10), rng.normal(0.5, 0.1, 10)
    diff, se, df = checks.welch(a, b)
    k = checks.k_sigma(two_sided=False, df=df)
    rec = checks.check_difference("e1", "s", "A > B", a, b, min_effect=0.0, resolved=True, established=True)
    assert rec["passed"] and rec["expected"] == pytest.approx(k * se) and rec["tolerance"] == 0.0
    # a vanishing effect: B against itself shifted by nothing passes the default test (not reversed) ...
    assert checks.check_difference("e2", "s", "A > B", b + 1e-9, b, min_effect=0.0, resolved=True)["passed"]
    # ... but is not established
    with pytest.raises(AssertionError):
        checks.check_difference("e3", "s", "A > B", b + 1e-9, b, min_effect=0.0, resolved=True, established=True)
    # a gap established above 0 but not above min_effect + k se
    with pytest.raises(AssertionError):
        checks.check_difference("e4", "s", "A > B by 0.45", a, b, min_effect=diff - k * se / 2, resolved=True, established=True)
    with pytest.raises(ValueError, match="established"):
        checks.check_difference("e5", "s", "A > B", a, b, min_effect=0.0, resolved=True, established=True,
                                outcome="not reproduced", paper_says="A beats B")


def test_check_above_zero(run):
    rec = checks.check_above_zero("z1", "s", "A > B", (0.5, 0.1), kind="statistical")
    assert rec["passed"] and rec["measured"] == 0.5 and rec["expected"] == pytest.approx(0.4) and rec["se"] == 0.1
    rec = checks.check_above_zero("z2", "s", "A > B at each depth", [(0.5, 0.1), (1.0, 0.2)], kind="statistical")
    assert rec["measured"] == [0.5, 1.0] and rec["expected"] == pytest.approx([0.4, 0.8])
    with pytest.raises(AssertionError):          # 3.9 s.e. is not enough
        checks.check_above_zero("z3", "s", "A > B", [(0.5, 0.1), (0.39, 0.1)], kind="statistical")
    with pytest.raises(ValueError, match="pair"):
        checks.check_above_zero("z4", "s", "A > B", [], kind="statistical")
    with pytest.raises(AssertionError):          # two identical runs: a difference of exactly 0 is not above 0
        checks.check_above_zero("z5", "s", "A > B", (0.0, 0.0), kind="statistical")
    assert checks.check_above_zero("z6", "s", "A > B", (0.3, 0.0), kind="statistical")["passed"]   # exact and positive


def test_log_scale_compares_ratios_and_keeps_the_quantities(run):
    rec = lib.check("lg", "P", "x", measured=110.0, expected=100.0, tol=0.1, kind="statistical", log_scale=True)
    assert rec["passed"] and rec["measured"] == 110.0 and rec["expected"] == 100.0 and rec["log_scale"]
    assert abs(rec["max_error"] - np.log(1.1)) < 1e-12
    with pytest.raises(AssertionError, match="log-scale tolerance"):
        lib.check("lg2", "P", "x", measured=90.0, expected=100.0, tol=0.1, kind="statistical", log_scale=True)
    with pytest.raises(AssertionError):                      # a non-positive measurement never agrees on the log scale
        lib.check("lg3", "P", "x", measured=-1.0, expected=100.0, tol=10.0, kind="statistical", log_scale=True)
    with pytest.raises(ValueError, match="positive expected"):
        lib.check("lg4", "P", "x", measured=1.0, expected=0.0, tol=1.0, kind="statistical", log_scale=True)


def test_k_family_keeps_the_claim_level():
    from scipy import stats

    assert lib.k_family(1) == pytest.approx(lib.k_sigma())
    k = lib.k_family(50, df=7)
    assert 2 * 50 * stats.t.sf(k, 7) == pytest.approx(1e-3)   # 50 two-sided cells at 1e-3 / 50 each
    assert lib.k_family(50) > lib.k_sigma()
    with pytest.raises(ValueError):
        lib.k_family(0)


def test_check_table_per_cell_notes_and_outcomes(run):
    recs = lib.check_table("t", "P", "x", ["a", "b"], measured=[1.0, 5.0], expected=[1.0, 1.0], tol=0.1, kind="exact",
                           outcome=["confirmed", "not reproduced"], note=["na", "nb"], paper_says=["", "b is 1"])
    assert [r["note"] for r in recs] == ["na", "nb"] and [r["status"] for r in recs] == ["confirmed", "not reproduced"]


def test_inventory_accounts_for_every_item_and_every_record(run, tmp_path):
    lib.check(claim="a", source="Prop. 1", statement="s", measured=1.0, expected=1.0, tol=0.0, kind="exact")
    lib.check_table(claim="tab", source="Table 1", statement="s", cells=["x", "y"], measured=[1.0, 2.0], expected=[1.0, 2.0],
                    tol=0.0, kind="exact")
    NA, CTX = lib.machinery.checks.NOT_ATTEMPTED, lib.machinery.checks.CONTEXT_ONLY
    md = lib.inventory({"Prop. 1": "a", "Table 1": ["tab"], "Fig. 9": (NA, "needs ImageNet"), "Def. 1": (CTX, "a definition")})
    assert "2 items checked, 1 not attempted, 1 context only" in md.data and "`tab`" in md.data
    rows = json.loads((tmp_path / "_build" / "ledger" / "preliminaries.inventory.json").read_text())
    assert [r["status"] for r in rows] == ["checked", "checked", NA, CTX]
    with pytest.raises(ValueError, match="named by no inventory item: tab"):          # a record nobody accounts for
        lib.inventory({"Prop. 1": "a"})
    with pytest.raises(ValueError, match="no record of b"):                          # a claim that did not run
        lib.inventory({"Prop. 1": ["a", "b"], "Table 1": "tab"})
    assert "not run with these parameters" in lib.inventory({"Prop. 1": ["a", "b"], "Table 1": "tab"}, strict=False).data
    with pytest.raises(ValueError, match="reason"):                                  # no status, or an empty reason
        lib.inventory({"Prop. 1": "a", "Table 1": "tab", "Fig. 9": (NA, " ")})
    with pytest.raises(ValueError, match="claim ids"):
        lib.inventory({"Prop. 1": "a", "Table 1": "tab", "Fig. 9": []})


def test_remaining_error_compares_only_resolved_misses_and_allows_noise():
    # moments 0 and 2: the paper misses by far more than 4 s.e.; moment 1: within noise, not compared
    m, se, paper = np.array([2.0, 1.0, 4.0]), np.array([0.01, 0.1, 0.04]), np.array([1.0, 1.05, 2.0])
    good = lib.remaining_error(m, se, paper, model=np.array([2.02, 9.9, 3.9]))
    assert list(good["index"]) == [0, 2]
    assert np.all(np.abs(good["left"]) <= good["allow"])
    assert np.allclose(good["fraction"], np.abs(np.log(m[[0, 2]] / np.array([2.02, 3.9]))) / np.log(2))
    # a model that leaves half the paper's error fails, even with the noise allowance
    bad = lib.remaining_error(m, se, paper, model=m / np.sqrt(2))
    assert np.all(np.abs(bad["left"]) > bad["allow"])


def test_check_remaining_is_not_resolved_when_the_paper_misses_nowhere(run):
    m, se, paper = np.array([2.0, 1.0, 4.0]), np.array([0.01, 0.1, 0.04]), np.array([1.0, 1.05, 2.0])
    rec = lib.check_remaining("a", "P", "x", lib.remaining_error(m, se, paper, model=np.array([2.02, 9.9, 3.9])),
                              what="moments", model="the model")
    assert rec["status"] == "confirmed" and rec["passed"] and len(rec["measured"]) == 2
    with pytest.raises(AssertionError, match="claim 'b'"):                        # half the paper's error left
        lib.check_remaining("b", "P", "x", lib.remaining_error(m, se, paper, model=m / np.sqrt(2)), what="moments", model="m")
    # the paper within 4 s.e. everywhere: a comparison over no moments would pass vacuously
    rec = lib.check_remaining("c", "P", "x", lib.remaining_error(m, se, m + se, model=m), what="moments", model="m")
    assert rec["status"] == lib.NOT_RESOLVED and rec["measured"] == 0


def test_reproduced_table_lays_cells_out_as_the_paper_does(run):
    lib.check_table("tab", "P", "x", ["r1: A", "r1: B", "r2: A"], measured=[1.0, 2.5, 3.0], expected=[1.0, 2.0, 3.0],
                    tol=0.1, kind="statistical", se=0.01234, outcome=["confirmed", "not reproduced", "confirmed"],
                    paper_says=["", "B is 2", ""])
    md = lib.reproduced_table(["tab"], row_label="row").data.splitlines()
    assert md[0] == "| row | A | B |"
    assert md[2] == "| r1 | 1 ± 0.012 · paper 1 ✓ | 2.5 ± 0.012 · paper 2 ✗ not reproduced |"
    assert md[3] == "| r2 | 3 ± 0.012 · paper 3 ✓ | – |"
    with pytest.raises(RuntimeError, match="no records"):
        lib.reproduced_table(["nothing"])


INV_TEXT = """# T

## The paper, item by item

Prose before the table.

| paper item | checked by, or why not |
| --- | --- |
| Prop. 1 | `a` |
| Table 1 (with \\| a bar) | `tab`, `a` and `b` |
| Fig. 9 | not attempted: needs ImageNet |
| Def. 1 | context only: a definition |

## Next section

| not | part of it |
| --- | --- |
| x | `y` |
"""


def test_inventory_from_source_reads_the_table_of_its_section():
    from lib.machinery.checks import inventory_from_source

    got = inventory_from_source("x", INV_TEXT)
    assert got == {"Prop. 1": ["a"], "Table 1 (with | a bar)": ["tab", "a", "b"], "Fig. 9": ("not attempted", "needs ImageNet"),
                   "Def. 1": ("context only", "a definition")}
    for bad, match in ((INV_TEXT.replace("| Prop. 1 | `a` |", "| Prop. 1 | a |"), "neither claim ids"),
                       (INV_TEXT.replace("| Prop. 1 | `a` |", "| Prop. 1 | `a` maybe |"), "neither claim ids"),
                       (INV_TEXT.replace("| Prop. 1 | `a` |", "| Prop. 1 | `a` | extra |"), "3 cells"),
                       (INV_TEXT.replace("| Def. 1 |", "| Prop. 1 |"), "listed twice"),
                       (INV_TEXT.replace("## The paper, item by item", "## Inventory"), "no section"),
                       ("## The paper, item by item\n\nno table\n", "no table")):
        with pytest.raises(ValueError, match=match):
            inventory_from_source("x", bad)


def test_every_chapter_states_its_inventory_as_a_table():
    from lib.machinery import chapters
    from lib.machinery.checks import inventory_from_source

    for slug in chapters.CHAPTERS:
        if slug != "preliminaries":
            assert len(inventory_from_source(slug)) >= 10, slug


def test_inventory_without_items_reads_the_chapter_and_shows_only_its_summary(run, monkeypatch):
    from lib.machinery import checks

    lib.check(claim="a", source="Prop. 1", statement="s", measured=1.0, expected=1.0, tol=0.0, kind="exact")
    monkeypatch.setattr(checks, "inventory_from_source", lambda ch: {"Prop. 1": ["a"], "Def. 1": ("context only", "d")})
    md = lib.inventory().data
    assert md.startswith("Inventory verified against this run: 1 items checked, 0 not attempted, 1 context only.")
    assert "| paper item |" not in md
    monkeypatch.setattr(checks, "inventory_from_source", lambda ch: {"Prop. 1": ["a", "b"]})
    assert "not run with these parameters: Prop. 1" in lib.inventory(strict=False).data
