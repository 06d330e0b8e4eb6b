"""The evenness document's numeric contract (ledger/evenness/document.py).

A published digest must be reproducible on a machine whose C library
computes ``exp``, ``log``, ``lgamma`` or ``erfc`` a bit differently. Here
every such function is moved by one ulp up, then down, on real corpora
(the demo data, the planted effects of tests/ledger/test_evenness.py, the random
facts of tests/ledger/evenness/test_evenness_unit.py): the documents' bytes must not
change. Each test also shows that the perturbation reaches the document,
by computing it again with the rounding switched off: those bytes must
change, so these tests cannot pass by perturbing nothing.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import random
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

import ledger
import ledger.evenness.document as evenness_document
import ledger.stats
from client.evenness import differences
from demo.generate import generate
from keys.note import Signer
from ledger.evenness.document import (
    NUMERIC_CONTRACT,
    SIGNIFICANT_DIGITS,
    SMALLEST_WRITTEN,
    CheckpointRef,
    compute_document,
    written,
)
from ledger.evenness.facts import facts_from_entries
from ledger.evenness.words import DEFINITIONS, p_text
from ledger.records.entries import canonical, entry_bytes, parse_json
from ledger.tlog.checkpoint import Checkpoint
from tests.ledger.test_evenness import KEYS, planted_records
from tests.recordkit import sign

#: The libm functions the statistics call (sqrt too, although IEEE 754
#: requires it correctly rounded: a stricter test costs nothing).
LIBM = ("exp", "log", "log1p", "lgamma", "erfc", "sqrt")
SIGNER = Signer.from_seed("numbers.example/log", bytes(range(32)))
T0 = 1_780_000_000_000

Facts = list[tuple[Any, ...]]


def _ref(size: int) -> CheckpointRef:
    return CheckpointRef.from_note(Checkpoint(SIGNER.name, size, bytes(32)).sign(SIGNER))


def _facts(entries: list[tuple[int, bytes]]) -> Facts:
    return list(facts_from_entries(entries, len(entries)))


def _demo() -> tuple[Facts, CheckpointRef]:
    demo = generate("2026", 3000, datetime(2026, 12, 1, tzinfo=UTC))
    entries = [(i, entry_bytes(T0 + i, "record", it.canonical_record, it.signature)) for i, it in enumerate(demo.items)]
    return _facts(entries), _ref(len(entries))


def _planted() -> tuple[Facts, CheckpointRef]:
    signed = [sign(r, KEYS[r["platform"]]) for r in planted_records()]
    entries = [(i, entry_bytes(T0 + i, "record", canonical(s["record"]), s["signature"])) for i, s in enumerate(signed)]
    return _facts(entries), _ref(len(entries))


def _random() -> tuple[Facts, CheckpointRef]:
    from tests.ledger.evenness.test_evenness_unit import DAY, checkpoint, fact
    from tests.ledger.evenness.test_evenness_unit import T0 as UNIT_T0

    rng = random.Random(5)
    classes = ["ordinary_user", "legislator", "journalist", "candidate"]
    facts = [
        fact(
            i,
            account_class=rng.choice(classes),
            severity=rng.choice(["low", "high"]),
            exemption_applied=rng.random() < 0.3,
            action=rng.choice(["label", "remove_content", "reduce_reach"]),
            decided_at_ms=UNIT_T0 + rng.randrange(1, 90 * DAY),
            subject_key=f"s{rng.randrange(40)}",
        )
        for i in range(600)
    ]
    return facts, checkpoint()


CORPORA: dict[str, Callable[[], tuple[Facts, CheckpointRef]]] = {
    "demo": _demo,
    "planted": _planted,
    "random": _random,
}


class Corpus(NamedTuple):
    name: str
    facts: Facts
    ref: CheckpointRef


@pytest.fixture(scope="module", params=sorted(CORPORA))
def corpus(request: pytest.FixtureRequest) -> Corpus:
    return Corpus(request.param, *CORPORA[request.param]())


def _nudged(f: Callable[..., float], toward: float) -> Callable[..., float]:
    def g(*args: float) -> float:
        return math.nextafter(f(*args), toward)

    return g


def _perturbed(monkeypatch: pytest.MonkeyPatch, toward: float) -> None:
    for name in LIBM:
        monkeypatch.setattr(math, name, _nudged(getattr(math, name), toward))


def _documents(monkeypatch: pytest.MonkeyPatch, facts: Facts, ref: CheckpointRef, toward: float) -> tuple[bytes, bytes]:
    """The document's bytes as computed, and with every libm result moved one ulp toward ``toward``."""
    plain = compute_document(facts, ref).data
    with monkeypatch.context() as m:
        _perturbed(m, toward)
        moved = compute_document(facts, ref).data
    return plain, moved


@pytest.mark.parametrize("toward", [math.inf, -math.inf], ids=["up", "down"])
def test_one_ulp_in_libm_does_not_change_the_bytes(
    monkeypatch: pytest.MonkeyPatch, corpus: Corpus, toward: float
) -> None:
    facts, ref = corpus.facts, corpus.ref
    plain, moved = _documents(monkeypatch, facts, ref, toward)
    assert moved == plain, _first_differences(moved, plain)
    # Without the rounding (17 digits give every double back) the same
    # perturbation shows in the bytes: it reaches the document's numbers.
    monkeypatch.setattr(evenness_document, "SIGNIFICANT_DIGITS", 17)
    monkeypatch.setattr(evenness_document, "SMALLEST_WRITTEN", 0.0)
    unrounded, unrounded_moved = _documents(monkeypatch, facts, ref, toward)
    assert unrounded_moved != unrounded
    assert unrounded != plain


def _first_differences(a: bytes, b: bytes) -> list[tuple[str, Any, Any]]:
    return list(differences(parse_json(a), parse_json(b)))[:10]


def test_the_corpora_have_flagged_and_untested_comparisons(corpus: Corpus) -> None:
    # What the perturbation test covers: flags, their sentences, and both kinds of comparison.
    doc = compute_document(corpus.facts, corpus.ref).document
    both = doc["comparisons"] + doc["platform_summaries"]
    assert any(c["tested"] for c in both)
    assert any(not c["tested"] for c in both)
    if corpus.name != "random":
        assert doc["flagged"]


def _math_names(module: types.ModuleType) -> list[str]:
    originals = {id(getattr(math, name)) for name in LIBM}
    return [k for k, v in vars(module).items() if id(v) in originals]


def test_the_statistics_call_libm_through_the_math_module() -> None:
    # A module that did `from math import exp` would escape the perturbation above.
    names = [f"ledger.stats.{m.name}" for m in pkgutil.iter_modules(ledger.stats.__path__)]
    names += [f"ledger.{m.name}" for m in pkgutil.iter_modules(ledger.__path__) if m.name.startswith("evenness")]
    bound = {name: _math_names(importlib.import_module(name)) for name in names}
    assert "ledger.stats.distributions" in bound
    assert {name: found for name, found in bound.items() if found} == {}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, b"1"),
        (0.1 + 0.2, b"0.3"),
        (1 / 3, b"0.3333333333"),
        (2 / 3, b"0.6666666667"),
        (1.23456789012e-5, b"0.0000123456789"),
        (2.5e-8, b"2.5e-8"),
        (123456789.25, b"123456789.2"),  # ties to even, on the exact binary value
        (123456789.75, b"123456789.8"),
        # The exact binary value is rounded, not its shortest decimal: this
        # double is just above ...05, the next just below ...15.
        (0.12345678905, b"0.1234567891"),
        (0.12345678915, b"0.1234567891"),
        (12345678901234.0, b"12345678900000"),
        (1e21, b"1e+21"),
        (-0.0, b"0"),
        (-1e-301, b"0"),
        (1e-300, b"1e-300"),
        (5e-324, b"0"),
        (math.inf, b'"Infinity"'),
        (-math.inf, b'"-Infinity"'),
    ],
)
def test_written_numbers(value: float, text: bytes) -> None:
    assert canonical(written(value)) == text


def test_written_keeps_everything_but_floats() -> None:
    value = {"a": [1, True, None, "x", (2, 0.5)], "b": 2**53 - 1}
    assert written(value) == {"a": [1, True, None, "x", [2, 0.5]], "b": 2**53 - 1}
    assert type(written(True)) is bool
    assert math.copysign(1.0, written(-0.0)) == 1.0
    with pytest.raises(AssertionError):
        written([math.nan])


def test_written_is_the_nearest_decimal_and_idempotent() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        x = rng.choice([rng.random(), rng.lognormvariate(0, 30), -rng.expovariate(1e-3)])
        w = written(x)
        assert written(w) == w
        if abs(x) >= SMALLEST_WRITTEN:
            digits = canonical(w).decode().lstrip("-0.").replace(".", "").split("e")[0].rstrip("0")
            assert len(digits) <= SIGNIFICANT_DIGITS
            assert abs(w - x) <= abs(x) * 10.0 ** (1 - SIGNIFICANT_DIGITS) / 2


def _all_numbers(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _all_numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _all_numbers(v)
    elif isinstance(value, float):
        yield value


def test_the_document_states_its_numeric_contract(corpus: Corpus) -> None:
    e = compute_document(corpus.facts, corpus.ref)
    parameters = e.document["method"]["parameters"]
    assert parameters["significant_digits"] == SIGNIFICANT_DIGITS == 10
    assert parameters["smallest_written"] == SMALLEST_WRITTEN == 1e-300
    words = DEFINITIONS["numbers"]
    assert f"{SIGNIFICANT_DIGITS} significant digits" in words
    assert f"below {SMALLEST_WRITTEN:g}" in words
    assert NUMERIC_CONTRACT == ("rounded to 10 significant digits, 0 below 1e-300 (method version 1 numeric contract)")
    # Every number in the document is already as written: the bytes are the document's.
    for x in _all_numbers(e.document):
        assert written(x) == x
    assert canonical(e.document) == e.data


def test_p_values_written_as_zero_are_worded_so() -> None:
    assert p_text(0.0) == p_text(9.9e-301) == "below 1e-300"
    assert p_text(1e-300) == "1.0e-300"
