"""Parsing query strings with marshmallow, exactly."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields

from ledger.errors import InvalidInput

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


class StrictInt(fields.Integer):
    """A non-negative decimal integer in canonical form.

    Python's ``int()`` accepts ``"+4_2"`` and ``" 42"``; this accepts only
    digits without leading zeros, and at most 2**63 - 1.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not _DECIMAL.fullmatch(value) or int(value) >= 1 << 63:
            raise ValidationError("must be a non-negative decimal integer without leading zeros")
        return int(value)


class Hash(fields.Field[bytes]):
    """A SHA-256 hash as 64 lower-case hex digits or standard padded base64."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bytes:
        if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):
            return bytes.fromhex(value)
        if isinstance(value, str) and len(value) == 44:
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) == 32 and base64.b64encode(raw).decode() == value:
                return raw
        raise ValidationError("must be a SHA-256 hash: 64 lower-case hex digits or padded base64")


def flatten(messages: Any, path: str = "") -> list[dict[str, object]]:
    """Turn marshmallow's nested messages into ``[{path, message}]``."""
    if isinstance(messages, dict):
        out: list[dict[str, object]] = []
        for key, sub in messages.items():
            out.extend(flatten(sub, f"{path}/{key}" if path else str(key)))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [{"path": path, "message": m} for m in messages]
    if isinstance(messages, list):
        return [e for m in messages for e in flatten(m, path)]
    return [{"path": path, "message": str(messages)}]


def parse_query(schema: Schema, args: Mapping[str, str]) -> dict[str, Any]:
    """Load query arguments; repeated or unknown parameters are errors."""
    if hasattr(args, "getlist"):
        repeated = [k for k in args if len(args.getlist(k)) > 1]  # type: ignore[attr-defined]
        if repeated:
            raise InvalidInput(
                "query parameters may be given once",
                [{"path": k, "message": "given more than once"} for k in repeated],
            )
    try:
        return dict(schema.load(dict(args)))
    except ValidationError as e:
        raise InvalidInput("invalid query parameters", flatten(e.messages)) from None
