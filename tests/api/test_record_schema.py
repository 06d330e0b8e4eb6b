"""Record schema version 1: the JSON Schema and the ledger's validator say the same thing.

Every example in docs/examples validates under both; every negative case, a
small mutation of an example, is rejected by both at the path asserted; the
few checks JSON Schema cannot state are pinned as the ledger's only; and
hypothesis checks that validate_record never raises and never accepts what
the JSON Schema rejects.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from api import record_enums
from api.record_validator import validate_record

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs/schema/record-v1.schema.json").read_text())
EXAMPLES = {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "docs/examples").glob("*.json"))}
NOW = datetime(2026, 11, 1, tzinfo=UTC)
DELETE = object()


def _format_checker() -> FormatChecker:
    checker = FormatChecker()
    if "date-time" not in checker.checkers:
        # jsonschema checks date-time only when rfc3339-validator is installed.
        # The schema's pattern already fixes the form; the stdlib need only
        # confirm that the day exists.
        checker.checks("date-time", raises=ValueError)(
            lambda s: not isinstance(s, str) or date.fromisoformat(s[:10]) is not None
        )
    return checker


VALIDATOR = Draft202012Validator(SCHEMA, format_checker=_format_checker())


def mutate(name: str, *edits: tuple[str, Any]) -> dict[str, Any]:
    """A copy of example ``name`` with each ``(path, value)`` set, or deleted for ``DELETE``."""
    record: dict[str, Any] = copy.deepcopy(EXAMPLES[name])
    for path, value in edits:
        *parents, last = path.split("/")
        node: Any = record
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is DELETE:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = copy.deepcopy(value)  # never alias EXAMPLES
    return record


def paths(record: object, now: datetime = NOW) -> list[str]:
    return [e["path"] for e in validate_record(record, now)]


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert "date" in VALIDATOR.format_checker.checkers


def test_examples_are_the_documented_set() -> None:
    assert set(EXAMPLES) == {
        "decision-head-of-state-newsworthiness",
        "decision-legislator-removal",
        "decision-ordinary-user",
        "decision-threat-election-worker",
        "decision-illegal-court-order",
        "appeal-reversed",
        "amendment-late-classification",
    }


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_is_valid(name: str) -> None:
    record = EXAMPLES[name]
    assert [e.message for e in VALIDATOR.iter_errors(record)] == []
    assert validate_record(record, NOW) == []


def test_signing_vector_record_is_valid() -> None:
    """docs/signing.md copies an ordinary user's example (the threat against an election
    worker): the copy follows the rules too."""
    text = (ROOT / "docs/signing.md").read_text(encoding="utf-8")
    [block] = re.findall(r"^```json record\n(.*?)\n```$", text, re.M | re.S)
    record = json.loads(block)
    assert record["account"]["class"] == "ordinary_user"
    assert validate_record(record, NOW) == []
    assert VALIDATOR.is_valid(record)


HEAD, LEGIS, ORD, COURT, THREAT = (
    "decision-head-of-state-newsworthiness",
    "decision-legislator-removal",
    "decision-ordinary-user",
    "decision-illegal-court-order",
    "decision-threat-election-worker",
)
APPEAL, AMEND = "appeal-reversed", "amendment-late-classification"
# The decision fields of the ordinary user's example, as an amendment's corrected.
ORD_BODY = {
    k: v
    for k, v in EXAMPLES[ORD].items()
    if k not in {"type", "schema_version", "platform", "record_id", "submitted_at", "refs", "dsa_sor_uuid"}
}

# (example, edits, the one path validate_record reports); rejected by both.
NEGATIVE = {
    "unknown top-level field": (HEAD, [("colour", "blue")], "colour"),
    "unknown nested field": (HEAD, [("account/nickname", "x")], "account/nickname"),
    "unknown field in corrected": (AMEND, [("corrected/colour", "blue")], "corrected/colour"),
    "envelope field inside corrected": (AMEND, [("corrected/record_id", "x")], "corrected/record_id"),
    "unknown type": (HEAD, [("type", "statement")], "type"),
    "schema_version 2": (HEAD, [("schema_version", 2)], "schema_version"),
    "schema_version true": (HEAD, [("schema_version", True)], "schema_version"),
    "schema_version string": (HEAD, [("schema_version", "1")], "schema_version"),
    "platform upper-case": (HEAD, [("platform", "Example-Social")], "platform"),
    "record_id with space": (HEAD, [("record_id", "dec 101")], "record_id"),
    "record_id too long": (HEAD, [("record_id", "d" * 129)], "record_id"),
    "submitted_at with offset": (HEAD, [("submitted_at", "2026-03-03T17:25:07+01:00")], "submitted_at"),
    "submitted_at naive": (HEAD, [("submitted_at", "2026-03-03T16:25:07")], "submitted_at"),
    "submitted_at lower-case z": (HEAD, [("submitted_at", "2026-03-03T16:25:07z")], "submitted_at"),
    "flagged_at on 30 February": (HEAD, [("flagged_at", "2026-02-30T10:00:00Z")], "flagged_at"),
    "dsa_sor_uuid upper-case": (HEAD, [("dsa_sor_uuid", "3F2B8C1E-7D4A-4E9B-9C61-2A5D8F0E4B17")], "dsa_sor_uuid"),
    "refs on a decision": (HEAD, [("refs", {"record_id": "dec-2026-000001"})], "refs"),
    "appeal without refs": (APPEAL, [("refs", DELETE)], "refs"),
    "amendment without refs": (AMEND, [("refs", DELETE)], "refs"),
    "rule not an object": (HEAD, [("rule", "civic-integrity")], "rule"),
    "rule url over 2048": (HEAD, [("rule/url", "https://social.example/" + "a" * 2026)], "rule/url"),
    "rule url http": (HEAD, [("rule/url", "http://social.example/policies")], "rule/url"),
    "illegal without legal_reference": (COURT, [("legal_reference", DELETE)], "legal_reference"),
    "both without legal_reference": (
        COURT,
        [("decision_ground", "both"), ("legal_reference", DELETE)],
        "legal_reference",
    ),
    "terms with legal_reference": (HEAD, [("legal_reference", "StGB 86a")], "legal_reference"),
    "category with DSA prefix": (HEAD, [("category", "STATEMENT_CATEGORY_VIOLENCE")], "category"),
    "keywords repeated": (ORD, [("keywords", ["phishing", "phishing"])], "keywords"),
    "keywords empty": (ORD, [("keywords", [])], "keywords"),
    "keyword unknown": (ORD, [("keywords/0", "spam")], "keywords/0"),
    "severity unknown": (HEAD, [("severity", "severe")], "severity"),
    "violation_found string": (HEAD, [("violation_found", "true")], "violation_found"),
    "violation_found 1": (HEAD, [("violation_found", 1)], "violation_found"),
    "automated_detection null": (HEAD, [("automated_detection", None)], "automated_detection"),
    "action unknown": (HEAD, [("action", "shadow_ban")], "action"),
    "suspension without end": (ORD, [("action_ends_at", DELETE)], "action_ends_at"),
    "removal with an end": (LEGIS, [("action_ends_at", "2026-05-01T00:00:00Z")], "action_ends_at"),
    "violation without exemption": (HEAD, [("exemption", DELETE)], "exemption"),
    "exemption without violation": (LEGIS, [("violation_found", False)], "exemption"),
    "exemption applied without type": (HEAD, [("exemption/type", DELETE)], "exemption/type"),
    "exemption not applied with type": (LEGIS, [("exemption/type", "newsworthiness")], "exemption/type"),
    "exemption not applied with policy": (
        LEGIS,
        [("exemption/policy", {"id": "exemptions/newsworthiness", "version": "1"})],
        "exemption/policy",
    ),
    "exemption applied string": (HEAD, [("exemption/applied", "yes")], "exemption/applied"),
    "account class unknown": (HEAD, [("account/class", "monarch")], "account/class"),
    "public class without class_basis": (HEAD, [("account/class_basis", DELETE)], "account/class_basis"),
    "public class without public_subject": (HEAD, [("account/public_subject", DELETE)], "account/public_subject"),
    "ordinary user with class_basis": (ORD, [("account/class_basis", "self_declared")], "account/class_basis"),
    "ordinary user with public_subject": (
        ORD,
        [("account/public_subject", {"display_name": "Someone"})],
        "account/public_subject",
    ),
    "ordinary user above 10k+": (ORD, [("account/follower_bucket", ">1M")], "account/follower_bucket"),
    "public class with 10k+": (HEAD, [("account/follower_bucket", "10k+")], "account/follower_bucket"),
    "subject_key too short": (HEAD, [("account/subject_key", "abc123")], "account/subject_key"),
    "subject_key with dot": (HEAD, [("account/subject_key", "hS3kP9vQ2xWm.Z7rT4yL")], "account/subject_key"),
    "wikidata_qid leading zero": (
        HEAD,
        [("account/public_subject/wikidata_qid", "Q0115189")],
        "account/public_subject/wikidata_qid",
    ),
    "jurisdiction lower-case": (
        COURT,
        [("account/public_subject/jurisdiction", "de")],
        "account/public_subject/jurisdiction",
    ),
    "jurisdiction UK (not ISO)": (
        COURT,
        [("account/public_subject/jurisdiction", "UK")],
        "account/public_subject/jurisdiction",
    ),
    "display_name empty": (HEAD, [("account/public_subject/display_name", "")], "account/public_subject/display_name"),
    "ordinary user with content ref": (ORD, [("content/ref", "https://video.example/v/1")], "content/ref"),
    "ordinary user with statement": (ORD, [("statement", "Phishing link in description.")], "statement"),
    "ordinary user posted date-time": (ORD, [("content/posted_at", "2026-05-10T12:00:00Z")], "content/posted_at"),
    "public class posted date": (HEAD, [("content/posted_at", "2026-03-02")], "content/posted_at"),
    "content type with DSA prefix": (HEAD, [("content/types/0", "CONTENT_TYPE_TEXT")], "content/types/0"),
    "content types empty": (HEAD, [("content/types", [])], "content/types"),
    "language upper-case": (HEAD, [("content/language", "EN")], "content/language"),
    "content ref with space": (HEAD, [("content/ref", "https://social.example/a b")], "content/ref"),
    "GLOBAL not alone": (HEAD, [("territorial_scope", ["GLOBAL", "DE"])], "territorial_scope"),
    "territorial_scope empty": (HEAD, [("territorial_scope", [])], "territorial_scope"),
    "territorial_scope repeated": (COURT, [("territorial_scope", ["DE", "DE"])], "territorial_scope"),
    "territorial_scope EU": (COURT, [("territorial_scope", ["EU"])], "territorial_scope/0"),
    "statement over 5000": (HEAD, [("statement", "x" * 5001)], "statement"),
    # Ordinary users: no field can hold a name, a handle or an address.
    "ordinary subject_key the old free form": (
        ORD,
        [("account/subject_key", "u_7fQ2bN9xK4mR1vT8wY3zL6cH0dJ5gS2pA9eU4iO7")],
        "account/subject_key",
    ),
    "ordinary subject_key upper-case hex": (ORD, [("account/subject_key", "A" * 64)], "account/subject_key"),
    "ordinary subject_key 63 hex digits": (ORD, [("account/subject_key", "a" * 63)], "account/subject_key"),
    "ordinary subject_key a handle": (ORD, [("account/subject_key", "jane_doe_berlin_1990")], "account/subject_key"),
    "ordinary legal_reference in prose": (
        ORD,
        [("decision_ground", "illegal"), ("legal_reference", "Germany, StGB § 130; reported by Jane Doe, 1 Main St")],
        "legal_reference",
    ),
    "ordinary legal_reference with a name after the citation": (
        ORD,
        [("decision_ground", "both"), ("legal_reference", "DSA Art. 16 Jane Doe")],
        "legal_reference",
    ),
    "ordinary legal_reference over 80": (
        ORD,
        [("decision_ground", "both"), ("legal_reference", "; ".join(["DE StGB § 130"] * 6))],
        "legal_reference",
    ),
    "ordinary rule version a word": (ORD, [("rule/version", "jane.doe")], "rule/version"),
    "ordinary rule version with a suffix": (ORD, [("rule/version", "v4.2-beta")], "rule/version"),
    "ordinary rule url with a query": (ORD, [("rule/url", "https://video.example/rules/phishing?u=jane")], "rule/url"),
    "ordinary rule url with a fragment": (ORD, [("rule/url", "https://video.example/rules/phishing#jane")], "rule/url"),
    "ordinary exemption policy version a word": (
        ORD,
        [("exemption", {"applied": True, "type": "other", "policy": {"id": "exemptions/other", "version": "jane"}})],
        "exemption/policy/version",
    ),
    "ordinary record_id a handle": (ORD, [("record_id", "jane.doe")], "record_id"),
    "ordinary record_id a name after digits": (ORD, [("record_id", "2026-jane")], "record_id"),
    "ordinary record_id two tags": (ORD, [("record_id", "ann.lee.1")], "record_id"),
    "appeal record_id a name": (APPEAL, [("record_id", "apl-jane-doe")], "record_id"),
    "amendment of an ordinary user, record_id a name": (
        AMEND,
        [("corrected", ORD_BODY), ("record_id", "amd-jane.doe")],
        "record_id",
    ),
    "amendment of an ordinary user, subject_key a handle": (
        AMEND,
        [("corrected", ORD_BODY), ("corrected/account/subject_key", "jane_doe_berlin_1990")],
        "corrected/account/subject_key",
    ),
    # Protection fields: whom the content targeted, who reported it.
    "abuse rule without target": (THREAT, [("target", DELETE)], "target"),
    "abuse kind unknown": (THREAT, [("rule/abuse", "insult")], "rule/abuse"),
    "target class unknown": (THREAT, [("target/class", "poll_worker")], "target/class"),
    "target without class": (THREAT, [("target", {})], "target/class"),
    "target an account id": (THREAT, [("target/account_id", "12345")], "target/account_id"),
    "target a subject_key": (THREAT, [("target/subject_key", "a" * 64)], "target/subject_key"),
    "election worker target named": (
        THREAT,
        [("target/public_subject", {"display_name": "Jane Doe"})],
        "target/public_subject",
    ),
    "ordinary user target named": (
        THREAT,
        [("target", {"class": "ordinary_user", "public_subject": {"display_name": "Jane Doe"}})],
        "target/public_subject",
    ),
    "group target named": (
        THREAT,
        [("target", {"class": "group", "public_subject": {"display_name": "Poll workers of Ward 5"}})],
        "target/public_subject",
    ),
    "reporter class unknown": (THREAT, [("reporter_class", "victim")], "reporter_class"),
    "reporter named": (THREAT, [("reporter_class", {"class": "ordinary_user"})], "reporter_class"),
    "election worker account with public_subject": (
        THREAT,
        [("account/class", "election_worker"), ("account/public_subject", {"display_name": "Jane Doe"})],
        "account/public_subject",
    ),
    "election worker account with statement": (
        THREAT,
        [("account/class", "election_worker"), ("statement", "Jane Doe of Ward 5 posted this.")],
        "statement",
    ),
    "election worker account subject_key a handle": (
        THREAT,
        [("account/class", "election_worker"), ("account/subject_key", "jane_doe_ward_5_poll")],
        "account/subject_key",
    ),
    "target on an amendment's corrected, named ordinary user": (
        AMEND,
        [("corrected/target", {"class": "ordinary_user", "public_subject": {"display_name": "Jane Doe"}})],
        "corrected/target/public_subject",
    ),
    # Control characters, anywhere.
    "U+0000 in the statement": (HEAD, [("statement", "before\x00after")], "statement"),
    "U+0000 in a nested free-text field": (
        HEAD,
        [("account/public_subject/office", "President\x00")],
        "account/public_subject/office",
    ),
    "U+0000 in a vocabulary value": (HEAD, [("severity", "low\x00")], "severity"),
    "U+0000 in a field name": (HEAD, [("colo\x00ur", "blue")], "colo\x00ur"),
    "CR in the statement": (HEAD, [("statement", "one\r\ntwo")], "statement"),
    "ESC in the handle": (
        HEAD,
        [("account/public_subject/handle", "\x1b[2J@president")],
        "account/public_subject/handle",
    ),
    "DEL in the display name": (
        HEAD,
        [("account/public_subject/display_name", "A\x7f")],
        "account/public_subject/display_name",
    ),
    "C1 control in a legal reference": (COURT, [("legal_reference", "StGB \x9b 86a")], "legal_reference"),
    "U+001F in the rule version": (HEAD, [("rule/version", "2026-01\x1f")], "rule/version"),
    "appeal pending with decided_at": (APPEAL, [("outcome", "pending"), ("new_action", DELETE)], "decided_at"),
    "appeal upheld with new_action": (APPEAL, [("outcome", "upheld")], "new_action"),
    "appeal decided without decided_at": (APPEAL, [("decided_at", DELETE)], "decided_at"),
    "appeal channel unknown": (APPEAL, [("channel", "ombudsman")], "channel"),
    "appeal with a decision field": (APPEAL, [("severity", "low")], "severity"),
    "amendment without corrected": (AMEND, [("corrected", DELETE)], "corrected"),
    "amendment reason unknown": (AMEND, [("reason", "typo")], "reason"),
    "corrected breaks a decision rule": (AMEND, [("corrected/exemption", DELETE)], "corrected/exemption"),
}


@pytest.mark.parametrize("case", sorted(NEGATIVE))
def test_negative_rejected_by_both(case: str) -> None:
    name, edits, path = NEGATIVE[case]
    record = mutate(name, *edits)
    assert not VALIDATOR.is_valid(record)
    assert paths(record) == [path]


# Checks JSON Schema cannot express: time ordering, the 5-minute future bound,
# and two places where python-jsonschema is laxer than the ledger (Python's
# re.search lets "$" match before a final newline; JSON Schema counts 1.0 as
# the integer 1). Only validate_record rejects these; the JSON Schema accepts them.
LEDGER_ONLY = {
    "flagged before posted": (HEAD, [("flagged_at", "2026-03-02T18:00:00Z")], "flagged_at"),
    "decided before flagged": (HEAD, [("decided_at", "2026-03-02T18:40:01Z")], "decided_at"),
    "applied before decided": (HEAD, [("applied_at", "2026-03-03T16:19:59.999Z")], "applied_at"),
    "action ends at decision": (ORD, [("action_ends_at", "2026-05-11T09:00:00Z")], "action_ends_at"),
    "ordinary posted day after flagged day": (ORD, [("content/posted_at", "2026-05-12")], "flagged_at"),
    "appeal decided before filed": (APPEAL, [("decided_at", "2026-04-16T08:00:00Z")], "decided_at"),
    "corrected decided before flagged": (
        AMEND,
        [("corrected/decided_at", "2026-03-01T00:00:00Z")],
        "corrected/decided_at",
    ),
    "submitted 6 minutes ahead": (HEAD, [("submitted_at", "2026-11-01T00:06:00Z")], "submitted_at"),
    "appeal filed in the future": (APPEAL, [("filed_at", "2026-12-01T00:00:00Z")], "filed_at"),
    "ordinary posted tomorrow": (ORD, [("content/posted_at", "2026-11-02")], "content/posted_at"),
    "platform with final newline": (HEAD, [("platform", "example-social\n")], "platform"),
    "schema_version 1.0": (HEAD, [("schema_version", 1.0)], "schema_version"),
    # JSON Schema patterns see UTF-16 code units in ECMA-262 and code points
    # in Python, and cannot name a lone surrogate portably; the ledger refuses it.
    "lone surrogate in the statement": (HEAD, [("statement", "x\ud800")], "statement"),
}


@pytest.mark.parametrize("case", sorted(LEDGER_ONLY))
def test_ledger_only(case: str) -> None:
    name, edits, path = LEDGER_ONLY[case]
    record = mutate(name, *edits)
    assert VALIDATOR.is_valid(record)
    assert paths(record) == [path]


def test_boundaries_accepted() -> None:
    assert paths(mutate(HEAD, ("submitted_at", "2026-11-01T00:05:00Z"))) == []
    assert paths(mutate(ORD, ("content/posted_at", "2026-05-11"))) == []  # same day as flagged_at
    assert paths(mutate(HEAD, ("flagged_at", "2026-03-02T18:04:11.000000001Z"))) == []  # sub-microsecond: equal
    assert paths(mutate(COURT, ("territorial_scope", ["AT", "DE", "LI"]))) == []
    pending = mutate(APPEAL, ("outcome", "pending"), ("decided_at", DELETE), ("new_action", DELETE))
    assert paths(pending) == []
    assert VALIDATOR.is_valid(pending)


def test_protection_fields_accepted() -> None:
    """A public target may be named; any target class may be given without an abuse rule; the
    reporter's class alone is said; an election worker's own account follows the ordinary users' forms."""
    named = {"class": "candidate", "public_subject": {"display_name": "Example Candidate", "office": "Mayor"}}
    accepted = [
        mutate(THREAT, ("target", named)),
        mutate(THREAT, ("target", {"class": "group"})),
        mutate(THREAT, ("rule/abuse", DELETE), ("target", DELETE)),
        mutate(THREAT, ("rule/abuse", DELETE)),
        mutate(THREAT, ("reporter_class", DELETE)),
        mutate(THREAT, ("account/class", "election_worker")),
        mutate(HEAD, ("target", {"class": "journalist"}), ("reporter_class", "trusted_flagger")),
        mutate(AMEND, ("corrected/target", named), ("corrected/rule/abuse", "harassment")),
    ]
    for kind in record_enums.REPORTER_CLASSES:
        accepted.append(mutate(THREAT, ("reporter_class", kind)))
    for kind in record_enums.TARGET_CLASSES:
        accepted.append(mutate(THREAT, ("target", {"class": kind})))
    for record in accepted:
        assert paths(record) == [], record
        assert VALIDATOR.is_valid(record), record


def test_ordinary_user_forms_accepted() -> None:
    """The realistic citations, versions and IDs the rules are written for pass both validators."""
    accepted = [mutate(ORD, ("rule/version", version)) for version in ("7", "v4.2", "2026-03", "2026-03-01", "1.0.3")]
    accepted += [
        mutate(ORD, ("decision_ground", "both"), ("legal_reference", citation))
        for citation in (
            "DSA Art. 16",
            "DE StGB § 130",
            "DE BGB §§ 823, 1004",
            "IT CP art. 604-bis",
            "FR CP art. 226-4-1",
            "FR CE art. L97",
            "NL WD art. 2.1",
            "IE DA 2009 s. 6",
            "DSA Art. 17(3)(d); GDPR Art. 17",
            "EU Regulation (EU) 2016/679 art. 17",
            "EU Directive 2005/29/EC art. 6",
            "FR Loi 2018-1202 art. 1",
        )
    ]
    accepted += [mutate(ORD, ("record_id", rid)) for rid in ("2026-05:000000917", "dec-2026-000101", "TVD.2026.1", "7")]
    accepted.append(mutate(ORD, ("rule/url", "https://video.example/rules/spam-and-scams/phishing/7")))
    accepted.append(mutate(AMEND, ("corrected", ORD_BODY), ("record_id", "amd-2026-000008")))
    accepted.append(mutate(APPEAL, ("record_id", "2026:31")))
    for record in accepted:
        assert paths(record) == [], record
        assert VALIDATOR.is_valid(record), record


def test_public_classes_keep_free_text() -> None:
    """The ordinary users' forms bind ordinary users only: a public figure's decision may cite a court's file."""
    record = mutate(COURT, ("rule/version", "2026-01 (spring revision)"), ("record_id", "dec-candidata"))
    record["rule"]["url"] = "https://social.example/policies/local-law?version=2026-01"
    assert paths(record) == []
    assert VALIDATOR.is_valid(record)


def test_tab_and_line_feed_accepted() -> None:
    record = mutate(HEAD, ("statement", "first\n\tsecond"))
    assert paths(record) == []
    assert VALIDATOR.is_valid(record)


def test_control_character_messages() -> None:
    [error] = validate_record(mutate(HEAD, ("statement", "ab\x00c")), NOW)
    assert error == {
        "path": "statement",
        "message": "must not contain the control character U+0000 at character 3; "
        "tab and line feed are the only ones allowed",
    }
    # Reported alone: the schema's messages would quote the character back.
    assert paths(mutate(HEAD, ("record_id", "dec\x00"), ("severity", "severe"))) == ["record_id"]


def test_messages_name_the_check() -> None:
    [error] = validate_record(mutate(HEAD, ("submitted_at", "2026-03-03T17:25:07+01:00")), NOW)
    assert "+01:00" in error["message"]
    assert "UTC" in error["message"]
    [error] = validate_record(mutate(HEAD, ("submitted_at", "2026-11-01T00:06:00Z")), NOW)
    assert "5 minutes in the future" in error["message"]


def test_not_an_object_and_junk() -> None:
    assert validate_record([], NOW) == [{"path": "", "message": "a record must be a JSON object"}]
    assert paths({}) == ["type"]
    assert paths({"type": "decision", "account": [], "content": None}) == sorted(
        ["account", "content"]
        + ["automated_decision", "automated_detection", "category", "decided_at", "decision_ground"]
        + ["detection_source", "flagged_at", "interim_state", "platform", "record_id", "review_path", "rule"]
        + ["schema_version", "severity", "state_involvement", "submitted_at", "territorial_scope"]
        + ["violation_found", "action"]
    )
    assert paths({**EXAMPLES[HEAD], "a/b~": "x"}) == ["a~1b~0"]  # RFC 6901 escaping of unknown keys


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_record(EXAMPLES[HEAD], datetime(2026, 11, 1))
    assert validate_record(EXAMPLES[HEAD], datetime(2026, 11, 1, 1, tzinfo=UTC).astimezone()) == []


def _enums_in(node: Any, where: str) -> set[str]:
    if isinstance(node, dict):
        found = {where} if "enum" in node else set()
        return found.union(*(_enums_in(v, f"{where}/{k}") for k, v in node.items()))
    if isinstance(node, list):
        return set().union(*(_enums_in(v, where) for v in node))
    return set()


def test_enums_equal_json_schema() -> None:
    """The Python tuples and the JSON Schema's enums are the same lists, in the same order."""
    defs = SCHEMA["$defs"]
    assert _enums_in(SCHEMA, "") == {f"/$defs/{name}" for name in record_enums.ENUMS}
    for name, values in record_enums.ENUMS.items():
        assert defs[name]["enum"] == list(values), name
        assert len(set(values)) == len(values), name


def test_patterns_equal_json_schema() -> None:
    for name, pattern in record_enums.PATTERNS.items():
        assert SCHEMA["$defs"][name]["pattern"] == pattern, name


def test_vocabulary_sizes() -> None:
    # The DSA Transparency Database API v2 lists, and ISO 3166-1 / ISO 639-1.
    assert len(record_enums.CATEGORIES) == 16
    assert len(record_enums.KEYWORDS) == 69
    assert len(record_enums.CONTENT_TYPES) == 8
    assert len(record_enums.COUNTRY_CODES) == 249
    assert len(record_enums.LANGUAGE_CODES) == 184


# --- property tests ---------------------------------------------------------


def _json(integers: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | integers | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    )


# Any JSON value, huge integers included: str() of one raises past 4300
# digits. Built, not st.just(), because hypothesis repr()s its strategies.
HUGE = st.builds(pow, st.just(10), st.integers(4300, 5000))
JSON = _json(st.integers() | HUGE)
# jsonschema's messages repr() the instance, so the implication test keeps integers small.
SMALL_JSON = _json(st.integers(-(2**64), 2**64))


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node).union(*(_keys(v) for v in node.values()))
    return set().union(*(_keys(v) for v in node)) if isinstance(node, list) else set()


FIELD_NAMES = sorted(set().union(*(_keys(r) for r in EXAMPLES.values())))
# Values that make a mutation likely to stay valid, so the implication test bites.
PLAUSIBLE = st.sampled_from(
    [v for values in record_enums.ENUMS.values() for v in values[:4]]
    + ["2026-04-01T00:00:00Z", "2026-04-01", "GLOBAL", "Q42", "https://social.example/x", "x" * 16, True, False, 1]
)


def _well_formed(errors: object) -> bool:
    return isinstance(errors, list) and all(
        isinstance(e, dict) and set(e) == {"path", "message"} and all(isinstance(v, str) for v in e.values())
        for e in errors
    )


@settings(max_examples=300, deadline=None)
@given(JSON | st.dictionaries(st.sampled_from(FIELD_NAMES), JSON))
def test_never_raises_on_json(value: Any) -> None:
    assert _well_formed(validate_record(value, NOW))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(record_enums.RECORD_TYPES), st.dictionaries(st.sampled_from(FIELD_NAMES), JSON | PLAUSIBLE))
def test_never_raises_on_typed_junk(kind: str, body: dict[str, Any]) -> None:
    assert _well_formed(validate_record({**body, "type": kind}, NOW))


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) pair inside a record."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out.append((node, key))
        _slots(value, out)
    return out


@st.composite
def mutated_examples(draw: st.DrawFn) -> dict[str, Any]:
    record = copy.deepcopy(draw(st.sampled_from(sorted(EXAMPLES.items())))[1])
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(_slots(record, [])))
        op = draw(st.sampled_from(["replace", "plausible", "delete", "add"]))
        if op == "delete":
            del container[key]
        elif op == "add" and isinstance(container, dict):
            container[draw(st.sampled_from(FIELD_NAMES) | st.text(max_size=8))] = draw(PLAUSIBLE | SMALL_JSON)
        else:
            container[key] = draw(PLAUSIBLE if op == "plausible" else SMALL_JSON)
    return record


@settings(max_examples=400, deadline=None)
@given(mutated_examples(), st.integers(-(10**6), 10**6))
def test_mutations_never_raise_and_never_beat_json_schema(record: dict[str, Any], skew: int) -> None:
    errors = validate_record(record, NOW + timedelta(seconds=skew))
    assert _well_formed(errors)
    if not errors:  # the ledger is never laxer than the published schema
        assert VALIDATOR.is_valid(record)
