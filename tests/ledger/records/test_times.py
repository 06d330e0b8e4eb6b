"""The one RFC 3339 parser (ledger/records/times.py): exactly what
docs/records.md promises, and nothing ``datetime.fromisoformat`` would add."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.records import times
from ledger.records.entries import format_time
from ledger.records.vocab import PATTERNS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T16:20:00Z", datetime(2026, 3, 1, 16, 20, 0, 0, UTC)),
        ("2026-03-01T16:20:00.1Z", datetime(2026, 3, 1, 16, 20, 0, 100_000, UTC)),
        ("2026-03-01T16:20:00.123456Z", datetime(2026, 3, 1, 16, 20, 0, 123_456, UTC)),
        # Digits past the sixth are dropped, never rounded.
        ("2026-03-01T16:20:00.123456999Z", datetime(2026, 3, 1, 16, 20, 0, 123_456, UTC)),
        ("2024-02-29T23:59:59.999Z", datetime(2024, 2, 29, 23, 59, 59, 999_000, UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_date_times_parse(text: str, expected: datetime) -> None:
    assert times.parse_date_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-01T16:20:00+00:00",  # an offset, even zero: docs/records.md refuses it
        "2026-03-01T16:20:00+01:00",
        "2026-03-01T16:20:00",  # naive
        "2026-03-01t16:20:00Z",  # lower-case T
        "2026-03-01T16:20:00z",  # lower-case Z
        "2026-03-01 16:20:00Z",  # a space for the T
        "2026-03-01T16:20:00.Z",  # a point and no digit
        "2026-03-01T16:20:00.1234567890Z",  # ten fraction digits
        "2026-03-01T16:20:00,5Z",  # a comma for the point
        "2026-03-01T16:20:60Z",  # a leap second
        "2026-03-01T24:00:00Z",
        "2026-03-01T16:20Z",  # no seconds
        "2026-03-01T16:20:00Z\n",  # Python's $ would match before this newline
        " 2026-03-01T16:20:00Z",
        "2026-03-01T16:20:00ZZ",
        "２０２６-03-01T16:20:00Z",  # fullwidth digits, which \\d and int() accept
        "2026-03-01T16:20:0٠Z",  # an Arabic-Indic zero
        "20260301T162000Z",  # ISO 8601 basic form
        "2026-03-01",  # a date is not a date-time
        "",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="is not an RFC 3339 UTC time"):
        times.parse_date_time(text)


@pytest.mark.parametrize("text", ["2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "0000-01-01T00:00:00Z"])
def test_days_not_in_the_calendar_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="is not a real calendar date"):
        times.parse_date_time(text)


def test_dates() -> None:
    assert times.parse_date("2024-02-29") == date(2024, 2, 29)
    for text in ("2026-02-29", "2026-13-01", "2026-3-01", "2026-03-01T00:00:00Z", "2026-03-01\n", "２０２６-03-01"):
        with pytest.raises(InvalidInput):
            times.parse_date(text)


def test_milliseconds_are_exact_and_floor() -> None:
    assert times.date_time_ms("1970-01-01T00:00:00Z") == 0
    assert times.date_time_ms("1970-01-01T00:00:00.0019Z") == 1
    assert times.date_time_ms("1969-12-31T23:59:59.9995Z") == -1
    # 2**53 ms is past year 287,000; a float timestamp loses the millisecond long before.
    assert times.date_time_ms("9999-12-31T23:59:59.999Z") == 253_402_300_799_999


def test_the_logs_own_times_round_trip() -> None:
    for ms in (0, 1, 999, 1_764_000_000_123, 253_402_300_799_999):
        assert times.date_time_ms(format_time(ms)) == ms


@given(st.integers(min_value=0, max_value=253_402_300_799_999))
def test_format_time_is_the_datetime_formatting(ms: int) -> None:
    """format_time's arithmetic gives what datetime's strftime gave (entry
    heads are built with it, so a difference would change entries' bytes)."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    assert format_time(ms) == dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (86_399_999, "1970-01-01T23:59:59.999Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (1_764_144_000_000, "2025-11-26T08:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_format_time_at_the_edges(ms: int, text: str) -> None:
    assert format_time(ms) == text


def test_day_or_time() -> None:
    assert times.day_or_time_ms("2026-03-01") == times.date_time_ms("2026-03-01T00:00:00Z")
    assert times.day_or_time_ms("2026-03-01T00:00:00.5Z") == times.date_time_ms("2026-03-01T00:00:00Z") + 500
    with pytest.raises(InvalidInput, match="neither a date"):
        times.day_or_time_ms("2026-03-01T00:00:00+00:00")
    with pytest.raises(InvalidInput, match="real calendar date"):
        times.day_or_time_ms("2026-02-30")
    with pytest.raises(InvalidInput, match="real calendar date"):
        times.day_or_time_ms("2026-02-30T00:00:00Z")


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01",
        "1969-12-31T23:59:59.9995Z",
        "1969-12-31",
        "1970-01-01T00:00:00.0019Z",
        "2024-02-29T23:59:59.999999999Z",
        "2026-03-01T16:20:00.1Z",
        "2026-12-31T23:59:59Z",
        "9999-12-31T23:59:59.999Z",
        "9999-12-31",
    ],
)
def test_day_or_time_is_what_the_parsers_give(text: str) -> None:
    """day_or_time_ms does its own arithmetic (one match per value, for the
    index rows): it must equal to_ms of the exact parsers' value."""
    parsed = times.parse_date(text) if len(text) == 10 else times.parse_date_time(text)
    assert times.day_or_time_ms(text) == times.to_ms(parsed)


def _from_digits(text: str) -> datetime:
    """The instant a matched date-time names, built from its digits alone."""
    fraction = text[20:-1] if text[19] == "." else ""
    micro = int(fraction[:6].ljust(6, "0"))
    y, mo, d, h, mi, s = (int(text[a:b]) for a, b in ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19)))
    return datetime(y, mo, d, h, mi, s, micro, UTC)


@given(st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)), st.integers(0, 9), st.integers(0, 999))
def test_the_value_is_the_digits(when: datetime, digits: int, extra: int) -> None:
    """parse_date_time hands matched strings to datetime.fromisoformat; its
    value must be the one the digits spell, for every number of fraction
    digits (past six dropped, never rounded)."""
    fraction = f"{when.microsecond:06d}{extra:03d}"[:digits]
    text = when.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + (f".{fraction}" if digits else "") + "Z"
    assert times.parse_date_time(text) == _from_digits(text)
    assert times.day_or_time_ms(text) == times.to_ms(_from_digits(text))
    assert times.parse_date(text[:10]) == _from_digits(text).date()


# The parsers as they were before session 8 (patterns compiled as vocab
# writes them, anchored, with capturing groups): the reference the
# fullmatch-form patterns are checked against.
_OLD_DATE_TIME = re.compile(PATTERNS["date_time"])
_OLD_DATE = re.compile(PATTERNS["date"])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _old_parse_date(text: str) -> date:
    if not _OLD_DATE.fullmatch(text):
        raise InvalidInput(f"{text!r} is not a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text[:10]!r} is not a real calendar date") from None


def _old_parse_date_time(text: str) -> datetime:
    if not _OLD_DATE_TIME.fullmatch(text):
        raise InvalidInput(f"{text!r} is not {times.DATE_TIME_FORM}")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text[:10]!r} is not a real calendar date") from None


def _old_to_ms(when: datetime | date) -> int:
    if not isinstance(when, datetime):
        when = datetime(when.year, when.month, when.day, tzinfo=UTC)
    return (when - _EPOCH) // _MS


def _old_day_or_time_ms(text: str) -> int:
    if _OLD_DATE_TIME.fullmatch(text):
        try:
            return (datetime.fromisoformat(text) - _EPOCH) // _MS
        except ValueError:
            raise InvalidInput(f"{text[:10]!r} is not a real calendar date") from None
    if _OLD_DATE.fullmatch(text):
        return _old_to_ms(_old_parse_date(text))
    raise InvalidInput(f"{text!r} is neither a date YYYY-MM-DD nor {times.DATE_TIME_FORM}")


_PAIRS = [
    (times.parse_date, _old_parse_date),
    (times.parse_date_time, _old_parse_date_time),
    (times.date_time_ms, lambda t: _old_to_ms(_old_parse_date_time(t))),
    (times.day_or_time_ms, _old_day_or_time_ms),
]


def _result(fn: Any, text: str) -> tuple[Any, ...]:
    try:
        return ("value", fn(text))
    except InvalidInput as e:
        return ("refused", str(e))


def _assert_as_before(text: str) -> None:
    for new, old in _PAIRS:
        assert _result(new, text) == _result(old, text), (new.__name__, text)


def _two(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).map("{:02d}".format)


#: Strings of the date-time's shape, each part sometimes out of its range or
#: form: days the calendar lacks (Feb 29 of 1900 and 2023, Apr 31), hour 24,
#: second 60, 0-11 fraction digits, a comma, offsets (+05:30, +00:00, -08:00),
#: lower-case letters, other scripts' digits, trailing newlines.
_SHAPED = st.builds(
    lambda y, mo, d, t, h, mi, s, frac, zone: f"{y}-{mo}-{d}{t}{h}:{mi}:{s}{frac}{zone}",
    st.sampled_from(["0000", "0001", "1900", "1969", "1970", "2000", "2023", "2024", "9999", "２０２６", "999"])
    | st.integers(0, 9999).map("{:04d}".format),
    _two(0, 13) | st.sampled_from(["2", "002"]),
    _two(0, 32) | st.just("٠1"),
    st.sampled_from(["T", "T", "T", "t", " "]),
    _two(0, 24),
    _two(0, 60),
    _two(0, 61),
    st.just("")
    | st.text("0123456789", min_size=0, max_size=11).map(lambda f: "." + f)
    | st.sampled_from([",5", ".５", ".1 "]),
    st.sampled_from(["Z", "Z", "Z", "z", "", "+00:00", "+05:30", "-08:00", "+0530", "Z\n", "ZZ", " Z"]),
)
#: The schema's own form only: every such string is taken, to the millisecond.
_VALID = st.builds(
    lambda w, digits, more: (
        f"{w.year:04d}-{w.month:02d}-{w.day:02d}T{w.hour:02d}:{w.minute:02d}:{w.second:02d}"
        + ("." + (f"{w.microsecond:06d}" + more)[:digits] if digits else "")
        + "Z"
    ),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999_999)),
    st.integers(0, 9),
    st.text("0123456789", min_size=3, max_size=3),
)


#: One part of a schema time bent out of its form or range, at a time (a
#: strategy of independent parts rarely makes every other part valid).
_BENDS: list[tuple[int, int, list[str]]] = [
    (19, 20, ["", "z", "+00:00", "+05:30", "-08:00", "+0530", "Z\n", "ZZ", " Z", ".Z", ".1234567890Z", ",5Z", ".５Z"]),
    (10, 11, ["t", " ", "", "TT"]),
    (0, 4, ["0000", "２０２６", "999", "10000", "-001"]),
    (5, 7, ["00", "13", "2", "002", "٠1"]),
    (5, 10, ["02-29", "02-30", "04-31", "06-31", "02-28", "12-31"]),
    (8, 10, ["00", "32", "1", "٠1"]),
    (11, 13, ["24", "25", "1"]),
    (14, 16, ["60", "1"]),
    (17, 19, ["60", "61", "1"]),
]


def _bent(text: str, bend: tuple[int, int, list[str]], choice: int) -> str:
    """``text`` (a schema date-time without fraction) with characters [a, b) replaced."""
    a, b, options = bend
    return text[:a] + options[choice % len(options)] + text[b:]


_WHOLE_SECONDS = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).map(
    lambda w: f"{w.year:04d}-{w.month:02d}-{w.day:02d}T{w.hour:02d}:{w.minute:02d}:{w.second:02d}Z"
)
_BENT = st.builds(_bent, _WHOLE_SECONDS, st.sampled_from(_BENDS), st.integers(0, 20))


@settings(max_examples=3000, deadline=None)
@given(
    _BENT
    | _BENT.map(lambda t: t[:10])
    | _BENT.map(lambda t: t[:10] + "\n")
    | _SHAPED
    | _SHAPED.map(lambda t: t[:10])
    | st.text(max_size=32)
)
def test_the_parsers_are_the_reference_on_any_string(text: str) -> None:
    _assert_as_before(text)


@settings(max_examples=2000, deadline=None)
@given(_VALID)
def test_every_schema_time_parses_as_before(text: str) -> None:
    _assert_as_before(text)
    assert times.day_or_time_ms(text) == _old_to_ms(_from_digits(text))
    assert times.day_or_time_ms(text[:10]) == _old_to_ms(date.fromisoformat(text[:10]))


@pytest.mark.parametrize(
    "text",
    [
        "2000-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2023-02-29",
        "2024-02-29",
        "2026-03-01T16:20:00+05:30",
        "2026-03-01T16:20:00.5+05:30",
        "2026-03-01T16:20:00.123456789Z",
        "2026-03-01T16:20:00.1234567891Z",
        "1969-12-31T23:59:59.999999999Z",
        "2026-03-01T24:00:00Z",
        "2026-03-01T23:59:60Z",
        "0000-01-01",
        "2026-03-01\n",
        "2026-03-01T16:20:00Z\n",
    ],
)
def test_edge_cases_as_before(text: str) -> None:
    _assert_as_before(text)
