"""Errors become HTTP here, in exactly one table (principle 6).

Every error under the JSON API and the C2SP read paths is an RFC 9457
``application/problem+json`` document; views never build error bodies.
Registered on the app, so unknown ``/api/`` URLs answer JSON too; an HTTP
error anywhere else (an unknown page, a wrong method) goes to the handler
the pages register as ``app.extensions["page_error"]`` (``web/errors.py``),
if any, so that it gets the site's own page rather than Werkzeug's.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, json, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from ledger.errors import (
    Conflict,
    DerivedDataError,
    InvalidInput,
    LedgerError,
    NotFound,
    ProofError,
    RateLimited,
    SplitViewError,
    StorageError,
    Unprocessable,
)

PROBLEM_BASE = "https://moderation-ledger.invalid/problems/"

#: Error class -> (HTTP status, problem type slug, title). First match wins,
#: so subclasses come before their bases.
TABLE: list[tuple[type[LedgerError], int, str, str]] = [
    (NotFound, 404, "not-found", "Not found"),
    (Conflict, 409, "conflict", "Conflict with the log"),
    (RateLimited, 429, "rate-limited", "Too many requests"),
    (Unprocessable, 422, "unprocessable", "Rejected"),
    (SplitViewError, 503, "busy", "The log moved; retry"),
    (DerivedDataError, 503, "derived-data", "Derived data differs from the log"),
    (StorageError, 503, "storage", "Storage unavailable"),
    (ProofError, 422, "proof-failed", "Verification failed"),
    (InvalidInput, 400, "invalid-input", "Invalid input"),
    (LedgerError, 500, "internal", "Internal error"),
]

#: Path prefixes whose errors are problem+json rather than HTML pages.
MACHINE_PREFIXES = ("/api/", "/tile/", "/checkpoint")


def problem(status: int, slug: str, title: str, detail: str, retry_after: int | None = None, **extra: Any) -> Response:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    resp = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    resp.headers["Cache-Control"] = "no-store"
    if retry_after is None and status == 503:
        retry_after = 1
    if retry_after is not None:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


def _ledger_error(e: LedgerError) -> Response:
    for cls, status, slug, title in TABLE:
        if isinstance(e, cls):
            errors = getattr(e, "errors", None)
            extra = {"errors": errors} if errors else {}
            return problem(status, slug, title, str(e), getattr(e, "retry_after", None), **extra)
    raise AssertionError("LedgerError is in the table")


def _http_error(e: HTTPException) -> ResponseReturnValue | HTTPException:
    if not request.path.startswith(MACHINE_PREFIXES):
        page = current_app.extensions.get("page_error")
        return e if page is None else page(e)
    status = e.code or 500
    slug = (e.name or "error").lower().replace(" ", "-")
    detail = e.description or ""
    if status == 413:
        detail = f"the request body exceeds the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    return problem(status, slug, e.name or "Error", detail)


def init_app(app: Flask) -> None:
    app.register_error_handler(LedgerError, _ledger_error)
    app.register_error_handler(HTTPException, _http_error)
