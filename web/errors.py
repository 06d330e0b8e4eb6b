"""Errors become HTML pages here, in one table (as ``api/errors.py`` does for JSON).

Registered on the blueprint, so they answer for the pages' own URLs: a
record, subject, platform or entry that is not in the log gets a page that
says so and where to look instead. Views never build error pages.
"""

from __future__ import annotations

from flask import render_template
from werkzeug.exceptions import HTTPException

from ledger.errors import InvalidInput, LedgerError, NotFound, RateLimited, StorageError
from web import bp

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
