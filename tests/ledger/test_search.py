"""The feed's text search is a substring match of the search text on both
databases: SQLite's full-text index keeps no positions (migration
0010_storage), so its candidates are checked against the text itself."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from keys.records import PlatformKey
from ledger.db import writer
from ledger.log import Log
from ledger.query import Feed, feed, index_row, insert_index
from tests.recordkit import decision

TEXTS = [
    "the quick brown fox",
    "brown the quick",
    'a*b [x] 100% under_score "quoted" back\\slash',
    "ünïcödé straße",
    "aaa",
    "abcab",
]
QUERIES = [
    "quick brown",
    "own the q",
    "a*b",
    "[x]",
    "100%",
    "_sc",
    '"quoted"',
    "k\\s",
    "straße",
    "ünï",
    "aaaa",
    "bca",
    "cab",
]


KEY = PlatformKey(b"\x31" * 32)


@pytest.mark.parametrize("q", QUERIES)
def test_search_finds_exactly_the_texts_holding_it(log: Log, q: str) -> None:
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    first = log.latest_size()
    rows = []
    for i, t in enumerate(TEXTS, first):
        row = index_row(i, 0, decision(f"d-{i}"))
        rows.append(row | {"search_text": t, "record_hash": bytes(32), "key_id": KEY.key_id})
    with Session(writer(log.engine)) as s, s.begin():
        insert_index(s, rows)
    with log.read() as s:
        found = {r["leaf_index"] for r in feed(s, Feed(q=q, direct=True, limit=200), first + len(TEXTS), None)}
    assert found == {i for i, t in enumerate(TEXTS, first) if q in t}
    assert found or q in ("aaaa",)  # each query but one finds something: the check is not vacuous
