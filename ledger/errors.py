"""The project's error family, as the ledger uses it.

The root classes live in :mod:`keys.errors` (the bottom of the import graph)
and are re-exported here. ``api/errors.py`` maps every class to an HTTP
status in exactly one table.
"""

from __future__ import annotations

from keys.errors import InvalidInput, KeyFormatError, LedgerError, NoteError, ProofError

__all__ = [
    "Conflict",
    "DerivedDataError",
    "InvalidInput",
    "KeyFormatError",
    "LedgerError",
    "NotFound",
    "NoteError",
    "ProofError",
    "RateLimited",
    "Refused",
    "SplitViewError",
    "StorageError",
    "Unprocessable",
]


class Unprocessable(InvalidInput):
    """Well-formed input the log cannot accept: a bad signature, an unknown
    or revoked key, an unknown platform, a reference to a missing record."""


class Refused(Unprocessable):
    """The database refused data that every check of ours accepted (a value
    it cannot store): retrying the same data cannot succeed."""


class RateLimited(LedgerError):
    """Too many requests; ``retry_after`` seconds until the next may pass."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(LedgerError):
    """The thing asked for does not exist (yet) in the log."""


class Conflict(LedgerError):
    """The request contradicts what the log already holds.

    ``errors`` lists the items in conflict, as :class:`InvalidInput` does.
    """

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class StorageError(LedgerError):
    """The database refused or lost a write; the caller may retry."""


class SplitViewError(StorageError):
    """Another writer advanced the log first: the compare-and-swap lost.

    Nothing was committed; the caller retries against the new head.
    """


class DerivedDataError(LedgerError):
    """Rows derived from the log (the records index, the registry tables,
    published statistics) differ from what the entries derive: tampering or
    a bug. Nothing that reads them may be signed until ``ledger audit``
    finds them whole again."""

    #: Seconds a client of ``/healthz`` should wait: a full check runs again.
    retry_after = 60
