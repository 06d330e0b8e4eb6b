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

Every value from a record is escaped (``markupsafe.escape``) as the
templates' autoescape would; nothing from a record is trusted.
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
_SHOWN = itemgetter(
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


@dataclass(frozen=True)
class Card:
    """A card but for its per-page parts: ``head`` (up to its facts), then
    the follow-ups, then ``times`` with the relative time of each of
    ``relative`` (milliseconds) between its pieces."""

    head: Markup
    times: tuple[Markup, ...]
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
    out: list[Markup] = []
    for r in rows:
        name = names.get(r["platform"], r["platform"])
        key = (_SHOWN(r), name, heading, root)
        card = kept.get(key)
        if card is None:
            card = _card(r, name, heading)
            kept.put(key, card)
        out += (_NEW_LINE, card.head)
        later = followups.get(r["leaf_index"]) if followups else None
        if later:
            out.append(Markup('\n  <ul class="row-followups">'))
            out += (_followup(f) for f in later)
            out.append(Markup("\n  </ul>"))
        out.append(card.times[0])
        for ms, piece in zip(card.relative, card.times[1:], strict=True):
            out += (escape(present.relative(ms, now)), piece)
    # Every piece is Markup (typed so), made by Markup.format, which escapes
    # what it is given, or by escape. Markup("").join would check each
    # piece again: 0.7 ms a page of 50 cards.
    return Markup("".join(out))  # noqa: S704


_NEW_LINE = Markup("\n  ")


def _link(platform: str, record_id: Any) -> Markup:
    href = url_for("web.record", platform=platform, record_id=record_id)
    return Markup('<a href="{}">{}</a>').format(href, record_id)


def _who(r: Mapping[str, Any]) -> Markup:
    name, key, kind = r["display_name"], r["subject_key"], r["account_class"]
    if name:
        shown = escape(name)
        if key:
            shown = Markup('<a href="{}">{}</a>').format(url_for("web.subject", subject_key=key), name)
        return Markup("{}, {}").format(shown, label("account_class", kind))
    if kind == "ordinary_user":
        return Markup("An ordinary user (not named: ordinary users' privacy)")
    if kind:
        return escape(label("account_class", kind))
    return Markup("")


def _facts(r: Mapping[str, Any]) -> Markup:
    platform = r["platform"]
    if r["type"] == "appeal":
        return Markup(
            "\n    <div><dt>Appeal of</dt><dd>{}</dd></div>\n    <div><dt>Outcome</dt><dd>{}</dd></div>"
        ).format(_link(platform, r["ref_record_id"]), label("appeal_outcome", r["appeal_outcome"]))
    amends = Markup("")
    if r["type"] == "amendment":
        amends = Markup("<div><dt>Amends</dt><dd>{}</dd></div>").format(_link(platform, r["ref_record_id"]))
    violation = escape(yes_no(r["violation_found"]))
    if r["exemption_applied"]:
        violation += Markup("; exemption applied: {}").format(label("exemption_type", r["exemption_type"]))
    return Markup(
        "{}"
        "\n    <div><dt>Action</dt><dd>{}</dd></div>"
        "\n    <div><dt>Violation found</dt><dd>{}</dd></div>"
        "\n    <div><dt>Category</dt><dd>{}</dd></div>"
        "\n    <div><dt>Review</dt><dd>{}</dd></div>"
        '\n    <div class="wide"><dt>Rule</dt><dd><code class="code">{}</code>, '
        'version <code class="code">{}</code></dd></div>'
    ).format(
        amends,
        label("action", r["action"]),
        violation,
        label("category", r["category"]),
        label("review_path", r["review_path"]),
        r["rule_id"],
        r["rule_version"],
    )


def _when(value: Any, pieces: list[Markup], relative: list[int]) -> None:
    """Continue ``pieces`` (the last one open) with the ``when`` macro of
    ``value``: its relative time becomes a hole between two pieces."""
    if value is None:
        pieces[-1] += Markup("—")
        return
    pieces[-1] += Markup('<time datetime="{}">{}</time> <span class="rel">(').format(
        present.iso(value), present.exact(value)
    )
    relative.append(value)
    pieces.append(Markup(")</span>"))


def _card(r: Mapping[str, Any], name: str, heading: str) -> Card:
    """The parts of ``r``'s card that its key decides (:class:`Card`)."""
    platform, record_id, superseded = r["platform"], r["record_id"], r["superseded"]
    head = Markup(
        '<li class="row{}" data-leaf-index="{}" data-type="{}">'
        '\n  <div class="row-head">'
        '\n    <{h} class="row-title"><a href="{}">{} <span class="id">{id}</span></a></{h}>{}'
        '\n    <a class="json" href="{}">JSON<span class="vh"> of {id}</span></a>'
        "\n  </div>"
        '\n  <p class="row-who">{}{}{}</p>'
        '\n  <dl class="row-facts">{}'
        "\n  </dl>"
    ).format(
        Markup(" row-superseded") if superseded else "",
        r["leaf_index"],
        r["type"],
        url_for("web.record", platform=platform, record_id=record_id),
        label("record_type", r["type"]),
        Markup(' <span class="badge badge-warn">Replaced by a later amendment</span>') if superseded else "",
        url_for("records.by_record_id", slug=platform, record_id=record_id),
        _who(r),
        " · " if r["type"] != "appeal" else "",
        name,
        _facts(r),
        h=heading,
        id=record_id,
    )
    pieces = [Markup('\n  <p class="row-times">Decided ')]
    relative: list[int] = []
    _when(r["decided_at_ms"], pieces, relative)
    pieces[-1] += Markup(" · logged ")
    _when(r["logged_at_ms"], pieces, relative)
    pieces[-1] += Markup(" as entry {}</p>\n</li>").format(f"{r['leaf_index']:,}")
    return Card(head, tuple(pieces), tuple(relative))


def _followup(f: Mapping[str, Any]) -> Markup:
    """One line of a card's follow-ups: drawn per page, as the log can gain them."""
    if f["type"] == "appeal":
        outcome = f["appeal_outcome"]
        if outcome == "pending":
            said = Markup("<strong>Appealed</strong>, not yet decided")
        else:
            said = Markup("<strong>{} on appeal</strong>, {}").format(
                OUTCOME_WORDS.get(outcome, outcome), present.day(f["decided_at_ms"] or f["logged_at_ms"])
            )
    else:
        said = Markup("<strong>Amended</strong>, {}").format(present.day(f["logged_at_ms"]))
    return Markup("\n    <li>{}: {}</li>").format(said, _link(f["platform"], f["record_id"]))
