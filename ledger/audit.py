"""The operator's audit: recompute the whole tree from the stored entries.

Streams the entries in index order, each decoded from its stored form
(ledger/entry_codec.py) as every reader decodes it, rebuilds every tile hash and compares it
with the stored one, recomputes the root at every checkpointed size and
checks the checkpoint's root and signature, and finally checks the head.
Then, from the same entries, it derives every row of the tables readers see
(ledger/derived.py: platforms, keys, revocations, records, the feed's query
index, published statistics) and compares each with the stored row, column
by column; on SQLite it also has FTS5 check the full-text index against its
column. Reads O(n) entries and holds O(log n) hashes and one batch of rows
in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from keys.note import Verifier
from ledger import derived, storage
from ledger.errors import InvalidInput, ProofError
from ledger.tlog.checkpoint import open_checkpoint
from ledger.tlog.frontier import Frontier, Row
from ledger.tlog.merkle import EMPTY_ROOT, record_hash

BATCH = 4096


@dataclass
class AuditReport:
    size: int = 0
    entries: int = 0
    checkpoints: int = 0
    #: Derived rows whose table, key, column and values differ from their entries.
    mismatches: list[derived.Mismatch] = field(default_factory=list)
    #: (tree size at which the problem shows, message)
    found: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.found

    @property
    def problems(self) -> list[str]:
        """The problems in log order: the first is the earliest mismatch."""
        return [msg for _, msg in sorted(self.found, key=lambda p: p[0])]

    def add(self, at: int, msg: str) -> None:
        self.found.append((at, msg))

    def add_mismatches(self, mismatches: list[derived.Mismatch]) -> None:
        self.mismatches.extend(mismatches)
        for m in mismatches:
            self.add(m.at, f"derived row differs from its entry: {m}")


def audit(
    session: Session,
    verifier: Verifier,
    progress: Callable[[int, int], None] | None = None,
    max_problems: int = 20,
    derived_rows: bool = True,
) -> AuditReport:
    """Recompute the log, and (unless ``derived_rows`` is false) every derived
    row, from the entries; report mismatches, first first."""
    report = AuditReport()
    head = storage.read_head(session)
    if head is None:
        report.add(0, "the log is not initialised")
        return report
    report.size = head.size
    cps = storage.iter_checkpoints(session)
    next_cp = next(cps, None)
    frontier = Frontier()

    def check_checkpoints() -> None:
        nonlocal next_cp
        while next_cp is not None and next_cp.size <= frontier.size:
            cp = next_cp
            report.checkpoints += 1
            root = frontier.root() if cp.size == frontier.size else None
            if root is None:
                report.add(cp.size, f"checkpoint {cp.size}: no such tree size was reached")
            elif cp.root != root:
                report.add(cp.size, f"checkpoint {cp.size}: stored root differs from the recomputed root")
            try:
                signed = open_checkpoint(cp.note, verifier).checkpoint
                if (signed.size, signed.root) != (cp.size, root):
                    report.add(cp.size, f"checkpoint {cp.size}: signed note does not match the recomputed tree")
            except (ProofError, InvalidInput) as e:
                report.add(cp.size, f"checkpoint {cp.size}: signed note does not verify: {e}")
            next_cp = next(cps, None)

    check_checkpoints()
    for start in range(0, head.size, BATCH):
        end = min(head.size, start + BATCH)
        # The leaf hashes are recomputed from the decoded entries: what the
        # log serves, not what it stores. An entry that does not decode is
        # hashed as stored, so the tree above it still shows the damage.
        data, damaged = storage.read_entries_or_damage(session, start, end)
        for i, why in damaged.items():
            report.add(i + 1, f"level 0 hash {i} cannot be recomputed: its entry does not decode ({why})")
        new_rows: list[Row] = []
        for d in data:
            new_rows.extend(frontier.append(record_hash(d)))
            report.entries += 1
            if next_cp is not None and next_cp.size == frontier.size:
                check_checkpoints()
        stored: dict[int, dict[int, bytes]] = {}
        for level in {lv for lv, _, _ in new_rows}:
            idxs = [i for lv, i, _ in new_rows if lv == level]
            stored[level] = storage.level_hashes_by_index(session, level, min(idxs), max(idxs) + 1)
        for level, i, h in new_rows:
            if stored[level].get(i) != h and not (level == 0 and i in damaged):
                report.add(((i + 1) << (8 * level)), f"level {level} hash {i} differs from the recomputed hash")
        if derived_rows:
            try:
                report.add_mismatches(derived.check_range(session, start, end, data))
            except InvalidInput as e:
                report.add(end, f"derived rows: {e}")
        if progress:
            progress(end, head.size)
        if len(report.found) >= max_problems:
            return report
    check_checkpoints()
    if next_cp is not None:
        report.add(next_cp.size, f"checkpoint {next_cp.size} is beyond the head ({head.size})")
    root = frontier.root() if head.size else EMPTY_ROOT
    if root != head.root:
        report.add(head.size, "the head's root differs from the recomputed root")
    extra = storage.entry_count(session) - head.size
    if extra:
        report.add(head.size, f"{extra} entries are stored beyond the head")
    if derived_rows:
        report.add_mismatches(derived.check_beyond(session))
        report.add_mismatches(derived.check_search(session.get_bind()))  # type: ignore[arg-type]
    return report
