"""The evenness dashboard in real Chromium against a real gunicorn, on the
planted-disparity data set of ``tests/ledger/test_evenness.py``: every page
renders at desktop and phone widths, in the light and the dark theme, with
its charts visible (the phone gets the narrow drawing, the dark theme a
dark one), no console error, no failed request, no CSP violation, no
sideways scroll and no axe-core violation of any impact; the pages work
without JavaScript; printed, they show their charts light and their
numbers; a platform display name holding markup stays text. Screenshots
go to ``test-artifacts/screenshots/``.

Skipped where Chromium or Playwright is missing, as ``test_pages.py`` is.
"""

from __future__ import annotations

import itertools
import re
import zlib
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
    site_db,
)
from tests.ledger.test_coverage import statements_for
from tests.ledger.test_evenness import KEYS, planted_records
from tests.recordkit import sign
from tests.server import gunicorn

pytestmark = pytest.mark.slow

from playwright.sync_api import Browser, Page, Request  # noqa: E402

HOSTILE = "Forum <script>alert(1)</script> & Co"
NAMES = {"example-social": "Example Social", "other-video": "Other Video", "third-forum": HOSTILE}
PAGES = {
    "stats": "/stats",
    "stats-platform": "/stats/example-social",
    "stats-platform-hostile": "/stats/third-forum",
    "stats-rule-exemptions": "/stats/example-social/rule?rule_id=civic/false-claims",
    "stats-rule-times": "/stats/other-video/rule?rule_id=spam/phishing",
    "stats-rule-simpson": "/stats/third-forum/rule?rule_id=hate/slurs",
    "coverage-contradicted": "/platforms/other-video/coverage",
    "coverage-gap": "/platforms/example-social/coverage",
}


@pytest.fixture(scope="module")
def planted_site(
    site_db: tuple[str, str],  # noqa: F811  (the imported fixture)
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    """(backend, base URL) of gunicorn serving the planted data set, submitted over HTTP."""
    backend, db_url = site_db
    key_file = str(tmp_path_factory.mktemp("keys") / "log.key")
    write_signer(Path(key_file), _signer_with_plus())
    env = {"LEDGER_DATABASE_URL": db_url, "LEDGER_KEY_FILE": key_file, "LEDGER_ORIGIN": ORIGIN}
    with gunicorn(env, workers=2) as url:
        provider = LogProvider(db_url, key_file, ORIGIN)
        for slug, key in KEYS.items():
            provider.log.registry.add_platform(slug, NAMES[slug], key.public_key)
        provider.close()
        records = planted_records()
        records += statements_for(records)  # coverage: a planted gap and a contradiction
        with httpx.Client(base_url=url, timeout=60) as http:
            for start in range(0, len(records), 500):
                items: list[dict[str, Any]] = [sign(r, KEYS[r["platform"]]) for r in records[start : start + 500]]
                r = http.post("/api/v1/records", json={"records": items})
                assert r.status_code == 201, r.text
        yield backend, url


def _charts(page: Page) -> list[dict[str, Any]]:
    """Each chart image: whether it loaded, its drawn size and the URL the browser chose."""
    result: list[dict[str, Any]] = page.eval_on_selector_all(
        "figure.chart img",
        "imgs => imgs.map(i => ({complete: i.complete, natural: i.naturalWidth, shown: i.getBoundingClientRect().width,"
        " src: i.currentSrc}))",
    )
    return result


def _pixel(page: Page, x: float, y: float) -> str:
    """The colour the page shows at (x, y), as rgb(r, g, b). A 1x1 PNG's
    one scanline is its filter byte and the pixel, which every PNG filter
    leaves as it is (there are no neighbours to predict from)."""
    png = page.screenshot(clip={"x": x, "y": y, "width": 1, "height": 1})
    data, at = b"", 8
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        if png[at + 4 : at + 8] == b"IDAT":
            data += png[at + 8 : at + 8 + length]
        at += 12 + length
    r, g, b = zlib.decompress(data)[1:4]
    return f"rgb({r}, {g}, {b})"


def _chart_paper(page: Page) -> list[str]:
    """The colour of each chart's background, just inside its border."""
    out = []
    for img in page.locator("figure.chart img").all():
        img.scroll_into_view_if_needed()
        box = img.bounding_box()
        assert box is not None
        out.append(_pixel(page, box["x"] + 4, box["y"] + 4))
    return out


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_dashboard_pages_render_cleanly(
    planted_site: tuple[str, str],
    browser: Browser,  # noqa: F811
    width: str,
    theme: str,
) -> None:
    backend, url = planted_site
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
        charts = _charts(page)
        if name.startswith("stats-rule"):
            assert len(charts) == 3, name
        elif name.startswith("stats-platform"):
            assert len(charts) == 1, name  # the monthly exemption rate
        for chart in charts:
            assert chart["complete"], (name, chart)
            assert chart["natural"] > 0, (name, chart)
            assert chart["shown"] > 200, (name, chart)
            wanted = "width=640" if width == "desktop" else "width=336"
            assert wanted in chart["src"], (name, chart)
        if name == "stats-platform-hostile":
            assert HOSTILE in page.locator("h1").inner_text()
        if name == "coverage-contradicted":  # the planted contradiction, marked in the grid and listed
            assert page.locator("td.coverage-contradicted .badge-warn").count() == 1
            assert "2026-04, spam/phishing, journalist" in page.locator("#gaps-heading + ul").inner_text()
        if name == "coverage-gap":
            assert page.locator("td.coverage-contradicted").count() == 0
            assert page.locator("td.coverage-incomplete").count() == 1
        if name == "stats":  # coverage beside each finding
            assert page.locator("li[id^=finding-] p.coverage").count() == 6
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width} width"
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUND[theme], name
        # The numbers under each chart, shown: the tables a phone scrolls sideways, by keyboard too.
        for summary in page.locator("figure.chart summary").all():
            summary.click()
        violations = axe.violations(page)
        if violations:
            found[name] = axe.show(violations)
        assert _chart_paper(page) == [BACKGROUND[theme]] * len(charts), name
        watch.check(page)
        # After the checks: a full-page screenshot briefly resizes the page,
        # and <picture> then starts (and aborts) a fetch of the other drawing.
        page.screenshot(path=str(SHOTS / f"{name}-{width}-{theme}-{backend}.png"), full_page=True)
        page.close()
    context.close()
    assert not found, "\n".join(f"{name} ({width}, {theme}):\n{text}" for name, text in found.items())


def test_dashboard_needs_no_javascript(planted_site: tuple[str, str], browser: Browser) -> None:  # noqa: F811
    _, url = planted_site
    context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
    page = context.new_page()
    page.goto(url + PAGES["stats-rule-exemptions"])
    images = page.locator("figure.chart img")
    assert images.count() == 3
    for i in range(3):
        box = images.nth(i).bounding_box()
        assert box is not None
        assert box["width"] > 200
        assert box["height"] > 150
    assert "Flagged" in page.locator("main").inner_text()
    page.goto(url + "/stats")
    # The pin form works without a script: it is a plain GET form.
    page.fill("#tree_size", "3")
    with page.expect_navigation():
        page.click("form.pin button[type=submit]")
    assert "tree_size=3" in page.url
    assert "at tree size 3 " in page.locator("main").inner_text()
    context.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_chart_opened_on_its_own_is_a_clean_svg(planted_site: tuple[str, str], browser: Browser, theme: str) -> None:  # noqa: F811
    """The SVG file, opened as a document (where a script would run), runs
    nothing and renders, in the reader's theme: its one style passes its CSP."""
    _, url = planted_site
    context = browser.new_context(viewport=DESKTOP, color_scheme=theme)
    page = context.new_page()
    watch = Watch(page)
    failed: list[str] = []

    def finished(request: Request) -> None:
        response = request.response()
        if response is None or response.status >= 400:
            failed.append(request.url)

    page.on("requestfinished", finished)
    page.goto(url + "/stats/third-forum/charts/monthly.svg")
    assert page.evaluate("document.documentElement.namespaceURI") == "http://www.w3.org/2000/svg"
    assert page.evaluate("document.scripts.length") == 0
    assert HOSTILE in page.evaluate("document.querySelector('title').textContent")
    assert page.locator("text").count() > 10
    assert page.evaluate("getComputedStyle(document.querySelector('rect')).fill") == BACKGROUND[theme]
    page.screenshot(path=str(SHOTS / f"stats-chart-svg-{theme}.png"))
    # A bare SVG has no <link rel=icon>: the browser asks for /favicon.ico, which is the site's icon.
    assert failed == []
    watch.check(page)
    context.close()


def test_a_printed_rule_page_shows_light_charts_and_their_numbers(
    planted_site: tuple[str, str],
    browser: Browser,  # noqa: F811
) -> None:
    """Printed from the dark theme: black on white, the charts light, the
    numbers under each chart shown though their <details> are closed, and
    none of the site's navigation or forms."""
    backend, url = planted_site
    context = browser.new_context(viewport=DESKTOP, color_scheme="dark")
    page = context.new_page()
    page.goto(url + PAGES["stats-rule-exemptions"])
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    assert page.locator("figure.chart details[open]").count() == 0
    tables = page.locator("figure.chart table")
    assert tables.count() == 3
    for i in range(3):
        assert tables.nth(i).is_visible(), i
    for hidden in ("header.site nav", "footer.site", "figure.chart summary", ".downloads"):
        assert not page.locator(hidden).first.is_visible(), hidden
    assert _chart_paper(page) == [BACKGROUND["light"]] * 3
    found = axe.violations(page)
    assert not found, axe.show(found)
    (SHOTS.parent / "print").mkdir(parents=True, exist_ok=True)
    page.pdf(path=str(SHOTS.parent / "print" / f"stats-rule-{backend}.pdf"), format="A4")
    page.screenshot(path=str(SHOTS / f"stats-rule-print-{backend}.png"), full_page=True)
    context.close()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_findings_table_drills_down_to_statement_chart_and_records(
    planted_site: tuple[str, str],
    browser: Browser,  # noqa: F811
    width: str,
) -> None:
    """The headline table opens /stats; its links, followed by a click, land
    on the full statement, the chart and the records behind both figures,
    and the feed says how many there are: the cell's own numbers."""
    _, url = planted_site
    doc = httpx.get(url + "/api/v1/stats/evenness", timeout=60).json()["document"]
    context = browser.new_context(viewport=DESKTOP if width == "desktop" else PHONE)
    page = context.new_page()
    watch = Watch(page)
    page.goto(url + "/stats", wait_until="networkidle")
    table = page.locator("table.findings")
    assert table.is_visible()
    # The findings come first: the table is the first table of the page.
    assert page.locator("main table").first.get_attribute("class") == "stats-table findings"
    rows = table.locator("tbody tr")
    assert rows.count() == len(doc["flagged"]) == 6
    assert not axe.violations(page), axe.show(axe.violations(page))
    for number, f in enumerate(doc["flagged"], start=1):
        c = doc[f["section"]][f["index"]]
        row = rows.nth(number - 1)
        row.get_by_role("link", name=f"Statement of finding {number}").click()
        statement = page.locator(f"#finding-{number}")
        assert statement.locator(".sentence").inner_text() == f["sentence"]
        # Each finding carries its coverage (the site's data holds statements for every cell).
        assert statement.locator("p.coverage").count() == 1
        assert statement.is_visible()
        assert page.evaluate("el => el.getBoundingClientRect().top < innerHeight", statement.element_handle())
        with page.expect_navigation():
            row.get_by_role("link", name=f"Chart of finding {number}").click()
        page.wait_for_load_state("networkidle")
        fragment = page.url.partition("#")[2]
        if fragment:
            assert page.locator(f"#{fragment} img").is_visible()
        page.go_back(wait_until="networkidle")
        with page.expect_navigation():
            row.get_by_role("link", name=re.compile(rf"^Records of .* behind finding {number}$")).click()
        page.wait_for_load_state("networkidle")
        wanted = c["group_time"]["n"] if c["metric"] == "time_to_decision" else c["group_rate"]["cases"]
        assert page.locator(".results .count").inner_text() == f"{wanted:,}"
        assert page.locator("ol.rows > li.row").count() == min(wanted, 50)
        if number == 1:
            assert not axe.violations(page), axe.show(axe.violations(page))
        page.go_back(wait_until="networkidle")
    watch.check(page)
    context.close()


def _leaves(page: Page) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all("ol.rows > li.row", "els => els.map(e => e.dataset.leafIndex)")]


@pytest.mark.parametrize(("width", "sort"), [("desktop", "logged"), ("phone", "logged"), ("desktop", "decided")])
def test_newer_and_older_and_the_checkpoints_page(
    planted_site: tuple[str, str],
    browser: Browser,  # noqa: F811
    width: str,
    sort: str,
) -> None:
    """Older twice and Newer once lands on the page seen before, pinned, in
    either order of the feed; the checkpoints page lists the signed tree
    sizes and pins the statistics."""
    _, url = planted_site
    context = browser.new_context(viewport=DESKTOP if width == "desktop" else PHONE)
    page = context.new_page()
    watch = Watch(page)
    order = "&sort=decided" if sort == "decided" else ""
    page.goto(url + f"/records?platform=other-video&limit=25{order}", wait_until="networkidle")
    first = _leaves(page)
    assert page.get_by_role("link", name="Newer records").count() == 0
    pages = [first]
    for _ in range(2):
        with page.expect_navigation():
            page.get_by_role("link", name="Older records").click()
        page.wait_for_load_state("networkidle")
        pages.append(_leaves(page))
    assert all(len(p) == 25 for p in pages)
    assert len({leaf for p in pages for leaf in p}) == 75
    if sort == "logged":
        assert all(a[-1] > b[0] for a, b in itertools.pairwise(pages))
    assert not axe.violations(page), axe.show(axe.violations(page))
    with page.expect_navigation():
        page.get_by_role("link", name="Newer records").click()
    page.wait_for_load_state("networkidle")
    assert _leaves(page) == pages[1]
    with page.expect_navigation():
        page.get_by_role("link", name="Newer records").click()
    page.wait_for_load_state("networkidle")
    assert _leaves(page) == pages[0]
    assert page.get_by_role("link", name="Newer records").count() == 0
    # The checkpoints page: every signed size, largest first; its links pin the statistics.
    page.goto(url + "/log/checkpoints", wait_until="networkidle")
    sizes = [int(s.replace(",", "")) for s in page.locator("table.checkpoints tbody th").all_inner_texts()]
    assert sizes == sorted(sizes, reverse=True)
    assert len(sizes) > 1
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    assert not axe.violations(page), axe.show(axe.violations(page))
    with page.expect_navigation():
        page.get_by_role("link", name=f"Statistics at tree size {sizes[1]}").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/stats?tree_size={sizes[1]}")
    assert f"at tree size {sizes[1]} " in page.locator("main").inner_text()
    watch.check(page)
    context.close()
