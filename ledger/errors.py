"""The project's error family, as the ledger uses it.

The root classes live in :mod:`keys.errors` (the bottom of the import graph)
and are re-exported here. ``api/errors.py`` maps every class to an HTTP
status in exactly one table.
"""

from __future__ import annotations

from keys.errors import InvalidInput, KeyFormatError, LedgerError, NoteError, ProofError

__all__ = [
    "Conflict",
    "InvalidInput",
    "KeyFormatError",
    "LedgerError",
    "NotFound",
    "NoteError",
    "ProofError",
    "SplitViewError",
    "StorageError",
]


class NotFound(LedgerError):
    """The thing asked for does not exist (yet) in the log."""


class Conflict(LedgerError):
    """The request contradicts what the log already holds."""


class StorageError(LedgerError):
    """The database refused or lost a write; the caller may retry."""


class SplitViewError(StorageError):
    """Another writer advanced the log first: the compare-and-swap lost.

    Nothing was committed; the caller retries against the new head.
    """
