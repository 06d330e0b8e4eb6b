"""The evenness dashboard (issue 5): ``/stats``, ``/stats/<platform>``,
``/stats/<platform>/rule?rule_id=…``, and each chart as SVG and as CSV.

Every page shows the unfiltered evenness document of one checkpoint: the
latest, or the one ``?tree_size=N`` pins, as the JSON API does. It is the
document the API serves without filters and whose digest the operator
publishes, taken from the cache both share (``ledger.evenness_cache``), so
the pages compute nothing the API would not, and their q-values are
adjusted over the same comparisons. The rule id is a query parameter, not
a path segment: rule ids may contain ``/`` and ``..``.

Charts are separate URLs (``…/charts/<name>.svg`` and ``.csv``), shown in
pages as images: an SVG in an ``<img>`` can run nothing, and the picture a
reader sees is the file they download. The pages link them with the tree
size they were rendered for, so a page and its charts always agree.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Response, abort, current_app, render_template, request, url_for

from ledger.browse import platform_names
from ledger.errors import InvalidInput
from ledger.evenness.facts import REFERENCE
from ledger.evenness_cache import EXTENSION, Documents
from ledger.evenness_store import Filters, Publication, find_publication
from ledger.query import encode_cursor
from ledger.records.vocab import PATTERNS
from ledger.storage import StoredCheckpoint
from web import bp, charts, current_log, dashboard

#: Drawing widths: the page's column on a desktop, and a 360 px phone's.
WIDE, NARROW = 640, 336
WIDTHS = (WIDE, NARROW)
#: A chart of a pinned tree size never changes (the document does not).
PINNED_CACHE = "public, max-age=86400"
_TREE_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
#: A chart opened on its own is a document: it may apply its one constant
#: style (the dark theme), by hash, and load nothing.
SVG_CSP = f"default-src 'none'; style-src {charts.STYLE_CSP_SOURCE}; base-uri 'none'; frame-ancestors 'none'"


@dataclass(frozen=True)
class Shown:
    """The document a page shows, and what it was asked for."""

    doc: dict[str, Any]
    digest: str
    publication: Publication | None
    names: dict[str, str]
    pinned: int | None

    @property
    def size(self) -> int:
        return int(self.doc["checkpoint"]["tree_size"])

    def args(self) -> dict[str, Any]:
        """Query arguments that keep links on the checkpoint the reader pinned."""
        return {} if self.pinned is None else {"tree_size": self.pinned}


def _tree_size(args: Mapping[str, str]) -> int | None:
    text = args.get("tree_size", "").strip()
    if not text:
        return None  # the form sends an empty field for "latest"
    if not _TREE_SIZE.fullmatch(text):
        raise InvalidInput("tree_size must be a tree size: a whole number without sign or leading zeros")
    return int(text)


def _rule_id(args: Mapping[str, str]) -> str:
    rule_id = args.get("rule_id", "")
    if not re.fullmatch(PATTERNS["rule_id"], rule_id):
        raise InvalidInput("rule_id must be a rule id: 1 to 128 letters, digits and . _ : / -")
    return rule_id


def _shown() -> Shown:
    pinned = _tree_size(request.args)
    log = current_log()
    with log.read() as s:
        cp = log.checkpoint_for(s, pinned)
        publication = find_publication(s, cp.size)
        names = platform_names(s)
    documents: Documents = current_app.extensions[EXTENSION]
    data, digest = documents.document(log, cp, Filters())
    return Shown(_parsed(digest, data), digest, publication, names, pinned)


#: Parsed documents, by digest: a document of a few thousand cells is
#: megabytes of JSON, parsed in about 0.1 s, and a rule page needs it four
#: times (the page and its three charts). Read only once parsed.
PARSED = 4
_parsed_lock = threading.Lock()
_parsed_docs: OrderedDict[str, dict[str, Any]] = OrderedDict()


def _parsed(digest: str, data: bytes) -> dict[str, Any]:
    with _parsed_lock:
        cached = _parsed_docs.get(digest)
        if cached is not None:
            _parsed_docs.move_to_end(digest)
            return cached
    doc: dict[str, Any] = json.loads(data)
    with _parsed_lock:
        _parsed_docs[digest] = doc
        while len(_parsed_docs) > PARSED:
            _parsed_docs.popitem(last=False)
    return doc


#: The method version whose protection section the pages show.
PROTECTION_VERSION = 2


def protection_of(checkpoint: StoredCheckpoint, filters: Filters | None = None) -> dict[str, Any]:
    """The method-version-2 document of ``checkpoint``, whose ``protection`` the pages
    show (from the cache the API shares, so a page shows what the API serves)."""
    documents: Documents = current_app.extensions[EXTENSION]
    data, digest = documents.document(current_log(), checkpoint, filters or Filters(), PROTECTION_VERSION)
    return _parsed(digest, data)


def _protection(shown: Shown, platform: str | None = None) -> dict[str, Any]:
    """What the protection partial shows: the section, its cells and flags (of one platform, if given)."""
    log = current_log()
    with log.read() as s:
        cp = log.checkpoint_for(s, shown.size)
    p = protection_of(cp)["protection"]
    return {
        "p": p,
        "cells": [c for c in p["target_cells"] if platform is None or c["platform"] == platform],
        "flagged": [f for f in p["flagged"] if platform is None or f["platform"] == platform],
    }


def _known(shown: Shown, platform: str) -> None:
    if platform not in shown.names and platform not in dashboard.platforms(shown.doc):
        abort(404, f"No platform {platform!r} is registered in this log.")


def _figure(shown: Shown, platform: str, rule_id: str | None, chart: dashboard.Chart) -> dict[str, Any]:
    """What a page needs to show a chart: its image URLs, downloads and numbers."""
    args: dict[str, Any] = {"platform": platform, "name": chart.name, "tree_size": shown.size}
    if rule_id is not None:
        args["rule_id"] = rule_id
    return {
        "chart": chart,
        "wide": url_for("web.stats_svg", **args, width=WIDE),
        "narrow": url_for("web.stats_svg", **args, width=NARROW),
        "svg": url_for("web.stats_svg", **args),
        "csv": url_for("web.stats_csv", **args),
    }


def _finding(shown: Shown, h: dashboard.Headline) -> dict[str, Any]:
    """A headline with its drill-down links: the full sentence, the chart,
    and the records behind each of the two figures, pinned to the tree
    size of the document (a feed cursor at the tree's end)."""
    pin = {"cursor": encode_cursor(shown.size, shown.size)}
    # url_for types its URL values as Any, next to keyword parameters of its
    # own (_anchor, _external, ...); these dicts hold URL values only.
    shown_args: dict[str, Any] = shown.args()
    if h.rule_id is not None:
        page = url_for("web.stats_rule", platform=h.platform, rule_id=h.rule_id, **shown_args)
        chart = f"#chart-{h.metric}" if h.metric in dashboard.RULE_CHARTS else ""
    else:
        page = url_for("web.stats_platform", platform=h.platform, **shown_args)
        chart = f"#chart-{dashboard.MONTHLY_CHART}" if h.metric == "exemption_rate" else ""
    records: dict[str, Any] = {**h.feed_args(h.group), **pin}
    reference: dict[str, Any] = {**h.feed_args(REFERENCE), **pin}
    return {
        "h": h,
        "sentence": f"#finding-{h.number}",
        "chart": page + chart,
        "records": url_for("web.feed", **records),
        "reference": url_for("web.feed", **reference),
    }


@bp.get("/stats")
def stats() -> str:
    shown = _shown()
    platforms = [(p, dashboard.rules(shown.doc, p)) for p in dashboard.platforms(shown.doc)]
    findings = [_finding(shown, h) for h in dashboard.headlines(shown.doc, shown.names)]
    return render_template(
        "stats.html", s=shown, d=dashboard, platforms=platforms, findings=findings, protection=_protection(shown)
    )


@bp.get("/stats/<platform>")
def stats_platform(platform: str) -> str:
    shown = _shown()
    _known(shown, platform)
    monthly = dashboard.monthly_chart(shown.doc, shown.names, platform)
    return render_template(
        "stats_platform.html",
        s=shown,
        d=dashboard,
        platform=platform,
        rules=dashboard.rules(shown.doc, platform),
        monthly=None if monthly is None else _figure(shown, platform, None, monthly),
        protection=_protection(shown, platform),
    )


@bp.get("/stats/<platform>/rule")
def stats_rule(platform: str) -> str:
    shown = _shown()
    _known(shown, platform)
    rule_id = _rule_id(request.args)
    figures = [dashboard.chart(shown.doc, shown.names, platform, rule_id, name) for name in dashboard.RULE_CHARTS]
    if not all(figures):
        abort(404, f"No decision of {platform!r} under rule {rule_id!r} is in the tree of size {shown.size}.")
    return render_template(
        "stats_rule.html",
        s=shown,
        d=dashboard,
        platform=platform,
        rule_id=rule_id,
        figures=[_figure(shown, platform, rule_id, f) for f in figures if f],
        comparisons=dashboard.comparisons(shown.doc, platform, rule_id),
    )


def _chart(platform: str, name: str) -> tuple[Shown, dashboard.Chart]:
    shown = _shown()
    _known(shown, platform)
    rule_id = None if name == dashboard.MONTHLY_CHART else _rule_id(request.args)
    chart = dashboard.chart(shown.doc, shown.names, platform, rule_id, name)
    if chart is None:
        abort(404, f"There is no chart {name!r} of {platform!r} in the tree of size {shown.size}.")
    return shown, chart


def _filename(shown: Shown, platform: str, name: str, extension: str) -> str:
    rule = request.args.get("rule_id") if name != dashboard.MONTHLY_CHART else None
    parts = ["evenness", platform, *([re.sub(r"[^A-Za-z0-9._-]", "_", rule)] if rule else []), name]
    return "-".join(parts) + f"-tree{shown.size}.{extension}"


def _file(shown: Shown, body: str, mimetype: str, disposition: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = disposition
    resp.headers["Cache-Control"] = "no-cache" if shown.pinned is None else PINNED_CACHE
    return resp


@bp.get("/stats/<platform>/charts/<name>.svg")
def stats_svg(platform: str, name: str) -> Response:
    width = request.args.get("width", str(WIDE))
    if width not in {str(w) for w in WIDTHS}:
        raise InvalidInput(f"width must be one of {', '.join(str(w) for w in WIDTHS)}")
    shown, chart = _chart(platform, name)
    svg = chart.svg(int(width))
    resp = _file(shown, svg, "image/svg+xml", f'inline; filename="{_filename(shown, platform, name, "svg")}"')
    resp.headers["Content-Security-Policy"] = SVG_CSP
    return resp


@bp.get("/stats/<platform>/charts/<name>.csv")
def stats_csv(platform: str, name: str) -> Response:
    shown, chart = _chart(platform, name)
    disposition = f'attachment; filename="{_filename(shown, platform, name, "csv")}"'
    return _file(shown, chart.csv(), "text/csv", disposition)
