"""The decision feed (``/records``), a subject's decisions (``/subjects/<key>``)
and a person's across platforms (``/people/<QID>``).

All read ``ledger.query.feed``, newest first, pinned to a tree size by
the cursor in the "older" link, as the JSON feed is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ledger import query
from ledger.browse import (
    COUNT_CAP,
    Reader,
    count_feed,
    feed_newer,
    followups,
    is_demo,
    person,
    platform_names,
    subject_latest,
    tally_feed,
)
from ledger.errors import InvalidInput, NotFound
from ledger.log import Log
from ledger.records.vocab import PATTERNS, PUBLIC_CLASSES
from web import bp, current_log, filter_form, filters
from web.atom import atom
from web.cards import COLUMNS


def _page(
    log: Log, s: Reader, form: filters.FeedForm, count: bool = True
) -> tuple[int, list[dict[str, Any]], tuple[int, bool] | None]:
    """The tree size the page reflects, its rows, and how many records match
    in all (:func:`_count`; None when the form has errors, or not ``count``:
    a page that counts its records otherwise); sets form errors instead of failing."""
    size = log.latest(s).size
    pin = form.cursor or form.newer
    if pin is not None:
        if pin[0] > size:
            form.errors["cursor"] = "This page link is from a larger log than this one: start from the newest."
            return size, [], None
        size = pin[0]
    if form.errors:
        return size, [], None
    if form.newer is not None:
        rows, form.more_newer = feed_newer(s, form.feed, size, form.newer[1], form.newer_key, COLUMNS)
    else:
        before = None if form.cursor is None else form.cursor[1]
        rows = query.feed(s, form.feed, size, before, form.cursor_key, COLUMNS)
    return size, rows, _count(s, form.feed, size) if count else None


def _count(s: Reader, feed: query.Feed, size: int) -> tuple[int, bool]:
    """How many records match, and whether that is only a lower bound: exact
    where the log keeps the figure (:func:`tally_feed`), else counted up to
    ``COUNT_CAP`` (a broad view of a large log would cost a page hundreds of
    milliseconds to count in full, issue 14)."""
    tallied = tally_feed(s, feed, size)
    if tallied is not None:
        return tallied, False
    counted = count_feed(s, feed, size, COUNT_CAP)
    return min(counted, COUNT_CAP), counted > COUNT_CAP


def _older(form: filters.FeedForm, size: int, rows: list[dict[str, Any]]) -> dict[str, str] | None:
    """The next page down, if there may be one (a newer page always has one)."""
    if not rows or (len(rows) < form.feed.limit and form.newer is None):
        return None
    key = rows[-1]["sort_key"] if form.feed.sort == "decided" else None
    return form.page_args(cursor=query.encode_cursor(size, rows[-1]["leaf_index"], key))


def _newer(form: filters.FeedForm, size: int, rows: list[dict[str, Any]]) -> dict[str, str] | None:
    """The next page up, pinned to the same tree size; None on the newest
    page (a newer page that came back short has reached it)."""
    if not rows or (form.cursor is None and not form.more_newer):
        return None
    key = rows[0]["sort_key"] if form.feed.sort == "decided" else None
    return form.page_args(newer=query.encode_cursor(size, rows[0]["leaf_index"], key))


def _own_pages(form: filters.FeedForm, size: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Older and Newer of a page whose own URL holds its filters (a subject's,
    a person's): each link carries its cursor alone."""
    older, newer = _older(form, size, rows), _newer(form, size, rows)
    return {
        "older": {"cursor": older["cursor"]} if older else None,
        "newer": {"newer": newer["newer"]} if newer else None,
    }


@bp.get("/records")
def feed() -> tuple[str, int] | Response:
    if any(not v.strip() for _, v in request.args.items(multi=True)):
        # The form sends every input, empty or not; keep bookmarks short.
        kept = [(k, v) for k, v in request.args.items(multi=True) if v.strip()]
        return redirect(url_for("web.feed") + ("?" + urlencode(kept) if kept else ""))
    log = current_log()
    with log.read() as s:
        names = platform_names(s)
        form = filters.parse(request.args, names)
        size, rows, counted = _page(log, s, form)
        later = followups(s, rows, size)
    total, more = counted or (None, False)
    older = _older(form, size, rows)
    newer = _newer(form, size, rows)
    api_url = url_for("feed.records_feed") if not form.errors else None
    if api_url and form.api_args():
        api_url += "?" + urlencode(form.api_args())
    downloads = {} if form.errors else _downloads(form)
    html = render_template(
        "feed.html",
        form=form,
        downloads=downloads,
        fields=filters.fields(names),
        inputs=filter_form.inputs(form, names),
        names=names,
        rows=rows,
        tree_size=size,
        older=older,
        newer=newer,
        total=total,
        more=more,
        followups=later,
        api_url=api_url,
        # What ledger.browse.has_demo_platform asks the database, from the
        # platforms this page has read already.
        demo_data=any(map(is_demo, names)),
    )
    return html, 400 if form.errors else 200


#: Download formats offered beside a feed view, by the label the page shows.
DOWNLOAD_FORMATS = {"CSV": "csv", "NDJSON": "ndjson", "Parquet": "parquet"}


def _downloads(form: filters.FeedForm) -> dict[str, str]:
    """Links to every record the view's filters select, as a file
    (``GET /api/v1/feed.<fmt>``: the API's filters without the page's cursor)."""
    args = {k: v for k, v in form.api_args().items() if k not in ("cursor", "limit")}
    query = "?" + urlencode(args) if args else ""
    return {label: url_for("downloads.feed_download", fmt=fmt) + query for label, fmt in DOWNLOAD_FORMATS.items()}


@bp.get("/subjects/<subject_key>")
def subject(subject_key: str) -> tuple[str, int]:
    if not re.fullmatch(PATTERNS["subject_key"], subject_key):
        abort(404, "A subject key is 16 to 128 letters, digits, '-' and '_'.")
    log = current_log()
    with log.read() as s:
        names = platform_names(s)
        latest = subject_latest(s, subject_key)
        if latest is None:
            abort(404, "No record in the log is about an account with this subject key.")
        cursor = request.args.get("cursor", "")
        paging = {name: request.args.get(name, "") for name in filters.PAGING}
        form = filters.parse({"subject_key": subject_key, **paging}, names)
        size, rows, _ = _page(log, s, form, count=False)
        later = followups(s, rows, size)
    row, total = latest
    html = render_template(
        "subject.html",
        subject_key=subject_key,
        latest=row,
        public=row.account_class in PUBLIC_CLASSES,
        total=total,
        form=form,
        names=names,
        rows=rows,
        tree_size=size,
        **_own_pages(form, size, rows),
        followups=later,
        api_url=url_for("feed.subject", subject_key=subject_key)
        + (f"?{urlencode({'cursor': cursor})}" if cursor else ""),
    )
    return html, 400 if form.errors else 200


def check_qid(qid: str) -> None:
    """Refuse (400) a Wikidata item that is not of the record schema's form."""
    if not re.fullmatch(PATTERNS["wikidata_qid"], qid) or len(qid) > 20:
        raise InvalidInput(
            f"A Wikidata item is Q and a number without leading zeros, such as Q4115189: not {qid[:40]!r}."
        )


@bp.get("/people/<qid>")
def person_page(qid: str) -> tuple[str, int]:
    """A person or body across platforms, by the Wikidata item platforms gave
    for their accounts: which accounts, counts, and their feed (with the
    appeals and amendments of their decisions), paged as the subject page is."""
    check_qid(qid)
    log = current_log()
    with log.read() as s:
        names = platform_names(s)
        paging = {name: request.args.get(name, "") for name in filters.PAGING}
        form = filters.parse({"qid": qid, **paging}, names)
        size, rows, _ = _page(log, s, form, count=False)
        found = person(s, qid, size)
        if found is None:
            raise NotFound(
                f"No decision in the log names Wikidata item {qid} for the account it is about. "
                "Platforms give an item only for some public accounts: search the decisions by name instead."
            )
        later = followups(s, rows, size)
    # The person's feed counted once, by platform and type (the same parts as the list's).
    total = None if form.errors else sum(n for _, _, n in found.by_platform)
    per_platform: dict[str, dict[str, int]] = {}
    for platform, type_, n in found.by_platform:
        per_platform.setdefault(platform, {})[type_] = n
    html = render_template(
        "person.html",
        qid=qid,
        person=found,
        per_platform=per_platform,
        total=total,
        form=form,
        names=names,
        rows=rows,
        tree_size=size,
        **_own_pages(form, size, rows),
        followups=later,
        downloads={} if form.errors else _downloads(form),
        api_url=url_for("feed.records_feed", qid=qid),
    )
    return html, 400 if form.errors else 200


def _atom_title(form: filters.FeedForm, names: dict[str, str]) -> str:
    chosen = form.page_args()
    chosen.pop("limit", None)
    shown = []
    for f in filters.fields(names):
        if f.name in chosen:
            value = chosen[f.name]
            shown.append(f"{f.label}: {f.choices.get(value, value) if f.choices else value}")
    return "Moderation decisions" + (f" ({'; '.join(shown)})" if shown else "")


@bp.get("/records.atom")
def feed_atom() -> Response:
    """The newest records of any filtered view of the feed, as an Atom feed."""
    return atom_feed(request.args)


def atom_feed(filter_args: Mapping[str, str]) -> Response:
    """The Atom feed of the view of ``/records`` that ``filter_args`` (the
    feed's filters) select; every URL that answers it gives the same bytes."""
    log = current_log()
    with log.read() as s:
        names = platform_names(s)
        form = filters.parse(filter_args, names)
        if form.errors:
            abort(400, "; ".join(f"{k}: {v}" for k, v in form.errors.items()))
        cp = log.latest(s)
        rows = query.feed(s, form.feed, cp.size, None, columns=COLUMNS)
    args = form.page_args()
    body = atom(
        _atom_title(form, names),
        url_for("web.feed_atom", **args, _external=True),
        url_for("web.feed", **args, _external=True),
        rows,
        names,
        lambda platform, record_id: url_for("web.record", platform=platform, record_id=record_id, _external=True),
        cp.created_at_ms,
    )
    return Response(body, mimetype="application/atom+xml")
