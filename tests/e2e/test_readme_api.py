"""The README's API examples name parameters the API accepts.

Every query parameter is parsed with ``unknown = RAISE``, so a name the
README shows but the API does not know (``rule=`` for ``rule_id=``) is a
400. This test reads each ``/api/v1/…?name=…`` example from the README,
fills in a valid value for each parameter it shows, and calls it.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

from ledger.evenness_store import GROUPS, METRICS

README = Path(__file__).resolve().parents[2] / "README.md"

# "/api/v1/stats/evenness[?tree_size=N&rule=…]" or "/api/v1/export?start=&end=&format=ndjson|csv"
EXAMPLE = re.compile(r"(/api/v1/[\w/.-]*)\[?\?([^\s`]*)")

#: A valid value for each parameter name the API knows; a name missing here is sent as "x".
VALUES = {
    "tree_size": "0",
    "platform": "example-social",
    "political": "true",
    "rule_id": "civic/false-claims",
    "group": next(iter(GROUPS)),
    "metric": METRICS[0],
    "decided_from": "2026-01-01T00:00:00Z",
    "decided_to": "2026-02-01T00:00:00Z",
    "start": "0",
    "end": "1",
    "format": "csv",
    "leaf_index": "0",
    "leaf_hash": "00" * 32,
    "first": "0",
    "second": "0",
    "account_class": "candidate",
    "period_from": "2026-01",
    "period_to": "2026-02",
    "status": "incomplete",
    "method_version": "2",
    "subject_key": "a" * 16,
    "sort": "decided",
    "direct": "true",
    "qid": "Q4115189",
}


def readme_examples(text: str) -> list[tuple[str, list[str]]]:
    """(path, parameter names) of each API example with a query string, in README order."""
    found = []
    for m in EXAMPLE.finditer(text):
        names = [part.split("=", 1)[0] for part in m.group(2).replace("[", "").replace("]", "").split("&")]
        found.append((m.group(1), [n for n in names if n]))
    return found


def test_the_walk_finds_the_readmes_examples() -> None:
    examples = readme_examples(README.read_text())
    paths = {p for p, _ in examples}
    assert {"/api/v1/stats/evenness", "/api/v1/export", "/api/v1/proofs/inclusion", "/api/v1/feed.csv"} <= paths
    for _, names in examples:
        assert names
        assert all(re.fullmatch(r"[a-z_]+", n) for n in names), names
    assert readme_examples("`GET /api/v1/x[?a=N&b=…]` and `/api/v1/y?c=&d=1|2`") == [
        ("/api/v1/x", ["a", "b"]),
        ("/api/v1/y", ["c", "d"]),
    ]


def test_every_parameter_the_readme_shows_is_accepted(client: FlaskClient) -> None:
    for path, names in readme_examples(README.read_text()):
        query = "&".join(f"{n}={VALUES.get(n, 'x')}" for n in names)
        r = client.get(f"{path}?{query}")
        assert r.status_code != 400, (path, query, (r.get_json() or {}).get("errors"))
