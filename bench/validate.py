"""Validation's cost per record, beside one Ed25519 verification, on one core in one run.

``.venv/bin/python -m bench.validate [--records N] [--rounds R]`` times, over
the demo's records (every type and account class, as ``make demo`` makes
them):

* ``validate_record``, the write path's check (``api/record_validator.py``:
  the published JSON Schema compiled by jsonschema-rs, and the Python pass);
* its compiled-schema part alone (``is_valid`` of jsonschema-rs);
* ``load_errors``, the marshmallow schemas that validated every record
  before (``api/record_schema.py``), for the before/after ratio;
* one Ed25519 verification with PyNaCl, the one cost a record must pay.

Each figure is the best of ``rounds`` passes over all records (the least
disturbed by other load; the four take turns in each round), in
microseconds per record. A measurement, not a
test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import nacl.signing

from api.record_schema import load_errors
from api.record_validator import SCHEMA_VALIDATOR, validate_record
from demo.generate import generate

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def best_us(cases: list[tuple[Callable[[Any], object], list[Any]]], rounds: int) -> list[float]:
    """For each ``(fn, items)``, the fastest of ``rounds`` passes of ``fn`` over
    ``items``, in µs per item. The cases take turns within each round, so that
    a burst of other load on a shared machine does not fall on one of them only."""
    best = [float("inf")] * len(cases)
    for _ in range(rounds):
        for i, (fn, items) in enumerate(cases):
            start = time.perf_counter()
            for item in items:
                fn(item)
            best[i] = min(best[i], time.perf_counter() - start)
    return [b / len(items) * 1e6 for b, (_, items) in zip(best, cases, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=1000, help="demo records to validate (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="passes; the best counts (default 5)")
    args = parser.parse_args()

    records = [item.record for item in generate("bench-validate", args.records, NOW).items]
    for record in records:  # the figures are for valid records, the common case
        if validate_record(record, NOW) or load_errors(record, NOW):
            raise AssertionError(f"demo record {record['record_id']} is invalid")

    key = nacl.signing.SigningKey(bytes(32))
    message = b"x" * 700  # about a canonical record's length
    signed = [key.sign(message + i.to_bytes(4)) for i in range(len(records))]
    verify = key.verify_key.verify

    names = [
        "validate_record (jsonschema-rs + Python pass)",
        "  of which the compiled schema (is_valid)",
        "marshmallow load_errors (before)",
        "Ed25519 verification (PyNaCl)",
    ]
    figures = best_us(
        [
            (lambda r: validate_record(r, NOW), records),
            (SCHEMA_VALIDATOR.is_valid, records),
            (lambda r: load_errors(r, NOW), records),
            (verify, signed),
        ],
        args.rounds,
    )
    rows = list(zip(names, figures, strict=True))
    ed25519 = rows[-1][1]
    print(f"{len(records)} demo records, best of {args.rounds} passes, one core")
    print(f"{'':50} {'µs/record':>10} {'× Ed25519':>10}")
    for name, us in rows:
        print(f"{name:50} {us:10.1f} {us / ed25519:10.2f}")
    print(f"before/after: {rows[2][1] / rows[0][1]:.1f}x faster")


if __name__ == "__main__":
    main()
