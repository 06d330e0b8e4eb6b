"""The platform client of the moderation-decision ledger.

:mod:`client.platform` is the importable API (sign records, submit them,
verify every answer); ``python -m client`` is the command line, ``mdl``;
:mod:`client.http` is the retrying HTTP layer under both.

The client needs no part of the server: it imports only :mod:`keys`, the
ledger's pure modules (records, verify, tlog, checkpoint, errors, export),
httpx and click; never Flask, SQLAlchemy, ``api`` or ``web``.
"""

from __future__ import annotations

from client.http import ClientError, ProblemResponse, RetryPolicy, Unreachable
from client.platform import (
    BatchRejected,
    Receipt,
    SignedItem,
    SubmitSummary,
    VerificationFailed,
    record_entry,
    sign_record,
    submit_items,
)

__all__ = [
    "BatchRejected",
    "ClientError",
    "ProblemResponse",
    "Receipt",
    "RetryPolicy",
    "SignedItem",
    "SubmitSummary",
    "Unreachable",
    "VerificationFailed",
    "record_entry",
    "sign_record",
    "submit_items",
]
