"""What an amendment changed (issue 15): ledger.records.changes, on small
hand-made decisions and on the published example amendment."""

from __future__ import annotations

import copy

from ledger.records.changes import Change, changed_fields, decision_of, leaves
from tests.recordkit import amendment, decision


def test_identical_versions_change_nothing() -> None:
    d = decision("d-1")
    result = changed_fields(d, copy.deepcopy(d))
    assert result.changed == []
    assert result.unchanged == len(leaves(d)) > 10


def test_a_changed_nested_field_and_its_neighbours() -> None:
    before = {"action": "removal", "account": {"class": "ordinary_user", "follower_bucket": "lt_1k"}, "x": 1}
    after = {"action": "removal", "account": {"class": "head_of_state", "follower_bucket": "lt_1k"}, "x": 1}
    result = changed_fields(before, after)
    assert result.changed == [Change("account.class", "ordinary_user", "head_of_state")]
    assert result.unchanged == 3


def test_added_and_removed_fields_show_as_absent_on_one_side() -> None:
    before = {"a": 1, "gone": "x", "exemption": {"applied": True, "type": "newsworthiness"}}
    after = {"new": [1, 2], "a": 1, "exemption": {"applied": True}}
    result = changed_fields(before, after)
    assert result.changed == [
        Change("new", None, [1, 2]),
        Change("gone", "x", None),
        Change("exemption.type", "newsworthiness", None),
    ]
    assert result.unchanged == 2


def test_lists_are_one_value_and_json_types_are_kept_apart() -> None:
    result = changed_fields(
        {"keywords": ["a", "b"], "violation_found": True, "n": 1, "m": 0},
        {"keywords": ["b", "a"], "violation_found": 1, "n": 1.0, "m": False},
    )
    assert [c.path for c in result.changed] == ["keywords", "violation_found", "m"]
    assert result.unchanged == 1


def test_an_object_replaced_by_an_empty_one_shows() -> None:
    result = changed_fields({"target": {"class": "group"}}, {"target": {}})
    assert result.changed == [Change("target", None, {}), Change("target.class", "group", None)]


def test_the_example_amendment_against_its_decision() -> None:
    """The published amendment reclassifies the head of state's decision:
    it adds a keyword and raises the severity, and restates the rest."""
    amd = amendment("amd-1", "d-1")
    original = decision("d-1", name="decision-head-of-state-newsworthiness")
    result = changed_fields(decision_of(original), decision_of(amd))
    assert result.changed == [
        Change(
            "keywords", ["misinformation_disinformation"], ["misinformation_disinformation", "violation_national_law"]
        ),
        Change("severity", "high", "critical"),
    ]
    assert result.unchanged == 34
    # The envelope (record ID, submission time, ...) is not part of the decision.
    assert "record_id" not in leaves(decision_of(original))
    assert decision_of(amd) is amd["corrected"]
