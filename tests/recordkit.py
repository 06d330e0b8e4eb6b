"""Building and signing records for tests, from the documented examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from keys.records import RECORD_CONTEXT, PlatformKey
from ledger.records.entries import canonical

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def decision(
    record_id: str, platform: str = "example-social", name: str = "decision-legislator-removal", **changes: Any
) -> dict[str, Any]:
    rec = copy.deepcopy(example(name))
    rec.update(platform=platform, record_id=record_id, **changes)
    return rec


def appeal(record_id: str, ref: str, platform: str = "example-social") -> dict[str, Any]:
    rec = example("appeal-reversed")
    rec.update(platform=platform, record_id=record_id, refs={"record_id": ref})
    return rec


def amendment(record_id: str, ref: str, platform: str = "example-social") -> dict[str, Any]:
    rec = example("amendment-late-classification")
    rec.update(platform=platform, record_id=record_id, refs={"record_id": ref})
    return rec


def sign(record: dict[str, Any], key: PlatformKey) -> dict[str, Any]:
    return {"record": record, "signature": key.sign(RECORD_CONTEXT, canonical(record))}


def coverage(
    record_id: str, platform: str = "example-social", ref: str | None = None, **changes: Any
) -> dict[str, Any]:
    rec = example("coverage-statement")
    rec.update(platform=platform, record_id=record_id, **changes)
    if ref is not None:
        rec["refs"] = {"record_id": ref}
    return rec
