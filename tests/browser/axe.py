"""axe-core in the browser tests: every rule axe enables by default (WCAG
2.0 to 2.2 A and AA, and its best practices), at every impact.

axe-core comes from the npm registry at install time (``package.json``,
pinned by ``package-lock.json``; ``make test`` runs ``npm ci``), never at
test time. It is evaluated through the DevTools protocol, which the
page's Content-Security-Policy does not govern: an injected ``<script>``
would be inline script, which the CSP rightly blocks, and turning the CSP
off for the test would hide the violations ``Watch`` looks for.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

import pytest

from tests.server import ROOT

if TYPE_CHECKING:  # importable where Playwright is missing: the tests then skip
    from playwright.sync_api import Page

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

RUN = """async () => {
  const results = await axe.run(document, { resultTypes: ["violations"] });
  return results.violations.map(v => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary.replace(/\\s+/g, " ")),
  }));
}"""


@cache
def _source() -> str:
    if not AXE.exists():
        why = f"{AXE.relative_to(ROOT)} is missing: run `make test`, or `npm ci` in the repository"
        if os.environ.get("LEDGER_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (LEDGER_TEST_REQUIRE_BROWSER=1) but {why}", pytrace=False)
        pytest.skip(why)
    return AXE.read_text(encoding="utf-8")


def violations(page: Page) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now, each with the elements at fault."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_source())
    result: list[dict[str, Any]] = page.evaluate(RUN)
    return result


def show(found: list[dict[str, Any]]) -> str:
    """The violations, one line per element, for an assertion message."""
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in found)
