"""lib.machinery.errata: the errata page is generated from the chapters and cannot cite a missing check."""

import pytest

from lib.machinery import chapters
from lib.machinery import errata


@pytest.mark.parametrize("slug", list(chapters.CHAPTERS))
def test_every_chapter_has_an_errata_section(slug):
    items = errata.section_items(slug)
    assert items and all(len(i) > 20 for i in items)


def test_claims_named_expands_prefixes_and_ignores_roles():
    claims = ["eq34-degeneracy", "eq34-columns-identical", "hvp-exact"]
    item = "see {prf:ref}`sk-estimator` and checks `eq34-*`, `hvp-exact`; code `x.y` is not a claim"
    assert errata.claims_named(item, claims) == ["eq34-degeneracy", "eq34-columns-identical", "hvp-exact"]
    with pytest.raises(ValueError, match="does not hold"):
        errata.claims_named("check `no-such-claim`", claims)


def test_missing_section_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "x.md").write_text("# X\n\n## Where the paper is loose\n\n* item\n")
    monkeypatch.setattr(errata, "BOOK", tmp_path)
    with pytest.raises(ValueError, match=r"\(x-errata\)="):
        errata.section_items("x")


def test_a_table_is_named_by_its_id_and_anchors_are_clean():
    from lib.machinery.checks import claim_anchor

    claims = ["table1-gsc:relu/none/gaussian/none/100: GSC", "table1-gsc:tanh/layer/gaussian/none/100: GSC", "x-y"]
    assert errata.claims_named("checks `table1-gsc` and `x-y`", claims) == [claims[0], "x-y"]
    with pytest.raises(ValueError, match="does not hold"):
        errata.claims_named("check `table1-std`", claims)
    a = claim_anchor("dilution-theorem", claims[0])
    assert a == "claim-dilution-theorem-table1-gsc-relu-none-gaussian-none-100-GSC"
