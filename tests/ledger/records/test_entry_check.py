"""ledger.records.entry_check's fast path must decide exactly as parse_entry does.

Each difference between ``json.dumps`` and RFC 8785 that the module's
proof relies on excluding gets a case of its own, and random values
(floats, large integers, every kind of character, keys that sort
differently by code point and by UTF-16) are compared on their canonical
bytes and on near misses.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.records.entries import canonical, parse_entry
from ledger.records.entry_check import _fast, parse_canonical_entry

SIG = {"alg": "ed25519", "key_id": "0123456789abcdef", "value": "AAAA"}
T = "2026-01-01T00:00:00.000Z"


def _same(data: bytes) -> None:
    """parse_canonical_entry(data) agrees with parse_entry(data): result or error."""
    try:
        want = parse_entry(data)
    except InvalidInput as e:
        message = str(e)
    else:
        message = ""
    if message:
        with pytest.raises(InvalidInput) as raised:
            parse_canonical_entry(data)
        assert str(raised.value) == message
        return
    got = parse_canonical_entry(data)
    assert got.entry == want
    assert got.body == canonical(want.body)
    assert got.signature == canonical(want.signature)
    _rfc8785_agrees(data)


def _rfc8785_agrees(data: bytes) -> None:
    """Where the fast path accepts ``data``, rfc8785 writes exactly those bytes, body and signature."""
    fast = _fast(data)
    if fast is None:
        return
    e = fast.entry
    assert rfc8785.dumps({"logged_at": e.logged_at, e.kind: e.body, "signature": e.signature}) == data
    assert rfc8785.dumps(e.body) == fast.body
    assert rfc8785.dumps(e.signature) == fast.signature


def _entry(body: Any, kind: str = "record") -> bytes:
    return canonical({"logged_at": T, kind: body, "signature": SIG})


@pytest.mark.parametrize(
    "raw",
    [
        '{"x":1.0}',  # json.dumps writes 1.0, RFC 8785 writes 1
        '{"x":1}',
        '{"x":1e-7}',
        '{"x":1e-07}',
        '{"x":100000000000000000000.0}',
        '{"x":1e+20}',
        '{"x":100000000000000000000}',
        '{"x":9007199254740991}',  # 2**53 - 1: the largest safe integer
        '{"x":9007199254740992}',  # 2**53: rfc8785 refuses it
        '{"x":-9007199254740992}',
        '{"x":-0}',
        '{"x":NaN}',
        '{"x":Infinity}',
        '{"\\ud83d\\ude00":1,"\\uffff":2}',  # escaped: not canonical either way
        '{"\U0001f600":1,"\uffff":2}',  # code-point order; UTF-16 puts the emoji first
        '{"\uffff":2,"\U0001f600":1}',  # UTF-16 order: the canonical one
        '{"x":"\\ud800"}',  # a lone surrogate
        '{"x":"\u2028\u007f\\u001f\\n\\"\\\\"}',
        '{"x":"\\u000a"}',
        '{"x":"\\u001F"}',
        '{"x":1,"x":1}',  # a repeated key
        '{"x":{"y":1,"y":1}}',
        '{"b":1,"a":2}',
        '{ "x":1}',
        '{"x":[1,2,{"a":true,"b":false,"c":null}]}',
        # orjson's own forms where they are not RFC 8785's
        '{"x":[1.0]}',  # orjson writes 1.0 as 1.0
        '{"x":[0,-1.5]}',
        '{"x":1e+16}',  # orjson's exponent form; RFC 8785 writes 10000000000000000
        '{"x":1E5}',
        '{"x":18446744073709551615}',  # 2**64 - 1: an integer to orjson, beyond 2**53 - 1
        '{"x":18446744073709551616}',  # 2**64: orjson reads a float
        '{"x":"12:00:00.5","y":"a,1.5"}',  # float-like text in strings: still canonical
        '{"\ue000":1,"😀":2}',  # code-point order; UTF-16 puts the emoji first
        '{"é":1,"￿":2,"z":3}',  # non-ASCII keys within U+FFFF: both orders agree
        '{"z":3,"é":1,"￿":2}',
        '{"x":"é😀"}',  # beyond U+FFFF in a value only
    ],
)
def test_each_difference_between_json_dumps_and_rfc8785(raw: str) -> None:
    inner = raw.encode()
    data = b'{"logged_at":"' + T.encode() + b'","record":' + inner + b',"signature":' + canonical(SIG) + b"}"
    _same(data)
    _same(data + b" ")
    _same(data.replace(b'"record"', b'"registry"'))


def test_the_fast_path_takes_ordinary_entries() -> None:
    body = {"platform": "p", "record_id": "r-1", "n": 3, "text": "café \u00e9 \uffff", "list": [True, None]}
    got = _fast(_entry(body))
    assert got is not None
    assert got.entry.body == body
    assert _fast(_entry({"x": 1.5})) is None  # floats: parse_entry decides
    assert _fast(_entry({"é": 1, "\uffff": [2, {"\u00e9t\u00e9": "x"}]})) is not None  # keys within U+FFFF
    assert _fast(_entry({"x": "\U0001f600"})) is None  # beyond U+FFFF: parse_entry decides
    _same(_entry({"x": "\U0001f600"}))


def test_not_entries() -> None:
    for data in [b"", b"[]", b'{"logged_at":"x"}', b"\xff", canonical({"a": 1}), b"1" * 5000]:
        _same(data)
    _same(b'{"logged_at":"' + T.encode() + b'","record":{},"registry":{},"signature":{}}')


_keys = st.text(st.characters(codec="utf-8"), max_size=4) | st.sampled_from(["\uffff", "\U0001f600", "\ue000", "a"])
_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.sampled_from([2**53 - 1, 2**53, -(2**53 - 1), -(2**53), 2**63, 2**64 - 1, 0.0, -0.0, 1.0, 1e16, 1e21, 5e-7])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=8)
)
_values = st.recursive(
    _leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4), max_leaves=12
)


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(_keys, _values, max_size=5), kind=st.sampled_from(["record", "registry"]))
def test_random_values(body: dict[str, Any], kind: str) -> None:
    obj = {"logged_at": T, kind: body, "signature": SIG}
    try:
        data = canonical(obj)
    except InvalidInput:  # e.g. an integer beyond 2**53
        data = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    _same(data)
    # json.dumps's own form, which differs from RFC 8785 exactly where the fast path must not trust it.
    _same(json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8", "surrogatepass"))
    _same(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())  # \\u escapes: never canonical
    # orjson's own form (floats as 1.0 or 1e+16, keys by code point): accepted only where rfc8785 agrees.
    _same(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))
