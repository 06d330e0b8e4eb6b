"""The leaves of record schema version 1 in marshmallow: the fields that
check one value against the vocabularies and patterns of :mod:`ledger.records.vocab`.
They build the OpenAPI document's record schemas (``api/openapi.py``); records
are validated by :mod:`api.record_validator`.

The vocabularies and patterns themselves live in :mod:`ledger.records.vocab`
(re-exported here), and the time parsing in :mod:`ledger.records.times`
(through :mod:`api.record_checks`, which turns its refusals into messages).
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from datetime import date, datetime
from typing import Any, TypeVar

from marshmallow import ValidationError, fields, types

from api.record_checks import FUTURE_SLACK, parse_date, parse_date_time
from ledger.records.vocab import (  # noqa: F401 (re-exported for the schema and its tests)
    ABUSE_KINDS,
    ACCOUNT_CLASSES,
    ACTIONS,
    AMENDMENT_REASONS,
    APPEAL_CHANNELS,
    APPEAL_OUTCOMES,
    AUTOMATED_DECISIONS,
    CATEGORIES,
    CLASS_BASES,
    CONTENT_TYPES,
    CONTROL_CHARACTERS,
    COUNTRY_CODES,
    DECISION_GROUNDS,
    DETECTION_SOURCES,
    ENUMS,
    EXEMPTION_TYPES,
    GLOBAL,
    INTERIM_STATES,
    JURISDICTIONS,
    KEYWORDS,
    LANGUAGE_CODES,
    LEGAL_CITATION_MAX,
    ORDINARY_FOLLOWER_BUCKETS,
    ORDINARY_USER,
    PATTERNS,
    PRIVATE_CLASSES,
    PUBLIC_CLASSES,
    PUBLIC_FOLLOWER_BUCKETS,
    RECORD_TYPES,
    REPORTER_CLASSES,
    REVIEW_PATHS,
    SEVERITIES,
    STATE_INVOLVEMENTS,
    TARGET_CLASSES,
    UNLIMITED_ACTIONS,
)

#: The time a record is checked against; set by ``api.record_schema.load_errors``.
NOW: ContextVar[datetime] = ContextVar("record_now")
_RX = {name: re.compile(pattern) for name, pattern in PATTERNS.items()}
_MESSAGES: types.ErrorMessages = {"required": "required", "null": "must not be null"}
_DATE_TIME = (
    "must be an RFC 3339 UTC date-time YYYY-MM-DDTHH:MM:SS[.fraction]Z "
    "(upper-case T and Z; offsets such as +01:00 and naive times are not accepted)"
)
_POSTED = "must be an RFC 3339 UTC date-time (public classes) or a date YYYY-MM-DD (ordinary users)"


def _not_future(when: date) -> None:
    limit = NOW.get() + FUTURE_SLACK
    if when > (limit if isinstance(when, datetime) else limit.date()):
        raise ValidationError("must not be more than 5 minutes in the future")


def _parse_date(value: str) -> date:
    day = parse_date(value)
    if day is None:
        raise ValidationError("is not a real calendar date")
    return day


def _parse_date_time(value: str) -> datetime:
    when = parse_date_time(value)
    if when is None:
        raise ValidationError("is not a real calendar date")
    return when


def matches(pattern: str, value: str) -> bool:
    """Whether ``value`` matches ``PATTERNS[pattern]`` in full."""
    return _RX[pattern].fullmatch(value) is not None


#: What a field's value loads as.
T = TypeVar("T")


class _Field(fields.Field[T]):
    default_error_messages: types.ErrorMessages = _MESSAGES


class Text(_Field[str]):
    """A JSON string of ``min_len``..``max_len`` code points, matching ``PATTERNS[pattern]`` if given."""

    def __init__(self, *, max_len: int, min_len: int = 1, pattern: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_len, self.max_len = min_len, max_len
        self.rx = _RX[pattern] if pattern else None

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("must be a string")
        if not self.min_len <= len(value) <= self.max_len:
            raise ValidationError(f"must be {self.min_len} to {self.max_len} characters long")
        if self.rx is not None and not self.rx.fullmatch(value):
            raise ValidationError(f"must match {self.rx.pattern}")
        return value


class Choice(_Field[str]):
    """One string of a vocabulary; the message lists it when it is short."""

    def __init__(self, choices: tuple[str, ...], *, name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = frozenset(choices)
        if len(choices) <= 12:
            self.message = "must be one of: " + ", ".join(choices)
        else:
            self.message = f"must be one of the {len(choices)} {name} values listed in docs/records.md"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise ValidationError(self.message)
        return value


class StrictBool(_Field[bool]):
    """A JSON true or false; not 1, not "true"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise ValidationError("must be true or false")


class SchemaVersion(_Field[int]):
    """The integer 1; not 1.0, not true, not "1"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if type(value) is int and value == 1:
            return value
        raise ValidationError("must be the integer 1: this is schema version 1")


class DateTime(_Field[datetime]):
    """RFC 3339 in UTC, exactly; at most five minutes after ``now`` unless ``future_ok``."""

    def __init__(self, *, future_ok: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.future_ok = future_ok

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or not _RX["date_time"].fullmatch(value):
            raise ValidationError(_DATE_TIME)
        when = _parse_date_time(value)
        if not self.future_ok:
            _not_future(when)
        return when


class PostedAt(_Field[date]):
    """A date-time or a date; which one the account class allows is checked by :class:`DecisionBody`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if isinstance(value, str) and _RX["date_time"].fullmatch(value):
            when: date = _parse_date_time(value)
        elif isinstance(value, str) and _RX["date"].fullmatch(value):
            when = _parse_date(value)
        else:
            raise ValidationError(_POSTED)
        _not_future(when)
        return when


class UniqueList(fields.List[T]):
    """A non-empty JSON array without repeated items."""

    # marshmallow declares these a plain class attribute; ClassVar would contradict it.
    default_error_messages: types.ErrorMessages = {**_MESSAGES, "invalid": "must be a list"}  # noqa: RUF012

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[T | None]:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        items = super()._deserialize(value, attr, data, **kwargs)
        if not items:
            raise ValidationError("must not be empty")
        if len(set(items)) != len(items):
            raise ValidationError("must not repeat an item")
        return items


class TerritorialScope(UniqueList[str]):
    """``["GLOBAL"]``, or ISO 3166-1 alpha-2 country codes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Choice(COUNTRY_CODES + (GLOBAL,), name="territorial scope"), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str | None]:
        items = super()._deserialize(value, attr, data, **kwargs)
        if GLOBAL in items and len(items) > 1:
            raise ValidationError("GLOBAL must stand alone")
        return items
