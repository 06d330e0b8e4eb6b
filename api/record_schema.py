"""Record schema version 1 in marshmallow: the schemas the OpenAPI document is generated from.

Records are validated by :func:`api.record_validator.validate_record`, which
compiles ``docs/schema/record-v1.schema.json``, the source of truth. These
schemas describe the same rules field by field for ``api/openapi.py``, and
:func:`load_errors` runs them so that ``tests/api/test_record_validator.py`` can
hold them to the JSON Schema's verdicts. Time ordering, the five-minute
future bound and the control-character search are stated here as well as in
:mod:`api.record_validator`, so that this second statement stands on its own.

The schemas read ``now`` from a context variable that only
:func:`load_errors` sets: load them through it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, types, validates_schema

from api import record_enums as enums
from api.record_checks import pointer_join, refused_strings
from api.record_enums import (
    NOW,
    Choice,
    DateTime,
    PostedAt,
    SchemaVersion,
    StrictBool,
    TerritorialScope,
    Text,
    UniqueList,
)
from ledger.records import vocab

__all__ = ["AmendmentRecord", "AppealRecord", "DecisionRecord", "load_errors"]

_MESSAGES: types.ErrorMessages = {"required": "required", "null": "must not be null"}


def Nested(schema: type[Schema], **kwargs: Any) -> fields.Nested:  # noqa: N802 - reads as a field class
    return fields.Nested(schema, error_messages=_MESSAGES, **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = RAISE

    # marshmallow declares this a plain class attribute; ClassVar would contradict it.
    error_messages: dict[str, str] = {  # noqa: RUF012
        "type": "must be a JSON object",
        "unknown": "unknown field (record schema version 1)",
    }


def _add(errors: dict[str, Any], path: tuple[str, ...], message: str) -> None:
    """Record ``message`` under ``path`` in marshmallow's nested error form."""
    node = errors
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node.setdefault(path[-1], []).append(message)


def _forbid(data: dict[str, Any], errors: dict[str, Any], names: tuple[str, ...], why: str) -> None:
    for name in names:
        if name in data:
            _add(errors, (name,), f"forbidden {why}")


class Ref(_Strict):
    record_id = Text(max_len=128, pattern="record_id", required=True)


class PolicyRef(_Strict):
    id = Text(max_len=128, pattern="rule_id", required=True)
    version = Text(max_len=64, required=True)


class Rule(PolicyRef):
    url = Text(max_len=2048, pattern="https_url")
    abuse = Choice(vocab.ABUSE_KINDS, name="abuse kind")


class Exemption(_Strict):
    applied = StrictBool(required=True)
    type = Choice(vocab.EXEMPTION_TYPES, name="exemption type")
    policy = Nested(PolicyRef)

    @validates_schema
    def _check_applied(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        if data["applied"] and "type" not in data:
            _add(errors, ("type",), "required when applied is true")
        if not data["applied"]:
            _forbid(data, errors, ("type", "policy"), "when applied is false")
        if errors:
            raise ValidationError(errors)


class PublicSubject(_Strict):
    display_name = Text(max_len=200, required=True)
    wikidata_qid = Text(max_len=20, pattern="wikidata_qid")
    office = Text(max_len=200)
    jurisdiction = Choice(vocab.JURISDICTIONS, name="jurisdiction")
    handle = Text(max_len=100)


_BUCKETS = tuple(dict.fromkeys(vocab.PUBLIC_FOLLOWER_BUCKETS + vocab.ORDINARY_FOLLOWER_BUCKETS))


class Account(_Strict):
    account_class = Choice(vocab.ACCOUNT_CLASSES, name="account class", data_key="class", required=True)
    class_basis = Choice(vocab.CLASS_BASES, name="class basis")
    subject_key = Text(max_len=128, pattern="subject_key", required=True)
    follower_bucket = Choice(_BUCKETS, name="follower bucket", required=True)
    public_subject = Nested(PublicSubject)

    @validates_schema
    def _check_class(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        if data["account_class"] in vocab.PRIVATE_CLASSES:
            _forbid(data, errors, ("class_basis", "public_subject"), "for ordinary users and election workers")
            if data["follower_bucket"] not in vocab.ORDINARY_FOLLOWER_BUCKETS:
                _add(errors, ("follower_bucket",), "ordinary users are top-coded: one of <1k, 1k-10k, 10k+")
        else:
            for name in ("class_basis", "public_subject"):
                if name not in data:
                    _add(errors, (name,), "required for every class but ordinary_user and election_worker")
            if data["follower_bucket"] not in vocab.PUBLIC_FOLLOWER_BUCKETS:
                _add(errors, ("follower_bucket",), "10k+ is for ordinary users only; use 10k-100k, 100k-1M or >1M")
        if errors:
            raise ValidationError(errors)


class Target(_Strict):
    target_class = Choice(vocab.TARGET_CLASSES, name="target class", data_key="class", required=True)
    public_subject = Nested(PublicSubject)

    @validates_schema
    def _check_class(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["target_class"] not in vocab.PUBLIC_CLASSES and "public_subject" in data:
            raise ValidationError(
                "forbidden unless the target is of a public class: nothing may name an ordinary user, "
                "an election worker or a group's members",
                "public_subject",
            )


class Content(_Strict):
    types = UniqueList(Choice(vocab.CONTENT_TYPES, name="DSA content type"), required=True)
    language = Choice(vocab.LANGUAGE_CODES, name="ISO 639-1 language")
    ref = Text(max_len=2048, pattern="https_url")
    posted_at = PostedAt(required=True)


def _check_ground(data: dict[str, Any], errors: dict[str, Any]) -> None:
    if data["decision_ground"] == "terms":
        _forbid(data, errors, ("legal_reference",), "when decision_ground is terms")
    elif "legal_reference" not in data:
        _add(errors, ("legal_reference",), "required when decision_ground is illegal or both")


def _check_action(data: dict[str, Any], errors: dict[str, Any]) -> None:
    action = data["action"]
    if action == "temporary_suspension" and "action_ends_at" not in data:
        _add(errors, ("action_ends_at",), "required for temporary_suspension")
    if action in vocab.UNLIMITED_ACTIONS:
        _forbid(data, errors, ("action_ends_at",), f"for action {action}, which has no end")
    if data["violation_found"] and "exemption" not in data:
        _add(errors, ("exemption",), "required when violation_found is true")
    if not data["violation_found"]:
        _forbid(data, errors, ("exemption",), "when violation_found is false: there is nothing to exempt")


_CITATION_EXAMPLES = "such as DSA Art. 16, DE StGB § 130 or EU Regulation (EU) 2016/679 art. 17 (docs/records.md)"
_VERSION_FORM = "numbers joined by . or - (7, v4.2, 2026-03)"

# The fields of a decision where words could be written, and the form each
# must take about an ordinary user, so that none can hold a name, a handle or
# an address (docs/records.md, "Ordinary users"): (path, pattern, longest
# length where it is shorter than the field's own, message).
_ORDINARY_FORMS: tuple[tuple[tuple[str, ...], str, int | None, str], ...] = (
    (
        ("account", "subject_key"),
        "pseudonym",
        None,
        "ordinary users: must be 64 lower-case hex digits, the platform's HMAC-SHA-256 of the account",
    ),
    (("rule", "version"), "short_version", None, f"ordinary users: must be {_VERSION_FORM}"),
    (("rule", "url"), "https_path_url", None, "ordinary users: must have no query string or fragment"),
    (("exemption", "policy", "version"), "short_version", None, f"ordinary users: must be {_VERSION_FORM}"),
    (
        ("legal_reference",),
        "legal_citation",
        vocab.LEGAL_CITATION_MAX,
        f"ordinary users: must be a short legal citation of at most {vocab.LEGAL_CITATION_MAX} characters "
        + _CITATION_EXAMPLES,
    ),
)


def _check_ordinary_forms(data: dict[str, Any], errors: dict[str, Any]) -> None:
    for path, pattern, longest, message in _ORDINARY_FORMS:
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        if (longest is not None and len(value) > longest) or not enums.matches(pattern, value):
            _add(errors, path, message)


def _is_ordinary(body: dict[str, Any]) -> bool:
    """Whether the decision fields ``body`` are about an ordinary user."""
    return bool(body["account"]["account_class"] in vocab.PRIVATE_CLASSES)


def _check_privacy(data: dict[str, Any], errors: dict[str, Any]) -> None:
    """Ordinary users get no statement, no content URL, a posting day only,
    and patterned values wherever free text could name them."""
    posted = data["content"]["posted_at"]
    if _is_ordinary(data):
        _forbid(data, errors, ("statement",), "for ordinary users, whose privacy outranks the reasons")
        if "ref" in data["content"]:
            _add(errors, ("content", "ref"), "forbidden for ordinary users")
        if isinstance(posted, datetime):
            _add(errors, ("content", "posted_at"), "ordinary users: a date YYYY-MM-DD only, not a date-time")
        _check_ordinary_forms(data, errors)
    elif not isinstance(posted, datetime):
        _add(errors, ("content", "posted_at"), "public classes: an RFC 3339 UTC date-time, not a date")


def _check_target(data: dict[str, Any], errors: dict[str, Any]) -> None:
    if "abuse" in data["rule"] and "target" not in data:
        _add(errors, ("target",), "required when rule.abuse is set: say whom the content targeted")


_NUMBERED = "digits and separators after at most one tag of 1 to 3 letters (dec-2026-000101, 2026-05:000000917)"


def _check_numbered_id(data: dict[str, Any], whose: str) -> None:
    """A record_id that cannot spell a name: see ``numbered_record_id`` in :mod:`ledger.records.vocab`."""
    if not enums.matches("numbered_record_id", data["record_id"]):
        raise ValidationError(f"{whose}: must be {_NUMBERED}", "record_id")


def _check_times(data: dict[str, Any], errors: dict[str, Any]) -> None:
    """posted <= flagged <= decided <= applied; action_ends_at > decided."""
    posted, flagged, decided = data["content"]["posted_at"], data["flagged_at"], data["decided_at"]
    # An ordinary user's posting day compares with the UTC day of flagged_at.
    if posted > (flagged if isinstance(posted, datetime) else flagged.date()):
        _add(errors, ("flagged_at",), "must not be before content/posted_at")
    if decided < flagged:
        _add(errors, ("decided_at",), "must not be before flagged_at")
    if "applied_at" in data and data["applied_at"] < decided:
        _add(errors, ("applied_at",), "must not be before decided_at")
    if "action_ends_at" in data and data["action_ends_at"] <= decided:
        _add(errors, ("action_ends_at",), "must be after decided_at")


class DecisionBody(_Strict):
    """The fields of a decision: flat in a decision record, nested as an amendment's ``corrected``."""

    rule = Nested(Rule, required=True)
    decision_ground = Choice(vocab.DECISION_GROUNDS, name="decision ground", required=True)
    legal_reference = Text(max_len=500)
    category = Choice(vocab.CATEGORIES, name="DSA statement category", required=True)
    keywords = UniqueList(Choice(vocab.KEYWORDS, name="DSA keyword"))
    severity = Choice(vocab.SEVERITIES, name="severity", required=True)
    violation_found = StrictBool(required=True)
    action = Choice(vocab.ACTIONS, name="action", required=True)
    action_ends_at = DateTime(future_ok=True)
    exemption = Nested(Exemption)
    review_path = Choice(vocab.REVIEW_PATHS, name="review path", required=True)
    interim_state = Choice(vocab.INTERIM_STATES, name="interim state", required=True)
    detection_source = Choice(vocab.DETECTION_SOURCES, name="detection source", required=True)
    automated_detection = StrictBool(required=True)
    automated_decision = Choice(vocab.AUTOMATED_DECISIONS, name="automated decision", required=True)
    state_involvement = Choice(vocab.STATE_INVOLVEMENTS, name="state involvement", required=True)
    account = Nested(Account, required=True)
    content = Nested(Content, required=True)
    flagged_at = DateTime(required=True)
    decided_at = DateTime(required=True)
    applied_at = DateTime()
    territorial_scope = TerritorialScope(required=True)
    statement = Text(max_len=5000)
    target = Nested(Target)
    reporter_class = Choice(vocab.REPORTER_CLASSES, name="reporter class")

    @validates_schema
    def _check_decision(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        for check in (_check_ground, _check_action, _check_privacy, _check_target):
            check(data, errors)
        if not errors:  # ordering is meaningless while posted_at has the wrong form
            _check_times(data, errors)
        if errors:
            raise ValidationError(errors)


class Envelope(_Strict):
    type = Choice(vocab.RECORD_TYPES, name="record type", required=True)
    schema_version = SchemaVersion(required=True)
    platform = Text(max_len=63, pattern="platform", required=True)
    record_id = Text(max_len=128, pattern="record_id", required=True)
    submitted_at = DateTime(required=True)
    refs = Nested(Ref)
    dsa_sor_uuid = Text(max_len=36, pattern="uuid")

    @validates_schema
    def _check_refs(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["type"] == "decision" and "refs" in data:
            raise ValidationError("forbidden for decisions, which refer to no earlier record", "refs")
        if data["type"] != "decision" and "refs" not in data:
            raise ValidationError("required for appeals and amendments", "refs")


class DecisionRecord(Envelope, DecisionBody):
    @validates_schema
    def _check_id(self, data: dict[str, Any], **kwargs: Any) -> None:
        if _is_ordinary(data):
            _check_numbered_id(data, "ordinary users")


class AppealRecord(Envelope):
    channel = Choice(vocab.APPEAL_CHANNELS, name="appeal channel", required=True)
    filed_at = DateTime(required=True)
    decided_at = DateTime()
    outcome = Choice(vocab.APPEAL_OUTCOMES, name="appeal outcome", required=True)
    new_action = Choice(vocab.ACTIONS, name="action")

    @validates_schema
    def _check_outcome(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        outcome = data["outcome"]
        if outcome == "pending":
            _forbid(data, errors, ("decided_at", "new_action"), "while the outcome is pending")
        elif "decided_at" not in data:
            _add(errors, ("decided_at",), "required once the outcome is not pending")
        if outcome == "upheld":
            _forbid(data, errors, ("new_action",), "when the decision was upheld")
        if "decided_at" in data and data["decided_at"] < data["filed_at"]:
            _add(errors, ("decided_at",), "must not be before filed_at")
        if errors:
            raise ValidationError(errors)

    @validates_schema
    def _check_id(self, data: dict[str, Any], **kwargs: Any) -> None:
        # An appeal names no account, so the schema cannot tell an ordinary
        # user's appeal from a public figure's: every appeal is numbered.
        _check_numbered_id(data, "appeals, which may concern ordinary users")


class AmendmentRecord(Envelope):
    reason = Choice(vocab.AMENDMENT_REASONS, name="amendment reason", required=True)
    corrected = Nested(DecisionBody, required=True)

    @validates_schema
    def _check_id(self, data: dict[str, Any], **kwargs: Any) -> None:
        if _is_ordinary(data["corrected"]):
            _check_numbered_id(data, "ordinary users")


def _warm(schema: Schema) -> Schema:
    """Build every nested schema now, at import, so no request thread races
    to build them lazily (marshmallow caches a nested schema on its field)."""
    for f in schema.fields.values():
        if isinstance(f, fields.Nested):
            _warm(f.schema)
    return schema


# One instance per record type, shared by every thread. Building a schema
# deep-copies its fields and nested schemas (most of the cost of a load, as
# profiled); loading keeps no state on the instance (``now`` comes from the
# ``NOW`` context variable), so concurrent loads are safe.
_SCHEMAS: dict[str, Schema] = {
    "decision": _warm(DecisionRecord()),
    "appeal": _warm(AppealRecord()),
    "amendment": _warm(AmendmentRecord()),
}


def load_errors(record: object, now: datetime) -> list[dict[str, str]]:
    """The errors marshmallow finds in ``record``, in :func:`api.record_validator.validate_record`'s form.

    Not on the write path: a second, independent statement of the rules, held
    to the JSON Schema's verdicts by ``tests/api/test_record_validator.py`` so that
    the OpenAPI document generated from these schemas cannot drift from the
    contract. Paths may differ where the two phrase one rule at different places.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    if not isinstance(record, dict):
        return [{"path": "", "message": "a record must be a JSON object"}]
    refused = refused_strings(record)
    if refused:  # before marshmallow, whose messages would quote them
        return sorted(refused, key=lambda err: (err["path"], err["message"]))
    kind = record.get("type")
    if not isinstance(kind, str) or kind not in _SCHEMAS:
        return [{"path": "type", "message": "must be one of: " + ", ".join(vocab.RECORD_TYPES)}]
    token = NOW.set(now.astimezone(UTC))
    try:
        _SCHEMAS[kind].load(record)
    except ValidationError as e:
        return sorted(_flatten(e.messages, ""), key=lambda err: (err["path"], err["message"]))
    finally:
        NOW.reset(token)
    return []


def _flatten(messages: object, path: str) -> list[dict[str, str]]:
    if isinstance(messages, dict):
        return [
            err
            for key, sub in messages.items()
            for err in _flatten(sub, path if key == "_schema" else pointer_join(path, key))
        ]
    if isinstance(messages, list):
        return [err for m in messages for err in _flatten(m, path)]
    return [{"path": path, "message": str(messages)}]
