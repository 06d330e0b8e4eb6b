"""The fixed small-integer codes of the feed index's closed vocabularies.

``record_index`` (ledger/db.py) stores each of the columns below as a
SMALLINT code, not its text (migration 0012_codes): on PostgreSQL a text
value cost its bytes plus a length byte in the row and in each filter's
B-tree, and a (text, leaf_index) key is of varying width, so PostgreSQL
split those B-trees' pages in half and left them about 60% full; a
(smallint, bigint) key is of fixed width, which its "split after the new
item" rule fills (docs/performance.md, Storage). Everything above the
database sees the text: ``ledger.db.Code`` turns a bound value into its
code and a code read through SQLAlchemy back into its text, and
``ledger.db.insert_many`` encodes the rows it copies. Readers that take the
driver's own tuples (the audit's comparison, the statistics' facts) encode
or decode with :func:`row_encoder` and :func:`row_decoder`.

The codes are part of the stored format, like the entry codec's format
bytes (ledger/entry_codec.py): **a code never changes meaning and is never
reused**. A value a later schema adds gets the next unused code of its
column, here and in the same change as ``ledger/records/vocab.py``; a value
a schema drops keeps its code, because the log still holds records that
use it. The codes do not depend on the order of the vocabularies or of
insertion, so a database rebuilt from the log (``ledger reindex``) holds the
same codes. ``tests/ledger/test_codes.py`` checks that every value of each
column's vocabulary has a code, that no two values of a column share one,
and that the codes migration 0012_codes wrote are still these.

Pure data: the client may import it, as it imports ``index_rows``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: Each coded column of ``record_index`` and its values' codes (1, 2, ...;
#: 0 and negative codes are unused).
CODES: dict[str, dict[str, int]] = {
    "type": {
        "decision": 1,
        "appeal": 2,
        "amendment": 3,
        "coverage": 4,
    },
    "account_class": {
        "head_of_state": 1,
        "legislator": 2,
        "candidate": 3,
        "government_official": 4,
        "party_account": 5,
        "journalist": 6,
        "other_public_figure": 7,
        "election_worker": 8,
        "ordinary_user": 9,
    },
    "category": {
        "animal_welfare": 1,
        "consumer_information": 2,
        "cyber_violence": 3,
        "cyber_violence_against_women": 4,
        "data_protection_and_privacy_violations": 5,
        "illegal_or_harmful_speech": 6,
        "intellectual_property_infringements": 7,
        "negative_effects_on_civic_discourse_or_elections": 8,
        "not_specified_notice": 9,
        "other_violation_tc": 10,
        "protection_of_minors": 11,
        "risk_for_public_security": 12,
        "scams_and_fraud": 13,
        "self_harm": 14,
        "unsafe_and_prohibited_products": 15,
        "violence": 16,
    },
    "severity": {
        "low": 1,
        "medium": 2,
        "high": 3,
        "critical": 4,
    },
    "action": {
        "none": 1,
        "label": 2,
        "interstitial": 3,
        "reduce_reach": 4,
        "age_restrict": 5,
        "restrict_interaction": 6,
        "geo_block": 7,
        "demonetize": 8,
        "feature_limit": 9,
        "remove_content": 10,
        "temporary_suspension": 11,
        "permanent_ban": 12,
    },
    "exemption_type": {
        "newsworthiness": 1,
        "public_interest": 2,
        "satire_or_counter_speech": 3,
        "educational_or_documentary": 4,
        "technical_correction": 5,
        "other": 6,
    },
    "review_path": {
        "standard": 1,
        "secondary_high_profile": 2,
        "policy_escalation": 3,
        "legal": 4,
    },
    "interim_state": {
        "visible": 1,
        "hidden": 2,
        "not_applicable": 3,
    },
    "detection_source": {
        "automated": 1,
        "user_report": 2,
        "trusted_flagger": 3,
        "government_request": 4,
        "court_order": 5,
        "internal_staff": 6,
        "media_or_public_inquiry": 7,
        "other": 8,
    },
    "automated_decision": {
        "fully": 1,
        "partially": 2,
        "none": 3,
    },
    "appeal_outcome": {
        "pending": 1,
        "upheld": 2,
        "reversed": 3,
        "modified": 4,
    },
    "target_class": {
        "head_of_state": 1,
        "legislator": 2,
        "candidate": 3,
        "government_official": 4,
        "party_account": 5,
        "journalist": 6,
        "other_public_figure": 7,
        "election_worker": 8,
        "ordinary_user": 9,
        "group": 10,
    },
    "reporter_class": {
        "target_self": 1,
        "public_account": 2,
        "ordinary_user": 3,
        "trusted_flagger": 4,
        "government_body": 5,
    },
    "abuse_kind": {
        "harassment": 1,
        "threat": 2,
        "incitement": 3,
    },
}

#: The coded columns, in the order of :data:`CODES`.
CODED_COLUMNS = tuple(CODES)

#: For each coded column, its values by code (index 0 unused).
NAMES: dict[str, tuple[str | None, ...]] = {
    column: tuple(dict((c, v) for v, c in codes.items()).get(i) for i in range(max(codes.values()) + 1))
    for column, codes in CODES.items()
}

#: The code a feed filter binds for a value that has none: no row holds it,
#: so the filter matches nothing, as it did when the column held text.
NO_CODE = -1


def encode(column: str, value: str | None) -> int | None:
    """The code of ``value`` in ``column``; a value with none is an error
    (a schema-valid record has none such, and the index must not guess)."""
    if value is None:
        return None
    try:
        return CODES[column][value]
    except KeyError:
        raise ValueError(f"record_index.{column}: {value!r} has no code (ledger/records/codes.py)") from None


def decode(column: str, code: int | None) -> str | None:
    """The value of ``code`` in ``column``; a code no value has is an error."""
    if code is None:
        return None
    names = NAMES[column]
    name = names[code] if 0 < code < len(names) else None
    if name is None:
        raise ValueError(f"record_index.{column}: code {code} names no value (ledger/records/codes.py)")
    return name


def row_encoder(columns: Sequence[str | None]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A function from a row of ``columns`` (values) to the same row with
    each coded column's code; ``None`` in ``columns`` names a column that
    is not coded. A value without a code raises ``KeyError``: a
    schema-valid record has none, and the index must not guess.

    One generated expression, as :func:`row_decoder`: 1.5 µs of CPU a
    feed row (31 columns, mostly building the tuple) where a loop over the
    coded positions took 1.7-1.85 µs, back to back; every append and every
    audited record pays it.
    """
    return _generated(columns, {c: {**codes, None: None} for c, codes in CODES.items()})


def row_decoder(columns: Sequence[str | None]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A function from a row of ``columns`` (the driver's tuple: codes) to
    the same row with each coded column's value; ``None`` in ``columns``
    names a column that is not coded. A code no value has raises
    ``KeyError`` (an edited database: never read as some value).

    Made as one expression (``lambda r: (r[0], _2[r[2]], ...)``): the
    statistics decode every record's row, and a loop over the coded
    positions took 1.05 s of CPU a million rows of the decision columns,
    this 0.49 s.
    """
    return _generated(
        columns,
        {
            c: {**{code: name for code, name in enumerate(names) if name is not None}, None: None}
            for c, names in NAMES.items()
        },
    )


def _generated(
    columns: Sequence[str | None], maps: dict[str, dict[Any, Any]]
) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """``lambda r: (r[0], _1[r[1]], ...)``, ``_i`` the map of column ``i``
    where it has one. Only column positions go into the source."""
    lookups = {f"_{i}": maps[c] for i, c in enumerate(columns) if c is not None and c in maps}
    items = "".join(f"_{i}[r[{i}]], " if f"_{i}" in lookups else f"r[{i}], " for i in range(len(columns)))
    made: Callable[[Sequence[Any]], tuple[Any, ...]] = eval(f"lambda r: ({items})", lookups)  # noqa: S307
    return made
