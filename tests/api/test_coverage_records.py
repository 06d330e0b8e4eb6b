"""Coverage statements are records: signed, validated, logged, superseded visibly (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ledger.db import coverage_statements
from ledger.log import Log
from tests.api.test_submissions import KEY, post
from tests.checklog import check_log
from tests.recordkit import coverage, decision, sign


@pytest.fixture
def platforms(app: Flask) -> Log:
    log: Log = app.extensions["ledger"].log
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    return log


def _rows(log: Log) -> list[Any]:
    with log.read() as s:
        return list(s.execute(select(coverage_statements).order_by(coverage_statements.c.leaf_index)).all())


def test_a_statement_is_logged_and_derives_its_row(client: FlaskClient, platforms: Log) -> None:
    r = post(client, sign(coverage("cov-1"), KEY))
    assert r.status_code == 201, r.json
    [row] = _rows(platforms)
    assert (row.platform, row.record_id, row.period, row.rule_id) == (
        "example-social",
        "cov-1",
        "2026-04",
        "hateful-conduct/dehumanisation",
    )
    assert row.criterion == "listed_classes"
    assert row.supersedes is None
    assert row.counts == (
        '{"legislator":{"label":{"exempted":2,"not_exempted":0},"remove_content":{"exempted":0,"not_exempted":1}},'
        '"ordinary_user":{"none":{"not_exempted":57},"remove_content":{"not_exempted":412}}}'
    )
    got = client.get("/api/v1/platforms/example-social/records/cov-1").json
    assert got["record"]["type"] == "coverage"
    check_log(platforms)


def test_supersession_is_visible_and_only_by_a_statement(client: FlaskClient, platforms: Log) -> None:
    assert post(client, {"records": [sign(coverage("cov-1"), KEY), sign(decision("dec-1"), KEY)]}).status_code == 201
    later = coverage("cov-2", ref="cov-1", submitted_at="2026-05-10T09:00:00Z")
    assert post(client, sign(later, KEY)).status_code == 201
    first = client.get("/api/v1/platforms/example-social/records/cov-1").json
    assert first["history"]["superseded_by"]["record_id"] == "cov-2"
    second = client.get("/api/v1/platforms/example-social/records/cov-2").json
    assert second["history"]["refers_to"]["record_id"] == "cov-1"
    assert second["history"]["superseded_by"] is None
    assert [r.supersedes for r in _rows(platforms)] == [None, "cov-1"]
    # A statement cannot supersede a decision, nor an appeal refer to a statement.
    size = platforms.latest_size()
    bad = post(client, sign(coverage("cov-3", ref="dec-1"), KEY))
    assert bad.status_code == 422
    assert bad.json["errors"][0]["path"] == "record/refs/record_id"
    assert "supersedes only an earlier coverage statement" in bad.json["errors"][0]["message"]
    assert platforms.latest_size() == size
    check_log(platforms)


@pytest.mark.parametrize(
    "changes,path,message",
    [
        ({"period": "2026-13"}, "record/period", "must match"),
        ({"counts": {}}, "record/counts", "must not be empty"),
        ({"counts": {"legislator": {"label": {"exempted": -1}}}}, "record/counts/legislator/label/exempted", "0 to"),
        ({"counts": {"legislator": {"label": {"exempted": 2.0}}}}, "record/counts/legislator/label/exempted", "3.0"),
        ({"counts": {"robot": {"label": {"exempted": 1}}}}, "record/counts/robot", "unknown field"),
        ({"inclusion": {"criterion": "some", "description": "x"}}, "record/inclusion/criterion", "must be one of"),
        (
            {"inclusion": {"criterion": "all_decisions", "description": "x" * 501}},
            "record/inclusion/description",
            "1 to 500",
        ),
        ({"rule": {"id": "r", "version": "1"}}, "record/rule/version", "unknown field"),
    ],
)
def test_bad_statements_are_refused_alike_on_both_databases(
    client: FlaskClient, platforms: Log, changes: dict[str, Any], path: str, message: str
) -> None:
    size = platforms.latest_size()
    r = post(client, sign(coverage("cov-bad", **changes), KEY))
    assert r.status_code == 400, r.json
    assert r.headers["Content-Type"] == "application/problem+json"
    errors = {e["path"]: e["message"] for e in r.json["errors"]}
    assert path in errors, errors
    assert message in errors[path]
    assert platforms.latest_size() == size
    assert _rows(platforms) == []
