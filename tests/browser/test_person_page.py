"""The person page (``/people/<QID>``, issue 15) in real Chromium against a real
gunicorn, on SQLite and PostgreSQL, at 1280 and 360 px in both themes: the
head of state of the page tests' data set, also on a second platform under
another subject key, is one person with both platforms' accounts and
counts; each count's link opens the feed holding that many records; the
Atom feed the page names parses; no sideways scroll, console error, failed
request, CSP violation or axe-core violation. Screenshots go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from tests.browser import axe
from tests.browser.dataset import KEY_VIDEO
from tests.browser.test_pages import (  # noqa: F401  (fixtures)
    BACKGROUND,
    DESKTOP,
    PHONE,
    SHOTS,
    Post,
    Watch,
    browser,
    playwright,
    serve_data_set,
    site_db,
)
from tests.recordkit import decision, sign

pytestmark = pytest.mark.slow

from playwright.sync_api import Browser  # noqa: E402

ITEM = "Q4115189"


@pytest.fixture(scope="module")
def person_site(site_db: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:  # noqa: F811
    """(backend, base URL): the page tests' data set, plus the head of state on other-video."""

    def more(post: Post) -> None:
        rec = decision("vid-hos", platform="other-video", name="decision-head-of-state-newsworthiness")
        rec["account"]["subject_key"] = "presidentia-on-other-video-0001"
        post([sign(rec, KEY_VIDEO)])

    with serve_data_set(site_db, tmp_path_factory, more) as served:
        yield served


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_person_page(person_site: tuple[str, str], browser: Browser, width: str, theme: str) -> None:  # noqa: F811
    backend, url = person_site
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=DESKTOP if width == "desktop" else PHONE, color_scheme=theme)
    page = context.new_page()
    watch = Watch(page)
    resp = page.goto(f"{url}/people/{ITEM}", wait_until="networkidle")
    assert resp is not None
    assert resp.status == 200
    assert page.locator("h1").inner_text() == "Example Presidentia"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUND[theme]
    accounts = page.locator("table", has=page.locator("caption", has_text="Their accounts"))
    assert accounts.locator("tbody th").all_inner_texts() == ["Example Social", "Example Social", "Other Video"]
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the person page scrolls sideways by {overflow}px at {width} width"
    violations = axe.violations(page)
    assert not violations, axe.show(violations)
    page.screenshot(path=str(SHOTS / f"person-{width}-{theme}-{backend}.png"), full_page=True)
    atom = page.locator('link[rel="alternate"][type="application/atom+xml"]').get_attribute("href")
    assert atom == f"/people/{ITEM}.atom"
    feed = ET.fromstring(page.request.get(url + atom).body())
    assert any(
        (e.text or "").endswith("/records/other-video/vid-hos") for e in feed.iter("{http://www.w3.org/2005/Atom}id")
    )
    # The other platform's decisions: its count, clicked, lists that many cards.
    cell = page.locator("td.num a", has_text="decisions on Other Video")
    shown = int(re.sub(r"\D", "", cell.inner_text().split()[0]))
    assert shown == 1
    cell.click()
    page.wait_for_load_state("networkidle")
    assert "/records?" in page.url
    assert f"qid={ITEM}" in page.url
    assert page.locator("ol.rows > li.row").count() == shown
    assert page.locator("ol.rows .id").all_inner_texts() == ["vid-hos"]
    watch.check(page)
    context.close()


def test_a_record_page_leads_to_the_person(person_site: tuple[str, str], browser: Browser) -> None:  # noqa: F811
    _, url = person_site
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    watch = Watch(page)
    page.goto(f"{url}/records/other-video/vid-hos", wait_until="networkidle")
    page.get_by_role("link", name="their decisions on every platform").click()
    page.wait_for_load_state("networkidle")
    assert page.url == f"{url}/people/{ITEM}"
    assert page.locator("ol.rows > li.row").count() >= 2
    watch.check(page)
    context.close()
