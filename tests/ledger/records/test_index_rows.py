"""The feed's index row (``ledger.records.index_rows.index_row``) and the
derived rows built from it are the same, column for column and in the same
order, as the plain definition they replaced (kept here as the reference),
on the documented examples and on generated variants of them: fields
missing, ``null`` or of another type, times of every form the schema takes
and of forms it refuses. A record the schema refuses must fail as it did
(the same exception, the same words), since the audit reports it so.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import derived
from ledger.db import encode_rows
from ledger.errors import InvalidInput
from ledger.records.index_rows import INDEX_COLUMNS, index_row, person_qid, time_ms
from ledger.records.vocab import POLITICAL_CLASSES
from tests.recordkit import EXAMPLES, example

NAMES = sorted(p.stem for p in Path(EXAMPLES).glob("*.json"))


def reference_index_row(leaf_index: int, logged_at_ms: int, record: dict[str, Any]) -> dict[str, Any]:
    """index_row as it was before session 8: the reference."""
    row: dict[str, Any] = dict.fromkeys(INDEX_COLUMNS)
    row |= {
        "leaf_index": leaf_index,
        "platform": record["platform"],
        "type": record["type"],
        "record_id": record["record_id"],
        "ref_record_id": (record.get("refs") or {}).get("record_id"),
        "logged_at_ms": logged_at_ms,
    }
    body = record.get("corrected") if record["type"] == "amendment" else record
    if record["type"] == "appeal":
        row["decided_at_ms"] = time_ms(record.get("decided_at"))
        row["appeal_outcome"] = record.get("outcome")
        return row
    if record["type"] == "coverage":  # a statement about a month: no account, no decision time
        row["decided_at_ms"] = time_ms(record.get("decided_at"))
        row["rule_id"] = (record.get("rule") or {}).get("id")
        return row
    if not isinstance(body, dict):
        row["decided_at_ms"] = time_ms(record.get("decided_at"))
        return row
    # A decision's or amendment's decided_at_ms is its body's, set below
    # (parsing it once: index rows are written for every record).
    account = body.get("account", {})
    subject = account.get("public_subject") or {}
    exemption = body.get("exemption") or {}
    rule = body.get("rule", {})
    # Only the classes: a public target's name stays in the entry, where the
    # record page shows it, and out of the index the feed filters.
    target = body.get("target") or {}
    row.update(
        decided_at_ms=time_ms(body.get("decided_at")),
        flagged_at_ms=time_ms(body.get("flagged_at")),
        account_class=account.get("class"),
        political=account.get("class") in POLITICAL_CLASSES,
        subject_key=account.get("subject_key"),
        display_name=subject.get("display_name"),
        rule_id=rule.get("id"),
        rule_version=rule.get("version"),
        category=body.get("category"),
        severity=body.get("severity"),
        action=body.get("action"),
        violation_found=body.get("violation_found"),
        exemption_applied=exemption.get("applied") if exemption else None,
        exemption_type=exemption.get("type"),
        review_path=body.get("review_path"),
        interim_state=body.get("interim_state"),
        detection_source=body.get("detection_source"),
        automated_decision=body.get("automated_decision"),
        target_class=target.get("class"),
        reporter_class=body.get("reporter_class"),
        abuse_kind=rule.get("abuse"),
        # The account's person, never the target's: see :func:`person_qid`.
        qid=person_qid(body),
        territories="," + ",".join(body.get("territorial_scope", [])) + ",",
        search_text=" ".join(
            str(x)
            for x in (subject.get("display_name"), subject.get("office"), subject.get("handle"), body.get("statement"))
            if x
        ).lower()
        or None,
    )
    return row


def _outcome(fn: Any, *args: Any) -> tuple[Any, ...]:
    """What ``fn(*args)`` gives: its row's items in order, or the exception's type and words."""
    try:
        row = fn(*args)
    except Exception as e:  # the very exception is what is compared
        return ("raised", type(e), str(e))
    return ("row", list(row.items()))


def test_the_examples_index_as_before() -> None:
    assert len(NAMES) >= 8
    for name in NAMES:
        rec = example(name)
        new = _outcome(index_row, 7, 1_790_000_000_123, rec)
        assert new[0] == "row", (name, new)
        assert new == _outcome(reference_index_row, 7, 1_790_000_000_123, rec), name
        assert [c for c, _ in new[1]] == list(INDEX_COLUMNS)


#: Times the schema takes (date-times of 0-9 fraction digits, dates) and some it refuses.
_DATE_TIMES = st.builds(
    lambda y, mo, d, h, mi, s, frac: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}Z",
    st.sampled_from([0, 1, 1900, 1969, 1970, 2000, 2023, 2024, 2026, 9999]) | st.integers(1, 9999),
    st.integers(1, 12),
    st.integers(1, 31),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.just("") | st.text("0123456789", min_size=1, max_size=9).map(lambda f: "." + f),
)
_TIMES = (
    _DATE_TIMES
    | _DATE_TIMES.map(lambda t: t[:10])
    | st.sampled_from(
        ["2026-02-30", "2026-03-01T00:00:00+05:30", "2026-03-01T00:00:00+00:00", "2024-02-29", "", "soon", "Z"]
    )
)
_SCALARS = (
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=6) | _TIMES | st.sampled_from(POLITICAL_CLASSES)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
#: Keys the index reads, so that a generated variant adds them where an example has none.
_KEYS = (
    "decided_at", "flagged_at", "account", "public_subject", "exemption", "rule", "target", "corrected",
    "refs", "record_id", "outcome", "territorial_scope", "statement", "display_name", "office", "handle",
    "wikidata_qid", "class", "applied", "type", "id", "version", "abuse", "subject_key", "category",
)  # fmt: skip


def _dicts(obj: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths of every dict within ``obj`` (not inside lists), ``obj`` first."""
    if not isinstance(obj, dict):
        return []
    return [path] + [p for k, v in obj.items() for p in _dicts(v, (*path, k))]


@st.composite
def variants(draw: st.DrawFn) -> dict[str, Any]:
    """A documented example with up to five fields removed or replaced."""
    rec = copy.deepcopy(example(draw(st.sampled_from(NAMES))))
    for _ in range(draw(st.integers(0, 5))):
        path = draw(st.sampled_from(_dicts(rec)))
        at = rec
        for k in path:
            at = at[k]
        key = draw(st.sampled_from(sorted(at) or _KEYS) | st.sampled_from(_KEYS))
        if draw(st.booleans()):
            at.pop(key, None)
        else:
            at[key] = draw(_VALUES)
    return rec


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variants(), st.integers(0, 2**40), st.integers(-(2**40), 2**45))
def test_index_row_is_the_reference(record: dict[str, Any], leaf_index: int, logged_at_ms: int) -> None:
    assert _outcome(index_row, leaf_index, logged_at_ms, record) == _outcome(
        reference_index_row, leaf_index, logged_at_ms, record
    )


def _reference_values(record: dict[str, Any], record_hash: bytes, key_id: str) -> derived.TupleRows:
    """record_values as it was before session 8: record_rows through ledger.db.encode_rows."""
    rows = derived.record_rows(0, 0, record, record_hash, key_id)
    return {name: encode_rows(derived._BY_NAME[name], table_rows) for name, table_rows in rows.items()}


def _values_outcome(fn: Any, *args: Any) -> tuple[Any, ...]:
    try:
        return ("rows", fn(*args))
    except Exception as e:  # the very exception is what is compared
        return ("raised", type(e), str(e))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variants())
def test_record_values_are_the_encoded_rows(record: dict[str, Any]) -> None:
    """The submission path's tuples (the generated conversion) are what
    encode_rows made of the same rows, codes and refusals alike."""
    record_hash = hashlib.sha256(repr(record).encode()).digest()
    new = _values_outcome(derived.record_values, record, record_hash, "key-1")
    assert new == _values_outcome(_reference_values, record, record_hash, "key-1")


@pytest.mark.parametrize("name", NAMES)
def test_a_value_without_a_code_is_refused_as_before(name: str) -> None:
    rec = example(name)
    rec["type"] = "not-a-type"  # a record the schema refuses: no code for its type
    new = _values_outcome(derived.record_values, rec, b"h" * 32, "key-1")
    assert new[0] == "raised", new
    assert "has no code" in new[2], new
    assert new == _values_outcome(_reference_values, rec, b"h" * 32, "key-1")


#: Single breakages of a record, each a path to a field and a value the schema refuses there.
_BREAKAGES: list[tuple[tuple[str, ...], Any]] = [
    (("decided_at",), "soon"),
    (("flagged_at",), "2026-02-30"),
    (("account",), "x"),
    (("account",), None),
    (("account", "public_subject"), "x"),
    (("rule",), "x"),
    (("exemption",), "x"),
    (("exemption",), [1]),
    (("target",), "x"),
    (("territorial_scope",), [1]),
    (("territorial_scope",), 5),
    (("refs",), "x"),
    (("rule",), None),
    (("corrected",), "x"),
    (("corrected", "decided_at"), "soon"),
    (("corrected", "account"), "x"),
    (("corrected", "account", "public_subject"), 1),
    (("corrected", "territorial_scope"), [None]),
]


def _broken(rec: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    at = rec
    for k in path[:-1]:
        at = at.get(k) if isinstance(at, dict) else None
    if isinstance(at, dict):
        at[path[-1]] = value


@pytest.mark.parametrize("name", NAMES)
def test_two_breakages_fail_as_before(name: str) -> None:
    """Which of two problems a refused record is reported with does not change."""
    for first in _BREAKAGES:
        for second in _BREAKAGES:
            rec = example(name)
            _broken(rec, *first)
            _broken(rec, *second)
            assert _outcome(index_row, 1, 2, rec) == _outcome(reference_index_row, 1, 2, rec), (first, second)


def reference_entry_rows(leaf_index: int, data: bytes) -> derived.Rows:
    """derived.entry_rows as it was before session 8 (a set of the keys, every logged_at parsed)."""
    try:
        obj = derived._parse(data)
    except ValueError:
        return {}
    if not isinstance(obj, dict) or set(obj) not in derived._ENTRY_KEYS:
        return {}
    logged_at_ms = time_ms(obj["logged_at"])
    if logged_at_ms is None:
        raise InvalidInput(f"entry {leaf_index}: logged_at is not a time")
    if "registry" in obj:
        return derived.registry_rows(leaf_index, logged_at_ms, obj["registry"])
    body = data[data.index(b'"record":') + len(b'"record":') : data.rindex(b',"signature":')]
    record_hash = hashlib.sha256(body).digest()
    return derived.record_rows(leaf_index, logged_at_ms, obj["record"], record_hash, obj["signature"]["key_id"])


#: logged_at values, repeated (as a group commit's entries share one) or not,
#: and some that are not times: an earlier good value must not stand for them.
_LOGGED_AT = st.sampled_from(
    ["2026-03-01T16:20:00.123Z", "2026-03-01T16:20:00.124Z", "2026-03-01", "", "soon", None, 5, "2026-02-30T00:00:00Z"]
)


@st.composite
def entries(draw: st.DrawFn) -> bytes:
    obj: dict[str, Any] = {
        "logged_at": draw(_LOGGED_AT),
        "record": example(draw(st.sampled_from(NAMES))),
        "signature": {"key_id": "k1", "value": "AAAA"},
    }
    if draw(st.integers(0, 9)) == 0:
        obj[draw(st.sampled_from(["registry", "extra"]))] = {}
    if draw(st.integers(0, 9)) == 0:
        del obj[draw(st.sampled_from(sorted(obj)))]
    return json.dumps(obj, separators=(",", ":")).encode()


def _rows_outcome(fn: Any, *args: Any) -> tuple[Any, ...]:
    try:
        return ("rows", fn(*args))
    except Exception as e:  # the very exception is what is compared
        return ("raised", type(e), str(e))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entries(), min_size=1, max_size=12))
def test_entry_rows_are_the_reference_in_any_order(log: list[bytes]) -> None:
    """entry_rows remembers the last logged_at it parsed: in any sequence of
    entries, each derives what the reference derives from it alone."""
    for i, data in enumerate(log):
        assert _rows_outcome(derived.entry_rows, i, data) == _rows_outcome(reference_entry_rows, i, data), data


@pytest.mark.parametrize("logged_at", [None, "", 0, False, [], {}])
def test_the_first_entry_of_a_process_is_not_taken_for_a_remembered_one(logged_at: Any) -> None:
    """Before entry_rows has parsed any logged_at, no value may match what it remembers."""
    data = json.dumps({"logged_at": logged_at, "record": example(NAMES[0]), "signature": {"key_id": "k"}})
    code = (
        "import sys; from ledger import derived\n"
        "try:\n    derived.entry_rows(0, sys.argv[1].encode())\n"
        "except derived.InvalidInput as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, data], capture_output=True, text=True, check=True)
    assert ("raised", InvalidInput, done.stdout.strip()) == _rows_outcome(reference_entry_rows, 0, data.encode())
