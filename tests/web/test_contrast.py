"""Every colour pair of both themes meets WCAG 2.2 AA contrast: the site's
stylesheet, the API reference's and the charts' palette.

axe (tests/browser) measures the text it finds rendered; this checks the
pairs the pages can show whether or not the data set puts them on screen
(a failed verification step, an error summary, a button under the mouse),
and the charts, whose drawing axe cannot see into. Text needs 4.5:1
(1.4.3); the lines that identify a control or a chart's marks need 3:1
(1.4.11).
"""

from __future__ import annotations

import re

import pytest

from tests.server import ROOT
from web import charts

TEXT, GRAPHIC = 4.5, 3.0
SITE = (ROOT / "web" / "static" / "style.css").read_text(encoding="utf-8")
DOCS = (ROOT / "api" / "static" / "docs.css").read_text(encoding="utf-8")

#: (foreground, background, minimum) in web/static/style.css.
SITE_PAIRS = [
    *(
        (fg, bg, TEXT)
        for fg in ("fg", "muted", "accent")
        for bg in ("bg", "panel", "panel-soft", "warn-bg", "ok-bg", "bad-bg")
    ),
    ("ok", "ok-bg", TEXT),
    ("bad", "bad-bg", TEXT),
    ("ok", "bg", TEXT),
    ("bad", "bg", TEXT),
    ("on-accent", "accent", TEXT),
    ("on-accent", "accent-hover", TEXT),
    ("field-line", "bg", GRAPHIC),
    ("accent", "bg", GRAPHIC),
    *(("focus", bg, GRAPHIC) for bg in ("bg", "panel", "panel-soft", "warn-bg")),
]
DOCS_PAIRS = [
    *((fg, bg, TEXT) for fg in ("fg", "muted", "accent") for bg in ("bg", "code")),
    ("focus", "bg", GRAPHIC),
]
CHART_PAIRS = [
    ("ink", "paper", TEXT),
    ("muted", "paper", TEXT),
    ("group", "paper", GRAPHIC),
    ("reference", "paper", GRAPHIC),
    ("group", "tint", GRAPHIC),  # the median bar inside a box
]


def luminance(colour: str) -> float:
    """Relative luminance of a #rgb or #rrggbb colour (WCAG 2.2, "relative luminance")."""
    digits = colour.removeprefix("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    if not re.fullmatch(r"[0-9a-f]{6}", digits):
        raise ValueError(f"not a #rgb or #rrggbb colour: {colour!r}")

    def channel(i: int) -> float:
        c = int(digits[i : i + 2], 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def themes(css: str) -> dict[str, dict[str, str]]:
    """The custom properties of the first ``:root`` block (light) and of the
    ``:root`` inside ``@media screen and (prefers-color-scheme: dark)``."""

    def block(start: int) -> dict[str, str]:
        open_ = css.index("{", css.index(":root", start))
        body = css[open_ + 1 : css.index("}", open_)]
        return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{3,6})\s*;", body))

    light = block(0)
    dark = {**light, **block(css.index("@media screen and (prefers-color-scheme: dark)"))}
    return {"light": light, "dark": dark}


def test_luminance_and_contrast_match_wcag() -> None:
    assert contrast("#000", "#fff") == pytest.approx(21)
    assert contrast("#fff", "#fff") == pytest.approx(1)
    assert contrast("#767676", "#fff") == pytest.approx(4.54, abs=0.01)  # the lightest grey for text on white
    with pytest.raises(ValueError, match="not a #rgb"):
        luminance("rgb(0,0,0)")


@pytest.mark.parametrize(("name", "css", "pairs"), [("site", SITE, SITE_PAIRS), ("docs", DOCS, DOCS_PAIRS)])
def test_every_colour_pair_of_both_themes_has_enough_contrast(
    name: str, css: str, pairs: list[tuple[str, str, float]]
) -> None:
    found = themes(css)
    assert found["light"]["bg"] != found["dark"]["bg"], "the dark theme changes nothing"
    low = [
        f"{theme} {fg} on {bg}: {contrast(colours[fg], colours[bg]):.2f} < {minimum}"
        for theme, colours in found.items()
        for fg, bg, minimum in pairs
        if contrast(colours[fg], colours[bg]) < minimum
    ]
    assert low == [], name


def test_every_colour_the_stylesheets_define_is_checked() -> None:
    """A new colour cannot slip in unchecked (the print theme is black on white)."""
    site = {c for fg, bg, _ in SITE_PAIRS for c in (fg, bg)} | {"line", "warn-line"}  # decoration
    assert set(themes(SITE)["dark"]) == site
    assert set(themes(DOCS)["dark"]) == {c for fg, bg, _ in DOCS_PAIRS for c in (fg, bg)} | {"line"}


@pytest.mark.parametrize("theme", [0, 1], ids=["light", "dark"])
def test_chart_colours_have_enough_contrast(theme: int) -> None:
    low = [
        f"{fg} on {bg}"
        for fg, bg, minimum in CHART_PAIRS
        if contrast(charts.PALETTE[fg][theme], charts.PALETTE[bg][theme]) < minimum
    ]
    assert low == []
    assert {c for fg, bg, _ in CHART_PAIRS for c in (fg, bg)} | {"grid"} == set(charts.PALETTE)


def test_the_chart_style_paints_every_role_dark() -> None:
    for role, (_, dark) in charts.PALETTE.items():
        assert f".f-{role}{{fill:{dark}}}" in charts.STYLE
        assert f".s-{role}{{stroke:{dark}}}" in charts.STYLE
