"""Server-rendered pages. Never imports ``api``; reads the log directly.

Every page works without JavaScript; the one script (``static/verify.js``)
only adds in-browser verification to record pages, and fetches what it
checks from the JSON API over HTTP like any other client. Templates are
autoescaped and no platform-supplied string is ever marked safe: names,
statements and URLs in records are untrusted input.

Views live in ``views_*.py``, each adding routes to :data:`bp`.
"""

from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, Flask, current_app, request

from ledger.browse import shows_demo
from ledger.evenness import words
from ledger.evenness_cache import shared
from ledger.log import Log
from web import cards, labels, present

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/static")


def current_log() -> Log:
    return cast(Log, current_app.extensions["ledger"].log)


class _DemoData:
    """Whether the log holds synthetic data (:func:`ledger.browse.shows_demo`),
    asked of the database only when a page shows it and was not told: a
    page that has read the platforms anyway passes ``demo_data`` itself,
    which overrides this, and saves a query (issue 14)."""

    def __init__(self) -> None:
        self._value: bool | None = None

    def __bool__(self) -> bool:
        if self._value is None:
            self._value = shows_demo(current_app.extensions["ledger"])
        return self._value


@bp.context_processor
def page_globals() -> dict[str, Any]:
    return {
        "demo_data": _DemoData(),
        "cards": cards.cards,
        "label": labels.label,
        "OUTCOME_WORDS": labels.OUTCOME_WORDS,
        "yes_no": labels.yes_no,
        "endpoint": request.endpoint,
        "duration": words.duration,
        "percent": words.percent,
    }


@bp.app_template_filter("exact_time")
def _exact_time(value: Any) -> str:
    return present.exact(value)


@bp.app_template_filter("day")
def _day(value: Any) -> str:
    return present.day(value)


@bp.app_template_filter("iso_time")
def _iso_time(value: Any) -> str:
    return present.iso(value)


@bp.app_template_filter("relative_time")
def _relative_time(value: Any) -> str:
    return present.relative(value)


@bp.app_template_filter("thousands")
def _thousands(value: int) -> str:
    return f"{value:,}"


def init_app(app: Flask) -> None:
    # Importing the view modules adds their routes to ``bp``; they import
    # ``bp`` from here, so they are imported once this module exists.
    from web import (  # noqa: F401
        errors,
        views_atom,
        views_coverage,
        views_downloads,
        views_elections,
        views_feed,
        views_pages,
        views_records,
        views_stats,
    )

    shared(app.extensions)
    app.extensions["feed_cards"] = cards.init_app(int(app.config["FEED_ROW_CACHE"]))
    views_elections.init_app(app)  # the evenness documents, cached once for the pages and the API
    errors.init_app(app)
    app.register_blueprint(bp)
