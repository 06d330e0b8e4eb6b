"""The feed's cards: each row of a feed page (``ledger.query.feed``) as the
``<li>`` that ``rows_list`` (templates/_macros.html) lists, on ``/records``,
a subject's, a person's and a platform's page and the home page.

Drawn here rather than by a Jinja macro, and kept per record: the macro
(three ``url_for`` and a dozen labels and nested macro calls a card) was
~47% of the CPU of a text search's page at 200,000 records (issue 14).

A kept card is a pure function of its key: the index row's fields the card
shows (an index row never changes once logged), whether a later amendment
supersedes the record in the page's tree, the platform's name, the heading
and the URL root. A kept card therefore cannot be another record's, nor
stale. What depends on the tree or the clock is drawn per page: the
follow-ups (the appeals and amendments of the decision, which the log can
gain at any time) and the relative times ("3 days ago").

Every value from a record goes through ``markupsafe.escape`` as the
templates' autoescape would; nothing from a record is trusted. The pieces
are plain strings of escaped HTML, joined and marked safe once: built with
``Markup.format`` instead (a pure-Python formatter), a card drawn afresh
cost ~0.4 ms, more than the macro it replaced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from flask import current_app, request, url_for
from markupsafe import Markup, escape

from ledger.lru import LRU
from web import present
from web.labels import OUTCOME_WORDS, label, yes_no

#: The fields of an index row that a card shows (with ``superseded``, which
#: the page's tree decides): with the platform's name, the heading and the
#: URL root, the key a card is kept under.
SHOWN = (
    "leaf_index",
    "type",
    "platform",
    "record_id",
    "ref_record_id",
    "display_name",
    "subject_key",
    "account_class",
    "appeal_outcome",
    "action",
    "violation_found",
    "exemption_applied",
    "exemption_type",
    "category",
    "review_path",
    "rule_id",
    "rule_version",
    "decided_at_ms",
    "logged_at_ms",
    "superseded",
)
_SHOWN = itemgetter(*SHOWN)
#: The columns of ``record_index`` a page of cards reads (``ledger.query.feed``):
#: those the cards show, which hold what ``ledger.browse.followups`` looks
#: up (the platform, type, record and referred record) and every field the
#: Atom feed shows (web/atom.py).
COLUMNS = tuple(name for name in SHOWN if name != "superseded")


@dataclass(frozen=True)
class Card:
    """A card but for its per-page parts: ``head`` (up to its facts), then
    the follow-ups, then ``times`` with the relative time of each of
    ``relative`` (milliseconds) between its pieces."""

    head: str
    times: tuple[str, ...]
    relative: tuple[int, ...]


def init_app(size: int) -> LRU[Card]:
    """The cards a worker keeps (``FEED_ROW_CACHE``; 0 keeps none)."""
    return LRU(size)


def cards(
    rows: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
    heading: str = "h3",
    followups: Mapping[int, list[Mapping[str, Any]]] | None = None,
) -> Markup:
    """The cards of ``rows`` as ``rows_list`` lists them (each on a new
    line); ``followups`` as ``ledger.browse.followups`` gives them."""
    kept: LRU[Card] = current_app.extensions["feed_cards"]
    root = request.script_root
    now = datetime.now(UTC)
    out = []
    for r in rows:
        name = names.get(r["platform"], r["platform"])
        key = (_SHOWN(r), name, heading, root)
        card = kept.get(key)
        if card is None:
            card = _card(r, name, heading)
            kept.put(key, card)
        out.append("\n  ")
        out.append(card.head)
        later = followups.get(r["leaf_index"]) if followups else None
        if later:
            out.append('\n  <ul class="row-followups">')
            out.extend(_followup(f) for f in later)
            out.append("\n  </ul>")
        out.append(card.times[0])
        for ms, piece in zip(card.relative, card.times[1:], strict=True):
            out.append(str(escape(present.relative(ms, now))))
            out.append(piece)
    # Every piece is escaped HTML: literals, and values through escape.
    return Markup("".join(out))  # noqa: S704


def _link(platform: str, record_id: Any) -> str:
    href = url_for("web.record", platform=platform, record_id=record_id)
    return f'<a href="{escape(href)}">{escape(record_id)}</a>'


def _who(r: Mapping[str, Any]) -> str:
    name, key, kind = r["display_name"], r["subject_key"], r["account_class"]
    if name:
        shown = str(escape(name))
        if key:
            shown = f'<a href="{escape(url_for("web.subject", subject_key=key))}">{shown}</a>'
        return f"{shown}, {escape(label('account_class', kind))}"
    if kind == "ordinary_user":
        return "An ordinary user (not named: ordinary users' privacy)"
    if kind:
        return str(escape(label("account_class", kind)))
    return ""


def _facts(r: Mapping[str, Any]) -> str:
    platform = r["platform"]
    if r["type"] == "appeal":
        return (
            f"\n    <div><dt>Appeal of</dt><dd>{_link(platform, r['ref_record_id'])}</dd></div>"
            f"\n    <div><dt>Outcome</dt><dd>{escape(label('appeal_outcome', r['appeal_outcome']))}</dd></div>"
        )
    out = []
    if r["type"] == "amendment":
        out.append(f"<div><dt>Amends</dt><dd>{_link(platform, r['ref_record_id'])}</dd></div>")
    violation = str(escape(yes_no(r["violation_found"])))
    if r["exemption_applied"]:
        violation += f"; exemption applied: {escape(label('exemption_type', r['exemption_type']))}"
    out += [
        f"\n    <div><dt>Action</dt><dd>{escape(label('action', r['action']))}</dd></div>",
        f"\n    <div><dt>Violation found</dt><dd>{violation}</dd></div>",
        f"\n    <div><dt>Category</dt><dd>{escape(label('category', r['category']))}</dd></div>",
        f"\n    <div><dt>Review</dt><dd>{escape(label('review_path', r['review_path']))}</dd></div>",
        f'\n    <div class="wide"><dt>Rule</dt><dd><code class="code">{escape(r["rule_id"])}</code>, '
        f'version <code class="code">{escape(r["rule_version"])}</code></dd></div>',
    ]
    return "".join(out)


def _when(value: Any, pieces: list[str], relative: list[int]) -> None:
    """Continue ``pieces`` (the last one open) with the ``when`` macro of
    ``value``: its relative time becomes a hole between two pieces."""
    if value is None:
        pieces[-1] += "—"
        return
    pieces[-1] += (
        f'<time datetime="{escape(present.iso(value))}">{escape(present.exact(value))}</time> <span class="rel">('
    )
    relative.append(value)
    pieces.append(")</span>")


def _card(r: Mapping[str, Any], name: str, heading: str) -> Card:
    """The parts of ``r``'s card that its key decides (:class:`Card`)."""
    platform, record_id, superseded = r["platform"], escape(r["record_id"]), r["superseded"]
    record = escape(url_for("web.record", platform=platform, record_id=r["record_id"]))
    as_json = escape(url_for("records.by_record_id", slug=platform, record_id=r["record_id"]))
    h = escape(heading)
    head = (
        f'<li class="row{" row-superseded" if superseded else ""}" '
        f'data-leaf-index="{escape(r["leaf_index"])}" data-type="{escape(r["type"])}">'
        '\n  <div class="row-head">'
        f'\n    <{h} class="row-title"><a href="{record}">{escape(label("record_type", r["type"]))} '
        f'<span class="id">{record_id}</span></a></{h}>'
        + (' <span class="badge badge-warn">Replaced by a later amendment</span>' if superseded else "")
        + f'\n    <a class="json" href="{as_json}">JSON<span class="vh"> of {record_id}</span></a>'
        "\n  </div>"
        f'\n  <p class="row-who">{_who(r)}{" · " if r["type"] != "appeal" else ""}{escape(name)}</p>'
        f'\n  <dl class="row-facts">{_facts(r)}'
        "\n  </dl>"
    )
    pieces = ['\n  <p class="row-times">Decided ']
    relative: list[int] = []
    _when(r["decided_at_ms"], pieces, relative)
    pieces[-1] += " · logged "
    _when(r["logged_at_ms"], pieces, relative)
    pieces[-1] += f" as entry {r['leaf_index']:,}</p>\n</li>"
    return Card(head, tuple(pieces), tuple(relative))


def _followup(f: Mapping[str, Any]) -> str:
    """One line of a card's follow-ups: drawn per page, as the log can gain them."""
    if f["type"] == "appeal":
        outcome = f["appeal_outcome"]
        if outcome == "pending":
            said = "<strong>Appealed</strong>, not yet decided"
        else:
            words = escape(OUTCOME_WORDS.get(outcome, outcome))
            said = f"<strong>{words} on appeal</strong>, {escape(present.day(f['decided_at_ms'] or f['logged_at_ms']))}"
    else:
        said = f"<strong>Amended</strong>, {escape(present.day(f['logged_at_ms']))}"
    return f"\n    <li>{said}: {_link(f['platform'], f['record_id'])}</li>"
