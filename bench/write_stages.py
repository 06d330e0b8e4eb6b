"""CPU per record of each stage of a batch submission, beside one Ed25519 verification.

    .venv/bin/python -m bench.write_stages [--records 1000] [--rounds 7]

``bench.writes`` gives the whole path's CPU per record and, with
``--profile``, the shares of a sample; on a shared machine both move with
the neighbours by a few percent, more than one stage's change. This step
times each pure stage alone, in this process, over the records of one
batch of the bench corpus (what ``bench.writes`` posts), in the order the
write path runs them:

* in the request's thread: parsing the body (``parse_json``, per record),
  validation and the canonical bytes (``validate_parsed``; its canonical
  text alone, by ``json_bytes`` and by main's ``json_text`` before session
  11, beside it), the Ed25519
  verification (``verify_signature``), the entry's tail
  (``entry_tail``), its compression (``encode_tail``), the derived rows as
  the driver takes them (``record_values``);
* under the sequencer's lock: the entry and its stored form
  (``join_entry``, ``join_encoded``), placing the rows (``place_values``)
  and the leaf hashes (``record_hash`` of each entry);
* back in the request's thread: the answer's records as JSON
  (``records_json``; by the json module's encoder as before session 11
  beside it), from records as ``accept`` builds them (inclusion paths of 20
  hashes).

The planner's lookups, the inserts and the commit are the database's: see
``bench.batch_gap`` (the committer thread's CPU) and ``bench.writes --profile``.

Each figure is the least CPU time (``time.process_time``) of ``rounds``
passes, the stages taking turns within each round, in µs per record. A
measurement, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from api.record_validator import SCHEMA_VALIDATOR, validate_parsed
from api.submissions import ENCODER, records_json
from bench.corpus import Corpus, batch_body
from keys.records import RECORD_CONTEXT, verify_signature
from ledger.derived import place_values, record_values
from ledger.entry_codec import encode_head, encode_tail, join_encoded
from ledger.records.entries import (
    ENTRY_HEAD_LENGTH,
    entry_head,
    entry_tail,
    join_entry,
    json_bytes,
    json_text,
    parse_json,
)
from ledger.submit import permalink
from ledger.tlog.merkle import record_hash


def best_us(stages: list[Callable[[], object]], per: int, rounds: int) -> list[float]:
    """The least CPU seconds of ``rounds`` calls of each stage, in µs per ``per`` records."""
    best = [float("inf")] * len(stages)
    for _ in range(rounds):
        for i, stage in enumerate(stages):
            start = time.process_time()
            stage()
            best[i] = min(best[i], time.process_time() - start)
    return [b / per * 1e6 for b in best]


def stages(records: int) -> list[tuple[str, Callable[[], object]]]:
    """The stages, each a function over one batch of ``records`` corpus records."""
    corpus = Corpus(b"bench-write-stages".ljust(32, b"."))
    corpus.check()
    signed = [corpus.sign(n) for n in range(records)]
    body = batch_body(signed)
    items: list[dict[str, Any]] = parse_json(body)["records"]
    now = datetime.now(UTC)
    public_key = corpus.key.public_key
    bodies = [s.canonical for s in signed]
    values = [base64.b64decode(it["signature"]["value"]) for it in items]
    tails = [entry_tail("record", b, it["signature"]) for b, it in zip(bodies, items, strict=True)]
    packed = [encode_tail(t, ENTRY_HEAD_LENGTH) for t in tails]
    hashes = [hashlib.sha256(b).digest() for b in bodies]
    rows = [record_values(it["record"], h, it["signature"]["key_id"]) for it, h in zip(items, hashes, strict=True)]
    head = entry_head(1_790_000_000_000)
    packed_head = encode_head(head)

    def validate() -> None:
        for it in items:
            if validate_parsed(it["record"], now)[0]:
                raise AssertionError("a corpus record is invalid")

    def verify() -> None:
        for b, v in zip(bodies, values, strict=True):
            verify_signature(public_key, RECORD_CONTEXT, b, v)

    def lock_entries() -> None:
        for t, p in zip(tails, packed, strict=True):
            join_entry(head, t)
            join_encoded(head, packed_head, t, p, ENTRY_HEAD_LENGTH)

    def lock_rows() -> None:
        into: dict[str, list[tuple[Any, ...]]] = {}
        for i, r in enumerate(rows):
            place_values(into, r, i, 1_790_000_000_000)

    entries = [join_entry(head, t) for t in tails]
    path = [base64.b64encode(hashlib.sha256(bytes([i])).digest()).decode() for i in range(20)]
    answer = [
        {
            "platform": it["record"]["platform"],
            "record_id": it["record"]["record_id"],
            "status": "created",
            "leaf_index": 1_000_000 + i,
            "leaf_hash": base64.b64encode(h).decode(),
            "logged_at": "2026-12-08T00:00:00.000Z",
            "permalink": permalink(it["record"]["platform"], it["record"]["record_id"]),
            "tree_size": 1_001_000,
            "inclusion_path": path,
        }
        for i, (it, h) in enumerate(zip(items, hashes, strict=True))
    ]
    parsed = [it["record"] for it in items]

    def schema() -> None:
        for it in items:
            SCHEMA_VALIDATOR.is_valid(it["record"])

    def tails_of() -> None:
        for b, it in zip(bodies, items, strict=True):
            entry_tail("record", b, it["signature"])

    def rows_of() -> None:
        for it, h in zip(items, hashes, strict=True):
            record_values(it["record"], h, it["signature"]["key_id"])

    return [
        ("parse the body (parse_json)", lambda: parse_json(body)),
        ("validate + canonical bytes (validate_parsed)", validate),
        ("  of which the canonical text (json_bytes)", lambda: [json_bytes(r) for r in parsed]),
        ("  the same text by json_text (main before s. 11)", lambda: [json_text(r).encode() for r in parsed]),
        ("  jsonschema-rs is_valid, whole schema (errors only)", schema),
        ("Ed25519 verification (verify_signature)", verify),
        ("entry tail (entry_tail)", tails_of),
        ("compress the tail (encode_tail)", lambda: [encode_tail(t, ENTRY_HEAD_LENGTH) for t in tails]),
        ("derived rows as tuples (record_values)", rows_of),
        ("lock: entry and stored form (join_*)", lock_entries),
        ("lock: place the rows (place_values)", lock_rows),
        ("leaf hashes (record_hash of the entry)", lambda: [record_hash(e) for e in entries]),
        ("the answer's records (records_json)", lambda: records_json(answer)),
        ("  the same by the json encoder (main before s. 11)", lambda: ENCODER.encode(answer).encode()),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=1000, help="records in the batch (default 1000)")
    parser.add_argument("--rounds", type=int, default=7, help="passes; the least CPU counts (default 7)")
    args = parser.parse_args()
    named = stages(args.records)
    figures = best_us([fn for _, fn in named], args.records, args.rounds)
    ed25519 = next(us for (name, _), us in zip(named, figures, strict=True) if name.startswith("Ed25519"))
    print(f"{args.records} bench corpus records, least CPU of {args.rounds} passes, one core")
    print(f"{'stage':<50}{'CPU µs/record':>14}{'× Ed25519':>11}")
    for (name, _), us in zip(named, figures, strict=True):
        print(f"{name:<50}{us:>14.1f}{us / ed25519:>11.2f}")
    total = sum(us for (name, _), us in zip(named, figures, strict=True) if not name.startswith("  "))
    print(f"{'sum of the stages':<50}{total:>14.1f}{total / ed25519:>11.2f}")


if __name__ == "__main__":
    main()
