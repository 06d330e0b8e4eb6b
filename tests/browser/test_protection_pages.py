"""The protection section and the election-period page in real Chromium against a
real gunicorn (LEDGER_ELECTION_PERIODS from the environment), on SQLite and
PostgreSQL: the planted protection disparity is stated on /stats, the platform's
page and the period's page; each page renders at desktop and phone widths, in the
light and the dark theme, without sideways scroll, console error, failed request,
CSP violation or axe-core violation; the tables scroll by keyboard; and the period
page reads the same without JavaScript. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keys.keyfile import write_signer
from ledger.log import LogProvider
from tests.browser import axe
from tests.browser.test_pages import (  # noqa: F401  (fixtures)
    BACKGROUND,
    DESKTOP,
    ORIGIN,
    PHONE,
    SHOTS,
    Watch,
    _signer_with_plus,
    browser,
    playwright,
    scrolls_right_by_keyboard,
    site_db,
)
from tests.ledger.evenness.test_protection import planted
from tests.ledger.test_evenness import KEYS
from tests.recordkit import sign
from tests.server import gunicorn

pytestmark = pytest.mark.slow

from playwright.sync_api import Browser  # noqa: E402

PERIOD = {"slug": "autumn-2026", "name": "Autumn 2026 general election", "from": "2026-09-01", "to": "2026-12-01"}
NAMES = {"example-social": "Example Social", "other-video": "Other Video", "third-forum": "Third Forum"}
PAGES = {
    "protection-stats": "/stats",
    "protection-platform": "/stats/other-video",
    "elections": "/elections",
    "election-period": "/elections/autumn-2026",
}
FINDING = "threats aimed at election workers were decided in a median of"


@pytest.fixture(scope="module")
def protection_site(
    site_db: tuple[str, str],  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    backend, db_url = site_db
    key_file = str(tmp_path_factory.mktemp("keys") / "log.key")
    write_signer(Path(key_file), _signer_with_plus())
    env = {
        "LEDGER_DATABASE_URL": db_url,
        "LEDGER_KEY_FILE": key_file,
        "LEDGER_ORIGIN": ORIGIN,
        "LEDGER_ELECTION_PERIODS": json.dumps([PERIOD]),
    }
    with gunicorn(env, workers=2) as url:
        provider = LogProvider(db_url, key_file, ORIGIN)
        for slug, key in KEYS.items():
            provider.log.registry.add_platform(slug, NAMES[slug], key.public_key)
        provider.close()
        rename = {"slow-video": "other-video", "decoy-social": "third-forum"}
        records = [r | {"platform": rename[r["platform"]]} for r in planted()]
        with httpx.Client(base_url=url, timeout=60) as http:
            for start in range(0, len(records), 500):
                items: list[dict[str, Any]] = [sign(r, KEYS[r["platform"]]) for r in records[start : start + 500]]
                r = http.post("/api/v1/records", json={"records": items})
                assert r.status_code == 201, r.text
        yield backend, url


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_protection_pages_render_cleanly(
    protection_site: tuple[str, str],
    browser: Browser,  # noqa: F811
    width: str,
    theme: str,
) -> None:
    backend, url = protection_site
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=DESKTOP if width == "desktop" else PHONE, color_scheme=theme)
    found: dict[str, str] = {}
    for name, path in PAGES.items():
        page = context.new_page()
        watch = Watch(page)
        resp = page.goto(url + path, wait_until="load", timeout=60_000)
        assert resp is not None
        assert resp.status == 200, name
        assert page.locator("h1").count() == 1, name
        main = page.locator("main").inner_text()
        if name != "elections":
            assert FINDING in main, name
            assert "On third-forum" not in main, name  # the Simpson's decoy is no finding
        if name == "election-period":
            assert page.locator("h1").inner_text() == PERIOD["name"]
            assert "What these figures cannot show" in main
            assert "root hash" in main
        if name.startswith("protection"):
            section = page.locator("section.protection")
            assert section.count() == 1, name
            assert section.locator("h2").inner_text() == "Protection: whom the content targeted"
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width} width"
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUND[theme], name
        for summary in page.locator("details summary").all():
            summary.click()
        violations = axe.violations(page)
        if violations:
            found[name] = axe.show(violations)
        watch.check(page)
        page.screenshot(path=str(SHOTS / f"{name}-{width}-{theme}-{backend}.png"), full_page=True)
        page.close()
    context.close()
    assert not found, "\n".join(f"{name} ({width}, {theme}):\n{text}" for name, text in found.items())


def test_protection_tables_scroll_by_keyboard(protection_site: tuple[str, str], browser: Browser) -> None:  # noqa: F811
    """At phone width a wide table is a focusable region that the arrow keys scroll."""
    _, url = protection_site
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(url + PAGES["election-period"])
    region = page.locator("section.election-platform .table-wrap").first
    assert region.evaluate("e => e.scrollWidth > e.clientWidth")
    region.focus()
    scrolls_right_by_keyboard(page, region.element_handle(), presses=2)
    context.close()


def test_election_period_page_needs_no_javascript(protection_site: tuple[str, str], browser: Browser) -> None:  # noqa: F811
    _, url = protection_site
    context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
    page = context.new_page()
    page.goto(url + "/elections")
    with page.expect_navigation():
        page.click(f"text={PERIOD['name']}")
    assert page.url.endswith(PAGES["election-period"])
    assert FINDING in page.locator("main").inner_text()
    context.close()
