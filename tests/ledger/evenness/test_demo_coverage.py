"""The demo's coverage statements hold exactly the two planted problems (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime

from api.record_validator import validate_record
from demo.coverage import CONTRADICTED_PLATFORM, GAP_PLATFORM, statements
from demo.generate import generate
from ledger.evenness.coverage import compare, in_force, logged_of
from ledger.evenness.facts import FactSet, facts_from_entries
from ledger.records.coverage import parse_statement
from ledger.records.entries import canonical, entry_bytes


def test_exactly_the_planted_gap_and_contradiction() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    demo = generate("2026", 600, now)
    made = statements(demo, "2026-12-01T00:00:00Z")
    assert all(validate_record(s, now) == [] for s in made)
    entries = [(i, entry_bytes(0, "record", canonical(it.record), it.signature)) for i, it in enumerate(demo.items)]
    fs = FactSet.of(facts_from_entries(entries, len(entries)))
    parsed = [parse_statement(s, len(entries) + i) for i, s in enumerate(made)]
    found = compare(in_force(parsed), logged_of(fs.current()))
    wrong = {(c["platform"], c["status"]) for c in found if c["status"] != "complete"}
    assert wrong == {(GAP_PLATFORM, "incomplete"), (CONTRADICTED_PLATFORM, "contradicted")}
    assert sum(c["status"] == "incomplete" for c in found) == 1
    assert sum(c["status"] == "contradicted" for c in found) == 1
    (gap,) = [c for c in found if c["status"] == "incomplete"]
    assert gap["account_class"] in ("head_of_state", "legislator", "candidate", "government_official", "party_account")
    assert all(x["exempted"] for x in gap["cells"] if x["status"] == "incomplete")
