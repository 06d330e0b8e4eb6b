"""Records and log entries: canonical bytes, exactly once, here (principle 7).

A platform's record is JSON; its canonical form is RFC 8785 (JSON
Canonicalization Scheme). A log entry is the canonical JSON of::

    {"logged_at": <RFC 3339 UTC, milliseconds>, "record": <record>, "signature": <sig>}

for platform records, and of ``{"logged_at", "registry", "signature"}`` for
the log's own registry events. Anyone holding an entry can therefore recheck
the platform's (or log's) signature from the log alone.

Pure: no I/O, no Flask, no marshmallow.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

import orjson
import rfc8785

from ledger.errors import InvalidInput
from ledger.tlog.tile import MAX_ENTRY_SIZE


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)  # in C: every object of every request passes here
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    for k, _ in pairs:
        if k in seen:
            # Two parsers may disagree on which value wins; a signed record
            # must mean one thing to everyone.
            raise InvalidInput(f"duplicate key {k!r} in JSON object")
        seen.add(k)
    raise AssertionError("a dict shorter than its pairs without a repeated key")


def _reject_constant(name: str) -> Any:
    raise InvalidInput(f"{name} is not JSON")


def parse_json(data: bytes) -> Any:
    """Parse JSON strictly: UTF-8, no duplicate keys, no NaN or Infinity."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"the body is not valid UTF-8 (byte {e.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise InvalidInput("malformed JSON: nested too deeply") from None
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        raise InvalidInput(f"malformed JSON: {e}") from None


_SAFE_INT = 2**53 - 1


def _plain(v: Any) -> bool:
    """Whether ``json.dumps`` writes ``v`` exactly as RFC 8785 does.

    True for strings, booleans, null, integers of magnitude at most
    2**53 - 1 (written as their digits by both; floats are not), and lists
    and objects of those whose keys are ASCII (RFC 8785 sorts keys by UTF-16
    code units, ``sort_keys`` by code points: they agree on ASCII). Both
    escape exactly ``"``, ``\\`` and U+0000 to U+001F with the same table,
    lower-case ``\\u00xx`` included, and write every other character as
    UTF-8; a lone surrogate fails to encode and goes the slow way.
    """
    t = type(v)
    if t is str or t is bool or v is None:
        return True
    if t is dict:
        # Loops, not all() over a generator: this runs for every record.
        for k, x in v.items():  # noqa: SIM110
            if type(k) is not str or not k.isascii() or not _plain(x):
                return False
        return True
    if t is list:
        for x in v:  # noqa: SIM110
            if not _plain(x):
                return False
        return True
    return t is int and -_SAFE_INT <= v <= _SAFE_INT


def _refuse(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
# without building an encoder per call: the C encoder it would use, made
# once (3 of a record's 10 us, and 2 of a signature's 3, went to that).
# No circular-reference markers: a parsed value has no cycles, and a cycle
# recurses until RecursionError, which canonical reports as too deep.
_C_ENCODE = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, _refuse, encode_basestring, None, ":", ",", True, False, True)
)


def json_text(obj: Any) -> str:
    """The compact, key-sorted JSON text of ``obj`` that
    ``json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)`` writes.

    RFC 8785's form, encoded as UTF-8, exactly when :func:`_plain` holds (see
    there); every record schema version 1 accepts is plain (the schema has no
    fractions, no integer beyond 10**9, no field names but its own ASCII
    ones: tests/api/test_record_validator.py walks it), so a validator that
    has this text of a record it accepts has the record's canonical bytes.
    Raises TypeError, ValueError or RecursionError for what JSON cannot hold.
    """
    if _C_ENCODE is None:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return "".join(_C_ENCODE(obj, 0))


_JSON_BYTES_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def json_bytes(obj: Any) -> bytes:
    """``json_text(obj).encode()``, by orjson: a fifth of its CPU on a record
    (3.9 against 20.0 µs a bench record, as measured), for a value that
    :func:`parse_json` returned and that holds no float.

    For such a value the two are equal byte for byte: neither writes
    whitespace; both write ``true``, ``false``, ``null`` and an integer's
    digits alike; both escape exactly ``"``, ``\\`` and U+0000 to U+001F with
    the same table (``\\b \\f \\n \\r \\t``, otherwise ``\\u00xx`` in lower
    case) and write every other character as UTF-8; both sort keys by code
    point (orjson by UTF-8 bytes, the same order), and a dict has no
    repeated key. A float is written otherwise (``1e+20`` against ``1e20``):
    the caller must know there is none, or use the text only where the
    digits do not matter. Raises ``orjson.JSONEncodeError`` (a TypeError)
    where :func:`json_text` would fail to encode (a lone surrogate) and also
    for an integer beyond 2**53 - 1 or nesting beyond 255 levels
    (tests/ledger/records/test_json_bytes.py compares the two)."""
    return orjson.dumps(obj, option=_JSON_BYTES_OPTIONS)


def canonical(obj: Any) -> bytes:
    """Return the RFC 8785 canonical JSON bytes of ``obj``."""
    try:
        # The C encoder, when it provably agrees (five times faster on a
        # record); rfc8785 for everything else, with its own errors.
        if _plain(obj):
            try:
                return json_text(obj).encode()
            except UnicodeEncodeError:
                pass
        return rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError as e:
        raise InvalidInput(f"cannot be canonicalised (RFC 8785): {e}") from None
    except RecursionError:
        raise InvalidInput("nested too deeply") from None


def format_time(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-26T08:00:00.000Z``.

    By arithmetic on the milliseconds, the date from a small cache: a feed
    page formats two times for each of its rows, and a ``datetime`` and its
    ``strftime`` took 2.5 times the CPU of this, back to back (the same
    text for every time from 1970 to 9999: tests/ledger/records/test_times.py).
    """
    if not 0 <= ms < _YEAR_10000_MS:
        dt = datetime.fromtimestamp(ms / 1000, UTC)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    days, in_day = divmod(ms, 86_400_000)
    seconds, milli = divmod(in_day, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_day(days)}{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"


_YEAR_10000_MS = 253_402_300_800_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@functools.lru_cache(maxsize=4096)
def _day(days: int) -> str:
    """``YYYY-MM-DDT`` of the day ``days`` after 1970-01-01."""
    return date.fromordinal(_EPOCH_ORDINAL + days).isoformat() + "T"


def entry_bytes(logged_at_ms: int, kind: str, canonical_body: bytes, signature: dict[str, str]) -> bytes:
    """Build a log entry from already-canonical parts.

    Equal to ``canonical({"logged_at": ..., kind: body, "signature": ...})``:
    RFC 8785 sorts keys by UTF-16 code units and "logged_at" < "record" <
    "registry" < "signature", and a canonical value stays canonical inside a
    canonical object. Building it by concatenation keeps the record's
    canonicalisation out of the sequencer's critical section.
    """
    return join_entry(entry_head(logged_at_ms), entry_tail(kind, canonical_body, signature))


def entry_head(logged_at_ms: int) -> bytes:
    """The start of every entry logged at ``logged_at_ms`` (see :func:`entry_bytes`)."""
    return b'{"logged_at":' + json.dumps(format_time(logged_at_ms)).encode()


#: The length of every :func:`entry_head` up to the year 9999: a
#: millisecond time has one form (ledger/entry_codec.py compresses entry
#: tails against it before their head is known).
ENTRY_HEAD_LENGTH = len(entry_head(0))


def entry_tail(kind: str, canonical_body: bytes, signature: dict[str, str]) -> bytes:
    """The rest of an entry (see :func:`entry_bytes`): known before the time
    it is logged at, so request threads build it outside the sequencer's lock."""
    if kind not in ("record", "registry"):
        raise AssertionError(f"unknown entry kind {kind!r}")
    return b"".join([b',"', kind.encode(), b'":', canonical_body, b',"signature":', canonical(signature), b"}"])


def join_entry(head: bytes, tail: bytes) -> bytes:
    """:func:`entry_head` + :func:`entry_tail`, refused if over the entry size limit."""
    out = head + tail
    if len(out) > MAX_ENTRY_SIZE:
        raise InvalidInput(f"the log entry would be {len(out)} bytes; the limit is {MAX_ENTRY_SIZE}")
    return out


@dataclass(frozen=True)
class Entry:
    """A parsed log entry."""

    logged_at: str
    kind: str  # "record" or "registry"
    body: dict[str, Any]
    signature: dict[str, str]

    @property
    def canonical_body(self) -> bytes:
        return canonical(self.body)


def parse_entry(data: bytes) -> Entry:
    """Parse a log entry, exactly: it must be the canonical form of itself."""
    obj = parse_json(data)
    if not isinstance(obj, dict) or set(obj) not in (
        {"logged_at", "record", "signature"},
        {"logged_at", "registry", "signature"},
    ):
        raise InvalidInput("not a ledger entry")
    if canonical(obj) != data:
        raise InvalidInput("entry is not in canonical form")
    kind = "record" if "record" in obj else "registry"
    return Entry(obj["logged_at"], kind, obj[kind], obj["signature"])
