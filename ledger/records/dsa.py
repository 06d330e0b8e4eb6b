"""The EU DSA Transparency Database's statements of reasons, beside schema v1. Pure.

This module owns the correspondence between a DSA statement of reasons
and a schema-v1 decision, in both directions, and nothing else: the DSA
enumerations, what each value means in a record (:func:`restriction_actions`,
:data:`DETECTION_SOURCES`, ...), and the DSA dump's row for a logged record
(:data:`DSA_CSV_COLUMNS`, :func:`dsa_row`). The client's ``dsa-import`` and
``dsa-check`` (``client/dsa.py``) and the server's ``format=dsa-csv`` export
use it, so the three cannot disagree. ``docs/records.md`` ("The DSA
Transparency Database") documents every mapping with its source.

Sources (all in the repository digital-services-act/transparency-database):

- Field names and enumerations: ``resources/markdown/api-documentation-two.md``
  (the API documentation) and ``app/Models/Statement.php`` (the constants it
  lists: ``DECISION_VISIBILITIES``, ``DECISION_MONETARIES``,
  ``DECISION_PROVISIONS``, ``DECISION_ACCOUNTS``, ``ACCOUNT_TYPES``,
  ``DECISION_GROUNDS``, ``SOURCE_TYPES``, ``AUTOMATED_DECISIONS``).
- Dump columns: ``app/Exports/StatementExportTrait.php`` (``headings``) and
  ``app/Services/DayArchiveService.php`` (the selected columns).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from ledger.records.export import safe_cell

DECISION_VISIBILITIES = (
    "DECISION_VISIBILITY_CONTENT_REMOVED",
    "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED",
    "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
)
DECISION_MONETARIES = ("DECISION_MONETARY_SUSPENSION", "DECISION_MONETARY_TERMINATION", "DECISION_MONETARY_OTHER")
DECISION_PROVISIONS = (
    "DECISION_PROVISION_PARTIAL_SUSPENSION",
    "DECISION_PROVISION_TOTAL_SUSPENSION",
    "DECISION_PROVISION_PARTIAL_TERMINATION",
    "DECISION_PROVISION_TOTAL_TERMINATION",
)
DECISION_ACCOUNTS = ("DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED")
ACCOUNT_TYPES = ("ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE")
DECISION_GROUNDS = ("DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT")
SOURCE_TYPES = ("SOURCE_ARTICLE_16", "SOURCE_TRUSTED_FLAGGER", "SOURCE_TYPE_OTHER_NOTIFICATION", "SOURCE_VOLUNTARY")
AUTOMATED_DECISIONS = ("AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY", "AUTOMATED_DECISION_NOT_AUTOMATED")
YES_NO = ("Yes", "No")
CATEGORY_PREFIX, KEYWORD_PREFIX, CONTENT_TYPE_PREFIX = "STATEMENT_CATEGORY_", "KEYWORD_", "CONTENT_TYPE_"

#: The one record ``action`` each restriction value stands for. ``None``: no
#: action of schema v1 says what it says (an "other" restriction, described
#: only in free text), so a statement holding it cannot be imported.
#: Suspensions may end (``end_date_*``); terminations do not.
RESTRICTION_ACTIONS: dict[str, str | None] = {
    "DECISION_VISIBILITY_CONTENT_REMOVED": "remove_content",
    "DECISION_VISIBILITY_CONTENT_DISABLED": "geo_block",
    "DECISION_VISIBILITY_CONTENT_DEMOTED": "reduce_reach",
    "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED": "age_restrict",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED": "restrict_interaction",
    "DECISION_VISIBILITY_CONTENT_LABELLED": "label",
    "DECISION_VISIBILITY_OTHER": None,
    "DECISION_MONETARY_SUSPENSION": "demonetize",
    "DECISION_MONETARY_TERMINATION": "demonetize",
    "DECISION_MONETARY_OTHER": None,
    "DECISION_PROVISION_PARTIAL_SUSPENSION": "feature_limit",
    "DECISION_PROVISION_PARTIAL_TERMINATION": "feature_limit",
    "DECISION_PROVISION_TOTAL_SUSPENSION": "temporary_suspension",
    "DECISION_PROVISION_TOTAL_TERMINATION": "permanent_ban",
    "DECISION_ACCOUNT_SUSPENDED": "temporary_suspension",
    "DECISION_ACCOUNT_TERMINATED": "permanent_ban",
}
#: The four restriction fields, each with its end-date field and its values.
RESTRICTION_FIELDS = (
    ("decision_visibility", "end_date_visibility_restriction", DECISION_VISIBILITIES),
    ("decision_monetary", "end_date_monetary_restriction", DECISION_MONETARIES),
    ("decision_provision", "end_date_service_restriction", DECISION_PROVISIONS),
    ("decision_account", "end_date_account_restriction", DECISION_ACCOUNTS),
)
#: The restriction a record's action is written as in the DSA layout:
#: (field, value if the action has an end, value if it has none).
ACTION_RESTRICTIONS: dict[str, tuple[str, str, str]] = {
    "remove_content": (
        "decision_visibility",
        "DECISION_VISIBILITY_CONTENT_REMOVED",
        "DECISION_VISIBILITY_CONTENT_REMOVED",
    ),
    "geo_block": (
        "decision_visibility",
        "DECISION_VISIBILITY_CONTENT_DISABLED",
        "DECISION_VISIBILITY_CONTENT_DISABLED",
    ),
    "reduce_reach": (
        "decision_visibility",
        "DECISION_VISIBILITY_CONTENT_DEMOTED",
        "DECISION_VISIBILITY_CONTENT_DEMOTED",
    ),
    "age_restrict": (
        "decision_visibility",
        "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
        "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    ),
    "restrict_interaction": (
        "decision_visibility",
        "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
        "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
    ),
    "label": ("decision_visibility", "DECISION_VISIBILITY_CONTENT_LABELLED", "DECISION_VISIBILITY_CONTENT_LABELLED"),
    "interstitial": ("decision_visibility", "DECISION_VISIBILITY_OTHER", "DECISION_VISIBILITY_OTHER"),
    "demonetize": ("decision_monetary", "DECISION_MONETARY_SUSPENSION", "DECISION_MONETARY_TERMINATION"),
    "feature_limit": (
        "decision_provision",
        "DECISION_PROVISION_PARTIAL_SUSPENSION",
        "DECISION_PROVISION_PARTIAL_TERMINATION",
    ),
    "temporary_suspension": ("decision_account", "DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_SUSPENDED"),
    "permanent_ban": ("decision_account", "DECISION_ACCOUNT_TERMINATED", "DECISION_ACCOUNT_TERMINATED"),
}
END_DATE_FIELDS = {field: end for field, end, _ in RESTRICTION_FIELDS}

#: The record ``detection_source`` values each ``source_type`` allows. A
#: notice under Article 16 DSA comes from "any individual or entity"; this
#: ledger's nearest source is ``user_report``. Own-initiative detection is
#: ``automated`` or ``internal_staff`` by ``automated_detection``; an "other
#: type of notification" is an order, a request or anything else.
DETECTION_SOURCES: dict[str, tuple[str, ...]] = {
    "SOURCE_ARTICLE_16": ("user_report",),
    "SOURCE_TRUSTED_FLAGGER": ("trusted_flagger",),
    "SOURCE_VOLUNTARY": ("automated", "internal_staff"),
    "SOURCE_TYPE_OTHER_NOTIFICATION": ("government_request", "court_order", "media_or_public_inquiry", "other"),
}
SOURCE_TYPE_OF = {src: st for st, srcs in DETECTION_SOURCES.items() for src in srcs}
AUTOMATED_DECISION_OF = dict(zip(AUTOMATED_DECISIONS, ("fully", "partially", "none"), strict=True))

#: The columns of the DSA daily dumps ("full" version), in their order.
DSA_DUMP_COLUMNS = (
    *("uuid", "decision_visibility", "decision_visibility_other", "end_date_visibility_restriction"),
    *("decision_monetary", "decision_monetary_other", "end_date_monetary_restriction"),
    *("decision_provision", "end_date_service_restriction", "decision_account", "end_date_account_restriction"),
    *("account_type", "decision_ground", "decision_ground_reference_url", "illegal_content_legal_ground"),
    *("illegal_content_explanation", "incompatible_content_ground", "incompatible_content_explanation"),
    *("incompatible_content_illegal", "category", "category_addition", "category_specification"),
    *("category_specification_other", "content_type", "content_type_other", "content_language", "content_date"),
    *("territorial_scope", "application_date", "decision_facts", "source_type", "source_identity"),
    *("automated_detection", "automated_decision", "platform_name", "platform_uid", "created_at"),
)
#: This ledger's columns, after the DSA's: what the DSA has no column for,
#: and where the row sits in the log.
LEDGER_COLUMNS = (
    *("dsa_sor_uuid", "ledger_record_type", "ledger_account_class", "ledger_class_basis"),
    *("ledger_exemption_applied", "ledger_exemption_type", "ledger_severity", "ledger_action"),
    *("ledger_index", "ledger_leaf_hash", "ledger_logged_at", "ledger_checkpoint"),
)
DSA_CSV_COLUMNS = DSA_DUMP_COLUMNS + LEDGER_COLUMNS


def _json_list(values: list[str]) -> str:
    """A list column as the dumps write it: a compact JSON array."""
    return json.dumps(values, separators=(",", ":"))


def _upper_list(prefix: str, values: list[str] | None) -> str | None:
    return _json_list([prefix + v.upper() for v in values]) if values else None


def _day(value: str | None) -> str | None:
    return value[:10] if value else None


def restriction_columns(body: Mapping[str, Any]) -> dict[str, str | None]:
    """The DSA restriction columns of a decision's ``action`` (and ``action_ends_at``)."""
    out: dict[str, str | None] = {}
    spec = ACTION_RESTRICTIONS.get(body.get("action", "none"))
    if spec is None:
        return out
    field, with_end, without_end = spec
    ends = body.get("action_ends_at")
    value = with_end if ends else without_end
    out[field] = _json_list([value]) if field == "decision_visibility" else value
    if body.get("action") == "interstitial":
        out["decision_visibility_other"] = "interstitial (schema v1 action)"
    out[END_DATE_FIELDS[field]] = _day(ends)
    return out


def statement_fields(body: Mapping[str, Any]) -> dict[str, str | None]:
    """A decision's fields in the DSA's names and values (a dump row's cells, unescaped).

    ``body`` is a decision record, or an amendment's ``corrected``. Fields the
    record does not hold are left out.
    """
    ground = body.get("decision_ground")
    content = body.get("content", {})
    src = body.get("detection_source")
    out: dict[str, str | None] = {
        "decision_ground": {
            "illegal": DECISION_GROUNDS[0],
            "terms": DECISION_GROUNDS[1],
            "both": DECISION_GROUNDS[1],
        }.get(ground or ""),
        "incompatible_content_illegal": {"terms": "No", "both": "Yes"}.get(ground or ""),
        "decision_ground_reference_url": body.get("rule", {}).get("url"),
        "illegal_content_legal_ground": body.get("legal_reference"),
        "category": CATEGORY_PREFIX + body["category"].upper() if "category" in body else None,
        "category_specification": _upper_list(KEYWORD_PREFIX, body.get("keywords")),
        "content_type": _upper_list(CONTENT_TYPE_PREFIX, content.get("types")),
        "content_language": content["language"].upper() if "language" in content else None,
        "content_date": _day(content.get("posted_at")),
        "territorial_scope": _json_list(body["territorial_scope"]) if "territorial_scope" in body else None,
        "application_date": _day(body.get("applied_at")),
        "decision_facts": body.get("statement"),
        "source_type": SOURCE_TYPE_OF.get(src or ""),
        "automated_detection": {True: "Yes", False: "No"}.get(body.get("automated_detection")),  # type: ignore[arg-type]
        "automated_decision": {v: k for k, v in AUTOMATED_DECISION_OF.items()}.get(body.get("automated_decision", "")),
    }
    out.update(restriction_columns(body))
    return {k: v for k, v in out.items() if v is not None}


def dsa_row(index: int, leaf_hash: bytes, logged_at: str, record: Mapping[str, Any], checkpoint: str) -> list[str]:
    """One logged record as a row of :data:`DSA_CSV_COLUMNS`.

    The DSA columns hold the decision (an amendment's corrected decision; an
    appeal has none, so they stay empty); ``uuid`` is the cited
    ``dsa_sor_uuid`` and ``platform_uid`` the record_id, so that the row joins
    the DSA's own. Cells are made safe for spreadsheets as in
    :mod:`ledger.records.export`.
    """
    body: Mapping[str, Any] = record.get("corrected", record) if record.get("type") != "appeal" else {}
    cells: dict[str, Any] = dict(statement_fields(body))
    exemption = body.get("exemption", {})
    account = body.get("account", {})
    cells.update(
        uuid=record.get("dsa_sor_uuid"),
        platform_name=record.get("platform"),
        platform_uid=record.get("record_id"),
        created_at=logged_at,
        dsa_sor_uuid=record.get("dsa_sor_uuid"),
        ledger_record_type=record.get("type"),
        ledger_account_class=account.get("class"),
        ledger_class_basis=account.get("class_basis"),
        ledger_exemption_applied={True: "true", False: "false"}.get(exemption.get("applied")),  # type: ignore[arg-type]
        ledger_exemption_type=exemption.get("type"),
        ledger_severity=body.get("severity"),
        ledger_action=body.get("action") or record.get("new_action"),
        ledger_index=str(index),
        ledger_leaf_hash=base64.b64encode(leaf_hash).decode(),
        ledger_logged_at=logged_at,
        ledger_checkpoint=checkpoint,
    )
    return [safe_cell(cells.get(c) or "") for c in DSA_CSV_COLUMNS]


def checkpoint_cell(origin: str, tree_size: int, root: bytes) -> str:
    """The ``ledger_checkpoint`` cell: ``<origin> <tree size> <base64 root>``, as the CSV export's preamble."""
    return f"{origin} {tree_size} {base64.b64encode(root).decode()}"
