"""The decision feed (``/records``) and a subject's decisions (``/subjects/<key>``).

Both read ``ledger.query.feed``, newest first, pinned to a tree size by
the cursor in the "older" link, as the JSON feed is.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from flask import abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ledger import query
from ledger.browse import COUNT_CAP, Reader, count_feed, platform_names, subject_latest
from ledger.log import Log
from ledger.records.vocab import PATTERNS, PUBLIC_CLASSES
from web import bp, current_log, filters


def _page(log: Log, s: Reader, form: filters.FeedForm) -> tuple[int, list[dict[str, Any]], int | None]:
    """The tree size the page reflects, its rows, and how many records match
    in all (None when the form has errors); sets form errors instead of failing."""
    size = log.latest(s).size
    before = None
    if form.cursor is not None:
        pinned, before = form.cursor
        if pinned > size:
            form.errors["cursor"] = "This page link is from a larger log than this one: start from the newest."
            return size, [], None
        size = pinned
    if form.errors:
        return size, [], None
    return size, query.feed(s, form.feed, size, before), count_feed(s, form.feed, size)


def _older(form: filters.FeedForm, size: int, rows: list[dict[str, Any]]) -> dict[str, str] | None:
    if len(rows) < form.feed.limit:
        return None
    return form.page_args(cursor=query.encode_cursor(size, rows[-1]["leaf_index"]))


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
        size, rows, total = _page(log, s, form)
    older = _older(form, size, rows)
    api_url = url_for("feed.records_feed") if not form.errors else None
    if api_url and form.api_args():
        api_url += "?" + urlencode(form.api_args())
    html = render_template(
        "feed.html",
        form=form,
        fields=filters.fields(names),
        names=names,
        rows=rows,
        tree_size=size,
        older=older,
        total=total,
        cap=COUNT_CAP,
        api_url=api_url,
    )
    return html, 400 if form.errors else 200


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
        form = filters.parse({"subject_key": subject_key, "cursor": cursor}, names)
        size, rows, _ = _page(log, s, form)
    row, total = latest
    older = _older(form, size, rows)
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
        older={"cursor": older["cursor"]} if older else None,
        api_url=url_for("feed.subject", subject_key=subject_key)
        + (f"?{urlencode({'cursor': cursor})}" if cursor else ""),
    )
    return html, 400 if form.errors else 200
