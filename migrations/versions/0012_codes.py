"""Codes for the feed index's closed vocabularies, its columns in the order that pads least.

Revision ID: 0012_codes
Revises: 0011_lean_indexes
Create Date: 2026-12-07

``record_index`` is made again, on both databases, with the columns of the
closed vocabularies (record type, account class, category, severity,
action, exemption type, review path, interim state, detection source,
automated decision, appeal outcome, target class, reporter class, abuse
kind) as SMALLINT codes rather than text, and its columns in the order
that wastes no alignment padding on PostgreSQL (8-byte integers, 2-byte
codes, booleans, texts; ledger/db.py). The codes are fixed
(ledger/records/codes.py: a code never changes meaning and is never
reused); :data:`CODES` below is the map as this migration wrote it, which
``tests/ledger/test_codes.py`` requires the application's map to contain
unchanged. On PostgreSQL a (code, leaf_index) key of a filter's B-tree is
of fixed width, which its "split after the new item" rule fills, where
the (text, leaf_index) keys left pages about 60% full
(docs/performance.md, Storage).

How: a new table is filled from the old one with a ``CASE`` per coded
column, the old table dropped (its indexes and append-only triggers with
it: no UPDATE of a row is needed, and none is made) and the new one renamed
and given the same indexes (PostgreSQL's B-trees at fillfactor 100, as
0011_lean_indexes set), the pg_trgm index and migration 0006's triggers.
Every stored value is checked to have a code first: a value without one
stops the migration and names it (nothing is guessed, nothing half-written:
the migration runs in one transaction). SQLite's full-text index
``record_search`` is external content keyed by ``leaf_index`` and names the
table, not its columns' places, so it stays as it is. It holds
``record_index`` exclusively for the copy and the index builds (23 s for
100,000 rows on PostgreSQL on a shared 2-core machine at load 11, after
which the audit found every row equal to its entry); the feed waits
meanwhile.

The previous release cannot use the migrated table (it reads and writes
the vocabularies as text): stop every server of it before the first
server of this release starts and migrates (docs/deployment.md). Going
back means restoring the backup taken before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_codes"
down_revision = "0011_lean_indexes"
branch_labels = None
depends_on = None

Index64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: The codes this migration wrote (ledger/records/codes.py when it was
#: made, copied: a migration keeps its meaning when the application's code
#: changes, and the application's map must keep every code here).
CODES: dict[str, dict[str, int]] = {
    "type": {
        "decision": 1,
        "appeal": 2,
        "amendment": 3,
        "coverage": 4,
    },
    "account_class": {
        "head_of_state": 1,
        "legislator": 2,
        "candidate": 3,
        "government_official": 4,
        "party_account": 5,
        "journalist": 6,
        "other_public_figure": 7,
        "election_worker": 8,
        "ordinary_user": 9,
    },
    "category": {
        "animal_welfare": 1,
        "consumer_information": 2,
        "cyber_violence": 3,
        "cyber_violence_against_women": 4,
        "data_protection_and_privacy_violations": 5,
        "illegal_or_harmful_speech": 6,
        "intellectual_property_infringements": 7,
        "negative_effects_on_civic_discourse_or_elections": 8,
        "not_specified_notice": 9,
        "other_violation_tc": 10,
        "protection_of_minors": 11,
        "risk_for_public_security": 12,
        "scams_and_fraud": 13,
        "self_harm": 14,
        "unsafe_and_prohibited_products": 15,
        "violence": 16,
    },
    "severity": {
        "low": 1,
        "medium": 2,
        "high": 3,
        "critical": 4,
    },
    "action": {
        "none": 1,
        "label": 2,
        "interstitial": 3,
        "reduce_reach": 4,
        "age_restrict": 5,
        "restrict_interaction": 6,
        "geo_block": 7,
        "demonetize": 8,
        "feature_limit": 9,
        "remove_content": 10,
        "temporary_suspension": 11,
        "permanent_ban": 12,
    },
    "exemption_type": {
        "newsworthiness": 1,
        "public_interest": 2,
        "satire_or_counter_speech": 3,
        "educational_or_documentary": 4,
        "technical_correction": 5,
        "other": 6,
    },
    "review_path": {
        "standard": 1,
        "secondary_high_profile": 2,
        "policy_escalation": 3,
        "legal": 4,
    },
    "interim_state": {
        "visible": 1,
        "hidden": 2,
        "not_applicable": 3,
    },
    "detection_source": {
        "automated": 1,
        "user_report": 2,
        "trusted_flagger": 3,
        "government_request": 4,
        "court_order": 5,
        "internal_staff": 6,
        "media_or_public_inquiry": 7,
        "other": 8,
    },
    "automated_decision": {
        "fully": 1,
        "partially": 2,
        "none": 3,
    },
    "appeal_outcome": {
        "pending": 1,
        "upheld": 2,
        "reversed": 3,
        "modified": 4,
    },
    "target_class": {
        "head_of_state": 1,
        "legislator": 2,
        "candidate": 3,
        "government_official": 4,
        "party_account": 5,
        "journalist": 6,
        "other_public_figure": 7,
        "election_worker": 8,
        "ordinary_user": 9,
        "group": 10,
    },
    "reporter_class": {
        "target_self": 1,
        "public_account": 2,
        "ordinary_user": 3,
        "trusted_flagger": 4,
        "government_body": 5,
    },
    "abuse_kind": {
        "harassment": 1,
        "threat": 2,
        "incitement": 3,
    },
}

#: The columns of the new table, in their order (ledger/db.py).
_BIGINTS = ("logged_at_ms", "decided_at_ms", "flagged_at_ms")
_BOOLEANS = ("political", "violation_found", "exemption_applied")
_TEXTS = (
    ("platform", 63, False),
    ("record_id", 128, False),
    ("ref_record_id", 128, True),
    ("subject_key", 128, True),
    ("display_name", 200, True),
    ("rule_id", 128, True),
    ("rule_version", 64, True),
    ("territories", 1000, True),
    ("qid", 20, True),
)

#: The filters' B-trees (each with leaf_index, for newest-first pages), as
#: 0003, 0007, 0009, 0010 and 0011 left them.
_FILTERS = (
    *("platform", "type", "account_class", "political", "subject_key"),
    *("rule_id", "category", "action", "review_path", "detection_source"),
)
#: Partial: only the rows that have a value (0009, 0010).
_SPARSE = ("exemption_type", "target_class", "reporter_class", "abuse_kind", "qid")


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("leaf_index", Index64, primary_key=True, autoincrement=False),
        sa.Column("logged_at_ms", sa.BigInteger, nullable=False),
        sa.Column("decided_at_ms", sa.BigInteger),
        sa.Column("flagged_at_ms", sa.BigInteger),
        *(sa.Column(c, sa.SmallInteger, nullable=c != "type") for c in CODES),
        *(sa.Column(c, sa.Boolean) for c in _BOOLEANS),
        *(sa.Column(c, sa.String(n), nullable=nullable) for c, n, nullable in _TEXTS),
        sa.Column("search_text", sa.Text),
    ]


def _refuse_values_without_a_code(bind: sa.Connection) -> None:
    for column, codes in CODES.items():
        known = ", ".join(f"'{v}'" for v in codes)
        found = bind.execute(
            sa.text(f"SELECT DISTINCT {column} FROM record_index WHERE {column} NOT IN ({known}) ORDER BY 1 LIMIT 5")
        ).scalars()
        if unknown := list(found):
            raise RuntimeError(
                f"record_index.{column} holds values without a code: {unknown!r}; "
                "add them to ledger/records/codes.py and to this migration's CODES"
            )


def _coded(column: str) -> str:
    cases = " ".join(f"WHEN '{v}' THEN {code}" for v, code in CODES[column].items())
    return f"CASE {column} {cases} END"


def _indexes(sqlite: bool) -> None:
    fill = {} if sqlite else {"postgresql_with": {"fillfactor": 100}}
    for c in _FILTERS:
        op.create_index(f"record_index_{c}", "record_index", [c, "leaf_index"], **fill)
    for c in _SPARSE:
        where = sa.text(f"{c} IS NOT NULL")
        op.create_index(
            f"record_index_{c}", "record_index", [c, "leaf_index"], sqlite_where=where, postgresql_where=where, **fill
        )
    op.create_index("record_index_decided_at", "record_index", ["decided_at_ms"], **fill)
    op.create_index("record_index_logged_at", "record_index", ["logged_at_ms"], **fill)
    where = sa.text("ref_record_id IS NOT NULL")
    op.create_index(
        "record_index_ref",
        "record_index",
        ["platform", "ref_record_id"],
        sqlite_where=where,
        postgresql_where=where,
        **fill,
    )
    if sqlite:
        return
    schema = (
        op.get_bind()
        .execute(sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"))
        .scalar_one()
    )
    op.execute(f"CREATE INDEX record_index_search ON record_index USING gin (search_text {schema}.gin_trgm_ops)")


def _triggers(sqlite: bool) -> None:
    """Migration 0006's append-only triggers (ledger_reject_change() is 0001's)."""
    if sqlite:
        for event in ("UPDATE", "DELETE"):
            message = f"ledger: {event} on record_index is forbidden: the log is append-only"
            op.execute(
                f"CREATE TRIGGER record_index_no_{event.lower()} BEFORE {event} ON record_index "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        return
    op.execute(
        "CREATE TRIGGER record_index_append_only BEFORE UPDATE OR DELETE ON record_index "
        "FOR EACH ROW EXECUTE FUNCTION ledger_reject_change()"
    )
    op.execute(
        "CREATE TRIGGER record_index_no_truncate BEFORE TRUNCATE ON record_index "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()"
    )


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    _refuse_values_without_a_code(bind)
    columns = _columns()
    op.create_table("record_index_new", *columns)
    names = [c.name for c in columns]
    values = [_coded(n) if n in CODES else n for n in names]
    op.execute(f"INSERT INTO record_index_new ({', '.join(names)}) SELECT {', '.join(values)} FROM record_index")
    op.drop_table("record_index")
    op.rename_table("record_index_new", "record_index")
    if not sqlite:
        op.execute("ALTER INDEX record_index_new_pkey RENAME TO record_index_pkey")
        op.execute("ALTER INDEX record_index_pkey SET (fillfactor = 100)")
    _indexes(sqlite)
    _triggers(sqlite)


def downgrade() -> None:
    raise NotImplementedError("migrations only move forward")
