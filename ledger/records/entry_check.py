"""Parse log entries as :func:`ledger.records.entries.parse_entry` does, about 4x faster.

``parse_entry`` proves an entry canonical by re-serialising it with the
pure-Python RFC 8785 encoder: a few hundred microseconds per record entry,
and most of the time of a client that mirrors or audits the whole log. For
the entries a log actually holds, the json module's C encoder gives the
same proof (used by the client's ``mirror`` and ``verify --full``, and by
``ledger reindex``).

**Claim.** Let ``D(v)`` be ``json.dumps(v, ensure_ascii=False,
separators=(",", ":"), sort_keys=True)`` encoded as UTF-8. If ``data``
decodes as UTF-8 to a value ``v`` in which every number is an integer of
magnitude at most 2**53 - 1, and ``data`` holds no character beyond
U+FFFF, then ``D(v) == data`` implies ``rfc8785.dumps(v) == data``, and
also that no object in ``data`` repeats a key. Proof, by the kinds of
value (RFC 8785 section 3.2.2):

* ``true``, ``false``, ``null`` and the separators are written alike.
* Integers in that range: RFC 8785 writes the shortest ECMAScript form of
  the double, which for a safe integer is its decimal digits, as ``str``
  does. Larger integers are refused by rfc8785; floats are not safe (1.0,
  1e-7 and 1e+20 are written differently) and never reach the comparison.
* Strings: both escape exactly ``"``, ``\\`` and U+0000 to U+001F, with
  the same table (``\\b \\f \\n \\r \\t``, otherwise ``\\u00xx`` in lower
  case), and write every other character as UTF-8. A lone surrogate
  (from a ``\\ud800`` escape) cannot be encoded, so it never compares equal.
* Object members: RFC 8785 sorts keys by UTF-16 code units, ``sort_keys``
  by code points. The two orders differ only between a character beyond
  U+FFFF (a surrogate pair) and one from U+E000 to U+FFFF; the first kind
  is excluded by :func:`_beyond_bmp` (such a character is two code units
  in UTF-16), since ``D(v) == data`` writes every key raw.
* ``json.loads`` keeps the last of repeated keys, but ``D`` writes each
  key once, so a repeated key makes ``D(v)`` differ from ``data``.

Anything else (floats, large integers, characters beyond U+FFFF, bytes
that are not canonical) goes to ``parse_entry`` itself, so the result and
the errors are exactly its own. tests/ledger/records/test_entry_check.py compares the two
on each of the differences above and on random values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from ledger.records.entries import Entry, canonical, parse_entry

_SAFE_INT = 2**53 - 1
_KEYS = ({"logged_at", "record", "signature"}, {"logged_at", "registry", "signature"})


@dataclass(frozen=True)
class CanonicalEntry:
    """A parsed entry with the RFC 8785 bytes of its body and its signature."""

    entry: Entry
    body: bytes
    signature: bytes


class _Slow(Exception):
    """The fast path cannot decide; ask parse_entry."""


def _int(text: str) -> int:
    n = int(text)
    if not -_SAFE_INT <= n <= _SAFE_INT:
        raise _Slow
    return n


def _not_fast(_text: str) -> object:
    raise _Slow


# Built once: json.dumps and json.loads with options build a new encoder or
# decoder per call, about a tenth of the fast path's time per entry. The C
# encoder is called directly, as ``JSONEncoder.encode`` calls it, without its
# per-call set-up: ``_ENCODE(v)`` is ``_ENCODER.encode(v)`` (no circular-reference
# markers, which only guard values that contain themselves, and parsed JSON
# never does).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
_ENCODE: Callable[[object], str] = _ENCODER.encode
if c_make_encoder is not None:
    _c_encoder = c_make_encoder(None, _ENCODER.default, encode_basestring, None, ":", ",", True, False, True)

    def _ENCODE(value: object) -> str:  # noqa: N802
        return "".join(_c_encoder(value, 0))


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_not_fast, parse_constant=_not_fast)
# The scanner alone, without ``decode``'s skipping of whitespace around the
# value: canonical bytes have none, so an entry with any goes the slow way.
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _beyond_bmp(text: str) -> bool:
    """Whether ``text`` (decoded from UTF-8, so holding no lone surrogate) has a character beyond U+FFFF."""
    return not text.isascii() and len(text.encode("utf-16-le")) != 2 * len(text)


def _fast(data: bytes) -> CanonicalEntry | None:
    try:
        text = data.decode()
        if _beyond_bmp(text):
            return None
        obj, end = _SCAN(text, 0)
        if end != len(text) or type(obj) is not dict or obj.keys() not in _KEYS:
            return None
        kind = "record" if "record" in obj else "registry"
        # D(obj), its three keys in code-point order ("logged_at" < "record",
        # "registry" < "signature"), spelled out and compared part by part
        # with the text: each part is encoded once, and the body's and
        # signature's text are the parts compared. Comparing text is comparing
        # bytes: ``text`` is the strict UTF-8 decoding of ``data``, so it holds
        # no surrogate, and a D(v) holding one (from an escape) differs from it.
        head = f'{{"logged_at":{_ENCODE(obj["logged_at"])},"{kind}":'
        body = _ENCODE(obj[kind])
        tail = f',"signature":{_ENCODE(obj["signature"])}}}'
        if (
            len(head) + len(body) + len(tail) != len(text)
            or not text.startswith(head)
            or not text.startswith(body, len(head))
            or not text.endswith(tail)
        ):
            return None
    except (_Slow, StopIteration, ValueError, RecursionError, UnicodeError):  # JSONDecodeError is a ValueError
        return None
    sig = tail[len(',"signature":') : -1]
    return CanonicalEntry(Entry(obj["logged_at"], kind, obj[kind], obj["signature"]), body.encode(), sig.encode())


def parse_canonical_entry(data: bytes) -> CanonicalEntry:
    """Return what ``parse_entry(data)`` returns, with the canonical bytes of
    its body and signature; raise exactly what it raises."""
    fast = _fast(data)
    if fast is not None:
        return fast
    entry = parse_entry(data)
    return CanonicalEntry(entry, canonical(entry.body), canonical(entry.signature))
