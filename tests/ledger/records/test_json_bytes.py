"""ledger.records.entries.json_bytes must write json_text's UTF-8, byte for byte.

The validator takes a record's canonical bytes from ``json_bytes`` (orjson)
where it took them from ``json_text`` (the json module's C encoder), so the
two are compared on values as ``parse_json`` returns them: every kind of
character in values and keys (control characters, the escaped ones,
U+007F, U+2028, characters beyond U+FFFF, lone surrogates), keys that sort
differently by code point and by UTF-16, integers around 2**53 and beyond
64 bits, and nesting around orjson's limit. Where ``json_text`` cannot
encode, ``json_bytes`` must raise; it may also raise where ``json_text``
writes an integer beyond 2**53 - 1, which no valid record holds.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.records.entries import json_bytes, json_text, parse_json

_TRICKY = '\x00\x08\t\n\x0c\r\x1f"\\/\x7f\x80\xa0\u2028\u2029\ud7ff\ue000\uffff\U00010000\U0010ffff\ud800\udfff'
_chars = st.one_of(st.sampled_from(_TRICKY), st.characters())
_text = st.text(_chars, max_size=12)
_ints = st.one_of(
    st.integers(-(2**53) - 2, -(2**53) + 2),
    st.integers(2**53 - 2, 2**53 + 2),
    st.integers(-(2**70), 2**70),
    st.integers(-1000, 1000),
)
_values = st.recursive(
    st.one_of(st.none(), st.booleans(), _ints, _text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
    max_leaves=20,
)


def _agree(value: Any) -> None:
    try:
        want: bytes | None = json_text(value).encode()
    except UnicodeEncodeError:  # a lone surrogate
        want = None
    try:
        got: bytes | None = json_bytes(value)
    except orjson.JSONEncodeError:
        got = None
    if got is None:
        assert want is None or _has_big_int(value), (value, want)
    else:
        assert got == want


def _has_big_int(value: Any) -> bool:
    if type(value) is int:
        return abs(value) > 2**53 - 1
    if isinstance(value, dict):
        return any(_has_big_int(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_big_int(v) for v in value)
    return False


@settings(max_examples=500, deadline=None)
@given(_values)
def test_json_bytes_is_json_text(value: Any) -> None:
    _agree(value)


@settings(max_examples=500, deadline=None)
@given(_values)
def test_json_bytes_of_what_parse_json_returns(value: Any) -> None:
    """Through JSON text as a request carries it (escaped surrogates and all)."""
    _agree(parse_json(json.dumps(value).encode()))


@pytest.mark.parametrize("c", [chr(c) for c in range(0x80)] + ["\u2028", "\ud800", "\U0001f600"])
def test_every_escape(c: str) -> None:
    _agree({f"k{c}": f"v{c}", "list": [c, {c: c}]})


def test_key_order_beyond_the_bmp() -> None:
    # RFC 8785 orders these two the other way (UTF-16); json_text and json_bytes agree with each other.
    _agree({"\U00010000": 1, "\uffff": 2, "a": 3, "\xe9": 4})


@pytest.mark.parametrize("n", [2**53 - 1, -(2**53 - 1), 0, 10**9])
def test_integers_within_2_53(n: int) -> None:
    assert json_bytes({"n": n}) == json_text({"n": n}).encode()


@pytest.mark.parametrize("n", [2**53, -(2**53), 2**64, -(2**70)])
def test_integers_beyond_2_53_are_refused(n: int) -> None:
    with pytest.raises(orjson.JSONEncodeError):
        json_bytes({"n": n})


@pytest.mark.parametrize("depth", [30, 200, 254, 255, 256, 400])
def test_nesting(depth: int) -> None:
    nested: Any = "x"
    for _ in range(depth):
        nested = [nested]
    _agree_or_refused(nested)


def _agree_or_refused(value: Any) -> None:
    try:
        got = json_bytes(value)
    except orjson.JSONEncodeError:
        return
    assert got == json_text(value).encode()
