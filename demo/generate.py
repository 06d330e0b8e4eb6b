"""The whole demo ledger from a seed: decisions, appeals and amendments,
each validated as the ledger would and signed with its platform's key.

Pure and deterministic: the same seed and count give byte-identical items
(record IDs, times, keys and signatures all come from the seed). The clock
is read only to clamp: a time after ``now`` becomes ``now``, which cannot
happen once ``now`` is past :data:`demo.design.HORIZON`.
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.record_validator import validate_record
from client.platform import SignedItem, sign_record
from demo import protection
from demo.cast import PLATFORMS, Platform
from demo.design import DAY, HORIZON, Case, allocate, design, group, spread, ts
from demo.records import Accounts, Fmt, Timeline, decision_body, iso, pick, timeline
from keys.records import PlatformKey
from ledger.records.vocab import AMENDMENT_REASONS, ORDINARY_FOLLOWER_BUCKETS, PUBLIC_FOLLOWER_BUCKETS

MIN_RECORDS = 100
#: Shares of the records that are amendments and appeals; the rest are decisions.
AMENDMENT_SHARE, APPEAL_SHARE = 0.03, 0.12
#: Share of appeal records that are a pending appeal later followed by its outcome.
CHAIN_SHARE = 0.15
APPEAL_OUTCOMES = {"pending": 15, "upheld": 48, "reversed": 22, "modified": 15}
_LETTER = {"decision": "D", "appeal": "A", "amendment": "C"}  # C: correction
_SHORT = {"decision": "dec", "appeal": "apl", "amendment": "amd"}
_MILDER = {"permanent_ban": "temporary_suspension", "temporary_suspension": "remove_content"}


def platform_keys(seed: str, platform: Platform) -> tuple[PlatformKey, ...]:
    """The platform's signing keys, oldest first: two if it rotates its key."""
    count = 2 if platform.rotates_at else 1
    return tuple(
        PlatformKey(hashlib.sha256(f"mdl-demo/v1/{seed}/{platform.slug}/key/{i}".encode()).digest())
        for i in range(1, count + 1)
    )


@dataclass
class Draft:
    """A record before it has an ID: its fields, and the record it refers to."""

    type: str
    platform: Platform
    submitted: int
    rank: int  # order among drafts submitted in the same second: a decision before what refers to it
    fields: dict[str, Any]
    ref: Draft | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # envelope fields beyond the required ones
    record_id: str = ""


@dataclass(frozen=True)
class Demo:
    """The signed items in submission order, and the keys that signed them.

    ``rotation`` is the index of the first item submitted after the key
    rotation: the rotating platform's second key must be registered before
    ``items[rotation:]`` are submitted.
    """

    seed: str
    items: list[SignedItem]
    keys: dict[str, tuple[PlatformKey, ...]]
    rotation: int


def generate(seed: str | int, records: int = 3000, now: datetime | None = None) -> Demo:
    """Generate ``records`` signed records; raise AssertionError if one is invalid."""
    if records < MIN_RECORDS:
        raise ValueError(f"the demo needs at least {MIN_RECORDS} records")
    now = now or datetime.now(UTC)
    now_s = math.floor(now.timestamp())

    def fmt(t: int) -> str:
        return iso(min(t, now_s))

    seed = str(seed)
    rng = random.Random(f"mdl-demo/v1/{seed}")  # noqa: S311 - reproducible demo data, not secrets
    amendments = max(len(AMENDMENT_REASONS), round(AMENDMENT_SHARE * records))
    appeal_records = round(APPEAL_SHARE * records)
    chains = round(CHAIN_SHARE * appeal_records)
    cases = design(rng, records - amendments - appeal_records)
    protection.assign(seed, cases)
    accounts = Accounts(seed, rng, cases)
    decided: list[tuple[Case, Timeline, Draft]] = []
    for case in cases:
        tl = timeline(rng, case)
        body = decision_body(rng, case, accounts.pick(rng, case), tl, fmt)
        d = Draft("decision", case.platform, tl.submitted, 0, body)
        if case.action != "none" and rng.random() < 0.8:
            d.extra["dsa_sor_uuid"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        decided.append((case, tl, d))
    drafts = [d for _, _, d in decided]
    drafts += _appeals(rng, decided, appeal_records - chains, chains, fmt)
    drafts += _amendments(rng, decided, amendments)
    drafts.sort(key=lambda d: (d.submitted, d.rank, PLATFORMS.index(d.platform)))
    _assign_ids(drafts)
    keys = {p.slug: platform_keys(seed, p) for p in PLATFORMS}
    items, rotation = [], len(drafts)
    for i, d in enumerate(drafts):
        rotated = d.platform.rotates_at is not None and d.submitted >= ts(d.platform.rotates_at)
        if rotated:
            rotation = min(rotation, i)
        record = _record(d, fmt)
        errors = validate_record(record, now)
        if errors:
            raise AssertionError(f"demo: generated an invalid record {d.platform.slug}/{d.record_id}: {errors}")
        items.append(sign_record(keys[d.platform.slug][1 if rotated else 0], record))
    return Demo(seed, items, keys, rotation)


def _record(d: Draft, fmt: Fmt) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "type": d.type,
        "schema_version": 1,
        "platform": d.platform.slug,
        "record_id": d.record_id,
        "submitted_at": fmt(d.submitted),
    }
    if d.ref is not None:
        rec["refs"] = {"record_id": d.ref.record_id}
    return rec | d.extra | d.fields


def _assign_ids(drafts: list[Draft]) -> None:
    """Number each platform's records in submission order, in its own style:
    a tag of at most three letters, then digits (docs/records.md, record_id)."""
    counters: dict[tuple[str, ...], int] = {}
    for d in drafts:
        slug = d.platform.slug
        if slug == "demo-facespace":
            day = time.strftime("%Y%m%d", time.gmtime(d.submitted))
            n = counters[(slug, d.type, day)] = counters.get((slug, d.type, day), 0) + 1
            d.record_id = f"fs{_LETTER[d.type].lower()}:{day}:{n:04d}"
            continue
        n = counters[(slug, d.type)] = counters.get((slug, d.type), 0) + 1
        if slug == "demo-tubeview":
            d.record_id = f"TV{_LETTER[d.type]}.2026.{n:06d}"
        else:
            d.record_id = f"{_SHORT[d.type]}-{n:07d}"
    if len({(d.platform.slug, d.record_id) for d in drafts}) != len(drafts):
        raise AssertionError("demo: record IDs repeat")


def _lag(rng: random.Random, median: float, cap: float) -> float:
    return min(rng.lognormvariate(math.log(median), 0.8), cap)


def _appeals(
    rng: random.Random, decided: list[tuple[Case, Timeline, Draft]], k: int, chains: int, fmt: Fmt
) -> list[Draft]:
    """``k`` appealed decisions; ``chains`` of them first logged as pending, then with their outcome.

    Which decisions are appealed does not depend on the account; outcomes
    are dealt within (platform, rule) cells sorted by class
    (:func:`demo.design.spread`), so reversal rates are alike for every class.
    """
    eligible = [x for x in decided if x[0].action not in ("none", "label")]
    # Sampled, then kept in design order: sorted by class within each (platform, rule).
    picked = {id(x) for x in rng.sample(eligible, k)}
    chosen = [x for x in eligible if id(x) in picked]
    outcome: dict[int, str] = {}
    for cell in group(chosen, lambda x: (x[0].platform.slug, x[0].rule.id)).values():
        for x, o in zip(cell, spread(rng, [APPEAL_OUTCOMES] * len(cell)), strict=True):
            outcome[id(x)] = o
    resolved = [x for x in chosen if outcome[id(x)] != "pending"]
    if chains > len(resolved):
        raise AssertionError("demo: too few resolved appeals to chain")
    chained = {id(x) for x in rng.sample(resolved, chains)}
    out: list[Draft] = []
    for x in chosen:
        case, tl, d = x
        # Filing, deciding and reporting delays, squeezed to end before HORIZON.
        lags = [_lag(rng, 2 * DAY, 14 * DAY), _lag(rng, 6 * DAY, 40 * DAY), _lag(rng, 5 * 3600, 2 * DAY)]
        room = HORIZON - 3600 - tl.decided
        scale = min(1.0, room / sum(lags))
        filed = tl.decided + int(lags[0] * scale)
        ruled = filed + int(lags[1] * scale)
        fields: dict[str, Any] = {
            "channel": pick(rng, {"internal": 78, "out_of_court_body": 10, "oversight_board": 6, "court": 6}),
            "filed_at": fmt(filed),
            "outcome": outcome[id(x)],
        }
        submitted = max(d.submitted + 60, (filed if fields["outcome"] == "pending" else ruled) + int(lags[2] * scale))
        if id(x) in chained:
            first = max(d.submitted + 60, filed + int(min(lags[2], lags[1] / 2) * scale))
            pending = {"channel": fields["channel"], "filed_at": fmt(filed), "outcome": "pending"}
            out.append(Draft("appeal", case.platform, first, 1, pending, d))
            submitted = max(submitted, first + 60)
        if fields["outcome"] != "pending":
            fields["decided_at"] = fmt(ruled)
        if fields["outcome"] in ("reversed", "modified") and rng.random() < 0.85:
            if fields["outcome"] == "reversed":
                fields["new_action"] = pick(rng, {"none": 70, "label": 30})
            else:
                fields["new_action"] = _MILDER.get(case.action, "label")
        out.append(Draft("appeal", case.platform, submitted, 2, fields, d))
    return out


def _amendments(rng: random.Random, decided: list[tuple[Case, Timeline, Draft]], count: int) -> list[Draft]:
    """``count`` amendments, every reason about equally often, of decisions chosen without regard to class.

    The decision record becomes the original, mistaken version; the
    amendment restates the designed one, which is what the statistics
    count (amendments applied).
    """
    pool = list(decided)
    rng.shuffle(pool)
    out: list[Draft] = []
    for reason in allocate(rng, count, dict.fromkeys(AMENDMENT_REASONS, 1.0)):
        # A legal order needs a rule that cites a law.
        x = next(x for x in pool if reason != "legal_order" or x[0].rule.legal)
        pool.remove(x)
        case, _, d = x
        corrected = d.fields
        d.fields = _original(rng, reason, case, corrected)
        lag = _lag(rng, 5 * DAY, 40 * DAY)
        submitted = d.submitted + int(lag)
        if submitted > HORIZON - 600:
            submitted = d.submitted + int((HORIZON - 600 - d.submitted) * rng.uniform(0.3, 0.95))
        fields = {"reason": reason, "corrected": corrected}
        out.append(Draft("amendment", case.platform, max(submitted, d.submitted + 60), 1, fields, d))
    return out


def _original(rng: random.Random, reason: str, case: Case, final: dict[str, Any]) -> dict[str, Any]:
    """The mistaken first version of a decision whose ``final`` fields an amendment restates.

    Changes to ``final`` itself (a keyword, a legal ground) touch no field
    the evenness statistics read.
    """
    if reason == "late_classification" and "keywords" not in final:
        final["keywords"] = [case.rule.keywords[0]]
    if reason == "legal_order":
        final["decision_ground"], final["state_involvement"] = "both", "order"
        legal = rng.choice(case.rule.legal)
        final["legal_reference"] = legal[2] if case.cls == "ordinary_user" else legal[1]
    o = copy.deepcopy(final)
    if reason == "data_error":  # the follower bucket was read from a stale cache
        buckets = ORDINARY_FOLLOWER_BUCKETS if case.cls == "ordinary_user" else PUBLIC_FOLLOWER_BUCKETS
        i = buckets.index(o["account"]["follower_bucket"])
        o["account"]["follower_bucket"] = buckets[i - 1 if i else 1]
    elif reason == "late_classification":  # logged before the case was classified
        o["category"] = "not_specified_notice" if o["category"] != "not_specified_notice" else "other_violation_tc"
        del o["keywords"]
    elif reason == "policy_reinterpretation":  # the rule was read differently at first
        o.pop("statement", None)
        if final["violation_found"]:
            o |= {"violation_found": False, "action": "none"}
            for name in ("exemption", "action_ends_at", "applied_at"):
                o.pop(name, None)
        else:
            o |= {"violation_found": True, "exemption": {"applied": False}, "action": "reduce_reach"}
    elif reason == "duplicate":  # the content fields were copied from another case
        o["content"]["types"] = ["image"] if o["content"]["types"] == ["text"] else ["text"]
        o["content"].pop("language", None)
    else:  # legal_order: first decided on the terms alone; then a court ordered it
        o["decision_ground"], o["state_involvement"] = "terms", "none"
        del o["legal_reference"]
    return o
