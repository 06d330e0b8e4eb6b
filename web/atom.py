"""Atom feeds (RFC 4287) of the decision feed: any filtered view of
``/records`` (a platform, a person's subject key, a rule, a search) can be
followed in a feed reader at ``/records.atom?<the same filters>``.

Built with feedgen, which writes well-formed XML and escapes every
string: names and statements in records are untrusted input. An entry's
id is the record's permanent URL, so a reader never shows one twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from feedgen.feed import FeedGenerator  # type: ignore[import-untyped]

from web import labels


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _title(r: Mapping[str, Any], names: Mapping[str, str]) -> str:
    kind = labels.label("record_type", r["type"])
    platform = names.get(r["platform"], r["platform"])
    if r["type"] == "appeal":
        outcome = labels.label("appeal_outcome", r["appeal_outcome"])
        return f"{platform}: {kind} {r['record_id']} of {r['ref_record_id']}, {outcome}"
    who = r["display_name"] or labels.label("account_class", r["account_class"])
    return f"{platform}: {kind} {r['record_id']}, {labels.label('action', r['action'])}, {who}"


def _summary(r: Mapping[str, Any]) -> str:
    if r["type"] == "appeal":
        return f"Appeal of decision {r['ref_record_id']}."
    parts = [
        f"Rule {r['rule_id']} (version {r['rule_version']})",
        f"violation found: {labels.yes_no(r['violation_found'])}",
        f"category: {labels.label('category', r['category'])}",
    ]
    if r["exemption_applied"]:
        parts.append(f"exemption applied: {labels.label('exemption_type', r['exemption_type'])}")
    return "; ".join(parts) + "."


def atom(
    title: str,
    self_url: str,
    page_url: str,
    rows: list[dict[str, Any]],
    names: Mapping[str, str],
    record_url: Any,
    updated_ms: int,
) -> bytes:
    """The Atom document of ``rows`` (feed rows, newest first).
    ``record_url(platform, record_id)`` gives a record page's absolute URL;
    ``updated_ms`` is the time of the checkpoint the rows were read at."""
    fg = FeedGenerator()
    fg.id(self_url)
    fg.title(title)
    fg.link(href=self_url, rel="self", type="application/atom+xml")
    fg.link(href=page_url, rel="alternate", type="text/html")
    fg.updated(_time(updated_ms))
    fg.rights("Data: CC BY 4.0")
    fg.generator("moderation-decision ledger")
    for r in reversed(rows):  # feedgen puts each new entry first
        url = record_url(r["platform"], r["record_id"])
        entry = fg.add_entry()
        entry.id(url)
        entry.title(_title(r, names))
        entry.link(href=url, rel="alternate", type="text/html")
        entry.updated(_time(r["logged_at_ms"]))
        if r["decided_at_ms"] is not None:
            entry.published(_time(r["decided_at_ms"]))
        entry.summary(_summary(r))
    out: bytes = fg.atom_str(pretty=True)
    return out
