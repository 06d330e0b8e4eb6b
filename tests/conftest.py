"""Fixtures, after Flask's tutorial: ``app``, ``client``, ``runner``; plus a
database per test on SQLite and, when LEDGER_TEST_POSTGRES_URL is set, on
PostgreSQL too, each built through the real migrations.

PostgreSQL tests each get a fresh schema, dropped afterwards: the log's
triggers forbid DELETE and TRUNCATE, and the next run must find the
database as it was.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, create_engine, text

from app import create_app
from keys.keyfile import write_signer
from keys.note import Signer
from ledger.db import make_engine
from ledger.log import Log
from ledger.migrate import upgrade

PG_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL")
ORIGIN = "test.example/ledger"
# A fixed test key, so failures reproduce byte for byte.
TEST_SEED = bytes(range(32))

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason="set LEDGER_TEST_POSTGRES_URL to run PostgreSQL tests"),
    ),
]


def _pg_schema_url(schema: str) -> str:
    assert PG_URL
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database, SQLite or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        return
    assert PG_URL
    schema = f"test_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database."""
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def signer() -> Signer:
    return Signer.from_seed(ORIGIN, TEST_SEED)


@pytest.fixture
def log(engine: Engine, signer: Signer) -> Log:
    """An initialised, empty log."""
    lg = Log(engine, signer)
    lg.sequencer.init()
    return lg


@pytest.fixture
def key_file(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "keys" / "log.key"
    write_signer(path, signer)
    return path


@pytest.fixture
def app(db_url: str, key_file: Path) -> Iterator[Flask]:
    # The derived-row watcher runs in tests that start it (tests/ledger/test_derived.py).
    config = {"TESTING": True, "DATABASE_URL": db_url, "KEY_FILE": str(key_file), "ORIGIN": ORIGIN}
    application = create_app(config | {"DERIVED_CHECK_SECONDS": 0})
    with application.app_context():
        application.extensions["ledger"].initialise()
    yield application
    application.extensions["ledger"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()
