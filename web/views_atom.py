"""Atom feeds at the addresses people guess: ``/platforms/<slug>.atom``,
``/subjects/<key>.atom`` and ``/people/<QID>.atom`` answer the same bytes as
``/records.atom?platform=…``, ``/records.atom?subject_key=…`` and
``/records.atom?qid=…`` (whose URL the feed names as its own,
so a reader that follows either sees one feed). A rule, or any other view
of the feed, has the query form alone.

Unlike the query form, which answers an empty feed for a subject nobody
has logged a record about, these answer 404 for what has no page.
"""

from __future__ import annotations

import re

from flask import abort
from werkzeug.wrappers import Response

from ledger.browse import person, platform_names, subject_latest
from ledger.records.vocab import PATTERNS
from web import bp, current_log
from web.views_feed import atom_feed, check_qid


@bp.get("/platforms/<slug>.atom")
def platform_atom(slug: str) -> Response:
    """A platform's newest records, as ``/records.atom?platform=<slug>``."""
    with current_log().read() as s:
        known = slug in platform_names(s)
    if not known:
        abort(404, f"No platform {slug!r} is registered in this log.")
    return atom_feed({"platform": slug})


@bp.get("/subjects/<subject_key>.atom")
def subject_atom(subject_key: str) -> Response:
    """The newest records about an account, as ``/records.atom?subject_key=<key>``."""
    if not re.fullmatch(PATTERNS["subject_key"], subject_key):
        abort(404, "A subject key is 16 to 128 letters, digits, '-' and '_'.")
    with current_log().read() as s:
        known = subject_latest(s, subject_key) is not None
    if not known:
        abort(404, "No record in the log is about an account with this subject key.")
    return atom_feed({"subject_key": subject_key})


@bp.get("/people/<qid>.atom")
def person_atom(qid: str) -> Response:
    """The newest records about a person across platforms, as ``/records.atom?qid=<QID>``."""
    check_qid(qid)
    log = current_log()
    with log.read() as s:
        known = person(s, qid, log.latest(s).size) is not None
    if not known:
        abort(404, f"No decision in the log names Wikidata item {qid} for the account it is about.")
    return atom_feed({"qid": qid})
