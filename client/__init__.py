"""The client of the moderation-decision ledger: a library under a thin command line.

* :mod:`client.signing`: sign records (:func:`sign_record`, :class:`SignedItem`);
* :mod:`client.submitting`: submit signed items in batches (:func:`submit_items`);
* :mod:`client.verifying`: the log's key, checkpoints and receipts, checked;
* :mod:`client.mirror`, :mod:`client.audit`, :mod:`client.evenness`,
  :mod:`client.dsa`, :mod:`client.witness`: mirroring and auditing the log,
  recomputing its statistics, the DSA Transparency Database, a witness;
* :mod:`client.http`: the retrying HTTP layer under all of them;
* :mod:`client.cli`: the ``mdl`` command line (``python -m client``).

The client needs no part of the server: it imports only :mod:`keys`, the
ledger's pure folders (``ledger.tlog``, ``ledger.records``,
``ledger.evenness``, ``ledger.stats``), httpx, click and rfc8785; never
Flask, SQLAlchemy, marshmallow, ``api`` or ``web`` (tests/test_imports.py).
Install it alone with ``pip install .`` from a clone of the repository.
"""

from __future__ import annotations

from client.http import ClientError, ProblemResponse, RetryPolicy, Unreachable
from client.signing import SignedItem, record_entry, sign_record
from client.submitting import BatchRejected, SubmitSummary, submit_items
from client.verifying import Receipt, VerificationFailed

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
