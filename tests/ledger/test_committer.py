"""Group commit without a committer thread (ledger/submit.py ``Committer``).

The committer used to be a thread that request threads handed their
records to and waited on; now the request thread that finds no commit
running commits the queue itself, and hands over to a waiting one when it
is done. The old committer is kept as the reference
(``bench.commit_cpu.ThreadCommitter``, which also measures the two): the same
submissions, one after another, give the same answers and the same log,
byte for byte, on SQLite and PostgreSQL. The rest checks what the thread
used to guarantee by construction: records queued during a commit form one
group, a waiter that gives up is never woken to commit, and a committing
thread that is stopped fails its group instead of leaving it waiting.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from bench.commit_cpu import ThreadCommitter
from keys.note import Signer
from keys.records import PlatformKey
from ledger import storage
from ledger.db import make_engine
from ledger.errors import LedgerError, StorageError
from ledger.log import Log
from ledger.migrate import upgrade
from ledger.submit import Committer, Outcome, _Job, verify_items
from tests.checklog import check_log
from tests.conftest import PG_URL
from tests.recordkit import amendment, appeal, decision, sign

KEY = PlatformKey(b"\x71" * 32)
OTHER = PlatformKey(b"\x72" * 32)
#: Both logs append at this time, so the same records sign the same checkpoints.
FIXED_MS = 4_000_000_000_000


@pytest.fixture
def twin(db_url: str, signer: Signer) -> Iterator[Engine]:
    """A second migrated database on the same backend as ``engine``."""
    schema = None
    if db_url.startswith("sqlite"):
        url = db_url.replace("ledger.sqlite3", "twin.sqlite3")
    else:
        assert PG_URL
        schema = f"test_{secrets.token_hex(6)}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = db_url.replace(db_url.split("search_path%3D", 1)[1], schema)
    eng = make_engine(url)
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()
        if schema is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def _frozen(log: Log, monkeypatch: pytest.MonkeyPatch) -> Log:
    monkeypatch.setattr(log.sequencer, "_clock", lambda: FIXED_MS)
    log.sequencer.init()
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    log.registry.add_platform("other-video", "Other Video", OTHER.public_key)
    return log


def _answer(committer: Committer, log: Log, items: list[dict[str, Any]]) -> tuple[Any, ...]:
    """What the committer answers for ``items``: where each landed, the
    checkpoint and each record's inclusion proof in it (as the intake makes
    them for the answer), or the error's kind, message and per-record errors."""
    recs = verify_items(log.registry_cache, items, FIXED_MS + 1)
    try:
        out = committer.submit(recs)
    except LedgerError as e:
        return ("error", type(e).__name__, str(e), getattr(e, "errors", None))
    proofs = log.inclusions([p.leaf_index for p in out.placed], out.checkpoint, out.tree)
    return ("ok", out.placed, out.checkpoint, proofs)


#: Submissions one after another: new, a group of several, resubmitted
#: (existing), the same record_id with other content (409), a reference to
#: nothing (422), an appeal and an amendment of logged decisions, an
#: amendment referring to an appeal (422), a batch that mixes new and
#: existing, and a record_id already used by another platform (new).
SCRIPT: list[list[dict[str, Any]]] = [
    [sign(decision("d-1"), KEY)],
    [sign(decision(f"d-{i}"), KEY) for i in range(2, 7)],
    [sign(decision("d-1"), KEY)],
    [sign(decision("d-1", statement="Another statement."), KEY)],
    [sign(appeal("a-1", "missing"), KEY)],
    [sign(appeal("a-2", "d-2"), KEY)],
    [sign(amendment("m-1", "a-2"), KEY)],
    [sign(amendment("m-2", "d-3"), KEY)],
    [sign(decision("d-4"), KEY), sign(decision("d-7"), KEY), sign(decision("d-8"), KEY)],
    [sign(decision("d-1", platform="other-video"), OTHER)],
]


def test_the_same_submissions_give_the_same_answers_and_log(
    engine: Engine, twin: Engine, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = _frozen(Log(engine, signer), monkeypatch)
    old = _frozen(Log(twin, signer), monkeypatch)
    reference = ThreadCommitter(old.sequencer, registry=old.registry_cache)
    kinds = []
    for items in SCRIPT:
        got, want = _answer(new.committer, new, items), _answer(reference, old, items)
        assert got == want, items
        kinds.append(got[1] if got[0] == "error" else "/".join(p.status for p in got[1]))
    assert kinds == [
        "created",
        "created/created/created/created/created",
        "existing",
        "Conflict",
        "Unprocessable",
        "created",
        "Unprocessable",
        "created",
        "existing/created/created",
        "created",
    ]
    with new.read() as a, old.read() as b:
        size = new.latest(a).size
        assert size == old.latest(b).size == 2 + 11  # two platforms, eleven records
        assert storage.read_entries(a, 0, size) == storage.read_entries(b, 0, size)
        assert new.latest(a) == old.latest(b)
    check_log(new)
    check_log(old)


def _wait_queued(committer: Committer, n: int) -> None:
    """Until ``n`` jobs are queued (white-box; no time is asserted)."""
    for _ in range(3000):
        with committer._queue_lock:
            if len(committer._queue) >= n:
                return
        time.sleep(0.01)
    raise AssertionError(f"{n} jobs were never queued")


def test_a_lone_record_is_committed_in_its_own_thread(log: Log) -> None:
    """No hand-off to another thread when no commit is running."""
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    threads: list[int] = []
    sequence = log.sequencer.sequence

    def spy(planner: Any) -> Any:
        threads.append(threading.get_ident())
        return sequence(planner)

    log.sequencer.sequence = spy  # type: ignore[method-assign]
    recs = verify_items(log.registry_cache, [sign(decision("lone"), KEY)], int(time.time() * 1000))
    assert log.committer.submit(recs).placed[0].status == "created"
    assert threads == [threading.get_ident()]


def test_records_queued_during_a_commit_form_one_group(log: Log) -> None:
    """Group commit: while one commit runs, what is queued is appended by
    the next commit as one group under one checkpoint, not one transaction each."""
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    now = int(time.time() * 1000)
    outcomes: dict[str, Outcome] = {}

    def submit(record_id: str) -> None:
        recs = verify_items(log.registry_cache, [sign(decision(record_id), KEY)], now)
        outcomes[record_id] = log.committer.submit(recs)

    first = threading.Thread(target=submit, args=("first",))
    others = [threading.Thread(target=submit, args=(f"r-{i}",)) for i in range(12)]
    groups: list[int] = []
    sequence = log.sequencer.sequence

    def counted(planner: Any) -> Any:
        result = sequence(planner)
        groups.append(result.checkpoint.size - result.first)
        return result

    log.sequencer.sequence = counted  # type: ignore[method-assign]
    with log.sequencer._lock:  # the first commit waits here, holding the commit
        first.start()
        for _ in range(3000):  # until the first commit holds the commit lock
            if log.committer._committing.locked():
                break
            time.sleep(0.01)
        for t in others:
            t.start()
        _wait_queued(log.committer, len(others))
    for t in [first, *others]:
        t.join(60)
    assert groups == [1, len(others)]
    assert len({o.checkpoint.size for k, o in outcomes.items() if k != "first"}) == 1
    assert sorted(p.leaf_index for o in outcomes.values() for p in o.placed) == list(range(1, 14))
    check_log(log)


def test_a_waiter_that_gives_up_is_not_appended_and_not_woken(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that times out while another commit runs takes its job out
    of the queue: nothing of it is appended, and the next commit hands over
    to a thread that is still waiting."""
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    committer = log.committer
    now = int(time.time() * 1000)
    errors: dict[str, BaseException] = {}
    placed: dict[str, int] = {}

    def submit(record_id: str) -> None:
        recs = verify_items(log.registry_cache, [sign(decision(record_id), KEY)], now)
        try:
            placed[record_id] = committer.submit(recs).placed[0].leaf_index
        except StorageError as e:
            errors[record_id] = e

    committer._committing.acquire()  # a commit under way, as far as the queue can tell
    monkeypatch.setattr(committer, "_timeout", 0.2)
    quitter = threading.Thread(target=submit, args=("quitter",))
    quitter.start()
    quitter.join(60)
    assert "did not confirm the append in time" in str(errors["quitter"])
    assert not committer._queue
    monkeypatch.setattr(committer, "_timeout", 60)
    waiter = threading.Thread(target=submit, args=("waiter",))
    waiter.start()
    _wait_queued(committer, 1)
    committer._committing.release()
    committer._hand_over()  # what the holder does after its release
    waiter.join(60)
    assert placed == {"waiter": 1}
    with log.read() as s:
        assert log.latest(s).size == 2
    check_log(log)


class Stop(BaseException):
    """Stands in for what stops a thread mid-commit (not an Exception)."""


def test_a_stopped_commit_fails_its_group_instead_of_leaving_it_waiting(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    committer = log.committer
    now = int(time.time() * 1000)
    results: dict[str, BaseException | Outcome] = {}

    def submit(record_id: str) -> None:
        recs = verify_items(log.registry_cache, [sign(decision(record_id), KEY)], now)
        try:
            results[record_id] = committer.submit(recs)
        except BaseException as e:
            results[record_id] = e

    def stopped(jobs: list[_Job]) -> None:
        raise Stop

    committer._committing.acquire()
    threads = [threading.Thread(target=submit, args=(name,)) for name in ("a", "b")]
    threads[0].start()
    _wait_queued(committer, 1)
    threads[1].start()
    _wait_queued(committer, 2)
    monkeypatch.setattr(committer, "_commit", stopped)
    committer._committing.release()
    committer._hand_over()
    for t in threads:
        t.join(60)
    assert isinstance(results["a"], Stop)
    assert isinstance(results["b"], StorageError)
    assert "interrupted" in str(results["b"])
    assert not committer._queue
    assert not committer._committing.locked()
    monkeypatch.undo()
    recs = verify_items(log.registry_cache, [sign(decision("after"), KEY)], now)
    assert committer.submit(recs).placed[0].leaf_index == 1
    check_log(log)
