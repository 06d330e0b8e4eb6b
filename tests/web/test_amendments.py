"""What an amendment changed (issue 15): an amendment's page shows each
field it changed, before and after, against the version it replaced, and
the decision's page links it."""

from __future__ import annotations

import copy
import re

from flask.testing import FlaskClient

from tests.browser.dataset import KEY_SOCIAL
from tests.recordkit import amendment, sign
from tests.web.test_web import Data, Parsed, _get, data  # noqa: F401  (fixture)


def _changes(body: str) -> list[list[str]]:
    """The rows of the "What changed" table as lists of cell texts."""
    section = re.search(r'<section aria-labelledby="changes-heading".*?</section>', body, re.DOTALL)
    assert section, "no What changed section"
    rows = re.findall(r"<tr><th scope=\"row\">.*?</tr>", section.group(0), re.DOTALL)
    out = []
    for r in rows:
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.DOTALL)
        out.append([" ".join("".join(Parsed(c).text).split()) for c in cells])
    return out


def test_an_amendment_shows_what_it_changed(client: FlaskClient, data: Data) -> None:  # noqa: F811
    amd = _get(client, "/records/example-social/amd-1")
    assert '<h2 id="changes-heading">What changed</h2>' in amd
    assert 'the decision as first logged, decision <a href="/records/example-social/dec-hos">' in amd
    assert _changes(amd) == [
        [
            "Keywords (EU DSA)",
            "Misinformation or disinformation misinformation_disinformation",
            "Misinformation or disinformation misinformation_disinformation, "
            "Violation of national law violation_national_law",
        ],
        ["Severity (the platform's assessment)", "High high", "Critical critical"],
    ]
    assert "34 other fields unchanged." in amd
    # The decision's page says it was replaced, and links what changed.
    hos = _get(client, "/records/example-social/dec-hos")
    assert 'href="/records/example-social/amd-1#changes">see what changed</a>' in hos
    # Other records have no such section.
    for other in ("dec-hos", "apl-1", "dec-leg"):
        assert "changes-heading" not in _get(client, f"/records/example-social/{other}")


def test_a_second_amendment_is_compared_with_the_first(client: FlaskClient, data: Data) -> None:  # noqa: F811
    second = amendment("amd-2", "dec-hos")
    corrected = copy.deepcopy(second["corrected"])
    corrected["action"] = "remove_content"
    corrected["statement"] = "Removed <b>after all</b>."
    del corrected["exemption"]["policy"]
    second["corrected"] = corrected
    r = client.post("/api/v1/records", json={"records": [sign(second, KEY_SOCIAL)]})
    assert r.status_code == 201, r.get_data(as_text=True)
    body = _get(client, "/records/example-social/amd-2")
    assert 'the previous amendment, amendment <a href="/records/example-social/amd-1">' in body
    assert _changes(body) == [
        ["Action", "Label added label", "Content removed remove_content"],
        ["Statement", data["example-social"][5]["corrected"]["statement"], "Removed <b>after all</b>."],
        ["Exemption policy", "exemptions/newsworthiness", "not given"],
        ["Exemption policy version", "2025-11", "not given"],
    ]
    assert "<b>after all</b>" not in body  # escaped
    assert "32 other fields unchanged." in body
    # The first amendment is now replaced, and points at the second's changes.
    first = _get(client, "/records/example-social/amd-1")
    assert 'href="/records/example-social/amd-2#changes">see what changed</a>' in first
