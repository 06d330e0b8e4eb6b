"""``/platforms/<slug>/coverage``: a platform's coverage statements against the log, months by rules.

Each cell is one (month, rule): the worst status over its account classes
(contradicted, then incomplete, then complete), with the decisions logged
and declared; contradicted cells are marked. The figures are those of
``GET /api/v1/coverage`` at the same checkpoint (``ledger.evenness_store.coverage_at``).
"""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request

from ledger.browse import platform_names
from ledger.evenness.coverage import CoverageFilters
from ledger.evenness_store import coverage_at
from web import bp, current_log
from web.views_stats import tree_size_arg

_WORST = ("contradicted", "incomplete", "complete")


def grid(comparisons: list[dict[str, Any]]) -> tuple[list[str], list[str], dict[tuple[str, str], dict[str, Any]]]:
    """(months, rules, (month, rule) -> cell), months newest first."""
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for c in comparisons:
        cell = cells.setdefault(
            (c["period"], c["rule_id"]), {"status": "complete", "declared": 0, "logged": 0, "classes": []}
        )
        cell["declared"] += c["declared"]
        cell["logged"] += c["logged"]
        cell["classes"].append(c)
        if _WORST.index(c["status"]) < _WORST.index(cell["status"]):
            cell["status"] = c["status"]
    months = sorted({m for m, _ in cells}, reverse=True)
    rules = sorted({r for _, r in cells})
    return months, rules, cells


@bp.get("/platforms/<slug>/coverage")
def platform_coverage(slug: str) -> str:
    pinned = tree_size_arg(request.args)
    log = current_log()
    with log.read() as s:
        names = platform_names(s)
        if slug not in names:
            abort(404, f"No platform {slug!r} is registered in this log.")
        cp = log.checkpoint_for(s, pinned)
        answer = coverage_at(s, cp, CoverageFilters(platform=slug))
    months, rules, cells = grid(answer["comparisons"])
    return render_template(
        "coverage.html",
        slug=slug,
        name=names[slug],
        answer=answer,
        months=months,
        rules=rules,
        cells=cells,
        pinned=pinned,
    )
