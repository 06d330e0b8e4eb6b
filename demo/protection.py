"""Whom the demo's abuse was aimed at, and who reported it (record schema's protection fields).

Decisions under a rule marked as abuse (``Rule.abuse``) get a target class
and, when a user reported them, a reporter class. Both are dealt with
:func:`demo.design.spread` over the cases of each (platform, rule) cell
taken in order of their time to decision within each severity, so every
target and reporter class gets fast and slow cases in the same proportion:
chance cannot make a protection disparity that was not planted.

**The planted protection disparity** (plant 4 in demo/__init__.py): on
demo-chirp, under violent-speech/threats, threats aimed at election workers
are among the slower cases of their severity: the slower half of each
severity's cases is aimed at election workers with probability
:data:`PLANT_SLOW_SHARE`, the faster half with :data:`PLANT_FAST_SHARE`.
That is the data a platform that leaves reports of threats against election
workers waiting longer would record, at every severity alike, so the
comparison stratified by severity finds it (not a Simpson's paradox: within
each severity the gap is the same). Times themselves are untouched, so
version 1's figures are those of the demo without the protection fields.

A separate generator (seeded from the demo's seed) draws all of it, so the
demo's other records are exactly as before.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from demo.design import SEVERITIES, Case, group, spread

#: The target classes of abuse, as a platform might see them.
TARGETS = {"ordinary_user": 50, "election_worker": 15, "candidate": 15, "journalist": 12, "group": 8}
#: Who reported a case a user reported (detection_source user_report).
USER_REPORTERS = {"target_self": 35, "ordinary_user": 55, "public_account": 10}
#: The plant: P(election worker) in the slower and the faster half of each severity.
PLANT_SLOW_SHARE = 0.5
PLANT_FAST_SHARE = 0.08
PLANT_PLATFORM, PLANT_RULE = "demo-chirp", "violent-speech/threats"


def _planted_mix(share: float) -> dict[str, float]:
    rest = {k: v for k, v in TARGETS.items() if k != "election_worker"}
    total = sum(rest.values())
    return {"election_worker": share} | {k: (1 - share) * v / total for k, v in rest.items()}


def assign(seed: str, cases: list[Case]) -> None:
    """Give every case under an abuse rule its target and (dealt, used when user-reported) reporter class."""
    rng = random.Random(f"mdl-demo/v1/{seed}/protection")  # noqa: S311 - reproducible demo data
    abuse = [c for c in cases if c.rule.abuse is not None]
    for (slug, rule), cell in group(abuse, lambda c: (c.platform.slug, c.rule.id)).items():
        planted = (slug, rule) == (PLANT_PLATFORM, PLANT_RULE)
        for severity in SEVERITIES:
            ordered = sorted((c for c in cell if c.severity == severity), key=lambda c: c.ttd)
            half = len(ordered) // 2
            mixes: list[Mapping[str, float]] = [
                _planted_mix(PLANT_SLOW_SHARE if i >= half else PLANT_FAST_SHARE) if planted else TARGETS
                for i in range(len(ordered))
            ]
            for c, target in zip(ordered, spread(rng, mixes), strict=True):
                c.target = target
            for c, reporter in zip(ordered, spread(rng, [USER_REPORTERS] * len(ordered)), strict=True):
                c.reporter = reporter


def reporter_class(case: Case, detection_source: str) -> str | None:
    """The record's reporter_class: a user's class as dealt, else the body that reported it."""
    if case.target is None:
        return None
    return {
        "user_report": case.reporter,
        "trusted_flagger": "trusted_flagger",
        "government_request": "government_body",
    }.get(detection_source)
