"""Errors become HTML pages here, in one table (as ``api/errors.py`` does for JSON).

Registered on the blueprint, so they answer for the pages' own URLs: a
record, subject, platform or entry that is not in the log gets a page that
says so and where to look instead. Views never build error pages. Any
other URL outside the API that fails (an unknown address, a wrong method)
gets the same page through :func:`http_page`, which ``api/errors.py``
calls for every path that is not the API's.
"""

from __future__ import annotations

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from ledger.errors import InvalidInput, LedgerError, NotFound, RateLimited, StorageError
from web import bp, page_globals

#: Error class -> (HTTP status, title). First match wins.
TABLE: list[tuple[type[LedgerError], int, str]] = [
    (NotFound, 404, "Not in the log"),
    (InvalidInput, 400, "That request is not valid"),
    (StorageError, 503, "The ledger is unavailable"),
    (RateLimited, 429, "Busy: please try again in a few seconds"),
    (LedgerError, 500, "Something went wrong"),
]


def page(status: int, title: str, detail: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, detail=detail), status


@bp.errorhandler(LedgerError)
def _ledger_error(e: LedgerError) -> tuple[str, int]:
    for cls, status, title in TABLE:
        if isinstance(e, cls):
            return page(status, title, str(e))
    raise AssertionError("LedgerError is in the table")


@bp.errorhandler(404)
def _not_found(e: HTTPException) -> tuple[str, int]:
    return page(404, "Not in the log", e.description or "")


def http_page(e: HTTPException) -> tuple[str, int, list[tuple[str, str]]]:
    """An HTTP error outside the pages' views, as a page; its headers (a
    405's Allow) are kept. The blueprint's context is not there: it is added."""
    status = e.code or 500
    title = "Not in the log" if status == 404 else (e.name or "Error")
    body = render_template("error.html", status=status, title=title, detail=e.description or "", **page_globals())
    return body, status, [(k, v) for k, v in e.get_headers() if k.lower() != "content-type"]


def init_app(app: Flask) -> None:
    app.extensions["page_error"] = http_page
