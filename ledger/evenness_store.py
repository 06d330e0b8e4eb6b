"""Evenness statistics (issue 5, method version 1): were public accounts and
ordinary users treated alike, as far as the recorded decisions show?

The computation is pure and lives in three modules:
:mod:`ledger.evenness.facts` (facts and their tallies),
:mod:`ledger.evenness.compare` (the comparisons) and
:mod:`ledger.evenness.words` (the sentences), put together by
:func:`~ledger.evenness.document.compute_document`. This module is its edge:
it reads the facts from the records index, and publishes a document's
digest in the log.

**Reproducibility.** A document is a function of the record entries below
a checkpoint, the checkpoint and the filters. Anyone with a verified copy
of those entries recomputes it byte for byte::

    facts = facts_from_entries(entries, checkpoint.size)
    compute_document(facts, CheckpointRef.from_note(note), Filters()).data

**Publication.** ``flask ledger publish-stats`` appends a registry entry,
signed by the log's key over ``mdl/registry/v1\\n`` + its RFC 8785 form::

    {"event": "statistics_published", "tree_size", "root_hash", "method_version", "document_sha256"}

where ``document_sha256`` is the lower-case hex SHA-256 of the unfiltered
document's bytes. Once published, a figure cannot be rewritten silently:
the log is append-only, and anyone can recompute the digest.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, SmallInteger, select, type_coerce
from sqlalchemy.orm import Session

from keys.note import Signer
from ledger.db import Code, coverage_statements, published_statistics, record_index
from ledger.derived import check_all, check_search, insert_rows, refuse_mismatches, registry_rows
from ledger.errors import Conflict
from ledger.evenness.coverage import CoverageFilters, coverage_answer, logged_of
from ledger.evenness.document import METHOD_VERSION, CheckpointRef, Evenness, compute_document
from ledger.evenness.facts import (
    DECISION_COLUMNS,
    FACT_COLUMNS,
    GROUPS,
    METHOD_VERSIONS,
    METRICS,
    FactSet,
    Filters,
    facts_from_entries,
)
from ledger.evenness.protection import PROTECTION_COLUMNS, protection_facts_from_entries
from ledger.log import Log
from ledger.records import codes
from ledger.records.coverage import Statement, counts_of
from ledger.records.entries import canonical, entry_bytes
from ledger.registry import log_signature
from ledger.sequencer import AppendResult, Plan, Planner
from ledger.storage import StoredCheckpoint

__all__ = [
    "DECISION_COLUMNS",
    "FACT_COLUMNS",
    "GROUPS",
    "METHOD_VERSION",
    "METHOD_VERSIONS",
    "METRICS",
    "PROTECTION_COLUMNS",
    "CheckpointRef",
    "Evenness",
    "FactSet",
    "Filters",
    "Publication",
    "compute_document",
    "evenness_at",
    "facts_from_entries",
    "find_publication",
    "protection_facts_from_entries",
    "publication_planner",
    "publish",
    "published_statistics",
    "read_facts",
    "read_protection_facts",
]

#: Rows fetched from the database per round trip while reading facts.
_FETCH = 10_000


def read_facts(session: Session, tree_size: int, platform: str | None = None) -> FactSet:
    """Read the facts of the records below ``tree_size`` from the index, in log order.

    Two queries: the amendments and appeals (few, found by the index on
    type), then the decisions with only the columns counting reads
    (:data:`DECISION_COLUMNS`; without ``record_id`` when nothing refers
    to a decision). A platform filter may be applied here because
    amendments and appeals never change a decision's platform; rules,
    classes and times may change by amendment, so those filters are
    applied after folding, in the pure core.
    """
    c = record_index.c
    below = [c.leaf_index < tree_size] + ([c.platform == platform] if platform is not None else [])
    # Codes, not values: :func:`_rows` binds as the driver takes them.
    stored_type = type_coerce(c.type, SmallInteger)
    kinds = stored_type.in_([codes.CODES["type"][k] for k in ("amendment", "appeal", "coverage")])
    others = _rows(session, [c[name] for name in FACT_COLUMNS], [*below, kinds])
    if others:
        is_decision = stored_type == codes.CODES["type"]["decision"]
        decisions = _rows(session, [c[name] for name in DECISION_COLUMNS], [*below, is_decision])
    else:  # every record below is a decision (no coverage statement either), and none needs its record id
        decisions = _rows(session, [c[name] for name in DECISION_COLUMNS[:-1]], below)
    return FactSet(decisions, others, read_statements(session, tree_size, platform))


def read_statements(session: Session, tree_size: int, platform: str | None = None) -> list[Statement]:
    """The coverage statements below ``tree_size``, in log order, from their derived rows."""
    c = coverage_statements.c
    where = [c.leaf_index < tree_size] + ([c.platform == platform] if platform is not None else [])
    return [
        Statement(
            platform=row.platform,
            record_id=row.record_id,
            leaf_index=row.leaf_index,
            period=row.period,
            rule_id=row.rule_id,
            criterion=row.criterion,
            counts=counts_of(json.loads(row.counts)),
            supersedes=row.supersedes,
        )
        for row in session.execute(select(coverage_statements).where(*where).order_by(c.leaf_index))
    ]


def _rows(session: Session, columns: list[Any], where: list[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``columns`` of the index where ``where`` holds, in log order.

    The query runs on a DBAPI cursor of the session's connection (inside
    its transaction; server-side on PostgreSQL, so the rows stream), and
    the rows are the driver's own tuples: a million SQLAlchemy rows cost
    seconds more to make and to index, and the core needs nothing they add.
    (Booleans come back as 0 and 1 from SQLite; the core reads them only as
    truth values.) SQLAlchemy still writes the SQL and binds the values.
    """
    stmt = select(*columns).where(*where).order_by(record_index.c.leaf_index)
    connection = session.connection()
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    if any(isinstance(b.type, Code) for b in compiled.binds.values()):
        # construct_params() gives the values as written, and the driver
        # would compare a code column with text: bind codes (codes.CODES).
        raise AssertionError("a closed vocabulary's value bound for the driver: bind its code")
    params = [values[name] for name in compiled.positiontup or ()] if compiled.positional else values
    driver = connection.connection.driver_connection
    if driver is None:
        raise AssertionError("a session's connection has a driver connection")
    cursor = driver.cursor() if connection.dialect.name == "sqlite" else driver.cursor(name="evenness_facts")
    rows: list[tuple[Any, ...]] = []
    # The driver gives the closed vocabularies' codes (migration 0012_codes):
    # the core reads their values.
    coded = [c.type.column if isinstance(c.type, Code) else None for c in columns]
    decode = codes.row_decoder(coded) if any(coded) else None
    try:
        cursor.execute(compiled.string, params)
        while batch := cursor.fetchmany(_FETCH):
            rows.extend(map(decode, batch) if decode else batch)
    except KeyError as e:  # a code no value has: the index was edited
        raise ValueError(f"record_index holds {e} where a code belongs (ledger/records/codes.py)") from None
    finally:
        cursor.close()
    return rows


def coverage_at(session: Session, checkpoint: StoredCheckpoint, filters: CoverageFilters) -> dict[str, Any]:
    """The coverage comparisons of the statements below a checkpoint the log signed.

    Reads the decisions as the evenness document does (the platform filter
    may be applied while reading, for amendments never change a platform).
    """
    facts = read_facts(session, checkpoint.size, filters.platform)
    cp = CheckpointRef.from_note(checkpoint.note).as_json()
    return coverage_answer(facts.statements, logged_of(facts.current()), filters, cp)


def read_protection_facts(session: Session, tree_size: int, platform: str | None = None) -> list[tuple[Any, ...]]:
    """Read the protection facts (:data:`PROTECTION_COLUMNS`) of the records below
    ``tree_size`` from the index, in log order (a platform filter as :func:`read_facts`).

    Every record is read, not only those with a target or reporter: an
    amendment may give a target to a decision that had none, and the fold
    needs the decision it replaces.
    """
    c = record_index.c
    below = [c.leaf_index < tree_size] + ([c.platform == platform] if platform is not None else [])
    return _rows(session, [c[name] for name in PROTECTION_COLUMNS], below)


def evenness_at(
    session: Session, checkpoint: StoredCheckpoint, filters: Filters, method_version: int = METHOD_VERSION
) -> Evenness:
    """Compute the document for a checkpoint the log signed, from its index."""
    facts = read_facts(session, checkpoint.size, filters.platform)
    protection = read_protection_facts(session, checkpoint.size, filters.platform) if method_version >= 2 else None
    ref = CheckpointRef.from_note(checkpoint.note)
    return compute_document(facts, ref, filters, method_version=method_version, protection=protection)


@dataclass(frozen=True)
class Publication:
    """A digest of the unfiltered document of ``tree_size``, at ``leaf_index``."""

    tree_size: int
    method_version: int
    leaf_index: int
    document_sha256: str

    def as_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "method_version": self.method_version,
            "leaf_index": self.leaf_index,
            "document_sha256": self.document_sha256,
        }


def find_publication(
    session: Session | Connection, tree_size: int, method_version: int = METHOD_VERSION
) -> Publication | None:
    c = published_statistics.c
    row = session.execute(
        select(c.leaf_index, c.document_sha256).where(c.tree_size == tree_size, c.method_version == method_version)
    ).one_or_none()
    return None if row is None else Publication(tree_size, method_version, row.leaf_index, row.document_sha256)


def statistics_event(
    checkpoint: StoredCheckpoint, document_sha256: str, method_version: int = METHOD_VERSION
) -> dict[str, Any]:
    return {
        "event": "statistics_published",
        "tree_size": checkpoint.size,
        "root_hash": base64.b64encode(checkpoint.root).decode(),
        "method_version": method_version,
        "document_sha256": document_sha256,
    }


def publication_planner(
    signer: Signer, checkpoint: StoredCheckpoint, document_sha256: str, method_version: int = METHOD_VERSION
) -> Planner:
    """The sequencer plan that appends the digest's registry entry and its row.

    Under the lock it refuses a second publication for the same tree size
    and method version (one figure per checkpoint, never a correction).
    """
    event = statistics_event(checkpoint, document_sha256, method_version)

    def plan(session: Connection, size: int, now: int) -> Plan:
        existing = find_publication(session, checkpoint.size, method_version)
        if existing is not None:
            raise Conflict(
                f"statistics of tree size {checkpoint.size} (method version {method_version}) were already "
                f"published at log entry {existing.leaf_index}"
            )
        entry = entry_bytes(now, "registry", canonical(event), log_signature(signer, event))

        return Plan([entry], lambda s, first: insert_rows(s, registry_rows(first, now, event)))

    return plan


def publish(
    log: Log, tree_size: int | None = None, method_version: int = METHOD_VERSION
) -> tuple[AppendResult, Evenness]:
    """Compute the unfiltered document (by ``method_version``) of the checkpoint
    of ``tree_size`` (default: the latest) and append its digest to the log.

    The document is computed in a read transaction, outside the sequencer's
    lock; the plan re-checks under the lock that nothing was published for
    that size meanwhile. In the same transaction (one snapshot on SQLite)
    every derived row is first compared with the entry it comes from
    (ledger/derived.py), so the digest of a document read from rows that
    were edited behind the log's back is never signed: that raises
    :class:`~ledger.errors.DerivedDataError` naming the first such row.
    """
    with log.read() as s:
        checkpoint = log.checkpoint_for(s, tree_size)
        refuse_mismatches(check_all(s, log.latest(s).size) + check_search(log.engine), "publish statistics")
        document = evenness_at(s, checkpoint, Filters(), method_version)
    plan = publication_planner(log.signer, checkpoint, document.sha256, method_version)
    return log.sequencer.sequence(plan), document
