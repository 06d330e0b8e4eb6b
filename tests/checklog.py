"""Re-verify a whole stored log after a test that wrote to it (principle 12):
the operator's audit, every checkpoint's signature, each checkpoint's
consistency with the next, and every tile against the reference log."""

from __future__ import annotations

from ledger import storage
from ledger.audit import audit
from ledger.log import Log
from ledger.tlog import verify
from tests.reference import ListReader, tiles_for_size


def check_log(log: Log) -> ListReader:
    """Raise AssertionError unless the stored log is whole; return its reference copy."""
    with log.read() as s:
        report = audit(s, log.verifier)
        assert report.ok, report.problems
        size = log.latest(s).size
        cps = list(storage.iter_checkpoints(s))
        ref = ListReader()
        for d in storage.read_entries(s, 0, size):
            ref.add(d)
    assert cps[0].size == 0
    assert [c.size for c in cps] == sorted({c.size for c in cps})
    assert cps[-1].size == size
    prev = None
    for c in cps:
        cp = verify.verify_checkpoint(c.note, log.verifier)
        assert (cp.size, cp.root) == (c.size, c.root)
        if prev is not None:
            proof = log.consistency(prev.size, cp.size)
            verify.verify_consistency(prev, cp, proof.proof)
        prev = cp
    for tile in tiles_for_size(size):
        assert log.tile(tile) == ref.tile_data(tile), tile.path()
    return ref
