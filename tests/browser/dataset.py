"""A small, realistic ledger for the web pages' tests: every record type,
every example, two platforms, a key rotation with a revocation, a record
whose platform-supplied strings are HTML, and optionally a demo platform.

:func:`build` works through any ``post(items)`` that submits to
``POST /api/v1/records`` (Flask's test client or HTTP), and any
``registry`` (``Log.registry``, or the CLI through a callback).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from keys.records import PlatformKey
from tests.recordkit import amendment, appeal, decision, sign

KEY_SOCIAL = PlatformKey(bytes([11]) * 32)
KEY_VIDEO_OLD = PlatformKey(bytes([12]) * 32)
KEY_VIDEO = PlatformKey(bytes([13]) * 32)
KEY_DEMO = PlatformKey(bytes([14]) * 32)

XSS = "<script>alert(1)</script>"
XSS_NAME = f"Evil {XSS} Mayor"
PRESIDENT = "hS3kP9vQ2xWmZ7rT4yLbN8cD1fGjH6aE5uKoR0iVwXs"


def _xss_record() -> dict[str, Any]:
    rec = decision("dec-xss", name="decision-head-of-state-newsworthiness")
    subject = rec["account"]["public_subject"]
    subject["display_name"] = XSS_NAME
    subject["office"] = '"><img src=x onerror=alert(2)>'
    subject["handle"] = "@mayor</p><b>bold</b>"
    rec["account"]["subject_key"] = "xss-subject-key-0001"
    rec["account"]["class"] = "government_official"
    rec["statement"] = f"The post said {XSS} and <b>more</b>.\nSecond line & an ampersand."
    return rec


def social_records() -> list[dict[str, Any]]:
    """example-social's records, in submission order."""
    recs = [
        decision("dec-hos", name="decision-head-of-state-newsworthiness"),
        decision("dec-leg", name="decision-legislator-removal"),
        decision("ord-1", name="decision-ordinary-user"),
        decision("dec-court", name="decision-illegal-court-order"),
        appeal("apl-1", "dec-leg"),
        amendment("amd-1", "dec-hos"),
        _xss_record(),
    ]
    for i in range(3):  # more decisions about the head of state, for the subject page
        rec = decision(f"dec-hos-{i}", name="decision-head-of-state-newsworthiness")
        rec["severity"] = ["low", "medium", "critical"][i]
        recs.append(rec)
    return recs


def video_records(prefix: str) -> list[dict[str, Any]]:
    out = []
    for i, name in enumerate(["decision-legislator-removal", "decision-ordinary-user"]):
        rec = decision(f"{prefix}-{i}", platform="other-video", name=name)
        out.append(rec)
    return out


Post = Callable[[list[dict[str, Any]]], None]


def build(registry: Any, post: Post, now_ms: int, demo: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Register the platforms and submit every record; return them by platform."""
    registry.add_platform("example-social", "Example Social", KEY_SOCIAL.public_key)
    registry.add_platform("other-video", "Other Video", KEY_VIDEO_OLD.public_key)
    social = social_records()
    post([sign(r, KEY_SOCIAL) for r in social])
    old = video_records("old")
    post([sign(r, KEY_VIDEO_OLD) for r in old])
    registry.add_key("other-video", KEY_VIDEO.public_key)
    registry.revoke_key(KEY_VIDEO_OLD.key_id, now_ms, "rotated after a suspected leak")
    new = video_records("vid")
    post([sign(r, KEY_VIDEO) for r in new])
    out = {"example-social": social, "other-video": old + new}
    if demo:
        registry.add_platform("demo-social", "Demo Social (synthetic)", KEY_DEMO.public_key)
        rec = copy.deepcopy(decision("demo-1", platform="demo-social"))
        post([sign(rec, KEY_DEMO)])
        out["demo-social"] = [rec]
    return out
