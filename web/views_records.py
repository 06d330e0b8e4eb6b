"""A record's page, and log entries by index.

The record page shows every field in plain words, the platform's key and
signature, the appeal and amendment chain, the inclusion proof against the
latest signed checkpoint (so that a printed page carries what it takes to
check it), and the "Verify in your browser" panel: ``static/verify.js``
fetches ``/api/v1/records/<index>`` and ``/api/v1/log`` and checks the
entry, its inclusion proof, the checkpoint's signature and the platform's
signature with WebCrypto.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ledger.browse import entry_at, platform_names, record_at
from ledger.errors import NotFound
from ledger.query import History, history, record_by_id
from ledger.records.changes import decision_of
from ledger.registry import read_key_states
from ledger.submit import permalink
from ledger.tlog.merkle import record_hash
from web import bp, current_log, present


@bp.get("/records/<platform>/<record_id>")
def record(platform: str, record_id: str) -> str:
    log = current_log()
    with log.read() as s:
        row = record_by_id(s, platform, record_id)
        if row is None:
            raise NotFound(
                f"The log holds no record {record_id!r} from platform {platform!r}. "
                "Record IDs are exact (letters are case-sensitive); search the decisions instead."
            )
        data, entry = entry_at(s, row.leaf_index)
        key = read_key_states(s, [row.key_id])[row.key_id]
        chain = history(s, row)
        names = platform_names(s)
        cp = log.latest(s)
        compared = _previous_version(row, chain)
        before = decision_of(entry_at(s, compared.leaf_index)[1].body) if compared is not None else None
    # The proof a printed page carries: anyone can check it, on paper or
    # offline, against the checkpoint printed beside it.
    proof = log.inclusions([row.leaf_index], cp)[0]
    body = entry.body
    subject = body.get("corrected", body) if body.get("type") == "amendment" else body
    revoked_at = key.revoked_from_ms
    changed, unchanged = present.changes(before, decision_of(body)) if before is not None else ([], 0)
    return render_template(
        "record.html",
        row=row,
        record=body,
        account=subject.get("account") if isinstance(subject, dict) else None,
        decision=subject if isinstance(subject, dict) else {},
        sections=present.sections(body),
        entry=entry,
        entry_size=len(data),
        leaf_hash=base64.b64encode(record_hash(data)).decode(),
        key=key,
        key_public=base64.b64encode(key.public_key).decode(),
        logged_after_revocation=revoked_at is not None and _ms(entry.logged_at) >= revoked_at,
        chain=chain,
        compared=compared,
        changed=changed,
        unchanged=unchanged,
        names=names,
        tree_size=cp.size,
        checkpoint_note=cp.note.decode(),
        proof=[base64.b64encode(h).decode() for h in proof.proof],
        permalink=permalink(row.platform, row.record_id),
        tamper=request.args.get("tamper") == "proof",
    )


def _previous_version(row: Any, chain: History) -> Any | None:
    """The record an amendment ``row`` changed: the amendment of the same
    decision logged just before it, or else the decision itself (None for
    any other record, or when the decision is not in the log)."""
    if row.type != "amendment":
        return None
    earlier = [a for a in chain.amendments if a.type == "amendment" and a.leaf_index < row.leaf_index]
    if earlier:
        return earlier[-1]
    if chain.refers_to is not None and chain.refers_to.type == "decision":
        return chain.refers_to
    return None


def _ms(time: str) -> int:
    dt = present.parse_time(time)
    if dt is None:
        raise AssertionError(f"entry time {time!r} does not parse")
    return int(dt.timestamp() * 1000)


@bp.get("/entries/<int(max=9223372036854775807):index>")
def entry_page(index: int) -> str | Response:
    """A record's entry redirects to its page; a registry entry is shown here."""
    log = current_log()
    with log.read() as s:
        size = log.latest(s).size
        if index >= size:
            abort(404, f"The log has {size:,} entries, numbered from 0." if size else "The log is empty.")
        row = record_at(s, index)
        if row is not None:
            return redirect(url_for("web.record", platform=row.platform, record_id=row.record_id))
        data, entry = entry_at(s, index)
        names = platform_names(s)
    return render_template(
        "entry.html",
        index=index,
        entry=entry,
        entry_size=len(data),
        leaf_hash=base64.b64encode(record_hash(data)).decode(),
        names=names,
    )
