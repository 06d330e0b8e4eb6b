"""The person column of the feed's index (``index_rows.person_qid``): the
Wikidata item of the account's public subject, a decision's own or an
amendment's correction's, never a protection record's target's."""

from __future__ import annotations

from ledger.records.index_rows import index_row
from tests.recordkit import amendment, appeal, coverage, decision

ITEM = "Q4115189"  # the head-of-state example's item (docs/examples)


def test_a_decision_indexes_its_accounts_item() -> None:
    rec = decision("d-1", name="decision-head-of-state-newsworthiness")
    assert rec["account"]["public_subject"]["wikidata_qid"] == ITEM
    assert index_row(0, 0, rec)["qid"] == ITEM


def test_a_public_account_without_an_item_and_an_ordinary_user_index_none() -> None:
    legislator = decision("d-1", name="decision-legislator-removal")
    assert "wikidata_qid" not in legislator["account"]["public_subject"]
    assert index_row(0, 0, legislator)["qid"] is None
    assert index_row(0, 0, decision("d-2", name="decision-ordinary-user"))["qid"] is None


def test_an_amendment_indexes_its_corrections_item() -> None:
    fixed = amendment("m-1", "d-1")
    assert index_row(0, 0, fixed)["qid"] == fixed["corrected"]["account"]["public_subject"]["wikidata_qid"]
    fixed["corrected"]["account"]["public_subject"]["wikidata_qid"] = "Q42"
    assert index_row(0, 0, fixed)["qid"] == "Q42"


def test_appeals_and_coverage_statements_carry_no_item() -> None:
    """An appeal names no account: the feed finds it through its decision."""
    assert index_row(0, 0, appeal("a-1", "d-1"))["qid"] is None
    assert index_row(0, 0, coverage("c-1"))["qid"] is None


def test_a_public_targets_item_is_not_indexed() -> None:
    """A threat aimed at a person with an item, posted by an ordinary user:
    the person view counts what was done to a person's own accounts."""
    target = {"class": "candidate", "public_subject": {"display_name": "A Candidate", "wikidata_qid": "Q42"}}
    threat = decision("d-1", name="decision-ordinary-user", target=target)
    assert index_row(0, 0, threat)["qid"] is None
    # Posted by a public account with an item of its own: that item, not the target's.
    spat = decision("d-2", name="decision-head-of-state-newsworthiness", target=target)
    assert index_row(0, 0, spat)["qid"] == ITEM
    assert "Q42" not in {str(v) for v in index_row(0, 0, spat).values()}
