"""``evenness``: recompute the evenness statistics offline and compare them with the log's.

The server's ``GET /api/v1/stats/evenness`` document is a pure function of
the record entries below a checkpoint, the checkpoint and the filters
(:mod:`ledger.evenness_store`). This command recomputes it from a mirror
(``mirror --db``) with the very same code, ``facts_from_entries`` and
``compute_document``, and compares the two byte for byte.

What is trusted, and why: the checkpoint is the mirror's latest (its
signature is checked again on opening) or, for ``--tree-size N`` below it,
the one the server's document names, whose signature by the log's key
(``--vkey``) is checked here. Either way the first N entries read from the
mirror are hashed again and must give that checkpoint's root, so the
recomputation rests on nothing but the log's signature and the entries.

Both sides write their numbers by the same numeric contract
(:mod:`ledger.evenness.document`: floats rounded to 10 significant
digits), so a C library whose ``exp`` or ``log`` differs in the last bit
from the server's still gives the same bytes; the command says which
contract it applied.

Exit status: 0 identical, 1 bad input or the log unreachable, 3 the
documents differ or a check failed (the first differences are listed,
each as a JSON path with both values).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from client.audit import Unverified, cli_errors, url_option, vkey_option
from client.http import Http
from client.mirror import Mirror
from client.platform import VerificationFailed
from client.tiles import open_cp
from keys.note import Verifier
from ledger.errors import InvalidInput
from ledger.evenness.document import METHOD_VERSION, NUMERIC_CONTRACT, CheckpointRef, Evenness, compute_document
from ledger.evenness.facts import GROUPS, METHOD_VERSIONS, METRICS, Filters, facts_from_entries
from ledger.evenness.protection import protection_facts_from_entries
from ledger.records import times
from ledger.records.entries import canonical, parse_json
from ledger.tlog.frontier import Frontier
from ledger.tlog.merkle import record_hash

PATH = "/api/v1/stats/evenness"
#: Differences listed at most; the rest are counted.
MAX_DIFFERENCES = 20
#: Characters of a value shown in a difference.
MAX_SHOWN = 120


@dataclass(frozen=True)
class ServerDocument:
    """The server's answer: its document's RFC 8785 bytes, and the parsed document."""

    data: bytes
    document: dict[str, Any]
    claimed_sha256: str


def fetch_document(http: Http, tree_size: int, query: dict[str, str]) -> ServerDocument:
    """GET the document of ``tree_size``; the document is re-encoded as RFC 8785,
    as the server's bytes are if it follows the protocol (a canonical value
    stays canonical inside a canonical object)."""
    resp = http.request("GET", PATH, params={"tree_size": tree_size, **query})
    try:
        body = parse_json(resp.content)
        document, claimed = body["document"], body["document_sha256"]
        if not isinstance(document, dict) or not isinstance(claimed, str):
            raise InvalidInput("document must be an object and document_sha256 a string")
    except (InvalidInput, KeyError, TypeError) as e:
        raise VerificationFailed(f"malformed answer from {PATH}: {e}") from None
    return ServerDocument(canonical(document), document, claimed)


def signed_note(mirror: Mirror, server: ServerDocument, tree_size: int, verifier: Verifier) -> bytes:
    """The signed checkpoint of ``tree_size``: the mirror's own when it is the
    mirror's size, else the server's, after checking the log's signature."""
    if mirror.last is not None and mirror.last[0].size == tree_size:
        return mirror.last[1]
    try:
        text = server.document["checkpoint"]["signed_note"]
        if not isinstance(text, str):
            raise TypeError
    except (KeyError, TypeError):
        raise VerificationFailed(f"the server's document of tree size {tree_size} holds no signed checkpoint") from None
    note = text.encode()
    cp = open_cp(note, verifier, f"the server's checkpoint of tree size {tree_size}")
    if cp.size != tree_size:
        raise VerificationFailed(f"asked for tree size {tree_size}, the server's document is of tree size {cp.size}")
    return note


def recompute(
    mirror: Mirror,
    note: bytes,
    filters: Filters,
    progress: Callable[[int], None] = lambda _n: None,
    method_version: int = METHOD_VERSION,
) -> Evenness:
    """Compute the document of the checkpoint ``note`` from the mirror's entries.

    The entries read are hashed as they go by; unless they hash to the
    checkpoint's root, the document is refused (a mirror file changed on
    disk, or a checkpoint of another history). Method version 2 reads the
    entries into memory once, for its two kinds of facts.
    """
    ref = CheckpointRef.from_note(note)
    frontier = Frontier()

    def entries() -> Iterator[tuple[int, bytes]]:
        rows = mirror.conn.execute("SELECT idx, data FROM entries WHERE idx < ? ORDER BY idx", (ref.size,))
        for n, (index, data) in enumerate(rows, 1):
            frontier.append(record_hash(data))
            yield index, data
            if n % 10_000 == 0:
                progress(10_000)
        progress(frontier.size % 10_000)

    if method_version >= 2:
        held = list(entries())
        facts, protection = facts_from_entries(held, ref.size), protection_facts_from_entries(held, ref.size)
        document = compute_document(facts, ref, filters, method_version=method_version, protection=protection)
    else:
        document = compute_document(facts_from_entries(entries(), ref.size), ref, filters)
    if frontier.size != ref.size or frontier.root() != ref.root:
        raise VerificationFailed(
            f"the mirror's first {frontier.size} entries do not hash to the root of the checkpoint of tree size "
            f"{ref.size}: the mirror file was altered, or the checkpoint is of another history"
        )
    return document


def differences(ours: Any, theirs: Any, path: str = "$") -> Iterator[tuple[str, Any, Any]]:
    """Yield (JSON path, our value, their value) wherever two JSON values differ, in document order."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(ours.keys() | theirs.keys()):
            yield from differences(ours.get(key, ABSENT), theirs.get(key, ABSENT), f"{path}.{key}")
    elif isinstance(ours, list) and isinstance(theirs, list):
        for i in range(max(len(ours), len(theirs))):
            yield from differences(
                ours[i] if i < len(ours) else ABSENT, theirs[i] if i < len(theirs) else ABSENT, f"{path}[{i}]"
            )
    elif type(ours) is not type(theirs) or ours != theirs:
        yield path, ours, theirs


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


#: Stands for a key or list item one side lacks.
ABSENT = _Absent()


def shown(value: Any) -> str:
    text = repr(value) if value is ABSENT else canonical(value).decode()
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def report(ours: Evenness, server: ServerDocument) -> list[str]:
    """The lines telling how the server's document differs from ours (none if identical)."""
    lines = []
    if hashlib.sha256(server.data).hexdigest() != server.claimed_sha256:
        lines.append(f"the server's document_sha256 {server.claimed_sha256} is not the digest of its document")
    if ours.data == server.data:
        return lines
    # Both sides as parsed from their bytes: the document object holds floats where JSON has integers.
    found = list(_first(differences(parse_json(ours.data), server.document), MAX_DIFFERENCES + 1))
    for path, mine, theirs in found[:MAX_DIFFERENCES]:
        lines.append(f"{path}: recomputed {shown(mine)}, server {shown(theirs)}")
    if len(found) > MAX_DIFFERENCES:
        lines.append(f"... and more differences after the first {MAX_DIFFERENCES}")
    if not found:
        lines.append("the documents hold the same values but differ in bytes")
    return lines


def _first(it: Iterator[Any], n: int) -> Iterator[Any]:
    for i, value in enumerate(it):
        if i == n:
            return
        yield value


# The command ------------------------------------------------------------------------------


def _time_ms(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, int] | None:
    # Exactly as the server reads its decided_from and decided_to (api/feed.py TimeParam, ledger.records.times).
    if value is None:
        return None
    if not (times.DATE.fullmatch(value) or times.DATE_TIME.fullmatch(value)):
        raise click.BadParameter("must be a date YYYY-MM-DD or an RFC 3339 UTC time ending in Z")
    try:
        return value, times.day_or_time_ms(value)
    except InvalidInput:
        raise click.BadParameter("not a valid date") from None


def query_and_filters(
    platform: str | None,
    rule_id: str | None,
    group: str | None,
    metric: str | None,
    decided_from: tuple[str, int] | None,
    decided_to: tuple[str, int] | None,
) -> tuple[dict[str, str], Filters]:
    """The server's query parameters and the same filters for the recomputation."""
    given = {"platform": platform, "rule_id": rule_id, "group": group, "metric": metric}
    query = {k: v for k, v in given.items() if v is not None}
    for name, t in (("decided_from", decided_from), ("decided_to", decided_to)):
        if t is not None:
            query[name] = t[0]
    try:
        filters = Filters(
            **given,
            decided_from_ms=None if decided_from is None else decided_from[1],
            decided_to_ms=None if decided_to is None else decided_to[1],
        )
    except InvalidInput as e:
        options = "; ".join(f"--{str(err['path']).replace('_', '-')} {err['message']}" for err in e.errors)
        raise click.UsageError(options or str(e)) from None
    return query, filters


def _pinned_size(mirror: Mirror, tree_size: int | None) -> int:
    if mirror.last is None:
        raise InvalidInput(f"{mirror.path} holds no verified checkpoint yet: run mirror first")
    size = mirror.last[0].size
    if tree_size is not None and tree_size > size:
        raise InvalidInput(f"--tree-size {tree_size} is beyond the mirror's {size} entries: run mirror first")
    return size if tree_size is None else tree_size


@click.command(name="evenness")
@url_option
@vkey_option
@click.option(
    "--db", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, help="The mirror's file."
)
@click.option(
    "--tree-size",
    type=click.IntRange(1),
    help="The checkpoint to compare at: a tree size the log signed, at most the mirror's (default: the mirror's).",
)
@click.option("--platform", help="Only this platform's decisions.")
@click.option("--rule-id", help="Only decisions under this rule id (after amendments).")
@click.option("--group", type=click.Choice(tuple(GROUPS)), help="Only this group's comparisons and cells.")
@click.option("--metric", type=click.Choice(METRICS), help="Only this metric's comparisons.")
@click.option("--decided-from", callback=_time_ms, help="Decisions decided at or after this date or UTC time.")
@click.option("--decided-to", callback=_time_ms, help="Decisions decided before this date or UTC time.")
@click.option(
    "--method-version",
    type=click.Choice([str(v) for v in METHOD_VERSIONS]),
    default=str(METHOD_VERSION),
    show_default=True,
    help="1: the account comparisons; 2: also the protection section (whom content targeted, who reported it).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the recomputed document here.")
def evenness_cmd(
    url: str,
    vkey: Verifier,
    db: Path,
    tree_size: int | None,
    method_version: str,
    out: Path | None,
    **filter_options: Any,
) -> None:
    """Recompute the evenness statistics from a mirror and compare them with the log's.

    Reads the entries of the mirror (see mirror) up to its checkpoint, or
    up to --tree-size, checks they hash to that signed checkpoint, computes
    the document of GET /api/v1/stats/evenness with the same filters, and
    compares it with the log's byte for byte. Prints the numeric contract
    applied ("numbers: rounded to 10 significant digits ..."), then
    "identical (sha256 ...)" and exits 0, or lists the first differences
    as JSON paths with both values and exits 3.
    """
    query, filters = query_and_filters(**filter_options)
    version = int(method_version)
    if version != METHOD_VERSION:
        query["method_version"] = str(version)
    with cli_errors():
        with Http(url, on_retry=lambda m: click.echo(m, err=True)) as http, closing(Mirror(db, vkey)) as mirror:
            size = _pinned_size(mirror, tree_size)
            server = fetch_document(http, size, query)
            note = signed_note(mirror, server, size, vkey)
            ours = _recompute_with_progress(mirror, note, filters, size, version)
        if out is not None:
            out.write_bytes(ours.data)
            click.echo(f"wrote the recomputed document to {out}", err=True)
        lines = report(ours, server)
    click.echo(f"numbers: {NUMERIC_CONTRACT}")
    if lines:
        for line in lines:
            click.echo(line)
        raise Unverified(f"the log's evenness document of tree size {size} differs from the recomputation")
    click.echo(f"identical (sha256 {ours.sha256}): tree size {size}, {len(ours.data)} bytes")


def _recompute_with_progress(mirror: Mirror, note: bytes, filters: Filters, size: int, version: int) -> Evenness:
    with click.progressbar(
        length=size, label="recomputing", file=sys.stderr, show_pos=True, show_eta=True, item_show_func=lambda s: s
    ) as bar:
        began, done = time.monotonic(), 0

        def progress(n: int) -> None:
            nonlocal done
            done += n
            bar.update(n, f"{done / max(time.monotonic() - began, 1e-3):.0f} entries/s")

        return recompute(mirror, note, filters, progress, version)
