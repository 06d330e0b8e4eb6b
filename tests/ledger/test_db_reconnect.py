"""A pooled connection whose server end died, without the pool's pre-ping
(ledger/db.py): a read transaction whose first statement finds it dead is
begun again on a fresh connection, and so is an append that has written
nothing yet; an append whose connection dies after it began is not retried
(503, nothing written) and the next one succeeds.

PostgreSQL: the backends of the test's own connections (by their
``application_name``) are ended with ``pg_terminate_backend``, what a
restart or a dropped connection looks like to the server. SQLite has no
server end to lose: there the same reads and appends run through the same
code, and a first statement that fails for another reason is not retried.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.orm import Session

from app import create_app
from keys.note import Signature, Signer
from keys.records import PlatformKey
from ledger import storage
from ledger.cosign import Cosigner
from ledger.db import connection_sql, cosignatures, make_engine
from ledger.errors import StorageError
from ledger.log import Log
from ledger.migrate import upgrade
from ledger.sequencer import Plan
from ledger.tlog.checkpoint import open_checkpoint
from ledger.tlog.tile import Tile
from tests.checklog import check_log
from tests.conftest import ORIGIN, PG_URL
from tests.recordkit import decision, sign

KEY = PlatformKey(bytes([13]) * 32)


@pytest.fixture
def app_name() -> str:
    return f"ledger-reconnect-{secrets.token_hex(4)}"


@pytest.fixture
def pooled(db_url: str, app_name: str) -> Iterator[Engine]:
    """A migrated database through an engine as the server makes it (a pool, no pre-ping)."""
    args = {} if db_url.startswith("sqlite") else {"connect_args": {"application_name": app_name}}
    engine = make_engine(db_url, pool_size=5, max_overflow=0, **args)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def plog(pooled: Engine, signer: Signer) -> Log:
    lg = Log(pooled, signer)
    lg.sequencer.init()
    lg.sequencer.append([b"entry 0", b"entry 1", b"entry 2"])
    return lg


def _kill_backends(engine: Engine, app_name: str) -> int:
    """End the PostgreSQL backend of every connection ``engine`` has open
    (pooled, idle); 0 on SQLite, which has no server end to lose."""
    if engine.dialect.name == "sqlite":
        return 0
    admin = create_engine(PG_URL or "", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :a"),
                    {"a": app_name},
                ).all()
            )
    finally:
        admin.dispose()


def _two_pooled(engine: Engine) -> None:
    """Leave two connections in the pool: the retry must not take the other dead one."""
    with Session(engine) as a, Session(engine) as b:
        a.connection().exec_driver_sql("SELECT 1")
        b.connection().exec_driver_sql("SELECT 1")


def _is_pg(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def test_read_after_pooled_backends_die(plog: Log, app_name: str) -> None:
    """Between two reads every pooled connection's backend is ended: the
    second read, and a proof and the checkpoint after it, succeed."""
    _two_pooled(plog.engine)
    assert plog.latest_size() == 3
    killed = _kill_backends(plog.engine, app_name)
    assert killed >= (2 if _is_pg(plog.engine) else 0)
    assert plog.latest_size() == 3
    proof = plog.inclusion(1)
    assert proof.checkpoint.size == 3
    with plog.read() as s:
        note = plog.latest_note(s)
    assert open_checkpoint(note, plog.verifier).checkpoint.size == 3


def test_read_on_the_new_connections_sees_new_heads(plog: Log, app_name: str) -> None:
    """The retried read is a real read: a head moved while the pool was dead is seen."""
    with plog.read() as s:
        first = plog.latest_note(s)
    _kill_backends(plog.engine, app_name)
    plog.sequencer.append([b"entry 3"])
    with plog.read() as s:
        assert plog.latest(s).size == 4
        assert plog.latest_note(s) != first
        assert open_checkpoint(plog.latest_note(s), plog.verifier).checkpoint.size == 4


def test_append_after_pooled_backends_die(plog: Log, app_name: str) -> None:
    """The sequencer's pooled connection died since its last append: the next
    append succeeds, exactly once, as it did with the pool's pre-ping."""
    _two_pooled(plog.engine)
    _kill_backends(plog.engine, app_name)
    result = plog.sequencer.append([b"entry 3", b"entry 4"])
    assert (result.first, result.checkpoint.size) == (3, 5)
    assert plog.latest_size() == 5
    check_log(plog)


def test_connection_lost_inside_an_append_is_not_retried(plog: Log, app_name: str, db_url: str) -> None:
    """The backend dies after the append began (the head locked, the planner
    running): the append fails with StorageError (503), nothing is written,
    the planner ran once, and the next append succeeds."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: a SQLite connection has no server end to lose")
    calls = []

    def planner(_c: Connection, size: int, _now: int) -> Plan:
        calls.append(size)
        _kill_backends(plog.engine, app_name)
        return Plan([b"never appended"])

    with pytest.raises(StorageError):
        plog.sequencer.sequence(planner)
    assert calls == [3]
    assert plog.latest_size() == 3
    assert plog.sequencer.append([b"entry 3"]).checkpoint.size == 4
    check_log(plog)


def test_connection_lost_inside_a_read_is_not_retried(plog: Log, app_name: str, db_url: str) -> None:
    """A read whose connection dies after its first statement fails with
    StorageError (503): only a transaction that has done nothing is begun
    again. The next read succeeds."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: a SQLite connection has no server end to lose")

    def read_after_the_kill() -> None:
        with plog.read() as s:
            _kill_backends(plog.engine, app_name)
            storage.checkpoint_at(s, 3)

    with pytest.raises(StorageError):
        read_after_the_kill()
    assert plog.latest_size() == 3


def test_other_first_statement_errors_are_not_retried(db_url: str, signer: Signer) -> None:
    """A first statement that fails for another reason than a lost
    connection (here: no schema) fails the read once, as StorageError."""
    engine = make_engine(db_url)
    statements: list[str] = []

    @event.listens_for(engine, "checkout")
    def _checkout(*_args: object) -> None:
        statements.append("checkout")

    try:
        with pytest.raises(StorageError), Log(engine, signer).read():
            pass
        assert statements == ["checkout"]
    finally:
        engine.dispose()


def test_submission_after_pooled_backends_die(db_url: str, key_file: Path, app_name: str) -> None:
    """Through the app: a record submitted after every pooled connection's
    backend was ended is accepted (201) once, as with the pool's pre-ping:
    the committer's append and the reads around it each begin again."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: a SQLite connection has no server end to lose")
    url = f"{db_url}&application_name={app_name}"
    config = {"TESTING": True, "DATABASE_URL": url, "KEY_FILE": str(key_file), "ORIGIN": ORIGIN}
    app = create_app(config | {"DERIVED_CHECK_SECONDS": 0})
    provider = app.extensions["ledger"]
    try:
        with app.app_context():
            provider.initialise()
        log = provider.log
        log.registry.add_platform("example-social", "Example Social", KEY.public_key)
        client = app.test_client()
        assert client.post("/api/v1/records", json=sign(decision("before"), KEY)).status_code == 201
        size = log.latest_size()
        assert _kill_backends(log.engine, app_name) > 0
        r = client.post("/api/v1/records", json=sign(decision("after"), KEY))
        assert r.status_code == 201, r.get_data()
        assert log.latest_size() == size + 1
        assert client.get("/checkpoint").status_code == 200
        check_log(log)
    finally:
        provider.close()


def test_cosignatures_stored_after_pooled_backends_die(plog: Log, app_name: str) -> None:
    """``cosign`` stores a witness's verified cosignatures with a writer
    transaction of its own: begun again on a fresh connection when the pooled
    one is lost (a long ``cosign --follow`` outlives a database restart), and
    a second store of the same lines keeps the one row."""
    sig = Signature("witness.example", bytes.fromhex("0a0b0c0d"), bytes(72))
    with Cosigner(plog, []) as cosigner:
        _two_pooled(plog.engine)
        killed = _kill_backends(plog.engine, app_name)
        assert killed >= (2 if _is_pg(plog.engine) else 0)
        cosigner._insert(3, [sig])
        cosigner._insert(3, [sig])
    with Session(plog.engine) as s:
        lines = s.execute(select(cosignatures.c.line).where(cosignatures.c.size == 3)).scalars().all()
    assert lines == [sig.line()[:-1]]


def test_a_cosignature_store_that_fails_is_a_storage_error(plog: Log) -> None:
    """A database error other than a lost connection is not retried, and is
    the ledger's StorageError (which a cosign round reports per witness and
    ``--follow`` survives), not a driver error that ends the command."""
    sig = Signature("witness.example", bytes.fromhex("0a0b0c0d"), bytes(72))
    with Session(plog.engine) as s, s.begin():
        s.execute(text("DROP TABLE cosignatures"))
    with Cosigner(plog, []) as cosigner, pytest.raises(StorageError, match="cannot store the cosignatures"):
        cosigner._insert(3, [sig])


def test_single_statement_reads_after_pooled_backends_die(plog: Log, app_name: str) -> None:
    """The reads answered by one statement outside a transaction
    (ledger.db.single_connection: the checkpoint, a proof against the kept
    checkpoint by index and by leaf hash, a tile the process does not keep)
    succeed after every pooled connection's backend was ended, and see a
    head moved meanwhile."""
    _two_pooled(plog.engine)
    first = plog.inclusion(1)  # keeps the checkpoint and the partial tiles
    assert first.checkpoint.size == 3
    killed = _kill_backends(plog.engine, app_name)
    assert killed >= (2 if _is_pg(plog.engine) else 0)
    assert plog.head_now()[0] == storage.Head(3, first.checkpoint.root)
    _kill_backends(plog.engine, app_name)
    assert open_checkpoint(plog.checkpoint_note(), plog.verifier).checkpoint.size == 3
    _kill_backends(plog.engine, app_name)
    assert plog.inclusion(2).checkpoint.size == 3
    _kill_backends(plog.engine, app_name)
    assert plog.inclusion_by_hash(first.leaf_hash).index == 1
    _kill_backends(plog.engine, app_name)
    assert len(plog.tile(Tile(0, 0, 3))) == 3 * 32
    _kill_backends(plog.engine, app_name)
    plog.sequencer.append([b"entry 3"])
    _kill_backends(plog.engine, app_name)
    assert open_checkpoint(plog.checkpoint_note(), plog.verifier).checkpoint.size == 4
    assert plog.inclusion(3).checkpoint.size == 4


def _in_one_transaction(plog: Log) -> bool:
    """Whether a read transaction's statements see one transaction (PostgreSQL's
    ``now()`` is the transaction's start: each statement's own in autocommit)."""
    with plog.read() as s:
        a = s.execute(text("SELECT clock_timestamp(), now()")).one()
        s.execute(text("SELECT pg_sleep(0.01)"))
        b = s.execute(text("SELECT clock_timestamp(), now()")).one()
    assert b[0] > a[0]
    return bool(a[1] == b[1])


def test_single_statements_leave_pooled_connections_out_of_autocommit(plog: Log, db_url: str) -> None:
    """A connection lent for one statement in autocommit goes back to the pool
    out of it, after a statement that succeeded and after one that failed: the
    read transactions and appends that take it next are transactions."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite's connections are in autocommit, transactions begun by the ledger")
    assert _in_one_transaction(plog)
    for _ in range(3):
        plog.head_now()
        plog.checkpoint_note()
    with pytest.raises(StorageError):
        plog._single_statement(lambda conn: connection_sql(conn, "SELECT * FROM no_such_table"))
    assert plog.engine.pool.checkedout() == 0
    proxied = plog.engine.raw_connection()
    try:
        assert proxied.dbapi_connection is not None
        assert proxied.dbapi_connection.autocommit is False
    finally:
        proxied.close()
    assert _in_one_transaction(plog)
    plog.sequencer.append([b"entry 3"])
    assert plog.latest_size() == 4


def test_a_connection_that_cannot_enter_autocommit_is_discarded(
    plog: Log, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pooled connection the driver refuses to put in autocommit (not idle,
    or closed) is closed and dropped from the pool, and the single statement,
    which has not run, is tried once more on another connection."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite's connections are not switched to autocommit")
    import psycopg

    real = psycopg.Connection._set_autocommit
    refused: list[psycopg.Connection[Any]] = []

    def refuse_once(self: psycopg.Connection[Any], value: bool) -> None:
        if value and not refused:
            refused.append(self)
            raise psycopg.ProgrammingError("can't change 'autocommit' now")
        real(self, value)

    monkeypatch.setattr(psycopg.Connection, "_set_autocommit", refuse_once)
    assert plog.head_now()[0] == storage.Head(3, plog.inclusion(0).checkpoint.root)
    assert len(refused) == 1
    assert refused[0].closed
    assert plog.engine.pool.checkedout() == 0
