"""The inputs of the feed's filter form (``/records``), drawn in Python.

Drawn here rather than by a Jinja macro: the macro (``input(f)`` of
feed.html, now tests/web/reference/feed_form.html) escaped every option of
every select on every page, ~1,000 ``escape`` calls, as much CPU as the
page's 50 cards (issue 14). Here each field's markup with no value and no
error is drawn once per set of platforms (:func:`_drawn`, a pure function
of :func:`web.filters.fields`, which is itself a pure function of the
platforms' slugs and names), and a field that holds a value or an error is
drawn afresh on each page from its options escaped once. Nothing read from
the log is kept but the platforms' names, and those are part of the key: a
platform registered since is a new key, never a stale form.

Every value the reader sent (``form.values``) and every message goes
through ``markupsafe.escape`` as the template's autoescape would.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import Markup, escape

from web.filters import FeedForm, Field, fields


@dataclass(frozen=True)
class _Field:
    """A field's markup that no value changes: its options, escaped, each
    as (code, the option's text up to its ``>``, the rest), and the whole
    field as drawn empty and valid."""

    options: tuple[tuple[str, str, str], ...]
    empty: str


def inputs(form: FeedForm, platforms: Mapping[str, str]) -> tuple[Markup, Markup]:
    """The form's inputs: the basic ones, then the advanced ones, each as
    the markup of one ``field-grid``."""
    drawn = _drawn(tuple(platforms.items()))
    basic: list[str] = []
    advanced: list[str] = []
    for f, d in zip(fields(platforms), drawn, strict=True):
        value = form.values.get(f.name, "")
        err = form.errors.get(f.name)
        (advanced if f.advanced else basic).append(_draw(f, d.options, value, err) if value or err else d.empty)
    # Every piece is escaped HTML: literals, and values through escape.
    return Markup("".join(basic)), Markup("".join(advanced))  # noqa: S704


@functools.lru_cache(maxsize=16)
def _drawn(platforms: tuple[tuple[str, str], ...]) -> tuple[_Field, ...]:
    out = []
    for f in fields(dict(platforms)):
        options = tuple(
            (code, f'\n    <option value="{escape(code)}"', f">{escape(text)}</option>")
            for code, text in (f.choices or {}).items()
        )
        out.append(_Field(options, _draw(f, options, "", None)))
    return tuple(out)


def _draw(f: Field, options: tuple[tuple[str, str, str], ...], value: str, err: str | None) -> str:
    """The markup of ``f`` holding ``value`` (the form's text of it), with ``err`` if any."""
    name = escape(f.name)
    described = []
    if f.hint:
        described.append(f"hint-{f.name}")
    if err:
        described.append(f"err-{f.name}")
    aria = f' aria-describedby="{escape(" ".join(described))}"' if described else ""
    invalid = ' aria-invalid="true"' if err else ""
    label = f'\n  <label for="f-{name}">{escape(f.label)}</label>'
    out = [f'\n<div class="field field-{escape(f.kind)}{" field-error" if err else ""}">']
    if f.kind == "checkbox":
        checked = " checked" if value == "true" else ""
        out.append(f'\n  <input id="f-{name}" name="{name}" type="checkbox" value="true"{checked}{aria}>{label}')
    elif f.kind == "select":
        blank = "50 (default)" if f.name == "limit" else "Newest logged first (default)" if f.name == "sort" else "Any"
        out.append(f'{label}\n  <select id="f-{name}" name="{name}"{invalid}{aria}>')
        out.append(f'\n    <option value="">{blank}</option>')
        out.extend(f"{start} selected{end}" if code == value else start + end for code, start, end in options)
        out.append("\n  </select>")
    else:
        # A date field holding an invalid date is a text field: a date field would show it empty, hiding the error.
        kind = "date" if f.kind == "date" and not err else ("search" if f.name == "q" else "text")
        longest = ' maxlength="200"' if f.name == "q" else ""
        shown = escape(value)
        out.append(f'{label}\n  <input id="f-{name}" name="{name}" type="{kind}" value="{shown}"')
        out.append(f"{longest}{invalid}{aria}>")
    if f.hint:
        out.append(f'<p class="hint" id="hint-{name}">{escape(f.hint)}</p>')
    if err:
        out.append(f'<p class="error" id="err-{name}">{escape(err)}</p>')
    out.append("\n</div>")
    return "".join(out)
