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

Format 1 may also be written in two parts (:func:`encode_head`,
:func:`encode_tail`, :func:`join_encoded`), so that the costly part is
done outside the sequencer's lock: an entry is a head that only the
sequencer knows (``{"logged_at":...``, the same for a whole group, of a
fixed length) and a tail that the request thread knows (the record and its
signature). DEFLATE (RFC 1951 section 3.2.3) is a sequence of blocks, and
the stream of one entry may be the head's blocks, ended on a byte boundary
by an empty stored block (``Z_SYNC_FLUSH``), followed by the tail's blocks.
The tail's compressor is given as history the dictionary followed by as
many NUL bytes as the head will have: its back-references then have the
distances the decoder needs, whose history is the dictionary followed by
the real head, and none reaches into the head, since a tail with no NUL
byte (which a JSON text never holds) matches no NUL byte. The decoder is
the same; the cost is about 14 bytes an entry, 2% (the marker, and the head
no longer shared with the tail).
"""

from __future__ import annotations

import functools
import zlib

from ledger.entry_dictionary import DICTIONARY
from ledger.errors import StorageError
from ledger.tlog.tile import MAX_ENTRY_SIZE

RAW = 0x00
DEFLATE_1 = 0x01

_WBITS = -15  # raw deflate, the largest window: what the decoder accepts
# Level 5 packs entries as small as 6 and 9 for less CPU: a tail (8 KiB
# window, memLevel 6, copied primed compressor; 2,000 tails, best of 5) of
# the demo's records to 505.9 B in 32 µs (level 6: 506.8 B, 35.4 µs; 9:
# 507.2 B, 42 µs), of the bench corpus to 647.2 B in 28.3 µs (6: 647.4 B,
# 31.2 µs). Levels 4 and below lose 3-9% of the size for 3-7 µs. The level
# is the writer's choice alone: any level inflates the same way.
_LEVEL = 5
# The compressor's own window and hash table: 8 KiB (the dictionary, 6.7 KiB,
# and a record's head fit) and 2**12 chains (memLevel 6) pack the corpus to
# the same bytes as 32 KiB and memLevel 9 (647 B a tail), with a state a
# quarter the size to set up or copy for each entry: 322,000 instructions an
# entry against 492,000 (cachegrind). A window is a limit on how far back the
# compressor looks, not a format: the decoder's 32 KiB reads any stream made
# with a smaller one (RFC 1951 section 3.2.1).
_COMPRESS_WBITS = -13
_MEM_LEVEL = 6


@functools.cache
def _primed(head_length: int) -> zlib._Compress:
    """A compressor that has read the dictionary and ``head_length`` NUL
    bytes, to be copied for each entry: loading the dictionary again for
    every entry cost as much as compressing the entry (as profiled).
    ``copy`` takes the object's own lock, so threads may share it."""
    history = DICTIONARY + bytes(head_length)
    return zlib.compressobj(_LEVEL, zlib.DEFLATED, _COMPRESS_WBITS, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, zdict=history)


def encode_entry(data: bytes) -> bytes:
    """Return the stored form of entry ``data``: the smaller of format 1 and raw."""
    c = _primed(0).copy()
    packed = c.compress(data) + c.flush()
    if len(packed) < len(data):
        return bytes((DEFLATE_1,)) + packed
    return bytes((RAW,)) + data


def encode_head(head: bytes) -> bytes:
    """The first part of format 1 for entries that start with ``head``:
    deflate blocks, none final, ending on a byte boundary."""
    c = _primed(0).copy()
    return c.compress(head) + c.flush(zlib.Z_SYNC_FLUSH)


def encode_tail(tail: bytes, head_length: int) -> bytes | None:
    """The rest of format 1 for entries ``head + tail`` whose head is
    ``head_length`` bytes (the last blocks, the final one last); None for a
    tail that holds a NUL byte, which could match the head's stand-in."""
    if b"\0" in tail:
        return None
    c = _primed(head_length).copy()
    return c.compress(tail) + c.flush()


def join_encoded(head: bytes, packed_head: bytes, tail: bytes, packed_tail: bytes | None, head_length: int) -> bytes:
    """The stored form of entry ``head + tail``, as :func:`encode_entry` would
    choose it, from :func:`encode_head` of ``head`` and :func:`encode_tail`
    of ``tail`` for a head of ``head_length`` bytes (compressed afresh if
    that is not ``head``'s length or the tail was not encoded)."""
    if packed_tail is None or len(head) != head_length:
        return encode_entry(head + tail)
    if len(packed_head) + len(packed_tail) < len(head) + len(tail):
        return b"".join((bytes((DEFLATE_1,)), packed_head, packed_tail))
    return bytes((RAW,)) + head + tail


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
