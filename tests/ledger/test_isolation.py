"""One submitter's record that the database refuses fails alone (issue 12).

The committer appends every queued submission as one group. If the
database refuses the group because of one submission's data (a value it
cannot store, which every check of ours accepted), the committer appends
each submission alone: the others are logged, and only the one at fault
fails, with a 422 that says the database refused it (a retry of the same
data cannot succeed, so not 503). Tested on both databases with a trigger
that refuses one record_id, standing in for any such value.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from keys.records import PlatformKey
from ledger.db import is_sqlite
from ledger.log import Log
from tests.checklog import check_log
from tests.recordkit import decision, sign

KEY_A = PlatformKey(b"\x51" * 32)
KEY_B = PlatformKey(b"\x52" * 32)


def _refuse_poison(log: Log) -> None:
    with log.engine.begin() as conn:
        if is_sqlite(log.engine):
            conn.execute(
                text(
                    "CREATE TRIGGER test_poison BEFORE INSERT ON record_index WHEN NEW.record_id = 'poison' "
                    "BEGIN SELECT RAISE(ABORT, 'test: the database cannot store this value'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "IF NEW.record_id = 'poison' THEN RAISE EXCEPTION 'test: the database cannot store this value' "
                    "USING ERRCODE = '22023'; END IF; RETURN NEW; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER test_poison BEFORE INSERT ON record_index FOR EACH ROW "
                    "EXECUTE FUNCTION test_poison()"
                )
            )


def test_a_refused_record_fails_alone(app: Flask, client: FlaskClient) -> None:
    log: Log = app.extensions["ledger"].log
    log.registry.add_platform("example-social", "Example Social", KEY_A.public_key)
    log.registry.add_platform("other-video", "Other Video", KEY_B.public_key)
    _refuse_poison(log)
    good = {"records": [sign(decision(f"good-{i}"), KEY_A) for i in range(5)]}
    poison = {"records": [sign(decision("poison", platform="other-video"), KEY_B)]}
    answers: dict[str, Any] = {}

    def post(name: str, body: dict[str, Any]) -> None:
        answers[name] = app.test_client().post("/api/v1/records", json=body)

    # Queue both submissions while the committer is busy, so that it takes
    # them as one group: it holds the sequencer's lock for a first append.
    warm = threading.Thread(target=post, args=("warm", {"records": [sign(decision("warm"), KEY_A)]}))
    with log.sequencer._lock:  # white-box: the only way to make the grouping certain
        warm.start()
        time.sleep(0.2)
        threads = [threading.Thread(target=post, args=a) for a in (("good", good), ("poison", poison))]
        for t in threads:
            t.start()
        time.sleep(0.3)
    for t in [warm, *threads]:
        t.join(30)
    assert answers["warm"].status_code == 201
    assert answers["good"].status_code == 201, answers["good"].json
    assert answers["poison"].status_code == 422, answers["poison"].json
    assert "Retry-After" not in answers["poison"].headers
    assert "the database refused the data" in answers["poison"].json["detail"]
    logged = {r["record_id"] for r in client.get("/api/v1/records?limit=200").json["records"]}
    assert logged == {"warm"} | {f"good-{i}" for i in range(5)}
    check_log(log)


@pytest.mark.parametrize("rounds", [3])
def test_a_refused_record_never_fails_another(app: Flask, rounds: int) -> None:
    """Without white-box help: concurrent good and refused submissions."""
    log: Log = app.extensions["ledger"].log
    log.registry.add_platform("example-social", "Example Social", KEY_A.public_key)
    log.registry.add_platform("other-video", "Other Video", KEY_B.public_key)
    _refuse_poison(log)
    statuses: list[tuple[str, int]] = []

    def post(name: str, body: dict[str, Any]) -> None:
        statuses.append((name, app.test_client().post("/api/v1/records", json=body).status_code))

    for r in range(rounds):
        threads = [threading.Thread(target=post, args=("good", sign(decision(f"g-{r}-{i}"), KEY_A))) for i in range(8)]
        threads.append(
            threading.Thread(target=post, args=("poison", sign(decision("poison", platform="other-video"), KEY_B)))
        )
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert sorted(set(statuses)) == [("good", 201), ("poison", 422)]
    check_log(log)
