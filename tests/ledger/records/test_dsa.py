"""The bridge to the DSA Transparency Database (issue 17), on SQLite and PostgreSQL.

Statements are written from the DSA API documentation (the enumerations
below are typed from it, not taken from ``ledger.records.dsa``), every value at
least once; they import into records the server's validator accepts, that
sign and submit through the API, export in the DSA dump's columns for
pandas, join back on ``dsa_sor_uuid``, and agree field by field with the
statements they came from.
"""

from __future__ import annotations

import base64
import copy
import gzip
import io
import json
import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from api.record_validator import validate_record
from client.cli import mdl
from client.dsa import AGREES, DIFFERS, DsaMapping, Unmappable, compare, import_statement, statements_of
from client.mirror import Mirror, write_dsa_csv
from keys.records import PlatformKey
from ledger import storage
from ledger.log import Log
from ledger.records import dsa, vocab
from ledger.tlog import merkle, verify
from tests.recordkit import sign

KEY = PlatformKey(bytes([17]) * 32)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
IMPORTED_AT = "2026-05-31T00:00:00Z"
DSA_EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples" / "dsa"

# The enumerations of the DSA API documentation (transparency-database,
# resources/markdown/api-documentation-two.md and app/Models/Statement.php).
VISIBILITY = [
    *("DECISION_VISIBILITY_CONTENT_REMOVED", "DECISION_VISIBILITY_CONTENT_DISABLED"),
    *("DECISION_VISIBILITY_CONTENT_DEMOTED", "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED"),
    *("DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED", "DECISION_VISIBILITY_CONTENT_LABELLED"),
    "DECISION_VISIBILITY_OTHER",
]
MONETARY = ["DECISION_MONETARY_SUSPENSION", "DECISION_MONETARY_TERMINATION", "DECISION_MONETARY_OTHER"]
PROVISION = [
    *("DECISION_PROVISION_PARTIAL_SUSPENSION", "DECISION_PROVISION_TOTAL_SUSPENSION"),
    *("DECISION_PROVISION_PARTIAL_TERMINATION", "DECISION_PROVISION_TOTAL_TERMINATION"),
]
ACCOUNT = ["DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"]
ACCOUNT_TYPE = ["ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"]
GROUND = ["DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"]
SOURCE = ["SOURCE_ARTICLE_16", "SOURCE_TRUSTED_FLAGGER", "SOURCE_TYPE_OTHER_NOTIFICATION", "SOURCE_VOLUNTARY"]
AUTOMATED = ["AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY", "AUTOMATED_DECISION_NOT_AUTOMATED"]
YES_NO = ["Yes", "No"]
# The v2 categories, keywords and content types: ledger.records.vocab, already checked
# against the same documentation (tests/api/test_record_schema.py).
CATEGORY = [f"STATEMENT_CATEGORY_{c.upper()}" for c in vocab.CATEGORIES]
KEYWORD = [f"KEYWORD_{k.upper()}" for k in vocab.KEYWORDS]
CONTENT_TYPE = [f"CONTENT_TYPE_{t.upper()}" for t in vocab.CONTENT_TYPES]
# The DSA daily dumps' columns (StatementExportTrait::headings, DayArchiveService).
DUMP_COLUMNS = [
    "uuid",
    "decision_visibility",
    "decision_visibility_other",
    "end_date_visibility_restriction",
    "decision_monetary",
    "decision_monetary_other",
    "end_date_monetary_restriction",
    "decision_provision",
    "end_date_service_restriction",
    "decision_account",
    "end_date_account_restriction",
    "account_type",
    "decision_ground",
    "decision_ground_reference_url",
    "illegal_content_legal_ground",
    "illegal_content_explanation",
    "incompatible_content_ground",
    "incompatible_content_explanation",
    "incompatible_content_illegal",
    "category",
    "category_addition",
    "category_specification",
    "category_specification_other",
    "content_type",
    "content_type_other",
    "content_language",
    "content_date",
    "territorial_scope",
    "application_date",
    "decision_facts",
    "source_type",
    "source_identity",
    "automated_detection",
    "automated_decision",
    "platform_name",
    "platform_uid",
    "created_at",
]

#: Each importable restriction: (field, value, end date or None).
RESTRICTIONS = [
    *(("decision_visibility", v, "2026-06-30" if "REMOVED" not in v else None) for v in VISIBILITY[:-1]),
    ("decision_monetary", MONETARY[0], "2026-06-30"),
    ("decision_monetary", MONETARY[1], None),
    *(("decision_provision", v, "2026-06-30" if "TOTAL_TERMINATION" not in v else None) for v in PROVISION),
    ("decision_account", ACCOUNT[0], "2026-06-30"),
    ("decision_account", ACCOUNT[1], None),
]
END = {"decision_visibility": "end_date_visibility_restriction", "decision_monetary": "end_date_monetary_restriction"}
END |= {"decision_provision": "end_date_service_restriction", "decision_account": "end_date_account_restriction"}


def _ordinary(i: int) -> dict[str, Any]:
    return {
        "account": {"class": "ordinary_user", "subject_key": f"{i:064x}", "follower_bucket": "<1k"},
        "rule": {"id": "community/rule-7", "version": "7"},
    }


def _public(i: int) -> dict[str, Any]:
    return {
        "account": {
            "class": vocab.PUBLIC_CLASSES[i % len(vocab.PUBLIC_CLASSES)],
            "class_basis": vocab.CLASS_BASES[i % len(vocab.CLASS_BASES)],
            "subject_key": f"public-subject-{i:08d}",
            "follower_bucket": ">1M",
            "public_subject": {"display_name": f"Public Figure {i}"},
        },
        "rule": {"id": "civic/false-claims", "version": "2026-02"},
        "content_posted_at": "2026-05-01T08:00:00Z",
    }


def statement(i: int) -> dict[str, Any]:
    """Statement ``i`` of the round trip: its enumerated fields cycle through every documented value."""
    field, value, end = RESTRICTIONS[i % len(RESTRICTIONS)]
    ordinary = i % 2 == 0
    st: dict[str, Any] = {
        field: [value] if field == "decision_visibility" else value,
        "account_type": ACCOUNT_TYPE[i % 2],
        "decision_ground": GROUND[i % 2],
        "content_type": [CONTENT_TYPE[i % len(CONTENT_TYPE)]],
        "category": CATEGORY[i % len(CATEGORY)],
        "category_specification": [KEYWORD[i % len(KEYWORD)]],
        "territorial_scope": ["DE", "FR"] if i % 3 else ["PT"],
        "content_language": ["EN", "DE", "FR"][i % 3],
        "content_date": "2026-05-01",
        "application_date": "2026-05-03",
        "decision_facts": f"Facts of decision {i}.",
        "source_type": SOURCE[i % 4],
        "automated_detection": YES_NO[i % 2],
        "automated_decision": AUTOMATED[i % 3],
        "puid": f"2026-{i:06d}",
        "uuid": str(uuid.UUID(int=i + 1)),
        "created_at": "2026-05-03 12:00:00",
        "platform_name": "Example Social",
    }
    if end:
        st[END[field]] = end
    if GROUND[i % 2] == GROUND[0]:
        st["illegal_content_legal_ground"] = "DE StGB § 130"
        st["illegal_content_explanation"] = "Incitement."
    else:
        st["incompatible_content_ground"] = "Rule 7"
        st["incompatible_content_illegal"] = YES_NO[(i // 2) % 2]
        if st["incompatible_content_illegal"] == "Yes":
            st["illegal_content_legal_ground"] = "DE StGB § 130"
    if i % 5 == 0:
        st["decision_ground_reference_url"] = "https://social.example/rules/7"
    if "KEYWORD_OTHER" in st["category_specification"]:
        st["category_specification_other"] = "another keyword"
    if "CONTENT_TYPE_OTHER" in st["content_type"]:
        st["content_type_other"] = "a hologram"
    extra = _ordinary(i) if ordinary else _public(i)
    extra |= {"flagged_at": "2026-05-02T08:00:00Z", "decided_at": "2026-05-03T09:00:00Z"}
    st["ledger"] = extra | {"applied_at": "2026-05-03T10:00:00Z"}
    return st


STATEMENTS = [statement(i) for i in range(len(KEYWORD))]
MAPPING = DsaMapping.from_json(
    {
        "platform": "example-social",
        "defaults": {"severity": "high", "review_path": "standard", "interim_state": "not_applicable"},
    }
)


def _values(field: str) -> set[str]:
    out: set[str] = set()
    for st in STATEMENTS:
        v = st.get(field)
        out |= set(v) if isinstance(v, list) else {v} if v else set()
    return out


def test_the_statements_hold_every_documented_value() -> None:
    for field, values in [
        ("decision_monetary", MONETARY[:2]),
        ("decision_provision", PROVISION),
        ("decision_account", ACCOUNT),
        ("decision_visibility", VISIBILITY[:-1]),
        ("account_type", ACCOUNT_TYPE),
        ("decision_ground", GROUND),
        ("incompatible_content_illegal", YES_NO),
        ("content_type", CONTENT_TYPE),
        ("category", CATEGORY),
        ("category_specification", KEYWORD),
        ("source_type", SOURCE),
        ("automated_detection", YES_NO),
        ("automated_decision", AUTOMATED),
    ]:
        assert _values(field) == set(values), field
    # The "other" restrictions are documented too; test_refusals holds them.


def test_ledger_dsa_has_the_documented_enumerations() -> None:
    assert list(dsa.DECISION_VISIBILITIES) == VISIBILITY
    assert list(dsa.DECISION_MONETARIES) == MONETARY
    assert list(dsa.DECISION_PROVISIONS) == PROVISION
    assert list(dsa.DECISION_ACCOUNTS) == ACCOUNT
    assert list(dsa.ACCOUNT_TYPES) == ACCOUNT_TYPE
    assert list(dsa.DECISION_GROUNDS) == GROUND
    assert list(dsa.SOURCE_TYPES) == SOURCE
    assert list(dsa.AUTOMATED_DECISIONS) == AUTOMATED
    assert list(dsa.DSA_DUMP_COLUMNS) == DUMP_COLUMNS
    assert set(dsa.RESTRICTION_ACTIONS) == set(VISIBILITY + MONETARY + PROVISION + ACCOUNT)
    assert {a for a in dsa.RESTRICTION_ACTIONS.values() if a} <= set(vocab.ACTIONS)
    assert set(dsa.ACTION_RESTRICTIONS) == set(vocab.ACTIONS) - {"none"}
    assert {s for srcs in dsa.DETECTION_SOURCES.values() for s in srcs} == set(vocab.DETECTION_SOURCES)


def imported() -> list[dict[str, Any]]:
    return [import_statement(st, MAPPING, now=IMPORTED_AT) for st in STATEMENTS]


def test_every_statement_imports_into_a_valid_record_that_agrees_with_it() -> None:
    for st, rec in zip(STATEMENTS, imported(), strict=True):
        assert validate_record(rec, NOW) == [], (st["puid"], validate_record(rec, NOW))
        assert rec["dsa_sor_uuid"] == st["uuid"]
        results = compare(rec, st)
        assert [r for r in results if r.status == DIFFERS] == [], st["puid"]
        assert {r.dsa_field for r in results if r.status == AGREES} >= {"category", "restrictions", "source_type"}


def test_the_documented_example_imports_and_validates() -> None:
    sts = statements_of(json.loads((DSA_EXAMPLES / "statements.json").read_text()))
    mapping = DsaMapping.from_json(json.loads((DSA_EXAMPLES / "mapping.json").read_text()))
    for st in sts:
        rec = import_statement(st, mapping, now=IMPORTED_AT)
        assert validate_record(rec, NOW) == [], validate_record(rec, NOW)
        assert not [r for r in compare(rec, st) if r.status == DIFFERS]


def _changed(i: int, **changes: Any) -> dict[str, Any]:
    st = copy.deepcopy(STATEMENTS[i])
    for k, v in changes.items():
        if v is None:
            st.pop(k, None)
        else:
            st[k] = v
    return st


REFUSALS = [
    ("other visibility", _changed(0, decision_visibility=["DECISION_VISIBILITY_OTHER"]), "decision_visibility"),
    ("other monetary", _changed(6, decision_monetary="DECISION_MONETARY_OTHER"), "decision_monetary"),
    (
        "two actions",
        _changed(0, decision_account="DECISION_ACCOUNT_TERMINATED"),
        "several actions (permanent_ban, remove_content)",
    ),
    ("additional category", _changed(1, category_addition=["STATEMENT_CATEGORY_VIOLENCE"]), "category_addition"),
    ("content id", _changed(1, content_id={"EAN-13": "4006381333931"}), "content_id"),
    ("unknown field", _changed(1, url="https://x.example"), "url: not a field"),
    ("v1 category", _changed(1, category="STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"), "category"),
    ("endless suspension", _changed(12, end_date_account_restriction=None), "indefinite suspension"),
    ("removal that ends", _changed(0, end_date_visibility_restriction="2026-06-30"), "remove_content has no end"),
    ("legal ground on terms", _changed(3, illegal_content_legal_ground="DE StGB § 130"), "terms alone"),
    ("maybe", _changed(1, automated_detection="Maybe"), "automated_detection"),
    ("no restriction", _changed(0, decision_visibility=None), "no restriction"),
    ("territory", _changed(1, territorial_scope=["EU"]), "territorial_scope"),
]


@pytest.mark.parametrize(("name", "st", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals(name: str, st: dict[str, Any], message: str) -> None:
    with pytest.raises(Unmappable) as exc:
        import_statement(st, MAPPING, now=IMPORTED_AT)
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"puid {st['puid']!r}: ")


def test_the_mapping_cannot_contradict_the_statement() -> None:
    with pytest.raises(Unmappable, match=r"detection_source.*contradicts source_type SOURCE_TRUSTED_FLAGGER"):
        import_statement(
            _changed(1, ledger={**STATEMENTS[1]["ledger"], "detection_source": "automated"}), MAPPING, now=IMPORTED_AT
        )
    with pytest.raises(Unmappable, match=r"applied_at: must be .* on 2026-05-03"):
        import_statement(
            _changed(1, ledger={**STATEMENTS[1]["ledger"], "applied_at": "2026-05-04T10:00:00Z"}),
            MAPPING,
            now=IMPORTED_AT,
        )
    with pytest.raises(Exception, match="category: a mapping may not set this field"):
        DsaMapping.from_json({"defaults": {"category": "violence"}})


# Through the API, and out again in the DSA's columns ---------------------------------------


@pytest.fixture
def dsa_log(app: Flask, client: FlaskClient) -> Log:
    lg: Log = app.extensions["ledger"].log
    lg.registry.add_platform("example-social", "Example Social", KEY.public_key)
    r = client.post("/api/v1/records", json={"records": [sign(rec, KEY) for rec in imported()]})
    assert r.status_code == 201, r.json
    return lg


def _dsa_export(client: FlaskClient, size: int) -> bytes:
    r = client.get(f"/api/v1/export?start=0&end={size}&format=dsa-csv")
    assert r.status_code == 200, r.data
    return gzip.decompress(r.data)


def test_dsa_csv_export_loads_with_pandas_and_joins_the_statements(client: FlaskClient, dsa_log: Log) -> None:
    size = dsa_log.latest_size()
    frame = pd.read_csv(io.BytesIO(_dsa_export(client, size)), dtype=str, keep_default_na=False)
    assert list(frame.columns)[: len(DUMP_COLUMNS)] == DUMP_COLUMNS
    assert list(frame.columns)[len(DUMP_COLUMNS) :] == list(dsa.LEDGER_COLUMNS)
    assert len(frame) == len(STATEMENTS)
    theirs = pd.DataFrame(STATEMENTS)[["uuid", "category", "source_type", "automated_decision", "content_date"]]
    joined = frame.merge(theirs, on="uuid", suffixes=("", "_dsa"))
    assert len(joined) == len(STATEMENTS)
    for col in ("category", "source_type", "automated_decision", "content_date"):
        assert (joined[col] == joined[f"{col}_dsa"]).all(), col
    by_uuid = {st["uuid"]: st for st in STATEMENTS}
    for row in frame.to_dict("records"):
        st = by_uuid[row["uuid"]]
        assert json.loads(row["category_specification"]) == st["category_specification"]
        assert sorted(json.loads(row["territorial_scope"])) == sorted(st["territorial_scope"])
        assert row["platform_uid"] == st["puid"]
        assert row["ledger_account_class"] == st["ledger"]["account"]["class"]
        assert row["ledger_exemption_applied"] == "false"
    checkpoints = set(frame["ledger_checkpoint"])
    assert len(checkpoints) == 1
    origin, tree_size, root = checkpoints.pop().split(" ")
    with dsa_log.read() as s:
        cp = verify.verify_checkpoint(dsa_log.latest(s).note, dsa_log.verifier)
        leaves = storage.read_level_hashes(s, 0, 0, size)
    assert (origin, int(tree_size), base64.b64decode(root)) == (cp.origin, cp.size, cp.root)
    indexes = [int(i) for i in frame["ledger_index"]]
    assert indexes == sorted(indexes)
    assert [base64.b64decode(h) for h in frame["ledger_leaf_hash"]] == [leaves[i] for i in indexes]


def test_mirror_dsa_csv_is_the_export_byte_for_byte(client: FlaskClient, dsa_log: Log, tmp_path: Path) -> None:
    size = dsa_log.latest_size()
    with dsa_log.read() as s:
        data = storage.read_entries(s, 0, size)
        note = dsa_log.latest(s).note
    cp = verify.verify_checkpoint(note, dsa_log.verifier)
    with closing(Mirror(tmp_path / "mirror.sqlite3", dsa_log.verifier)) as m:
        m.append([(i, d, merkle.record_hash(d)) for i, d in enumerate(data)])
        m.add_checkpoint(cp, note)
        assert write_dsa_csv(m, tmp_path / "dsa.csv", note) == len(STATEMENTS)
    assert (tmp_path / "dsa.csv").read_bytes() == _dsa_export(client, size)
    assert (tmp_path / "dsa.csv.checkpoint").read_bytes() == note


# The commands -------------------------------------------------------------------------------


def test_dsa_check_reports_a_planted_difference_and_only_that(tmp_path: Path) -> None:
    rec = imported()[5]
    planted = copy.deepcopy(STATEMENTS[5])
    planted["content_language"] = "IT"
    (tmp_path / "rec.json").write_text(json.dumps({"record": rec, "signature": {}}))
    (tmp_path / "same.json").write_text(json.dumps(STATEMENTS[5]))
    (tmp_path / "planted.json").write_text(json.dumps(planted))
    runner = CliRunner()
    same = runner.invoke(mdl, ["dsa-check", str(tmp_path / "rec.json"), str(tmp_path / "same.json")])
    assert same.exit_code == 0, same.output
    assert ": differs" not in same.output
    res = runner.invoke(mdl, ["dsa-check", str(tmp_path / "rec.json"), str(tmp_path / "planted.json")])
    assert res.exit_code == 1
    differing = [line for line in res.output.splitlines() if ": differs" in line]
    assert differing == ['content_language / content.language: differs (record: "FR", statement: "IT")']
    assert "1 of 19 fields differ" in res.output


def test_dsa_import_command_signs_every_statement_or_none(tmp_path: Path) -> None:
    key = tmp_path / "platform.key"
    key.write_text(KEY.to_text() + "\n")
    key.chmod(0o600)
    (tmp_path / "mapping.json").write_text(json.dumps({"platform": "example-social", "defaults": MAPPING.defaults}))
    (tmp_path / "statements.json").write_text(json.dumps({"statements": STATEMENTS}))
    out = tmp_path / "items.ndjson"
    args = ["dsa-import", "--key", str(key), "--mapping", str(tmp_path / "mapping.json"), "--out", str(out)]
    res = CliRunner().invoke(mdl, [*args, str(tmp_path / "statements.json")])
    assert res.exit_code == 0, res.output
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert [i["record"]["dsa_sor_uuid"] for i in items] == [st["uuid"] for st in STATEMENTS]
    bad = [STATEMENTS[0], REFUSALS[0][1], REFUSALS[1][1]]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    out2 = tmp_path / "none.ndjson"
    res = CliRunner().invoke(mdl, [*args[:-1], str(out2), str(tmp_path / "bad.json")])
    assert res.exit_code == 1
    assert "statement 2: puid '2026-000000': decision_visibility:" in res.output
    assert "statement 3: puid '2026-000006': decision_monetary:" in res.output
    assert not out2.exists()
