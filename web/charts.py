"""SVG charts of the evenness statistics, as strings, from plain numbers.

Pure: no Flask, no document parsing (``web/views_stats.py`` picks the
numbers). Every string that reaches the SVG passes through :func:`esc`, so
a platform's display name or a rule id can never become markup; the
output has no script, no event handler, no external reference, and a
``<title>`` and ``<desc>`` for screen readers. Pages show the charts as
``<img>``, where an SVG can run nothing anyway.

Colours come from :data:`PALETTE`, one role per pair of light and dark
colours: the light ones are presentation attributes (what a viewer
without CSS shows), the dark ones one constant ``<style>``
(:data:`STYLE`) applies by class when the reader prefers a dark scheme,
in a page's ``<img>`` as in the file opened on its own. No input reaches
the style, so a standalone chart's Content-Security-Policy allows it by
its hash (:data:`STYLE_CSP_SOURCE`).

Three kinds, each drawn for a given width (in CSS pixels, so that text
stays legible on a phone, which gets a narrower drawing rather than a
shrunken one):

* :func:`interval_chart`: one row per group, a dot at the rate and a
  whisker over its 95% interval, on a 0-100% axis;
* :func:`spread_chart`: one row per group, p10-p90 as a line, p25-p75 as
  a box, the median as a bar, on a time axis in a unit fit for the data;
* :func:`series_chart`: rates by month for a few series, each point with
  its interval.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html import escape

from ledger.records import export

FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"
#: Role -> (light, dark), the site's roles (web/static/style.css). On
#: "paper", text ("ink", "muted") keeps at least 4.5:1 and the marks
#: ("group" in the accent blue, "reference" in orange; their shapes differ
#: too) at least 3:1 in both themes, as the median bar ("group") does on a
#: box's "tint" (tests/web/test_contrast.py). "grid" lines are decoration.
PALETTE = {
    "paper": ("#fff", "#15171a"),
    "ink": ("#1a1a1a", "#e8e8e8"),
    "muted": ("#4d4d4d", "#b4b8bf"),
    "grid": ("#c8c8c8", "#4b5058"),
    "group": ("#0b5394", "#8fc3ff"),
    "reference": ("#8a4b00", "#f0a35c"),
    "tint": ("#dbe7f3", "#1d3550"),
}
#: The dark theme. "screen": a printed page stays light.
STYLE = (
    "@media screen and (prefers-color-scheme: dark){"
    + "".join(f".f-{role}{{fill:{dark}}}.s-{role}{{stroke:{dark}}}" for role, (_, dark) in PALETTE.items())
    + "}"
)
#: The CSP source that allows :data:`STYLE` and nothing else (CSP 3, hash-source).
STYLE_CSP_SOURCE = "'sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode() + "'"
PAD = 12
ROW = 46
TITLE_SIZE, TEXT_SIZE, SMALL_SIZE = 15, 13, 12
#: Allowed drawing widths: a phone's and a desktop column's.
MIN_WIDTH, MAX_WIDTH = 300, 1200


def esc(text: object) -> str:
    """Escape for XML text and attribute values (quotes included)."""
    return escape(str(text), quote=True)


def fit(text: str, width: float, size: int = TEXT_SIZE) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` pixels (an estimate:
    0.6 em per character is wide for proportional sans-serif fonts)."""
    most = max(1, int(width / (0.6 * size)))
    return text if len(text) <= most else text[: most - 1] + "…"


def paint(fill: str | None = None, stroke: str | None = None) -> str:
    """Attributes that paint an element's fill and stroke in roles of
    :data:`PALETTE`: the light roles, and classes for the dark ones."""
    attrs, classes = [], []
    for prop, role in (("fill", fill), ("stroke", stroke)):
        if role is not None:
            attrs.append(f'{prop}="{PALETTE[role][0]}"')
            classes.append(f"{prop[0]}-{role}")
    return " ".join(attrs) + f' class="{" ".join(classes)}"'


def _text(
    x: float, y: float, text: str, size: int = TEXT_SIZE, anchor: str = "start", role: str = "ink", **attrs: str
) -> str:
    """A text element in colour ``role``; ``attrs`` become attributes (``font_weight`` as ``font-weight``)."""
    extra = "".join(f' {k.replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {paint(role)}{extra}>'
        f"{esc(text)}</text>"
    )


def wrap(text: str, width: float, size: int = TEXT_SIZE) -> list[str]:
    """``text`` in lines that fit ``width`` pixels (the estimate of
    :func:`fit`), broken at spaces, and inside words longer than a line."""
    most = max(1, int(width / (0.6 * size)))
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        while len(word) > most:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:most])
            word = word[most:]
        if line and len(line) + 1 + len(word) > most:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def _heading(heading: Sequence[str], width: int) -> list[tuple[str, int]]:
    """The heading's lines with their font sizes: the first line is the title."""
    room = width - 2 * PAD
    out = [(line, TITLE_SIZE) for line in wrap(heading[0], room, TITLE_SIZE)]
    return out + [(line, SMALL_SIZE) for text in heading[1:] for line in wrap(text, room, SMALL_SIZE)]


def _header_height(heading: Sequence[str], width: int) -> float:
    return PAD + sum(size + 5 for _, size in _heading(heading, width)) + 14


def _svg(width: int, height: float, title: str, desc: str, heading: Sequence[str], body: list[str]) -> str:
    """The document: title and desc for accessibility, the dark theme, a
    background ("paper"), the heading lines drawn at the top, then the body."""
    top: list[str] = []
    y = float(PAD)
    for line, size in _heading(heading, width):
        y += size + (5 if top else 0)
        top.append(_text(PAD, y, line, size, font_weight="700") if size == TITLE_SIZE else _text(PAD, y, line, size))
    h = math.ceil(height)
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" viewBox="0 0 {width} {h}" '
            f'role="img" aria-labelledby="chart-title chart-desc" font-family="{esc(FONT)}">',
            f'<title id="chart-title">{esc(title)}</title>',
            f'<desc id="chart-desc">{esc(desc)}</desc>',
            f"<style>{STYLE}</style>",
            f'<rect width="{width}" height="{h}" {paint("paper")}/>',
            *top,
            *body,
            "</svg>",
            "",
        ]
    )


def _stroke(role: str, width: float, fill: str | None = None) -> str:
    return f'{paint(fill, role)} stroke-width="{width:g}"'


def _line(x1: float, y1: float, x2: float, y2: float, role: str, width: float = 1, dash: bool = False) -> str:
    dashes = ' stroke-dasharray="4 3"' if dash else ""
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {_stroke(role, width)}{dashes}/>'


@dataclass(frozen=True)
class Interval:
    """One row of an interval chart: an estimate in [0, 1] with its interval,
    or None (too few cases: ``value`` says so in words)."""

    label: str
    value: str
    estimate: float | None
    lower: float | None
    upper: float | None
    style: str = "group"


def _marker(x: float, y: float, style: str, r: float = 5.5) -> str:
    """A dot for a group, a square for the reference: told apart without colour."""
    if style == "reference":
        side = 2 * r * 0.9
        return (
            f'<rect x="{x - side / 2:.1f}" y="{y - side / 2:.1f}" width="{side:.1f}" height="{side:.1f}" '
            f"{_stroke(style, 2, fill=style)}/>"
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {_stroke(style, 2, fill=style)}/>'


def _whisker(x0: float, x1: float, y: float, role: str) -> str:
    return (
        f'<path d="M{x0:.1f} {y - 6:.1f}V{y + 6:.1f}M{x0:.1f} {y:.1f}H{x1:.1f}M{x1:.1f} {y - 6:.1f}V{y + 6:.1f}" '
        f'{_stroke(role, 2)} fill="none"/>'
    )


@dataclass(frozen=True)
class _Rows:
    """The layout shared by the row charts: per row a label (left) and a
    value in words (right, or on a line of its own when both do not fit),
    then a band with the marks; below, an axis with ticks at fractions."""

    heading: Sequence[str]
    labels: Sequence[tuple[str, str]]
    width: int

    @property
    def x0(self) -> float:
        return PAD + 6

    @property
    def x1(self) -> float:
        return self.width - PAD - 6

    @property
    def two_lines(self) -> bool:
        room = (self.x1 - self.x0) / (0.6 * TEXT_SIZE) - 3
        return any(len(label) + len(value) > room for label, value in self.labels)

    @property
    def row(self) -> float:
        return ROW + 16 if self.two_lines else ROW

    def band(self, i: int) -> float:
        """The y of row ``i``'s marks."""
        return _header_height(self.heading, self.width) + self.row * i + self.row - 15

    def at(self, fraction: float) -> float:
        return self.x0 + (self.x1 - self.x0) * fraction

    def draw(self, ticks: Sequence[tuple[float, str]], axis_label: str, reference: float | None) -> list[str]:
        out: list[str] = []
        full = self.x1 - self.x0
        for i, (label, value) in enumerate(self.labels):
            y = self.band(i)
            # Grid and reference lines in the band only, clear of the words.
            out += [_line(self.at(f), y - 11, self.at(f), y + 11, "grid") for f, _ in ticks]
            if reference is not None:
                out.append(_line(self.at(reference), y - 11, self.at(reference), y + 11, "reference", dash=True))
            if self.two_lines:
                out.append(_text(self.x0, y - 33, fit(label, full), font_weight="600"))
                out.append(_text(self.x0, y - 17, fit(value, full), role="muted"))
            else:
                out.append(_text(self.x0, y - 17, label, font_weight="600"))
                out.append(_text(self.x1, y - 17, value, anchor="end", role="muted"))
        axis = self.band(len(self.labels) - 1) + 19
        out.append(_line(self.x0, axis, self.x1, axis, "muted"))
        for f, text in ticks:
            out.append(_line(self.at(f), axis, self.at(f), axis + 5, "muted"))
            out.append(_text(self.at(f), axis + 18, text, SMALL_SIZE, "middle", role="muted"))
        out.append(
            _text(
                (self.x0 + self.x1) / 2,
                axis + 36,
                fit(axis_label, full, SMALL_SIZE),
                SMALL_SIZE,
                "middle",
                role="muted",
            )
        )
        return out

    @property
    def height(self) -> float:
        return self.band(len(self.labels) - 1) + 19 + 46


PERCENT_TICKS = [(t / 100, f"{t}%") for t in (0, 25, 50, 75, 100)]


def interval_chart(
    title: str, desc: str, heading: Sequence[str], rows: Sequence[Interval], axis_label: str, width: int
) -> str:
    """Rates with their intervals, one row per group: the label and the value
    in words above, the dot and whisker below, on a shared 0-100% axis. A
    dashed line marks the reference row's estimate, for comparison."""
    layout = _Rows(heading, [(r.label, r.value) for r in rows], width)
    reference = next((r.estimate for r in rows if r.style == "reference" and r.estimate is not None), None)
    body = layout.draw(PERCENT_TICKS, axis_label, reference)
    for i, r in enumerate(rows):
        if r.estimate is None or r.lower is None or r.upper is None:
            continue
        y, role = layout.band(i), r.style
        body.append(_whisker(layout.at(r.lower), layout.at(r.upper), y, role))
        body.append(_marker(layout.at(r.estimate), y, r.style))
    return _svg(width, layout.height, title, desc, heading, body)


@dataclass(frozen=True)
class Spread:
    """One row of a spread chart: the p10, p25, p50, p75 and p90 of times in
    seconds, or None (too few: ``value`` says so)."""

    label: str
    value: str
    quantiles: tuple[float, float, float, float, float] | None
    style: str = "group"


#: (seconds per unit, unit name), smallest first.
UNITS = ((1, "seconds"), (60, "minutes"), (3600, "hours"), (86_400, "days"))


def time_scale(most: float) -> tuple[int, str, list[float]]:
    """A unit for times up to ``most`` seconds and 3 to 6 round ticks in it,
    from 0 to at least ``most``: (seconds per unit, unit name, ticks in units)."""
    per, unit = UNITS[0]
    for p, u in UNITS:
        if most >= 2 * p:
            per, unit = p, u
    top = max(most / per, 1.0)
    step = 10 ** math.floor(math.log10(top))
    for m in (1, 2, 2.5, 5, 10):
        if top / (step * m) <= 5:
            step *= m
            break
    count = math.ceil(top / step - 1e-9)
    return per, unit, [step * i for i in range(count + 1)]


def spread_chart(
    title: str, desc: str, heading: Sequence[str], rows: Sequence[Spread], axis_label: str, width: int
) -> str:
    """Times to decision, one row per group: p10 to p90 as a whisker,
    p25 to p75 as a box, the median as a thick bar."""
    most = max((r.quantiles[4] for r in rows if r.quantiles), default=1.0)
    per, unit, ticks = time_scale(most)
    span = ticks[-1] * per
    layout = _Rows(heading, [(r.label, r.value) for r in rows], width)
    body = layout.draw([(t * per / span, f"{t:g}") for t in ticks], f"{axis_label} ({unit})", None)
    for i, r in enumerate(rows):
        if r.quantiles is None:
            continue
        p10, p25, p50, p75, p90 = (layout.at(q / span) for q in r.quantiles)
        y, role = layout.band(i), r.style
        body.append(_whisker(p10, p90, y, role))
        fill = "paper" if r.style == "reference" else "tint"
        box = max(p75 - p25, 1)
        body.append(
            f'<rect x="{p25:.1f}" y="{y - 8:.1f}" width="{box:.1f}" height="16" {_stroke(role, 2, fill=fill)}/>'
        )
        body.append(_line(p50, y - 10, p50, y + 10, role, 4))
    return _svg(width, layout.height, title, desc, heading, body)


@dataclass(frozen=True)
class Series:
    """A named series of rates, one entry per x label (None: not charted)."""

    name: str
    points: Sequence[tuple[float, float, float] | None]  # (estimate, lower, upper)
    style: str = "group"


def _series_marks(s: Series, xs: Sequence[float], y: Callable[[float], float], r: float) -> list[str]:
    """One series: a whisker per charted point, a line through consecutive
    charted points, and the markers (radius ``r``) on top."""
    role, out, path = s.style, [], []
    for i, (x, p) in enumerate(zip(xs, s.points, strict=True)):
        if p is None:
            continue
        est, lo, hi = p
        out.append(
            f'<path d="M{x - r:.1f} {y(hi):.1f}H{x + r:.1f}M{x:.1f} {y(hi):.1f}V{y(lo):.1f}M{x - r:.1f} {y(lo):.1f}'
            f'H{x + r:.1f}" {_stroke(role, 1.5)} fill="none"/>'
        )
        joined = i > 0 and s.points[i - 1] is not None
        path.append(f"{'L' if joined else 'M'}{x:.1f} {y(est):.1f}")
    if path:
        out.append(f'<path d="{"".join(path)}" {_stroke(role, 1.5)} fill="none"/>')
    return out + [_marker(x, y(p[0]), s.style, r) for x, p in zip(xs, s.points, strict=True) if p is not None]


def series_chart(
    title: str,
    desc: str,
    heading: Sequence[str],
    x_labels: Sequence[str],
    series: Sequence[Series],
    axis_label: str,
    width: int,
) -> str:
    """Rates over time on a 0-100% axis: per series, points with whiskers
    joined by a line where consecutive points are charted, side by side
    within each period; a legend names the series."""
    left, right, plot = PAD + 40, width - PAD - 8, 220
    legend = _header_height(heading, width)
    bottom = legend + 22 * len(series) + plot
    body: list[str] = []
    for i, s in enumerate(series):
        body.append(_marker(left + 6, legend + 22 * i + 2, s.style))
        body.append(_text(left + 18, legend + 22 * i + 7, fit(s.name, right - left - 18)))
    for tick in (0, 25, 50, 75, 100):
        y = bottom - plot * tick / 100
        body.append(_line(left, y, right, y, "grid"))
        body.append(_text(left - 6, y + 4, f"{tick}%", SMALL_SIZE, "end", role="muted"))
    slot = (right - left) / max(len(x_labels), 1)
    offset = min(6.0, slot / 6)
    r = max(2.5, min(5.5, slot / 5))  # markers shrink when many periods share the width
    for k, s in enumerate(series):
        xs = [left + slot * (i + 0.5) + offset * (2 * k - len(series) + 1) for i in range(len(s.points))]
        body += _series_marks(s, xs, lambda v: bottom - plot * v, r)
    every = max(1, math.ceil(58 / slot))  # labels about 58 px wide must not touch
    body.append(_line(left, bottom, right, bottom, "muted"))
    for i, label in enumerate(x_labels):
        if i % every == 0:
            body.append(_text(left + slot * (i + 0.5), bottom + 18, label, SMALL_SIZE, "middle", role="muted"))
    body.append(_text((left + right) / 2, bottom + 38, axis_label, SMALL_SIZE, "middle", role="muted"))
    return _svg(width, bottom + 48, title, desc, heading, body)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """RFC 4180 CSV (CRLF line ends), None as an empty field, floats in
    full (shortest round-tripping) precision, and text that a spreadsheet
    would run as a formula prefixed with ``'`` (``ledger.records.export.safe_cell``,
    the rule of every CSV the project writes); numbers stay numbers."""
    return export.csv_text([header, *([_csv_cell(v) for v in row] for row in rows)])


def _csv_cell(value: object) -> str:
    if isinstance(value, str):
        return export.safe_cell(value)  # a platform slug or rule id, or the log's origin and root hash
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else str(value)
