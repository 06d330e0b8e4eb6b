"""The protection section on /stats and the platform pages, and the election-period
pages, through the real app on SQLite and PostgreSQL: the planted protection
disparity is stated, the Simpson's decoy is not, an election period narrows the
figures to its dates, and a bad LEDGER_ELECTION_PERIODS stops the app at start."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.ledger.evenness.test_protection import planted
from tests.ledger.test_evenness import KEYS
from tests.recordkit import sign
from web.views_elections import parse_periods

NAMES = {"slow-video": "other-video", "decoy-social": "third-forum"}
PERIODS = [
    {"slug": "autumn-2026", "name": "Autumn 2026 general election", "from": "2026-09-01", "to": "2026-12-01"},
    {"slug": "spring-2026", "name": "Spring 2026 primaries", "from": "2026-03-01", "to": "2026-06-01"},
]


def threats() -> list[dict[str, Any]]:
    return [r | {"platform": NAMES[r["platform"]]} for r in planted()]


@pytest.fixture
def site(db_url: str, key_file: Path) -> Iterator[FlaskClient]:
    config = {"TESTING": True, "DATABASE_URL": db_url, "KEY_FILE": str(key_file), "ORIGIN": "test.example/ledger"}
    application: Flask = create_app(config | {"DERIVED_CHECK_SECONDS": 0, "ELECTION_PERIODS": PERIODS})
    with application.app_context():
        application.extensions["ledger"].initialise()
    log = application.extensions["ledger"].log
    for slug, key in KEYS.items():
        log.registry.add_platform(slug, slug.replace("-", " ").title(), key.public_key)
    client = application.test_client()
    records = threats()
    for start in range(0, len(records), 500):
        items = [sign(r, KEYS[r["platform"]]) for r in records[start : start + 500]]
        r = client.post("/api/v1/records", json={"records": items})
        assert r.status_code == 201, r.json
    yield client
    application.extensions["ledger"].close()


def text(client: FlaskClient, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    return html.unescape(re.sub(r"\s+", " ", r.get_data(as_text=True)))


def test_protection_section_on_stats_and_platform_pages(site: FlaskClient) -> None:
    page = text(site, "/stats")
    assert "Protection: whom the content targeted" in page
    [sentence] = re.findall(r"<li>(On other-video[^<]*threats aimed at election workers were decided[^<]*)</li>", page)
    assert "against " in sentence
    assert "for threats aimed at ordinary users" in sentence
    assert "On third-forum" not in re.sub(r"<table.*?</table>", "", page)  # the decoy is not stated as a finding
    assert sentence in text(site, "/stats/other-video")
    decoy = text(site, "/stats/third-forum")
    assert "Protection: whom the content targeted" in decoy
    assert "threats aimed at election workers were decided" not in decoy
    assert "Election worker" in decoy  # its cells are shown, as figures


def test_election_period_page(site: FlaskClient) -> None:
    index = text(site, "/elections")
    assert "Autumn 2026 general election" in index
    assert 'href="/elections/autumn-2026"' in index
    page = text(site, "/elections/autumn-2026")
    assert "<h1>Autumn 2026 general election</h1>" in page
    size = site.get("/checkpoint").get_data(as_text=True).split("\n")[1]
    assert f"at tree size {size} (root hash " in page  # the checkpoint, named by its root
    assert "What these figures cannot show" in page
    assert "threats aimed at election workers were decided in a median of" in page
    assert "method_version=2" in page
    assert "decided_from=2026-09-01" in page
    # The installable client recomputes the figures at this very tree size.
    assert f"<code>mdl evenness --tree-size {size} --method-version 2 --decided-from 2026-09-01" in page
    # Before any threat was decided: nothing to show, and said so.
    empty = text(site, "/elections/spring-2026")
    assert "recorded no decision in this period" in empty
    assert "were decided in a median of" not in empty
    assert site.get("/elections/no-such-period").status_code == 404


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "Expecting value"),
        ({"slug": "x"}, "must be a JSON list"),
        ([{"slug": "Bad Slug", "name": "n", "from": "2026-01-01", "to": "2026-02-01"}], "slug must be"),
        ([{"slug": "a", "name": "n", "from": "2026-02-01", "to": "2026-01-01"}], "to must be after from"),
        ([{"slug": "a", "name": "n", "from": "2026-02-30", "to": "2026-03-01"}], "from must be a date"),
        ([{"slug": "a", "name": "n", "from": "2026-01-01"}], "exactly slug, name, from and to"),
        ([PERIODS[0], PERIODS[0]], "used twice"),
    ],
)
def test_bad_periods_are_refused(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_periods(value)


def test_periods_from_the_environment_text() -> None:
    import json

    [period] = parse_periods(json.dumps(PERIODS[:1]))
    assert (period.slug, period.start.isoformat(), period.end.isoformat()) == (
        "autumn-2026",
        "2026-09-01",
        "2026-12-01",
    )
    assert parse_periods("") == ()


def test_record_page_says_whom_it_targeted(site: FlaskClient) -> None:
    rec = threats()[0]
    page = text(site, f"/records/{rec['platform']}/{rec['record_id']}")
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Whom it targeted Aimed at Election worker" in words
    assert "Reported by An ordinary user" in words
    assert "The rule is against Threats" in words
    assert "Other fields" not in words
