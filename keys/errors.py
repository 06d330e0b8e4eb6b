"""The root of the project's one error family.

It lives in ``keys`` because ``keys`` is the bottom of the import graph;
``ledger.errors`` re-exports these and adds the rest. Three kinds of failure
are kept apart (../shared/STYLE.md, principle 5):

* :class:`InvalidInput` and subclasses: the input is malformed; the message
  names the check that failed.
* :class:`ProofError`: a proof or signature did not verify. Deliberately
  terse: it says *that* verification failed.
* Broken internal invariants are bugs and raise ``AssertionError``.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every error the project raises on purpose."""


class InvalidInput(LedgerError):
    """Input that does not parse or violates a documented limit.

    ``errors`` optionally lists the individual problems, each a dict with a
    ``path`` (where in the input) and a ``message`` (and, for batches, the
    item ``index``); the API returns them as they are.
    """

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class ProofError(LedgerError):
    """A proof, tree hash or signature failed to verify."""


class KeyFormatError(InvalidInput):
    """A key string or key file is malformed."""


class NoteError(InvalidInput):
    """A signed note is malformed."""
