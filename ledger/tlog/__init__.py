"""The transparency-log formats, pure: a C2SP change goes here.

``merkle`` (RFC 6962/9162 hashing and proofs, Go's ``sumdb/tlog`` line for
line), ``tile`` (tlog-tiles paths, tiles and entry bundles), ``checkpoint``
(tlog-checkpoint bodies in signed notes), ``frontier`` (the right edge of the
tree that the sequencer extends), ``verify`` (checking proofs against
checkpoints), ``witness`` and ``cosigned`` (tlog-witness and cosignature/v1).

No I/O, no database, no Flask or marshmallow: the client and offline
verifiers import these modules as they are (checked by tests/test_imports.py).
"""
