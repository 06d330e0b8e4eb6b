"""RFC 3339 times, parsed in one place, exactly (docs/records.md, "Date-times").

A date-time is ``YYYY-MM-DDTHH:MM:SS[.fraction]Z`` (``vocab.PATTERNS["date_time"]``):
upper-case ``T`` and ``Z``, 1 to 9 fraction digits, no offset (``+00:00``
and ``+01:00`` are refused, as the record schema refuses them), no leap
second, and a day the calendar has. A date is ``YYYY-MM-DD``
(``vocab.PATTERNS["date"]``). The whole string must match (``re.fullmatch``:
Python's ``$`` also matches before a final newline; :data:`DATE_TIME` and
:data:`DATE` are those patterns in the form ``fullmatch`` needs), with ``[0-9]``, never
``\\d``, which matches other scripts' digits too. Only then does
``datetime.fromisoformat`` build the value (twenty times faster than
building it from the digits in Python, and every record's times pass here):
it takes ``2026-01-01 00:00``, ``+00``, a comma for the point and more, so
it never sees a string the pattern has not matched in full, and for those
its value is the digits' (tests/ledger/records/test_times.py compares the
two on every form).

Python keeps microseconds: fraction digits past the sixth are dropped, never
rounded, so two times that differ only there compare equal (which ordering
allows), and milliseconds since the epoch are exact integer arithmetic.

The log's own ``logged_at`` is written by ``ledger.records.entries.format_time``
(always three fraction digits) and parses here like any other date-time.

Pure: no I/O, no Flask, no marshmallow.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from ledger.errors import InvalidInput
from ledger.records.vocab import PATTERNS


def _for_fullmatch(pattern: str) -> re.Pattern[str]:
    """``pattern`` (vocab's form: ``^...$``, plain groups) as used here, with
    ``fullmatch`` alone: the same strings match without the anchors (the
    match must span the whole string anyway) and with non-capturing groups
    (no value is read from them), and the match costs a tenth less; every
    record's times pass here, on the submission path and in the audit."""
    if not (pattern.startswith("^") and pattern.endswith("$")) or "(?" in pattern or "\\(" in pattern:
        raise AssertionError(f"times: {pattern!r} is not an anchored pattern of plain groups")
    return re.compile(pattern[1:-1].replace("(", "(?:"))


DATE_TIME = _for_fullmatch(PATTERNS["date_time"])
DATE = _for_fullmatch(PATTERNS["date"])

#: The words every refusal of a date-time's form uses.
DATE_TIME_FORM = "an RFC 3339 UTC time YYYY-MM-DDTHH:MM:SS[.fraction]Z"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def _not_a_day(text: str) -> InvalidInput:
    return InvalidInput(f"{text[:10]!r} is not a real calendar date")


def parse_date(text: str) -> date:
    """The day ``YYYY-MM-DD`` names; InvalidInput if it is not of that form or not in the calendar."""
    if not DATE.fullmatch(text):
        raise InvalidInput(f"{text!r} is not a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:  # the form matched: only the day can be wrong
        raise _not_a_day(text) from None


def parse_date_time(text: str) -> datetime:
    """The UTC instant ``text`` names, to the microsecond; InvalidInput unless it is exactly a date-time."""
    if not DATE_TIME.fullmatch(text):
        raise InvalidInput(f"{text!r} is not {DATE_TIME_FORM}")
    try:
        # Fraction digits past the sixth are dropped, never rounded.
        return datetime.fromisoformat(text)
    except ValueError:  # the form matched: only the day can be wrong
        raise _not_a_day(text) from None


def to_ms(when: datetime | date) -> int:
    """Milliseconds since the epoch of an aware instant, or of a day's 00:00 UTC; exact (floor)."""
    if not isinstance(when, datetime):
        when = datetime(when.year, when.month, when.day, tzinfo=UTC)
    return (when - _EPOCH) // _MILLISECOND


def date_time_ms(text: str) -> int:
    """Milliseconds since the epoch of a date-time; InvalidInput unless it is exactly one."""
    return to_ms(parse_date_time(text))


def day_or_time_ms(text: str) -> int:
    """Milliseconds since the epoch of a date-time, or of a date's 00:00 UTC.

    What the feed's time filters and ordinary users' ``content.posted_at``
    (a day, so that a record cannot be matched to a post by its time) take.
    """
    if DATE_TIME.fullmatch(text):
        # parse_date_time and to_ms, inline: the audit derives three times
        # per record, and the pattern has matched already.
        try:
            return (datetime.fromisoformat(text) - _EPOCH) // _MILLISECOND
        except ValueError:  # the form matched: only the day can be wrong
            raise _not_a_day(text) from None
    if DATE.fullmatch(text):
        return to_ms(parse_date(text))
    raise InvalidInput(f"{text!r} is neither a date YYYY-MM-DD nor {DATE_TIME_FORM}")
