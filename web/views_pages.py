"""The home page, the log and about pages, and platforms with their keys
(each change with the log entry that made it)."""

from __future__ import annotations

import base64
import re
from typing import Any

from flask import Response, abort, render_template, request

from ledger import query
from ledger.browse import counts, followups, platform_names, signed_checkpoints
from ledger.registry import list_platforms
from ledger.storage import StoredCheckpoint
from web import bp, current_log
from web.cards import COLUMNS

NEWEST = 10
LATEST = 10


def _checkpoint(cp: StoredCheckpoint) -> dict[str, object]:
    return {
        "size": cp.size,
        "root": base64.b64encode(cp.root).decode(),
        "note": cp.note.decode(),
        "signed_at_ms": cp.created_at_ms,
    }


@bp.get("/favicon.ico")
def favicon() -> Response:
    """The pages' icon (every page links it) where a browser looks for one
    unprompted: a chart or a JSON answer opened on its own links none."""
    return bp.send_static_file("favicon.svg")


@bp.get("/")
def index() -> str:
    log = current_log()
    with log.read() as s:
        cp = log.latest(s)
        names = platform_names(s)
        tally = counts(s, cp.size)
        newest = query.feed(s, query.Feed(equal={"type": "decision"}, limit=NEWEST), cp.size, None, columns=COLUMNS)
        later = followups(s, newest, cp.size)
    per_platform: dict[str, dict[str, int]] = {}
    for platform, kind, n in tally.by_platform:
        per_platform.setdefault(platform, {})[kind] = n
    return render_template(
        "index.html",
        origin=log.origin,
        vkey=log.verifier.to_key(),
        cp=_checkpoint(cp),
        names=names,
        per_platform=per_platform,
        by_class=tally.by_class,
        decisions=sum(n for _, k, n in tally.by_platform if k == "decision"),
        newest=newest,
        followups=later,
    )


@bp.get("/log")
def log_page() -> str:
    log = current_log()
    with log.read() as s:
        cp = log.latest(s)
    return render_template("log.html", origin=log.origin, vkey=log.verifier.to_key(), cp=_checkpoint(cp))


CHECKPOINTS_PAGE = 50


@bp.get("/log/checkpoints")
def checkpoints_page() -> str:
    """Every checkpoint the log signed, largest first, each a tree size the
    statistics can be pinned to, with its root and its cosigners."""
    text = request.args.get("before", "")
    if text and not re.fullmatch(r"[1-9][0-9]{0,18}", text):
        abort(400, "before must be a tree size: a whole number without sign or leading zeros")
    log = current_log()
    with log.read() as s:
        latest = log.latest(s)
        shown = signed_checkpoints(s, int(text) if text else None, CHECKPOINTS_PAGE)
    rows: list[dict[str, Any]] = [{"cp": _checkpoint(sc.checkpoint), "witnesses": sc.witnesses} for sc in shown]
    smallest = shown[-1].checkpoint.size if shown else 0
    older = smallest if len(shown) == CHECKPOINTS_PAGE and smallest > 0 else None
    return render_template(
        "checkpoints.html", origin=log.origin, rows=rows, latest=latest.size, older=older, paged=bool(text)
    )


@bp.get("/about")
def about() -> str:
    return render_template("about.html")


@bp.get("/platforms")
def platforms() -> str:
    log = current_log()
    with log.read() as s:
        listed = list_platforms(s)
        tally = counts(s, log.latest(s).size)
    per_platform: dict[str, int] = {}
    for platform, _kind, n in tally.by_platform:
        per_platform[platform] = per_platform.get(platform, 0) + n
    return render_template("platforms.html", platforms=listed, per_platform=per_platform)


@bp.get("/platforms/<slug>")
def platform(slug: str) -> str:
    log = current_log()
    with log.read() as s:
        found = [p for p in list_platforms(s) if p["platform"] == slug]
        if not found:
            abort(404, f"No platform {slug!r} is registered in this log.")
        size = log.latest(s).size
        latest = query.feed(s, query.Feed(equal={"platform": slug}, limit=LATEST), size, None, columns=COLUMNS)
        later = followups(s, latest, size)
        tally = counts(s, size)
    by_type = {kind: n for p, kind, n in tally.by_platform if p == slug}
    return render_template(
        "platform.html",
        p=found[0],
        names={slug: found[0]["display_name"]},
        rows=latest,
        by_type=by_type,
        followups=later,
    )
