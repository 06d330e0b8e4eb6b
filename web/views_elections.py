"""Election periods (issue 19): ``/elections`` and ``/elections/<slug>``.

The operator names date ranges in ``LEDGER_ELECTION_PERIODS`` (JSON: a list
of ``{"slug", "name", "from", "to"}``, ``from`` inclusive and ``to``
exclusive, as ``YYYY-MM-DD`` in UTC). Each period's page is written for a
candidate or an election office: for each platform, how content aimed at
candidates and at election workers was handled against content aimed at
ordinary users, among decisions made in the period, with the checkpoint it
was computed at and what the figures cannot show. The figures are the
protection section of the method-version-2 evenness document filtered by
``decided_from``/``decided_to``: the same document
``/api/v1/stats/evenness?method_version=2&decided_from=…&decided_to=…``
serves, and ``mdl evenness --tree-size N`` recomputes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from flask import Flask, abort, current_app, render_template

from ledger.browse import platform_names
from ledger.evenness_store import Filters
from web import bp, current_log
from web.views_stats import protection_of

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: The target classes a period's page is about, and the one they are compared with.
FOCUS = ("candidate", "election_worker")
REFERENCE = "ordinary_user"


@dataclass(frozen=True)
class Period:
    """An operator-named election period: decisions made from ``start`` up to, not including, ``end``."""

    slug: str
    name: str
    start: date
    end: date

    def filters(self) -> Filters:
        ms = [int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000 for d in (self.start, self.end)]
        return Filters(decided_from_ms=ms[0], decided_to_ms=ms[1])


def parse_periods(value: Any) -> tuple[Period, ...]:
    """Parse ``ELECTION_PERIODS`` (a JSON list, or its text); raise ValueError naming the fault."""
    if isinstance(value, str):
        import json

        value = json.loads(value) if value.strip() else []
    if not isinstance(value, list):
        raise ValueError("LEDGER_ELECTION_PERIODS must be a JSON list of {slug, name, from, to}")
    out: list[Period] = []
    for i, item in enumerate(value):
        where = f"LEDGER_ELECTION_PERIODS[{i}]"
        if not isinstance(item, dict) or set(item) != {"slug", "name", "from", "to"}:
            raise ValueError(f"{where} must be an object with exactly slug, name, from and to")
        slug, name = item["slug"], item["name"]
        if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
            raise ValueError(f"{where}.slug must be lower-case letters, digits and hyphens (at most 63)")
        if not isinstance(name, str) or not 0 < len(name) <= 200 or any(ord(ch) < 32 for ch in name):
            raise ValueError(f"{where}.name must be 1 to 200 characters without control characters")
        days = []
        for key in ("from", "to"):
            text = item[key]
            try:
                if not isinstance(text, str) or not _DATE.fullmatch(text):
                    raise ValueError
                days.append(date.fromisoformat(text))
            except ValueError:
                raise ValueError(f"{where}.{key} must be a date YYYY-MM-DD") from None
        if days[0] >= days[1]:
            raise ValueError(f"{where}: to must be after from")
        if any(p.slug == slug for p in out):
            raise ValueError(f"{where}.slug {slug!r} is used twice")
        out.append(Period(slug, name, days[0], days[1]))
    return tuple(out)


def init_app(app: Flask) -> None:
    """Parse the periods once, at start, so a mistake stops the server instead of a page."""
    app.extensions["election_periods"] = parse_periods(app.config.get("ELECTION_PERIODS", []))


def _periods() -> tuple[Period, ...]:
    periods: tuple[Period, ...] = current_app.extensions["election_periods"]
    return periods


@bp.get("/elections")
def elections() -> str:
    return render_template("elections.html", periods=_periods())


@bp.get("/elections/<slug>")
def election(slug: str) -> str:
    period = next((p for p in _periods() if p.slug == slug), None)
    if period is None:
        abort(404, f"No election period {slug!r} is configured on this ledger.")
    log = current_log()
    with log.read() as s:
        cp = log.checkpoint_for(s, None)
        names = platform_names(s)
    doc = protection_of(cp, period.filters())
    section = doc["protection"]
    platforms: dict[str, dict[str, Any]] = {}
    for c in section["target_cells"]:
        if c["target_class"] in (*FOCUS, REFERENCE):
            platforms.setdefault(c["platform"], {"cells": [], "flagged": []})["cells"].append(c)
    for f in section["flagged"]:
        if f["section"] == "target" and f["group"] in FOCUS and f["platform"] in platforms:
            platforms[f["platform"]]["flagged"].append(f)
    for p in names:
        platforms.setdefault(p, {"cells": [], "flagged": []})
    return render_template(
        "election.html",
        period=period,
        cp=cp,
        section=section,
        platforms=sorted(platforms.items()),
        names=names,
        checkpoint_sentence=doc["checkpoint_sentence"],
    )
