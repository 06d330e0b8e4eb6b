"""Turning designed cases into decision records: accounts, times, process,
content and statements.

What is drawn here never depends on the account's class in a way the
evenness statistics measure (violation, exemption, action, time to
decision, appeal outcome: all fixed by :mod:`demo.design`). The process
fields do depend on it, as on real platforms: public accounts go to
secondary high-profile review and are decided by people, ordinary users'
cases are more often automated; public accounts have names, statements and
content links, ordinary users none of these (docs/records.md, privacy).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from demo.cast import EU27, FIGURES, USER_FOLLOWERS, USER_LANGUAGES, Figure, Platform
from demo.design import DAY, END, START, Case, ts
from demo.protection import reporter_class

Fmt = Callable[[int], str]
#: Countries where a platform withholds content under its own terms.
WITHHOLD = ("DE", "FR", "AT", "PL", "IT", "ES", "NL", "HU")


def iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def pick(rng: random.Random, mix: Mapping[str, float]) -> str:
    """One value of a weighted mix."""
    return rng.choices(list(mix), weights=list(mix.values()))[0]


_NO_DECOMPOSITION = str.maketrans("łŁøØđĐß", "lLoOdDs")  # letters NFKD keeps whole


def _ascii(name: str) -> str:
    return unicodedata.normalize("NFKD", name.translate(_NO_DECOMPOSITION)).encode("ascii", "ignore").decode()


@dataclass(frozen=True)
class Subject:
    """One account on one platform, as the platform describes it."""

    account: dict[str, Any]
    language: str | None
    handle: str | None  # public accounts only

    @property
    def public(self) -> bool:
        return self.handle is not None


def _handle(platform: Platform, figure: Figure) -> str:
    parts = _ascii(figure.name).lower().replace("-", " ").split()
    if platform.slug == "demo-chirp":
        return "@" + ".".join(parts)
    if platform.slug == "demo-tubeview":
        return "@" + "".join(p.capitalize() for p in parts)
    return "@" + "-".join(parts)


class Accounts:
    """The accounts of one seed: subject keys are HMACs under a per-platform
    secret derived from the seed, as a platform's would be under its own."""

    def __init__(self, seed: str, rng: random.Random, cases: list[Case]) -> None:
        self.seed = seed
        self.weights: dict[tuple[str, str], list[tuple[Figure, float]]] = {}
        for platform in {c.platform.slug: c.platform for c in cases}.values():
            for cls in platform.classes:
                figures = [f for f in FIGURES if f.account_class == cls]
                rng.shuffle(figures)  # who is most often moderated differs by platform
                self.weights[(platform.slug, cls)] = [(f, 1 / (i + 1) ** 0.9) for i, f in enumerate(figures)]
        ordinary = [c.platform.slug for c in cases if c.cls == "ordinary_user"]
        self.pool = {slug: max(5, round(0.8 * ordinary.count(slug))) for slug in set(ordinary)}

    def _hmac(self, slug: str, account: str) -> bytes:
        secret = hashlib.sha256(f"mdl-demo/v1/{self.seed}/{slug}/subjects".encode()).digest()
        return hmac.new(secret, account.encode(), hashlib.sha256).digest()

    def _key(self, slug: str, account: str) -> str:
        return base64.urlsafe_b64encode(self._hmac(slug, account)[:24]).decode()

    def pick(self, rng: random.Random, case: Case) -> Subject:
        slug = case.platform.slug
        if case.cls == "ordinary_user":
            # Skewed towards low numbers: a few users are moderated repeatedly.
            n = int(self.pool[slug] * rng.random() ** 1.5)
            return self.user(slug, n)
        figures = self.weights[(slug, case.cls)]
        figure = rng.choices([f for f, _ in figures], weights=[w for _, w in figures])[0]
        return self.figure(case.platform, figure)

    def user(self, slug: str, n: int) -> Subject:
        # An ordinary user's key is the whole HMAC in lower-case hex
        # (docs/records.md). The user's fixed traits are seeded from the
        # public classes' shorter form of the same HMAC, which keeps them,
        # and so the demo's planted effects, as they were before.
        key = self._hmac(slug, f"user:{n}").hex()
        own = random.Random(self._key(slug, f"user:{n}"))  # noqa: S311 - reproducible
        account = {"class": "ordinary_user", "subject_key": key, "follower_bucket": pick(own, USER_FOLLOWERS)}
        return Subject(account, pick(own, USER_LANGUAGES), None)

    def figure(self, platform: Platform, figure: Figure) -> Subject:
        handle = _handle(platform, figure)
        public: dict[str, Any] = {"display_name": figure.name, "office": figure.office, "handle": handle}
        public["jurisdiction"] = figure.jurisdiction
        if figure.qid:
            public["wikidata_qid"] = figure.qid
        account = {
            "class": figure.account_class,
            "class_basis": figure.basis,
            "subject_key": self._key(platform.slug, f"figure:{figure.name}"),
            "follower_bucket": figure.followers,
            "public_subject": public,
        }
        return Subject(account, figure.language, handle)


@dataclass(frozen=True)
class Timeline:
    posted: int
    flagged: int
    decided: int
    applied: int | None
    ends: int | None
    submitted: int


_ENDS = {
    "temporary_suspension": (1.0, (1, 3, 7, 14, 30)),
    "feature_limit": (0.7, (7, 14, 30)),
    "demonetize": (0.5, (30, 90)),
    "reduce_reach": (0.4, (3, 7, 30)),
    "restrict_interaction": (0.4, (3, 7, 30)),
}


def timeline(rng: random.Random, case: Case) -> Timeline:
    """When it was posted, flagged, decided, applied and submitted; decided_at <= END."""
    latest = END - case.ttd - START
    peak = case.rule.peak
    if peak and rng.random() < 0.5:  # half the cases cluster in the weeks before the election
        r = min(max(rng.triangular(ts(peak) - 40 * DAY, ts(peak) + 5 * DAY, ts(peak)) - START, 0), latest)
    else:
        r = rng.random() * latest
    flagged = START + int(r)
    decided = flagged + case.ttd
    posted = flagged - min(int(rng.lognormvariate(8.5, 1.5)), 20 * DAY)
    applied = decided + rng.randrange(0, 1800) if case.action != "none" and rng.random() < 0.9 else None
    ends = None
    if case.action in _ENDS and rng.random() < _ENDS[case.action][0]:
        ends = decided + rng.choice(_ENDS[case.action][1]) * DAY
    submitted = max(decided, applied or 0) + min(int(rng.lognormvariate(9.3, 1.0)), 3 * DAY)
    return Timeline(posted, flagged, decided, applied, ends, submitted)


def _version(case: Case, decided: int) -> str:
    return [v for v, since in case.rule.versions if ts(since) <= decided][-1]


def _ground(rng: random.Random, case: Case) -> tuple[str, tuple[str, str, str] | None]:
    """The decision ground and, with a legal one, the (country, reference) relied on."""
    rule = case.rule
    ground = pick(rng, rule.grounds)
    if case.action == "geo_block" and rule.legal and ground == "terms" and rng.random() < 0.7:
        ground = "both"
    if ground == "terms" or not rule.legal:
        return "terms", None
    return ground, rng.choice(rule.legal)


def _scope(rng: random.Random, case: Case, legal: tuple[str, str, str] | None) -> list[str]:
    if legal is not None:
        where = list(EU27) if legal[0] == "EU" else [legal[0]]
        if case.action == "geo_block" or rng.random() < 0.5:
            return where
        return ["GLOBAL"]
    if case.action == "geo_block":
        return sorted(rng.sample(WITHHOLD, rng.choice((1, 1, 2))))
    return ["GLOBAL"] if rng.random() < 0.92 else sorted(rng.sample(WITHHOLD, 3))


def _process(rng: random.Random, case: Case, public: bool, legal: bool) -> dict[str, Any]:
    """How the case was detected and reviewed: realistic, and read by no evenness metric."""
    if legal:
        source = pick(rng, {"court_order": 25, "government_request": 25, "trusted_flagger": 25, "user_report": 25})
    else:
        source = pick(rng, {"user_report": 40, "automated": 30, "trusted_flagger": 8, "internal_staff": 8,
                            "media_or_public_inquiry": 10 if public else 0, "other": 4})  # fmt: skip
    if legal and rng.random() < 0.6:
        path = "legal"
    elif public:
        path = pick(rng, {"secondary_high_profile": 60, "standard": 20, "policy_escalation": 20})
    else:
        path = pick(rng, {"standard": 88, "policy_escalation": 12})
    automated = source == "automated"
    if automated and not public and path == "standard":
        decision = pick(rng, {"fully": 60, "partially": 40})
    elif automated:
        decision = "partially"
    else:
        decision = pick(rng, {"none": 85, "partially": 15})
    if decision == "fully":
        interim = "not_applicable"
    elif path == "secondary_high_profile":
        interim = pick(rng, {"visible": 75, "hidden": 25})
    else:
        interim = pick(rng, {"visible": 35, "hidden": 55, "not_applicable": 10})
    involvement = {"court_order": "order", "government_request": "request"}.get(source, "none")
    return {
        "review_path": path,
        "interim_state": interim,
        "detection_source": source,
        "automated_detection": automated,
        "automated_decision": decision,
        "state_involvement": involvement,
    }


def _content_ref(rng: random.Random, platform: Platform, handle: str) -> str:
    if platform.slug == "demo-tubeview":
        vid = base64.urlsafe_b64encode(rng.randbytes(8)).decode()[:11]
        return f"https://{platform.host}/watch?v={vid}"
    kind = "status" if platform.slug == "demo-chirp" else "posts"
    return f"https://{platform.host}/{handle[1:]}/{kind}/{rng.randrange(10**17, 10**18)}"


_ACTION_WORDS = {
    "none": "left up without any measure",
    "label": "labelled with a link to reliable information",
    "interstitial": "placed behind a warning screen",
    "reduce_reach": "shown to fewer people",
    "age_restrict": "restricted to adults",
    "restrict_interaction": "closed to replies and shares",
    "geo_block": "withheld in the countries where it is unlawful",
    "demonetize": "demonetised",
    "feature_limit": "kept, and the account's posting features limited",
    "remove_content": "removed",
    "temporary_suspension": "removed and the account suspended for a time",
    "permanent_ban": "removed and the account permanently suspended",
}
_NOUN = {"demo-chirp": "post", "demo-tubeview": "video", "demo-facespace": "post"}


def _statement(rng: random.Random, case: Case, version: str) -> str:
    noun = _NOUN[case.platform.slug]
    claim = rng.choice(case.rule.claims) if case.rule.claims else "was reported under this rule"
    first = f"The {noun} {claim}."
    if not case.violation:
        return f"{first} On review it does not break rule {case.rule.id}; it is {_ACTION_WORDS[case.action]}."
    second = f"That breaks rule {case.rule.id} (version {version})."
    if case.exempt:
        kind = (case.exemption_type or "other").replace("_", " ")
        return (
            f"{first} {second} It stays up under the {kind} exemption: the public's interest in seeing what this "
            f"account says outweighs the harm. It is {_ACTION_WORDS[case.action]}."
        )
    return f"{first} {second} The {noun} is {_ACTION_WORDS[case.action]}."


def decision_body(rng: random.Random, case: Case, subject: Subject, tl: Timeline, fmt: Fmt) -> dict[str, Any]:
    """The decision fields of ``case`` (docs/records.md), the envelope left out."""
    version = _version(case, tl.decided)
    ground, legal = _ground(rng, case)
    rule: dict[str, Any] = {"id": case.rule.id, "version": version}
    # The version in the path: an ordinary user's rule.url has no query.
    rule["url"] = f"https://{case.platform.host}/rules/{case.rule.id}/{version}"
    body: dict[str, Any] = {"rule": rule, "decision_ground": ground}
    if legal is not None:
        body["legal_reference"] = legal[1] if subject.public else legal[2]
    body["category"] = case.rule.category
    if rng.random() < 0.75:
        body["keywords"] = rng.sample(case.rule.keywords, rng.choice((1, 1, 2)))
    body |= {"severity": case.severity, "violation_found": case.violation, "action": case.action}
    if tl.ends is not None:
        body["action_ends_at"] = iso(tl.ends)  # may lie in the future: never clamped
    if case.violation:
        exemption: dict[str, Any] = {"applied": case.exempt}
        if case.exempt:
            exemption["type"] = case.exemption_type
            if rng.random() < 0.7:
                policy = f"exemptions/{(case.exemption_type or 'other').replace('_', '-')}"
                exemption["policy"] = {"id": policy, "version": "2025-11"}
        body["exemption"] = exemption
    body |= _process(rng, case, subject.public, legal is not None)
    body["account"] = subject.account
    content: dict[str, Any] = {"types": list(rng.choice(case.rule.content))}
    if content["types"] not in (["image"], ["other"], ["product"]) and subject.language:
        content["language"] = subject.language
    if subject.handle is not None and rng.random() < 0.85:
        content["ref"] = _content_ref(rng, case.platform, subject.handle)
    content["posted_at"] = fmt(tl.posted) if subject.public else fmt(tl.posted)[:10]
    body["content"] = content
    if case.target is not None:
        rule["abuse"] = case.rule.abuse
        body["target"] = {"class": case.target}
        reporter = reporter_class(case, body["detection_source"])
        if reporter is not None:
            body["reporter_class"] = reporter
    body |= {"flagged_at": fmt(tl.flagged), "decided_at": fmt(tl.decided)}
    if tl.applied is not None:
        body["applied_at"] = fmt(tl.applied)
    body["territorial_scope"] = _scope(rng, case, legal)
    if subject.public and rng.random() < 0.8:
        body["statement"] = _statement(rng, case, version)
    return body
