"""How a log entry is stored: its exact bytes, compressed, behind one tag byte.

The leaf hash is over the entry's own bytes (RFC 6962 section 2.1), so
compression changes nothing anyone verifies: every reader gets the entry
back byte for byte through :func:`decode_entry` (``ledger.storage``'s
``read_entries`` and ``ledger.query.entries_at`` are the only readers of
``entries.data``; ``read_stored_bundle`` gives the bundle cache the stored
form, which it digests to know whether a kept file still matches the
database, and decodes through the same function), and the audit hashes what
it decoded.

A stored value is one format byte, then:

- ``0x00`` (:data:`RAW`): the entry's bytes as they are, for entries that
  compression does not make smaller (short test entries, say);
- ``0x01`` (:data:`DEFLATE_1`): raw deflate (RFC 1951, no zlib header or
  checksum: the leaf hash is the checksum) against the preset dictionary of
  ``ledger/entry_dictionary.py``, the record schema's vocabulary. Without
  the dictionary zlib takes a 1,688-byte benchmark entry to 948 bytes; with
  it to 660 (bench/storage.py measures the tables). The signature and the
  free text are most of what remains.

A format byte is never reused for another encoding: a dictionary that
changed would silently read old rows wrong. Pure: zlib only.
"""

from __future__ import annotations

import zlib

from ledger.entry_dictionary import DICTIONARY
from ledger.errors import StorageError
from ledger.tlog.tile import MAX_ENTRY_SIZE

RAW = 0x00
DEFLATE_1 = 0x01

_WBITS = -15  # raw deflate, the largest window: the dictionary and the entry both fit
# Level 6 packs the bench corpus as small as 9 (660 B an entry) for 36.5 µs of
# CPU against 41.6, inside the sequencer's lock; level 1 takes 30 µs but 714 B.
_LEVEL = 6


def encode_entry(data: bytes) -> bytes:
    """Return the stored form of entry ``data``: the smaller of format 1 and raw."""
    c = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, 9, zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)
    packed = c.compress(data) + c.flush()
    if len(packed) < len(data):
        return bytes((DEFLATE_1,)) + packed
    return bytes((RAW,)) + data


def decode_entry(stored: bytes) -> bytes:
    """Return the entry stored as ``stored``; raise :class:`StorageError` if it is not a stored entry.

    Reads at most one byte beyond the largest entry the log accepts, so a
    damaged or hostile row cannot inflate without bound.
    """
    if not stored:
        raise StorageError("stored entry is empty: no format byte")
    tag, body = stored[0], stored[1:]
    if tag == RAW:
        return body
    if tag != DEFLATE_1:
        raise StorageError(f"stored entry has unknown format byte 0x{tag:02x}")
    d = zlib.decompressobj(_WBITS, zdict=DICTIONARY)
    try:
        data = d.decompress(body, MAX_ENTRY_SIZE + 1)
    except zlib.error as e:
        raise StorageError(f"stored entry does not inflate: {e}") from None
    if len(data) > MAX_ENTRY_SIZE:
        raise StorageError(f"stored entry inflates beyond {MAX_ENTRY_SIZE} bytes")
    if not d.eof or d.unused_data:
        raise StorageError("stored entry's deflate stream is truncated or followed by other bytes")
    return data
