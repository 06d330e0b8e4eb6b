"""The evenness document: one pure function from decision facts to canonical bytes.

:func:`compute_document` is all of method version 1. The server feeds it
rows of its records index; a client that mirrored the log feeds it
:func:`~ledger.evenness.facts.facts_from_entries` of the same entries. Both
get the same bytes, because the computation reads nothing but its inputs,
visits everything in a fixed order, writes its numbers by the numeric
contract below, and serialises with RFC 8785.

**The numeric contract.** Counts are integers and exact. Every float is
computed in IEEE 754 double precision; those that pass through the
platform's libm (``exp``, ``log``, ``lgamma``, ``erfc``: p-values, bounds
of intervals on the log scale, Breslow-Day) may differ in their last bits
from one C library to another, which would change the bytes and so the
published digest. :func:`written`, applied once to the whole document
just before it is serialised, therefore writes each float ``x`` as:

* ``"Infinity"`` or ``"-Infinity"`` if infinite (RFC 8785 has no
  infinity; NaN is a bug);
* ``0`` if ``|x| < 1e-300`` (:data:`SMALLEST_WRITTEN`), negative zero
  included: p-values that small are ``exp`` of a sum near -700 and carry
  few correct digits, subnormals below 2.2e-308 fewer still;
* otherwise ``x`` correctly rounded to 10 significant decimal digits
  (:data:`SIGNIFICANT_DIGITS`): the exact binary value rounded, ties to
  even, as ``format(x, ".10g")`` does on every platform (CPython's own
  correctly rounded conversion), read back as the nearest double. RFC 8785
  writes a double in its shortest round-trip form, which for this one is
  exactly those digits without trailing zeros (decimals of at most 15
  significant digits round-trip), so the text depends on nothing but the
  decimal rounding: ``1.0`` is written ``1``, ``0.1 + 0.2`` ``0.3``,
  1.23456789012e-5 ``0.0000123456789``, 2.5e-8 ``2.5e-8``. Floats that
  hold whole or half numbers (Mann-Whitney's U, order statistics of
  times) are therefore exact up to 10 digits only.

Rounding is monotone, so every order between numbers still holds (as a
non-strict one). What it cannot do is hold a value that lies within its
own error of a rounding boundary: ``x`` and ``x·(1 + e)`` round apart when
a boundary falls between them, with probability about ``4·|e|·10^(d-1)``
for d digits (averaged over leading digits as they occur). On the demo
data (7,732 floats, about 1,400 of them through libm), moving every libm
result by one ulp moves those values by at most 4e-14 relative, most by
under 1e-15: about 0.2 expected boundary crossings per document at 12
digits, 0.002 at 10, hence 10, far beyond what any of these statistics
means. p-values deep in the tail move more (the relative condition number
of ``erfc`` at z is about z², so about 1e-13 near p = 1e-300): up to about
4e-4 per such value. Flags, sizes and the sentences' figures (a few
significant digits) are decided on the unrounded values, so they could
differ only for a value within about 1e-14 of a threshold or of one of
their far coarser boundaries. A mismatch from any of these causes shows as
one figure differing in its last written digit (``python -m client
evenness`` lists it), not as a different count.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any

from ledger.errors import InvalidInput
from ledger.evenness.compare import (
    CLES_DISTANCE,
    CRAMERS_V,
    LOW_CASES,
    MIN_RATE_CASES,
    MIN_RESOLVED_APPEALS,
    MIN_SUBJECTS,
    MIN_TIMES,
    ODDS_RATIO_RANGE,
    Q_LEVEL,
    RISK_DIFFERENCE,
    Stratum,
    Times,
    compare_actions,
    compare_rates,
    compare_times,
    group_strata,
    paired,
    rate_json,
    time_summary,
)
from ledger.evenness.facts import (
    ADVERSE_ACTIONS,
    GROUPS,
    METHOD_VERSIONS,
    POLITICAL_ANY,
    REFERENCE,
    Fact,
    FactSet,
    Filters,
    Tallies,
    Tally,
    merged,
    tally,
)
from ledger.evenness.protection import protection_section
from ledger.evenness.words import DEFINITIONS, checkpoint_sentence, flagged_sentence, unflagged_sentence
from ledger.records.entries import canonical
from ledger.records.vocab import ACCOUNT_CLASSES, ACTIONS, POLITICAL_CLASSES
from ledger.stats import MANTEL_FLEISS_MINIMUM, PERCENTILES, benjamini_hochberg
from ledger.tlog.checkpoint import parse_checkpoint

METHOD_VERSION = 1
#: The numeric contract (module docstring): floats are written to this many
#: significant digits, and as 0 below this magnitude.
SIGNIFICANT_DIGITS = 10
SMALLEST_WRITTEN = 1e-300
#: The contract in words, as ``python -m client evenness`` reports it.
NUMERIC_CONTRACT = (
    f"rounded to {SIGNIFICANT_DIGITS} significant digits, 0 below {SMALLEST_WRITTEN:g} "
    f"(method version {METHOD_VERSION} numeric contract)"
)
RATE_METRICS = ("exemption_rate", "adverse_action_rate", "appeal_reversal_rate")


@dataclass(frozen=True)
class CheckpointRef:
    """The checkpoint a document is computed over: the signed note, reduced to
    the log's signature, and what it says. Build with :meth:`from_note`."""

    origin: str
    size: int
    root: bytes
    note: bytes

    @classmethod
    def from_note(cls, note: bytes) -> CheckpointRef:
        """Parse a signed checkpoint note (not verified here: the server
        signed it, a client verified it) and drop other parties' signatures."""
        try:
            text, _, signatures = note.decode("utf-8").partition("\n\n")
        except UnicodeDecodeError:
            raise InvalidInput("the checkpoint note is not UTF-8") from None
        cp = parse_checkpoint(text + "\n")
        own = [line for line in signatures.split("\n") if line.startswith(f"— {cp.origin} ")]
        if not own:
            raise InvalidInput("the checkpoint note carries no signature of its origin")
        kept = (text + "\n\n" + "\n".join(own) + "\n").encode()
        return cls(cp.origin, cp.size, cp.root, kept)

    def as_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tree_size": self.size,
            "root_hash": base64.b64encode(self.root).decode(),
            "signed_note": self.note.decode(),
        }


@dataclass(frozen=True)
class Evenness:
    """A computed document, its RFC 8785 bytes and their SHA-256 (hex)."""

    document: dict[str, Any]
    data: bytes
    sha256: str


def parameters() -> dict[str, Any]:
    return {
        "confidence_level": 0.95,
        "q_threshold": Q_LEVEL,
        "odds_ratio_range": list(ODDS_RATIO_RANGE),
        "risk_difference_points": round(RISK_DIFFERENCE * 100),
        "cles_distance": CLES_DISTANCE,
        "cramers_v": CRAMERS_V,
        "min_rate_cases": MIN_RATE_CASES,
        "low_rate_cases": LOW_CASES,
        "min_times_per_group": MIN_TIMES,
        "min_resolved_appeals_per_group": MIN_RESOLVED_APPEALS,
        "min_distinct_subjects": MIN_SUBJECTS,
        "mantel_fleiss_minimum": MANTEL_FLEISS_MINIMUM,
        "percentiles": list(PERCENTILES),
        "reference": REFERENCE,
        "political_any": list(POLITICAL_CLASSES),
        "adverse_actions": [a for a in ACTIONS if a in ADVERSE_ACTIONS],
        "significant_digits": SIGNIFICANT_DIGITS,
        "smallest_written": SMALLEST_WRITTEN,
    }


def compute_document(
    facts: Iterable[Fact] | FactSet,
    checkpoint: CheckpointRef,
    filters: Filters | None = None,
    method_version: int = METHOD_VERSION,
    protection: Iterable[Fact] | None = None,
) -> Evenness:
    """Return the evenness document of ``facts`` by ``method_version``.

    ``facts`` must be exactly the record entries below ``checkpoint.size``,
    in log order (or a :class:`~ledger.evenness.facts.FactSet` of them);
    the result is a function of them, the checkpoint and the filters alone.
    Version 2 also needs ``protection``: the same entries as protection
    facts (:data:`ledger.evenness.protection.PROTECTION_COLUMNS`).
    Version 2 is version 1's document with its version number and one more
    section per feature; version 1's bytes never change.
    """
    if method_version not in METHOD_VERSIONS:
        raise InvalidInput(f"method version must be one of {', '.join(map(str, METHOD_VERSIONS))}")
    if method_version >= 2 and protection is None:
        raise InvalidInput("method version 2 needs the protection facts")
    filters = filters or Filters()
    counted = tally(facts, filters)
    builder = _Builder(counted, filters)
    comparisons = builder.comparisons()
    summaries = builder.platform_summaries()
    cp = checkpoint.as_json()
    flagged = _adjust_and_word(comparisons, summaries, cp)
    document = {
        "method": {
            "name": "evenness",
            "version": method_version,
            "parameters": parameters(),
            "definitions": DEFINITIONS,
        },
        "checkpoint": cp,
        "checkpoint_sentence": checkpoint_sentence(cp),
        "filters": filters.as_json(),
        "totals": {"decisions": counted.decisions, "amended": counted.amended, "appealed": counted.appealed},
        "cells": builder.cells(),
        "comparisons": comparisons,
        "platform_summaries": summaries,
        "monthly": builder.monthly(),
        "multiple_comparisons": {
            "method": "benjamini_hochberg",
            "tests": sum(1 for c in comparisons + summaries if c["primary"]["p_value"] is not None),
        },
        "flagged": flagged,
    }
    if method_version >= 2 and protection is not None:
        document["protection"] = protection_section(protection, filters, cp)
    document = written(document)
    data = canonical(document)
    return Evenness(document, data, hashlib.sha256(data).hexdigest())


def written(value: Any) -> Any:
    """Return ``value`` with every float written by the numeric contract
    (module docstring), tuples as lists; NaN is a bug (AssertionError)."""
    if isinstance(value, float):
        if math.isnan(value):
            raise AssertionError("NaN in the evenness document")
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if abs(value) < SMALLEST_WRITTEN:
            return 0.0  # negative zero too: one number, one text
        return float(format(value, f".{SIGNIFICANT_DIGITS}g"))
    if isinstance(value, dict):
        return {k: written(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [written(v) for v in value]
    return value


def _adjust_and_word(
    comparisons: list[dict[str, Any]], summaries: list[dict[str, Any]], cp: dict[str, Any]
) -> list[dict[str, Any]]:
    """Adjust every primary p-value together, flag, and word each comparison."""
    both = comparisons + summaries
    q_values = benjamini_hochberg([c["primary"]["p_value"] for c in both])
    flagged = []
    for i, (c, q) in enumerate(zip(both, q_values, strict=True)):
        c["primary"]["q_value"] = q
        c["flagged"] = q is not None and q < Q_LEVEL and c["effect"]["practically_large"] is True
        c["wording"] = flagged_sentence(c, cp) if c["flagged"] else unflagged_sentence(c)
        if c["flagged"]:
            section, index = (
                ("comparisons", i) if i < len(comparisons) else ("platform_summaries", i - len(comparisons))
            )
            flagged.append(
                {
                    "section": section,
                    "index": index,
                    "metric": c["metric"],
                    "platform": c["platform"],
                    "rule_id": c["rule_id"],
                    "group": c["group"],
                    "sentence": c["wording"],
                }
            )
    return flagged


class _Builder:
    """Arranges the tallies by scope and builds each part of the document."""

    def __init__(self, counted: Tallies, filters: Filters) -> None:
        self.counted = counted
        self.filters = filters
        #: (platform, rule) -> class -> (severity,) -> tally
        self.rules: dict[tuple[str, str], dict[str, dict[Stratum, Tally]]] = {}
        #: platform -> class -> (rule, severity) -> tally
        self.platforms: dict[str, dict[str, dict[Stratum, Tally]]] = {}
        for (p, r, c, s), t in sorted(counted.cells.items()):
            self.rules.setdefault((p, r), {}).setdefault(c, {})[(s,)] = t
            self.platforms.setdefault(p, {}).setdefault(c, {})[(r, s)] = t
        #: (platform, rule or None) -> class -> distinct subject keys
        self.subjects: dict[tuple[str, str | None], dict[str, set[str]]] = {}
        for (p, r, c), keys in counted.subjects.items():
            self.subjects.setdefault((p, r), {})[c] = keys
            self.subjects.setdefault((p, None), {}).setdefault(c, set()).update(keys)
        self._times: dict[tuple[str, str, tuple[str, ...]], Times] = {}
        self._summaries: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}
        self._subject_counts: dict[tuple[str, str | None, tuple[str, ...]], int] = {}

    def _subjects(self, platform: str, rule: str | None, classes: tuple[str, ...]) -> int:
        key = (platform, rule, classes)
        if key not in self._subject_counts:
            by_class = self.subjects.get((platform, rule), {})
            self._subject_counts[key] = len(set().union(*(by_class.get(c, set()) for c in classes)))
        return self._subject_counts[key]

    def times(self, platform: str, rule: str, classes: tuple[str, ...]) -> Times:
        key = (platform, rule, classes)
        if key not in self._times:
            by_class = self.rules[(platform, rule)]
            values = list(chain.from_iterable(t.times for c in classes for t in by_class.get(c, {}).values()))
            self._times[key] = Times.of(values)
        return self._times[key]

    def summary(self, platform: str, rule: str, classes: tuple[str, ...]) -> dict[str, Any]:
        key = (platform, rule, classes)
        if key not in self._summaries:
            self._summaries[key] = time_summary(self.times(platform, rule, classes).ordered)
        return self._summaries[key]

    def cells(self) -> list[dict[str, Any]]:
        out = []
        for (p, r), by_class in sorted(self.rules.items()):
            for c in ACCOUNT_CLASSES:
                if c not in by_class or not self.filters.shows_class(c):
                    continue
                t = merged(by_class[c].values())
                subjects = len(self.counted.subjects[(p, r, c)])
                appeals = {"upheld": t.upheld, "reversed": t.reversed, "modified": t.modified, "pending": t.pending}
                out.append(
                    {
                        "platform": p,
                        "rule_id": r,
                        "account_class": c,
                        "decisions": t.decisions,
                        "distinct_subjects": subjects,
                        "violations_found": t.violations,
                        "exemption_rate": rate_json(t.exemptions, t.violations),
                        "adverse_action_rate": rate_json(t.adverse, t.violations),
                        "actions": {a: t.actions[a] for a in ACTIONS if t.actions.get(a)},
                        "time_to_decision": self.summary(p, r, (c,)),
                        "appeals": appeals | {"reversal_rate": rate_json(t.reversed, t.upheld + t.reversed)},
                        "warnings": [f"only {subjects} distinct accounts; a few accounts can drive this cell"]
                        if subjects < MIN_SUBJECTS
                        else [],
                    }
                )
        return out

    def comparisons(self) -> list[dict[str, Any]]:
        out = []
        for (p, r), by_class in sorted(self.rules.items()):
            reference = group_strata(by_class, (REFERENCE,))
            for group, classes in GROUPS.items():
                if not self.filters.shows_group(group) or not any(c in by_class for c in classes):
                    continue
                strata = paired(group_strata(by_class, classes), reference)
                subjects = {group: self._subjects(p, r, classes), REFERENCE: self._subjects(p, r, (REFERENCE,))}
                for metric, body in self._drafts(p, r, classes, strata, subjects):
                    out.append(_head(metric, p, r, group) | body)
        return out

    def _drafts(
        self,
        p: str,
        r: str,
        classes: tuple[str, ...],
        strata: list[tuple[Stratum, Tally, Tally]],
        subjects: dict[str, int],
    ) -> Iterable[tuple[str, dict[str, Any]]]:
        names = ("severity",)
        for metric in ("exemption_rate", "adverse_action_rate", "action_distribution", "time_to_decision"):
            if not self.filters.shows_metric(metric):
                continue
            if metric == "action_distribution":
                yield metric, compare_actions(names, strata, subjects)
            elif metric == "time_to_decision":
                g, ref = self.times(p, r, classes), self.times(p, r, (REFERENCE,))
                summaries = (self.summary(p, r, classes), self.summary(p, r, (REFERENCE,)))
                yield metric, compare_times(names, strata, g, ref, summaries, subjects)
            else:
                yield metric, compare_rates(metric, names, strata, subjects)
        if self.filters.shows_metric("appeal_reversal_rate"):
            yield "appeal_reversal_rate", compare_rates("appeal_reversal_rate", names, strata, subjects)

    def platform_summaries(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self.filters.shows_group(POLITICAL_ANY):
            return out
        for p, by_class in sorted(self.platforms.items()):
            if not any(c in by_class for c in POLITICAL_CLASSES):
                continue
            strata = paired(group_strata(by_class, POLITICAL_CLASSES), group_strata(by_class, (REFERENCE,)))
            subjects = {
                POLITICAL_ANY: self._subjects(p, None, POLITICAL_CLASSES),
                REFERENCE: self._subjects(p, None, (REFERENCE,)),
            }
            for metric in RATE_METRICS:
                if self.filters.shows_metric(metric):
                    body = compare_rates(metric, ("rule_id", "severity"), strata, subjects)
                    out.append(_head(metric, p, None, POLITICAL_ANY) | body)
        return out

    def monthly(self) -> list[dict[str, Any]]:
        """Exemption rate by month of decided_at, political_any and ordinary_user, per platform."""
        if not (self.filters.shows_metric("exemption_rate") and self.filters.shows_group(POLITICAL_ANY)):
            return []
        series: dict[tuple[str, str], dict[str, list[int]]] = {}
        for (p, month, c), (violations, exemptions) in self.counted.months.items():
            group = REFERENCE if c == REFERENCE else POLITICAL_ANY
            counts = series.setdefault((p, month), {}).setdefault(group, [0, 0])
            counts[0] += violations
            counts[1] += exemptions
        return [
            {
                "platform": p,
                "month": month,
                POLITICAL_ANY: rate_json(*_kn(groups.get(POLITICAL_ANY))),
                REFERENCE: rate_json(*_kn(groups.get(REFERENCE))),
            }
            for (p, month), groups in sorted(series.items())
        ]


def _kn(counts: list[int] | None) -> tuple[int, int]:
    return (0, 0) if counts is None else (counts[1], counts[0])


def _head(metric: str, platform: str, rule: str | None, group: str) -> dict[str, Any]:
    return {"metric": metric, "platform": platform, "rule_id": rule, "group": group, "reference": REFERENCE}
