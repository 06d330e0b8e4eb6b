"""The pages in real Chromium (Debian's package, driven by Playwright) against
a real gunicorn: the feed's filters narrow results, by mouse and by
keyboard; a filtered feed's downloads open in pandas and its Atom feed
parses, at desktop and phone widths; a record verifies in the browser, by
keyboard, and a tampered proof fails visibly; a decision's card says it
was reversed on appeal; every main page renders at desktop and phone widths,
in the light and the dark theme, with no console error, no failed request,
no CSP violation and no axe-core violation of any impact; a printed record
carries its proof and checkpoint. Screenshots go to
``test-artifacts/screenshots/``.

Skipped where Chromium or Playwright is missing, unless
``LEDGER_TEST_REQUIRE_BROWSER=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import base64
import itertools
import os
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from keys.keyfile import write_signer
from keys.note import Signer
from ledger.log import LogProvider
from ledger.tlog import merkle
from tests.browser import axe
from tests.browser.dataset import PRESIDENT, XSS, build
from tests.conftest import PG_URL, _pg_schema_url
from tests.reference import ListReader
from tests.server import ROOT, gunicorn

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "test-artifacts" / "screenshots"
ORIGIN = "browser.example/ledger"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: apt-get install chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is missing: pip install playwright (no `playwright install`: it uses Debian's chromium)"
    return None


_why = _missing()
if _why:
    if os.environ.get("LEDGER_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required (LEDGER_TEST_REQUIRE_BROWSER=1) but {_why}", pytrace=False)
    pytest.skip(f"browser tests skipped: {_why}", allow_module_level=True)

from playwright.sync_api import (  # noqa: E402
    Browser,
    ConsoleMessage,
    Dialog,
    ElementHandle,
    Page,
    Playwright,
    Request,
    Response,
    sync_playwright,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield b
    b.close()


BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason="set LEDGER_TEST_POSTGRES_URL to run PostgreSQL tests"),
    ),
]


@pytest.fixture(scope="module", params=BACKENDS)
def site_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(backend name, database URL) of an empty database, for one module's server."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path_factory.mktemp('browser') / 'ledger.sqlite3'}"
        return
    assert PG_URL
    schema = f"test_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield "postgresql", _pg_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


Post = Callable[[list[dict[str, Any]]], None]


@contextmanager
def serve_data_set(
    site_db: tuple[str, str], tmp_path_factory: pytest.TempPathFactory, more: Callable[[Post], None] | None = None
) -> Iterator[tuple[str, str]]:
    """(backend, base URL) of gunicorn serving the data set, submitted over
    HTTP, then whatever ``more`` posts."""
    backend, db_url = site_db
    key_file = str(tmp_path_factory.mktemp("keys") / "log.key")
    write_signer(Path(key_file), _signer_with_plus())
    env = {"LEDGER_DATABASE_URL": db_url, "LEDGER_KEY_FILE": key_file, "LEDGER_ORIGIN": ORIGIN}
    with gunicorn(env, workers=2) as url:
        provider = LogProvider(db_url, key_file, ORIGIN)
        with httpx.Client(base_url=url, timeout=30) as http:

            def post(items: list[dict[str, Any]]) -> None:
                r = http.post("/api/v1/records", json={"records": items})
                assert r.status_code == 201, r.text

            build(provider.log.registry, post, int(time.time() * 1000), demo=True)
            if more is not None:
                more(post)
        provider.close()
        yield backend, url


@pytest.fixture(scope="module")
def site(site_db: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(backend, base URL) of gunicorn serving the data set, submitted over HTTP."""
    with serve_data_set(site_db, tmp_path_factory) as served:
        yield served


def _signer_with_plus() -> Signer:
    """A fixed log key whose verifier key's base64 holds a "+", the character
    that also separates the key's fields: the browser must still parse it."""
    for n in range(256):
        signer = Signer.from_seed(ORIGIN, bytes([n]) * 32)
        if "+" in signer.verifier.to_key().split("+", 2)[2]:
            return signer
    raise AssertionError("no seed gives a '+' in the key")


class Watch:
    """Everything a page did wrong: console errors, failed requests, CSP violations."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("dialog", self._dialog)  # an alert() would be injected script running
        # Init scripts run outside the page's CSP; they record what the CSP blocks.
        page.add_init_script(
            "window.__csp = [];"
            "document.addEventListener('securitypolicyviolation',"
            " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning"):
            self.problems.append(f"console {msg.type}: {msg.text}")

    def _response(self, resp: Response) -> None:
        if resp.status >= 400:
            self.problems.append(f"HTTP {resp.status}: {resp.url}")

    def _dialog(self, dialog: Dialog) -> None:
        self.problems.append(f"a script opened a dialog: {dialog.message}")
        dialog.dismiss()

    def _failed(self, req: Request) -> None:
        self.problems.append(f"request failed: {req.url} {req.failure}")

    def check(self, page: Page) -> None:
        csp = page.evaluate("window.__csp")
        assert not csp, f"CSP violations on {page.url}: {csp}"
        assert not self.problems, f"problems on {page.url}: {self.problems}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    p = context.new_page()
    yield p
    context.close()


def _rows(page: Page) -> int:
    return page.locator("ol.rows > li.row").count()


def test_feed_filters_narrow_the_results(site: tuple[str, str], page: Page) -> None:
    _, url = site
    watch = Watch(page)
    page.goto(url + "/records")
    everything = _rows(page)
    assert everything >= 15
    page.select_option("#f-platform", "other-video")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert "platform=other-video" in page.url  # bookmarkable
    assert _rows(page) == 4
    page.select_option("#f-account_class", "political")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    assert _rows(page) == 2  # the two legislator decisions
    page.goto(url + "/records")
    page.fill("#f-q", "presidentia")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    titles = page.locator("ol.rows .row-title").all_inner_texts()
    assert titles
    assert len(titles) < everything
    assert all("Appeal" not in t for t in titles)
    watch.check(page)


#: How a researcher opens each download with pandas: as it is, no options but types.
READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "CSV": lambda path: pd.read_csv(path, dtype=str, keep_default_na=False),
    "NDJSON": lambda path: pd.read_json(path, lines=True),
    "Parquet": pd.read_parquet,
}


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_filtered_feed_downloads_and_follows_its_results(site: tuple[str, str], browser: Browser, width: str) -> None:
    """From a filtered feed, "Download these results" saves CSV, NDJSON and
    Parquet files that pandas reads as they are, each holding exactly the
    records the page lists; its Atom feed, the one the page's head names,
    parses and holds the same records."""
    _, url = site
    context = browser.new_context(viewport=DESKTOP if width == "desktop" else PHONE)
    page = context.new_page()
    watch = Watch(page)
    page.goto(url + "/records?platform=other-video", wait_until="networkidle")
    listed = set(page.locator("ol.rows .id").all_inner_texts())
    assert len(listed) == _rows(page) == 4
    assert page.locator(".results .count").inner_text() == "4"
    found = axe.violations(page)
    assert not found, axe.show(found)
    frames = {}
    for label, read in READERS.items():
        with page.expect_download() as info:
            page.locator("p.downloads").get_by_role("link", name=label, exact=True).click()
        frames[label] = read(info.value.path())
    for label in ("CSV", "Parquet"):  # one row per record, in the columns of `mdl mirror --csv`
        assert set(frames[label]["platform"]) == {"other-video"}, label
        assert set(frames[label]["record_id"]) == listed, label
    # NDJSON: one log entry per line, with its leaf index: the same entries.
    assert sorted(frames["NDJSON"]["index"]) == sorted(int(i) for i in frames["CSV"]["index"])
    follow = page.get_by_role("link", name="Follow these results (Atom feed)")
    href = follow.get_attribute("href")
    assert href == page.locator('link[rel="alternate"][type="application/atom+xml"]').get_attribute("href")
    assert href is not None
    assert href.startswith("/records.atom?")
    assert "platform=other-video" in href
    feed = ET.fromstring(page.request.get(url + href).body())
    atom_ns = "{http://www.w3.org/2005/Atom}"
    entries = [
        (e.findtext(f"{atom_ns}id") or "").rpartition("/records/other-video/")[2] for e in feed.iter(f"{atom_ns}entry")
    ]
    assert len(entries) == 4
    assert set(entries) == listed
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the filtered feed scrolls sideways by {overflow}px at {width} width"
    watch.check(page)
    context.close()


def _tab_to(page: Page, selector: str, limit: int = 200) -> None:
    """Press Tab, from wherever focus is, until ``selector`` has it."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"{selector} is not reached with {limit} presses of Tab")


def scrolls_right_by_keyboard(page: Page, region: ElementHandle, presses: int) -> None:
    """Fail unless ``region``, focused, scrolls right when ArrowRight is
    pressed ``presses`` times. Chromium animates keyboard scrolling, so
    ``scrollLeft`` read at once can still be 0 on a loaded machine: wait
    (5 s at most) for it to move instead of reading once."""
    assert page.evaluate("e => document.activeElement === e", region), "the region does not have focus"
    for _ in range(presses):
        page.keyboard.press("ArrowRight")
    try:
        page.wait_for_function("e => e.scrollLeft > 0", arg=region, timeout=5000)
    except PlaywrightTimeout:
        raise AssertionError(f"{presses} presses of ArrowRight did not scroll the focused region in 5 s") from None


def _focused(page: Page, selector: str) -> bool:
    return bool(page.evaluate("s => document.activeElement?.matches(s) ?? false", selector))


def test_the_feed_filters_work_by_keyboard(site: tuple[str, str], page: Page) -> None:
    _, url = site
    watch = Watch(page)
    page.goto(url + "/records")
    _tab_to(page, "#f-platform")
    page.keyboard.type("Other")  # a focused list picks the option whose text starts so
    assert page.eval_on_selector("#f-platform", "e => e.value") == "other-video"
    _tab_to(page, "details.more > summary")
    page.keyboard.press("Enter")
    assert page.eval_on_selector("details.more", "d => d.open")
    page.keyboard.press("Tab")
    assert _focused(page, "details.more .field-grid *"), "Tab after opening “More filters” leads into them"
    _tab_to(page, "form.filters button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "platform=other-video" in page.url
    assert _rows(page) == 4
    _tab_to(page, "p.jump a")
    page.keyboard.press("Enter")
    assert page.url.endswith("#results-heading")
    page.keyboard.press("Tab")
    assert _focused(page, "section.results a"), "after the jump, Tab goes on into the results"
    watch.check(page)


def test_wide_tables_scroll_sideways_by_keyboard(site: tuple[str, str], browser: Browser) -> None:
    """On a phone, the API reference's tables are wider than the screen:
    Tab reaches each one's region, named by its caption, and the arrow keys scroll it."""
    _, url = site
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(url + "/api/v1/docs")
    wide = page.eval_on_selector_all(".table-wrap", "ws => ws.filter(w => w.scrollWidth > w.clientWidth).length")
    assert wide >= 10
    _tab_to(page, ".table-wrap")
    region = page.evaluate_handle("document.activeElement")
    name = page.evaluate("e => document.getElementById(e.getAttribute('aria-labelledby')).textContent", region)
    assert name.startswith("Parameters of GET ")
    assert page.evaluate("e => e.scrollWidth > e.clientWidth", region)
    element = region.as_element()
    assert element is not None
    scrolls_right_by_keyboard(page, element, presses=3)
    context.close()


def test_an_invalid_filter_shows_a_form_error(site: tuple[str, str], page: Page) -> None:
    _, url = site
    page.goto(url + "/records?decided_from=2026-02-31&category=nonsense")
    assert page.locator(".error-summary").is_visible()
    assert page.locator("#f-category").get_attribute("aria-invalid") == "true"


def _show(steps: list[tuple[str | None, str]]) -> str:
    return "\n".join(f"{cls}: {text}" for cls, text in steps)


def _verify(page: Page) -> list[tuple[str | None, str]]:
    page.focus("#verify-button")  # by keyboard, as a reader without a mouse would
    page.keyboard.press("Enter")
    page.wait_for_selector("#verify-result.ok, #verify-result.fail", timeout=15000)
    steps = page.locator("#verify-steps > li")
    return [(steps.nth(i).get_attribute("class"), steps.nth(i).inner_text()) for i in range(steps.count())]


def test_a_record_verifies_in_the_browser(site: tuple[str, str], page: Page) -> None:
    backend, url = site
    watch = Watch(page)
    page.goto(url + "/records/example-social/dec-hos")
    steps = _verify(page)
    assert len(steps) == 7, _show(steps)
    assert all(cls == "ok" and text.startswith("✓") for cls, text in steps), _show(steps)
    assert "Verified" in page.locator("#verify-result").inner_text()
    page.screenshot(path=str(SHOTS / f"verify-passed-{backend}.png"), full_page=True)
    watch.check(page)


IN_VIEW = "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }"


def test_the_verification_works_by_keyboard_and_announces_its_result(site: tuple[str, str], browser: Browser) -> None:
    """Tab to the button, Enter: when the check ends, focus is on its result,
    a live region, scrolled into view (on a phone it starts below the fold),
    and Shift+Tab goes back to the button. In the dark theme, axe finds
    nothing on the page with its seven steps shown."""
    backend, url = site
    context = browser.new_context(viewport=PHONE, color_scheme="dark")
    page = context.new_page()
    watch = Watch(page)
    page.goto(url + "/records/example-social/dec-hos")
    result = page.locator("#verify-result")
    assert (result.get_attribute("role"), result.get_attribute("aria-live")) == ("status", "polite")
    assert page.locator("#verify-steps").get_attribute("aria-live") is None  # the steps would bury the result
    _tab_to(page, "#verify-button")
    scrolled = page.evaluate("window.scrollY")
    page.keyboard.press("Enter")
    page.wait_for_selector("#verify-result.ok", timeout=15000)
    page.wait_for_function("document.activeElement?.id === 'verify-result'", timeout=5000)
    assert result.inner_text().startswith("✓ Verified")
    assert page.evaluate("window.scrollY") > scrolled, "the result was already in view: this checks nothing"
    assert result.evaluate(IN_VIEW)
    page.screenshot(path=str(SHOTS / f"verify-passed-phone-dark-{backend}.png"))  # what the reader sees
    page.keyboard.press("Shift+Tab")
    assert _focused(page, "#verify-button")
    found = axe.violations(page)
    assert not found, axe.show(found)
    watch.check(page)
    context.close()


def test_a_printed_record_carries_its_proof_and_checkpoint(site: tuple[str, str], browser: Browser) -> None:
    """Printed (in the dark theme, which print overrides): the record, its
    inclusion proof, the signed checkpoint and what the verification found,
    black on white, without the site's navigation or the panel's controls."""
    backend, url = site
    context = browser.new_context(viewport=DESKTOP, color_scheme="dark")
    page = context.new_page()
    page.goto(url + "/records/example-social/dec-hos")
    page.emulate_media(media="print")
    assert not page.locator(".verify").is_visible(), "an unverified panel has nothing to print"
    page.emulate_media(media="screen")
    _verify(page)
    page.emulate_media(media="print")
    for shown in ("h1", "ol.proof-path", "section.proof pre.note", "#verify-steps", "#verify-result", ".demo-banner"):
        assert page.locator(shown).first.is_visible(), shown
    for hidden in ("header.site nav", "footer.site", "#verify-button"):
        assert not page.locator(hidden).is_visible(), hidden
    note = page.locator("section.proof pre.note").inner_text()
    assert note.startswith(ORIGIN + "\n")
    colours = page.evaluate("[getComputedStyle(document.body).color, getComputedStyle(document.body).backgroundColor]")
    assert colours == ["rgb(0, 0, 0)", "rgb(255, 255, 255)"]
    found = axe.violations(page)  # the contrast of every printed colour pair, banners and steps included
    assert not found, axe.show(found)
    (SHOTS.parent / "print").mkdir(parents=True, exist_ok=True)
    page.pdf(path=str(SHOTS.parent / "print" / f"record-{backend}.pdf"), format="A4")
    page.screenshot(path=str(SHOTS / f"record-print-{backend}.png"), full_page=True)
    context.close()


def test_a_record_signed_with_a_revoked_key_still_verifies(site: tuple[str, str], page: Page) -> None:
    _, url = site
    page.goto(url + "/records/other-video/old-0")
    assert "was revoked" in page.locator(".banner-warn").inner_text()
    steps = _verify(page)
    assert all(cls == "ok" for cls, _ in steps), _show(steps)
    assert "revoked" in steps[-1][1]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_tampered_proof_fails_visibly(site: tuple[str, str], browser: Browser, theme: str) -> None:
    """Every step's status (passed, failed, the tampering note) and the
    failed result are readable in both themes: axe checks them shown."""
    backend, url = site
    context = browser.new_context(viewport=DESKTOP, color_scheme=theme)
    page = context.new_page()
    watch = Watch(page)
    page.goto(url + "/records/example-social/dec-leg?tamper=proof")
    steps = _verify(page)
    classes = [cls for cls, _ in steps]
    assert "note" in classes
    failed = [text for cls, text in steps if cls == "fail"]
    assert len(failed) == 1, _show(steps)
    assert "✗" in failed[0]
    assert "Failed" in failed[0]
    assert "does not lead to the signed root hash" in failed[0]
    assert steps[-1][0] == "ok"  # the platform's signature is still good: only the proof was touched
    result = page.locator("#verify-result")
    assert "Verification failed" in result.inner_text()
    assert result.is_visible()
    found = axe.violations(page)
    assert not found, axe.show(found)
    page.screenshot(path=str(SHOTS / f"verify-tampered-{theme}-{backend}.png"), full_page=True)
    watch.check(page)
    context.close()


def test_pages_work_without_javascript(site: tuple[str, str], browser: Browser) -> None:
    _, url = site
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(url + "/records?type=appeal")
    assert _rows(page) == 1
    page.goto(url + "/records/example-social/dec-hos")
    assert not page.locator("#verify-button").is_visible()
    assert page.locator("h1").inner_text().startswith("Decision")
    context.close()


PAGES = {
    "home": "/",
    "feed": "/records",
    "feed-filtered": "/records?account_class=political&violation_found=true",
    "feed-invalid": "/records?decided_from=2026-02-31&category=nonsense&rule_id=a%20b",
    "record": "/records/example-social/dec-hos",
    "record-amendment": "/records/example-social/amd-1",
    "record-appeal": "/records/example-social/apl-1",
    "record-xss": "/records/example-social/dec-xss",
    "subject": f"/subjects/{PRESIDENT}",
    "person": "/people/Q4115189",
    "platforms": "/platforms",
    "platform": "/platforms/other-video",
    "entry": "/entries/0",
    "log": "/log",
    "checkpoints": "/log/checkpoints",
    "about": "/about",
    "downloads": "/downloads",
    "record-tampered": "/records/example-social/dec-leg?tamper=proof",
    "not-found": "/records/example-social/no-such-record",
    "unknown-address": "/no/such/page",
    "api-docs": "/api/v1/docs",
}
STATUS = {"feed-invalid": 400, "not-found": 404, "unknown-address": 404}
#: The page background of each theme (web/static/style.css, api/static/docs.css).
BACKGROUND = {"light": "rgb(255, 255, 255)", "dark": "rgb(21, 23, 26)"}


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_main_pages_render_cleanly(site: tuple[str, str], browser: Browser, width: str, theme: str) -> None:
    """Every page type: no console error, failed request or CSP violation,
    no sideways scroll, one h1, a description of its own, the icon, and
    no axe-core violation at all."""
    backend, url = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=DESKTOP if width == "desktop" else PHONE, color_scheme=theme)
    found: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for name, path in PAGES.items():
        page = context.new_page()
        watch = Watch(page)
        resp = page.goto(url + path)
        assert resp is not None
        assert resp.status == STATUS.get(name, 200), name
        if name in STATUS:
            # The page's own error status is expected; the browser logs it as a console error.
            watch.problems = [p for p in watch.problems if str(STATUS[name]) not in p]
        assert page.locator("h1").count() == 1, name
        if name != "api-docs":  # the API reference describes the API, not the data
            assert page.locator(".demo-banner").is_visible(), name
        if name == "record-xss":
            assert XSS in page.locator("main").inner_text()
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUND[theme], name
        descriptions[name] = page.locator('meta[name="description"]').get_attribute("content") or ""
        icon = page.locator('link[rel="icon"]').get_attribute("href")
        assert icon, name
        assert page.request.get(url + icon).headers["content-type"].startswith("image/svg+xml"), name
        page.screenshot(path=str(SHOTS / f"{name}-{width}-{theme}-{backend}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width} width"
        violations = axe.violations(page)
        if violations:
            found[name] = axe.show(violations)
        watch.check(page)
        page.close()
    context.close()
    assert not found, "\n".join(f"{name} ({width}, {theme}):\n{text}" for name, text in found.items())
    short = {name: text for name, text in descriptions.items() if len(text) < 60}
    assert not short, f"pages without a description of their own: {short}"
    shared = [(a, b) for a, b in itertools.combinations(descriptions, 2) if descriptions[a] == descriptions[b]]
    # One page with other filters; two addresses that are not in the log.
    assert shared == [("feed-filtered", "feed-invalid"), ("not-found", "unknown-address")], descriptions


# Every inclusion proof of every tree up to this size is checked by verify.js.
EXHAUSTIVE = 40

CHECK_PROOFS = """async cases => {
  const { rootFromInclusionProof, Failure } = window.ledgerVerify;
  const bytes = s => Uint8Array.from(atob(s), c => c.charCodeAt(0));
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  // True when the proof leads to the root; false when it fails as a proof must.
  const leads = async (n, t, leaf, proof, root) => {
    try {
      return same(await rootFromInclusionProof(BigInt(n), BigInt(t), leaf, proof), root);
    } catch (e) {
      if (e instanceof Failure) return false;
      throw e;
    }
  };
  const wrong = [];
  for (const c of cases) {
    const leaf = bytes(c.leaf), root = bytes(c.root), proof = c.proof.map(bytes);
    const at = `n=${c.n} t=${c.t}`;
    if (!(await leads(c.n, c.t, leaf, proof, root))) wrong.push(`valid proof rejected: ${at}`);
    for (let i = 0; i < proof.length; i++) {
      const bad = proof.map(h => h.slice());
      bad[i][31] ^= 0x80;
      if (await leads(c.n, c.t, leaf, bad, root)) wrong.push(`bit flip in hash ${i} accepted: ${at}`);
    }
    if (await leads(c.n, c.t, leaf, [...proof, root], root)) wrong.push(`longer proof accepted: ${at}`);
    const shorter = proof.length > 0 && (await leads(c.n, c.t, leaf, proof.slice(1), root));
    if (shorter) wrong.push(`shorter proof accepted: ${at}`);
    const other = c.n + 1 < c.t && (await leads(c.n + 1, c.t, leaf, proof, root));
    if (other) wrong.push(`other index accepted: ${at}`);
    if (await leads(c.t, c.t, leaf, proof, root)) wrong.push(`index beyond the tree accepted: ${at}`);
  }
  return wrong;
}"""


def test_every_small_inclusion_proof_in_the_browser(site: tuple[str, str], page: Page) -> None:
    """verify.js's RFC 9162 loop against ledger.tlog.merkle: every proof of every tree
    up to EXHAUSTIVE leaves verifies, and every bit flip, a longer or shorter
    proof, or another index is rejected."""
    _, url = site
    ref = ListReader()
    cases = []
    for t in range(1, EXHAUSTIVE + 1):
        ref.add(f"entry {t - 1}".encode())
        root = merkle.tree_hash(t, ref)
        for n in range(t):
            proof = merkle.prove_record(t, n, ref)
            leaf = ref.read_hashes([merkle.stored_hash_index(0, n)])[0]
            cases.append({"t": t, "n": n, "leaf": _b64(leaf), "proof": [_b64(h) for h in proof], "root": _b64(root)})
    page.goto(url + "/records/example-social/dec-hos")
    assert page.evaluate(CHECK_PROOFS, cases) == []


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_axe_reports_what_it_finds(page: Page) -> None:
    """The check the page tests rely on can fail: a page with known faults gets them reported."""
    page.set_content('<html><body><img src="data:,"><p><a href="#"></a></p></body></html>')
    found = {v["id"] for v in axe.violations(page)}
    assert {"html-has-lang", "image-alt", "link-name", "region", "landmark-one-main", "document-title"} <= found


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_card_shows_its_decision_was_reversed_on_appeal(site: tuple[str, str], browser: Browser, width: str) -> None:
    """The decision's card, in the feed and on the person's page, says what
    became of it and links the appeal that says so."""
    _, url = site
    context = browser.new_context(viewport=DESKTOP if width == "desktop" else PHONE)
    page = context.new_page()
    watch = Watch(page)
    page.goto(url + "/records?platform=example-social", wait_until="networkidle")
    card = page.locator("li.row", has=page.locator(".id", has_text="dec-leg")).first
    outcome = card.locator("ul.row-followups li")
    assert outcome.is_visible()
    assert outcome.inner_text().startswith("Reversed on appeal, 2 May 2026")
    assert not axe.violations(page), axe.show(axe.violations(page))
    with page.expect_navigation():
        outcome.get_by_role("link", name="apl-1").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/records/example-social/apl-1")
    page.go_back(wait_until="networkidle")
    with page.expect_navigation():
        card.locator(".row-who a").first.click()
    page.wait_for_load_state("networkidle")
    assert "/subjects/" in page.url
    mine = page.locator("li.row", has=page.locator(".id", has_text="dec-leg")).first
    assert mine.locator("ul.row-followups").inner_text().startswith("Reversed on appeal, 2 May 2026")
    watch.check(page)
    context.close()
