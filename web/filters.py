"""The feed's filter form: the JSON feed's filters as a bookmarkable GET form.

:func:`parse` turns the query string into a :class:`ledger.query.Feed`
plus, for each bad value, a message the form shows next to its field
(never a 500). Parameter names are the JSON API's (``GET /api/v1/records``),
with two conveniences for people: ``account_class=political`` means "any
political class" (the API's ``political=true``), and the ``*_to`` dates
are inclusive (the API's are exclusive), so :meth:`FeedForm.api_args`
translates both when it links to the JSON equivalent.

Pages use the API's cursor (``ledger.query.encode_cursor``): base64url of
``<tree size>:<leaf index>``, which pins the tree size of the first page,
so paging through a growing log neither skips nor repeats a record.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from ledger import query
from ledger.errors import InvalidInput
from ledger.query import decode_cursor as decode_cursor
from ledger.query import decode_sorted_cursor
from ledger.query import encode_cursor as encode_cursor
from ledger.records import times, vocab
from web import labels
from web.countries import COUNTRY_NAMES

POLITICAL = "political"
#: The parameters that pick a page rather than filter: an older page's
#: cursor (the API's) and a newer page's.
PAGING = ("cursor", "newer")
LIMITS = (25, 50, 100, 200)
#: The record schema's pattern of a text input named otherwise.
PATTERN_OF = {"qid": "wikidata_qid"}
DAY_MS = 86_400_000
YES_NO = {"true": "Yes", "false": "No"}


@dataclass(frozen=True)
class Field:
    """One input of the form. ``choices`` is None for text and date inputs."""

    name: str
    label: str
    kind: str  # "select", "text", "date" or "checkbox"
    choices: dict[str, str] | None = None
    advanced: bool = False
    hint: str = ""


def _codes(values: tuple[str, ...], table: dict[str, str]) -> dict[str, str]:
    return {v: table[v] for v in values}


def fields(platforms: Mapping[str, str]) -> tuple[Field, ...]:
    """The form's inputs in display order; ``platforms`` maps slug to name.

    Made once per set of platforms (a page asked for them three times, and
    building them, ~250 territories, cost ~0.4 ms each: issue 14): they are
    a pure function of the platforms, and nobody changes a Field's choices."""
    return _fields(tuple(platforms.items()))


@functools.lru_cache(maxsize=16)
def _fields(platforms: tuple[tuple[str, str], ...]) -> tuple[Field, ...]:
    classes = {POLITICAL: "Any political class"} | _codes(vocab.ACCOUNT_CLASSES, labels.ACCOUNT_CLASSES)
    territories = {"GLOBAL": "Worldwide"} | {c: f"{COUNTRY_NAMES[c]} ({c})" for c in vocab.COUNTRY_CODES}
    return (
        Field("q", "Search names, offices and statements", "text", hint=f"at least {query.MIN_SEARCH} characters"),
        Field("platform", "Platform", "select", dict(platforms)),
        Field("type", "Record type", "select", _codes(vocab.RECORD_TYPES, labels.RECORD_TYPES)),
        Field("account_class", "Account class", "select", classes),
        Field("action", "Action taken", "select", _codes(vocab.ACTIONS, labels.ACTIONS)),
        Field("category", "Category (EU DSA)", "select", _codes(vocab.CATEGORIES, labels.CATEGORIES)),
        Field("decided_from", "Decided on or after", "date"),
        Field("decided_to", "Decided on or before", "date"),
        Field("violation_found", "Violation found", "select", YES_NO, advanced=True),
        Field("exemption_applied", "Exemption applied", "select", YES_NO, advanced=True),
        Field(
            "exemption_type",
            "Exemption",
            "select",
            _codes(vocab.EXEMPTION_TYPES, labels.EXEMPTION_TYPES),
            advanced=True,
        ),
        Field("severity", "Severity", "select", _codes(vocab.SEVERITIES, labels.SEVERITIES), advanced=True),
        Field("review_path", "Review path", "select", _codes(vocab.REVIEW_PATHS, labels.REVIEW_PATHS), advanced=True),
        Field(
            "interim_state",
            "Content during review",
            "select",
            _codes(vocab.INTERIM_STATES, labels.INTERIM_STATES),
            advanced=True,
        ),
        Field(
            "detection_source",
            "Detected through",
            "select",
            _codes(vocab.DETECTION_SOURCES, labels.DETECTION_SOURCES),
            advanced=True,
        ),
        Field(
            "automated_decision",
            "Automated decision",
            "select",
            _codes(vocab.AUTOMATED_DECISIONS, labels.AUTOMATED_DECISIONS),
            advanced=True,
        ),
        Field(
            "target_class",
            "Content aimed at",
            "select",
            _codes(vocab.TARGET_CLASSES, labels.TARGET_CLASSES),
            advanced=True,
        ),
        Field(
            "reporter_class",
            "Reported by",
            "select",
            _codes(vocab.REPORTER_CLASSES, labels.REPORTER_CLASSES),
            advanced=True,
        ),
        Field("abuse_kind", "Abuse rule", "select", _codes(vocab.ABUSE_KINDS, labels.ABUSE_KINDS), advanced=True),
        Field("territory", "Applies in", "select", territories, advanced=True),
        Field("rule_id", "Rule ID", "text", advanced=True, hint="exact, e.g. civic-integrity/false-voting-claims"),
        Field("rule_version", "Rule version", "text", advanced=True),
        Field("subject_key", "Subject key", "text", advanced=True, hint="the platform's pseudonym for an account"),
        Field("qid", "Wikidata item", "text", advanced=True, hint="a person or body on every platform, e.g. Q4115189"),
        Field("logged_from", "Logged on or after", "date", advanced=True),
        Field("logged_to", "Logged on or before", "date", advanced=True),
        Field("current", "Hide records a later amendment replaces", "checkbox", advanced=True),
        Field(
            "direct",
            "Leave out appeals and amendments found through their decision",
            "checkbox",
            advanced=True,
        ),
        Field("sort", "Order", "select", {"decided": "Newest decision first"}, advanced=True),
        Field("limit", "Per page", "select", {str(n): str(n) for n in LIMITS}, advanced=True),
    )


@dataclass
class FeedForm:
    """The parsed form: what to show in each input, errors, and the query."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    feed: query.Feed = field(default_factory=query.Feed)
    cursor: tuple[int, int] | None = None
    #: The decision-time key of an "Older" link of the feed sorted by decision time.
    cursor_key: int | None = None
    #: From a "Newer" link: the tree size and the first leaf index of the page it was on.
    newer: tuple[int, int] | None = None
    #: The decision-time key of a "Newer" link of the feed sorted by decision time.
    newer_key: int | None = None
    #: Set by the page: whether records newer than a "Newer" page's match too.
    more_newer: bool = False

    @property
    def advanced_used(self) -> bool:
        return any(f.advanced and f.name != "limit" for f in fields({}) if self.values.get(f.name))

    def page_args(self, **extra: str) -> dict[str, str]:
        """The query string of this page, less empty inputs, with ``extra``."""
        return {k: v for k, v in self.values.items() if v and k not in PAGING} | extra

    def api_args(self) -> dict[str, str]:
        """The same query for ``GET /api/v1/records``."""
        out = self.page_args()
        if out.get("account_class") == POLITICAL:
            del out["account_class"]
            out["political"] = "true"
        for name in ("decided_to", "logged_to"):
            if name in out:
                out[name] = (times.parse_date(out[name]) + timedelta(days=1)).isoformat()
        if self.values.get("cursor"):
            out["cursor"] = self.values["cursor"]
        return out


def _day_ms(text: str) -> int | None:
    """Milliseconds at 00:00 UTC of a ``YYYY-MM-DD`` day from 1900 to 9998
    (the next day must exist too), or None if invalid."""
    if not re.fullmatch(r"(19|[2-9][0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}", text) or text >= "9999":
        return None
    try:
        return times.to_ms(times.parse_date(text))
    except InvalidInput:
        return None


def parse(args: Mapping[str, str], platforms: Mapping[str, str]) -> FeedForm:
    """Parse the form's query string; unknown parameters are ignored."""
    form = FeedForm()
    equal: dict[str, str] = {}
    flags: dict[str, bool] = {}
    ranges: dict[str, int] = {}
    for f in fields(platforms):
        value = args.get(f.name, "").strip()
        form.values[f.name] = value
        if not value:
            continue
        error = _check(f, value)
        if error:
            form.errors[f.name] = error
        elif f.name == "account_class" and value == POLITICAL:
            flags["political"] = True
        elif f.name in query.BOOLEAN:
            flags[f.name] = value == "true"
        elif f.name in query.EQUALITY:
            equal[f.name] = value
        elif f.kind == "date":
            ms = _day_ms(value)
            if ms is None:
                raise AssertionError("_check accepted an invalid date")
            ranges[f.name] = ms + DAY_MS if f.name.endswith("_to") else ms
    for lo, hi in (("decided_from", "decided_to"), ("logged_from", "logged_to")):
        if lo in ranges and hi in ranges and ranges[lo] >= ranges[hi]:
            form.errors[hi] = "must not be before the first date"
    decided = args.get("sort", "") == "decided"
    for name in PAGING:
        text = args.get(name, "")
        form.values[name] = text
        if not text:
            continue
        # Either link carries the decision-time key exactly when the feed is sorted by it.
        full = decode_sorted_cursor(text)
        if full is None or (full[2] is None) == decided:
            form.errors["cursor"] = "This page link is not valid: start again from the newest records."
            continue
        if name == "cursor":
            form.cursor, form.cursor_key = (full[0], full[1]), full[2]
        else:
            form.newer, form.newer_key = (full[0], full[1]), full[2]
    if form.cursor is not None and form.newer is not None:
        form.errors["cursor"] = "A page link names either newer or older records, not both."
    valid = {k: v for k, v in form.values.items() if v and k not in form.errors}
    form.feed = query.Feed(
        equal=equal,
        flags=flags,
        territory=valid.get("territory"),
        decided_from_ms=ranges.get("decided_from"),
        decided_to_ms=ranges.get("decided_to"),
        logged_from_ms=ranges.get("logged_from"),
        logged_to_ms=ranges.get("logged_to"),
        q=valid.get("q"),
        current_only=valid.get("current") == "true",
        sort=valid.get("sort", "logged"),
        direct=valid.get("direct") == "true",
        limit=int(valid.get("limit", "50")),
    )
    return form


def _check(f: Field, value: str) -> str | None:
    """The message for a bad value of ``f``, or None if it is valid."""
    if f.kind == "select" and f.choices is not None:
        return None if value in f.choices else f"“{value[:40]}” is not one of the choices"
    if f.kind == "checkbox":
        return None if value == "true" else "must be checked or not"
    if f.kind == "date":
        return None if _day_ms(value) is not None else f"“{value[:40]}” is not a date: use a date like 2026-03-31"
    if not value.isprintable():  # NUL and other controls: PostgreSQL refuses NUL in text
        return "must not contain control characters"
    if f.name == "q":
        ok = query.MIN_SEARCH <= len(value) <= 200
        return None if ok else f"needs {query.MIN_SEARCH} to 200 characters"
    if f.name == "rule_version":
        return None if len(value) <= 64 else "at most 64 characters"
    pattern = vocab.PATTERNS[PATTERN_OF.get(f.name, f.name)]
    return None if re.fullmatch(pattern, value) else f"must match {pattern}"
