"""Claims stated in a chapter's text (lib.machinery.claims) and their checks."""

import pytest

import lib
from lib.machinery import checks, claims

BLOCK = "```{admonition} Claim thm-x · §3, Thm 1 · exact\n:class: claim\nthe mode is floor(p b/(1+b)) + 1\nat every p\n```\n"


def test_parse_reads_id_source_kind_and_the_statement():
    d = claims.parse("text\n\n" + BLOCK + "\nmore text\n")
    assert d == {"thm-x": claims.Declaration("thm-x", "§3, Thm 1", "exact", "the mode is floor(p b/(1+b)) + 1 at every p")}
    assert claims.parse(claims.block(d["thm-x"], width=20)) == d          # the writer and the reader agree


@pytest.mark.parametrize("text, match", [
    (BLOCK + "\n" + BLOCK, "stated twice"),
    (BLOCK.replace("exact", "exactly"), "kind 'exactly'"),
    (BLOCK.replace(":class: claim\n", ""), "do not parse"),
    ("```{admonition} Claim thm-x · §3 · exact\n:class: claim\n\n```\n", "no statement"),
    (BLOCK.replace("Claim thm-x", "Claim `thm-x`"), "do not parse"),     # backticks end a fence's info string
])
def test_parse_rejects_malformed_blocks(text, match):
    with pytest.raises(ValueError, match=match):
        claims.parse(text)


def test_lift_moves_literal_statements_and_leaves_computed_ones():
    src = ("Text.\n\n```{code-cell} ipython3\nx = 1\n"
           'lib.check(claim="a", source="Eq. 1", statement="x is one", measured=x, expected=1, tol=0, kind="exact")\n'
           'lib.check(claim=f"b-{x}", source="Eq. 2", statement="computed id", measured=x, expected=1, tol=0, kind="exact")\n'
           "for i in range(2):\n"
           '    lib.check(claim="c", source="Eq. 3", statement="in a loop", measured=i, expected=i, tol=0, kind="exact")\n'
           "```\n")
    new, n = claims.lift(src)
    assert n == 1
    assert claims.parse(new) == {"a": claims.Declaration("a", "Eq. 1", "exact", "x is one")}
    assert 'lib.check(claim="a", measured=x, expected=1, tol=0)' in new
    assert 'claim=f"b-{x}", source="Eq. 2"' in new and 'claim="c", source="Eq. 3"' in new
    assert new.index("Claim a ·") < new.index("```{code-cell}")                 # stated before the cell that checks it


@pytest.fixture()
def chapter_text(tmp_path, monkeypatch):
    """A run of 'preliminaries' whose chapter source is a temporary file."""
    monkeypatch.setenv("BOOK_BUILD_DIR", str(tmp_path / "_build"))
    monkeypatch.setattr(checks, "ROOT", tmp_path)
    (tmp_path / "book").mkdir()
    lib.setup("preliminaries", profile="quick", device="cpu", seed=1, depth=None, width=None, n_nets=None, n_probes=None)
    return tmp_path / "book" / "preliminaries.md"


def test_a_check_takes_a_stated_claim_from_the_text(chapter_text):
    chapter_text.write_text(BLOCK)
    rec = lib.check(claim="thm-x", measured=1.0, expected=1.0, tol=0.0)
    assert (rec["source"], rec["statement"], rec["kind"]) == ("§3, Thm 1", "the mode is floor(p b/(1+b)) + 1 at every p", "exact")
    with pytest.raises(ValueError, match="stated in the text"):            # said twice
        lib.check(claim="thm-x", statement="another wording", measured=1.0, expected=1.0, tol=0.0)
    with pytest.raises(ValueError, match="no source, statement, kind given"):   # said nowhere
        lib.check(claim="thm-y", measured=1.0, expected=1.0, tol=0.0)
    with pytest.raises(AssertionError):                                      # and the check still fails when it should
        lib.check(claim="thm-x", measured=1.5, expected=1.0, tol=0.1)


def test_check_difference_and_table_take_stated_claims(chapter_text):
    chapter_text.write_text(BLOCK.replace("thm-x", "diff").replace("exact", "reproduction")
                            + BLOCK.replace("thm-x", "tab").replace("exact", "statistical"))
    rec = lib.check_difference(claim="diff", a=[2.0, 2.1, 1.9], b=[1.0, 1.1, 0.9], min_effect=0.5, resolved=True)
    assert rec["kind"] == "reproduction" and rec["statement"].startswith("the mode")
    recs = lib.check_table(claim="tab", cells=["u", "v"], measured=[1.0, 2.0], expected=[1.0, 2.0], tol=0.1)
    assert [r["statement"] for r in recs] == ["the mode is floor(p b/(1+b)) + 1 at every p [u]",
                                              "the mode is floor(p b/(1+b)) + 1 at every p [v]"]


def test_lift_keeps_values_written_over_several_lines_in_place():
    src = ("```{code-cell} ipython3\n"
           'lib.check(claim="a", source="Eq. 1", statement="x is one", measured=1, expected=1, tol=0, kind="exact",\n'
           '          note="first part "\n'
           '               "second part")\n'
           "```\n")
    new, n = claims.lift(src)
    code = new.split("```{code-cell} ipython3\n", 1)[1].rsplit("```", 1)[0]
    first, second = code.splitlines()
    assert n == 1 and first == 'lib.check(claim="a", measured=1, expected=1, tol=0, note="first part "'
    assert second == " " * first.index('"first part') + '"second part")'      # still under the value's first line
    compile(code, "cell", "exec")
