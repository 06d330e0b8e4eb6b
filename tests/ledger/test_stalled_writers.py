"""PostgreSQL: a writer stalled on its client while it holds the log's head
lock is ended by the next sequencer refused that lock, and nothing else is.

A ``COPY ... FROM STDIN`` whose client stops sending rows keeps its backend
"active" and waiting for the client; PostgreSQL then acts on neither the
statement timeout nor the idle timeout (ledger/db.py, ``PG_WRITER_SETTINGS``),
so its locks are held for as long as the client is stopped. Here the
clients are connections that begin a COPY and send nothing, as a frozen
server's would. tests/e2e/test_frozen_server.py freezes a whole server in a
COPY.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from ledger import storage
from ledger.db import WRITER_STALLED_SECONDS, is_sqlite, single_connection
from ledger.log import Log


@pytest.fixture
def pg_log(log: Log) -> Log:
    if is_sqlite(log.engine):
        pytest.skip("PostgreSQL only: SQLite's writers are processes of one machine, ended with them")
    with log.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch (x integer)")
    return log


@contextmanager
def _copy_left_waiting(log: Log, lock_head: bool) -> Iterator[int]:
    """A transaction that locks the head row as the sequencer does (if
    ``lock_head``; else reads it, as every read transaction does), then
    begins a COPY and sends no row; yields its backend's process ID. The
    connection is closed afterwards, the COPY unfinished."""
    raw = log.engine.raw_connection()
    conn: Any = raw.dbapi_connection
    try:
        conn.execute(storage._READ_HEAD_FOR_UPDATE if lock_head else storage._READ_HEAD)
        copy = conn.cursor().copy("COPY scratch (x) FROM STDIN")
        copy.__enter__()  # the COPY is sent; its backend now waits for rows
        yield conn.pgconn.backend_pid
        del copy
    finally:
        raw.invalidate()


def _end(log: Log) -> list[int]:
    with single_connection(log.engine) as conn:
        return storage.end_stalled_writers(conn)


def _head_free(log: Log) -> bool:
    """Whether the head row can be locked at once."""
    try:
        with log.engine.begin() as conn:
            conn.exec_driver_sql(storage._READ_HEAD_FOR_UPDATE + " NOWAIT")
        return True
    except DBAPIError:
        return False


def test_a_head_lock_holder_stalled_in_a_copy_is_ended(pg_log: Log) -> None:
    with ExitStack() as stack:
        holder = stack.enter_context(_copy_left_waiting(pg_log, lock_head=True))
        reader = stack.enter_context(_copy_left_waiting(pg_log, lock_head=False))
        time.sleep(0.5)
        assert _end(pg_log) == []  # not yet: a statement may run 5 s
        assert not _head_free(pg_log)
        time.sleep(WRITER_STALLED_SECONDS + 0.5)
        assert _end(pg_log) == [holder]  # the reader only read the head: left alone
        deadline = time.monotonic() + 5
        while not _head_free(pg_log):
            assert time.monotonic() < deadline, "the head lock was not released"
            time.sleep(0.05)
        assert reader != holder
    pg_log.sequencer.append([b"after"])


def test_an_idle_holder_is_left_to_postgresql(pg_log: Log) -> None:
    """A transaction idle between statements is not "active": PostgreSQL's
    idle timeout (the sequencer's own) ends it, not another server."""
    raw = pg_log.engine.raw_connection()
    try:
        raw.dbapi_connection.execute(storage._READ_HEAD_FOR_UPDATE)  # type: ignore[union-attr]
        time.sleep(WRITER_STALLED_SECONDS + 0.5)
        assert _end(pg_log) == []
        assert not _head_free(pg_log)
    finally:
        raw.invalidate()
    assert _head_free(pg_log)
