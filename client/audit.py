"""The auditor's commands: ``verify``, ``monitor``, ``receipt``, ``check-receipt``.

Nothing the log serves is believed unchecked. Every checkpoint must be
signed by the log's key, given out of band (``--vkey``); every tile and
entry is checked against a checkpoint's root (:mod:`client.tiles`); every
new checkpoint must extend the one remembered from last time (the state
file shared with ``submit``). Exit status: 0 verified, 1 bad input or the
log unreachable, 2 a malformed command line (click's usage errors), 3
verification failed, 4 the log forked (two signed checkpoints that no
single append-only history explains; the evidence is saved).

Receipts (``receipt``, ``check-receipt``) are c2sp.org/tlog-proof files
whose ``extra`` line carries the log entry itself, standard base64::

    c2sp.org/tlog-proof@v1
    extra <base64 of the entry: the RFC 8785 JSON {"logged_at", "record"|"registry", "signature"}>
    index <leaf index>
    <inclusion proof, one base64 hash a line, from the leaf's sibling upwards>
    <blank line>
    <the log's signed checkpoint, verbatim>

The spec leaves ``extra`` to the application and unauthenticated; here it
is authenticated after all, since its record hash SHA-256(0x00 || entry) is
the leaf the proof must lead from. Any tlog-proof verifier can check such a
file given that leaf hash. Suggested extension: ``.tlog-proof``.
"""

from __future__ import annotations

import base64
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import click

from client.checks import PROOF_HEADER as PROOF_HEADER
from client.checks import EntryAudit as EntryAudit
from client.checks import ParallelEntryAudit, TlogProof, Watch, check_receipt, describe_entry
from client.checks import parse_tlog_proof as parse_tlog_proof
from client.http import ClientError, Http, ProblemResponse, Unreachable, check_base_url
from client.tiles import (
    ForkDetected,
    TileClient,
    TileHashReader,
    check_extends,
    check_inclusion,
    fork,
    open_cp,
    recompute_root,
    verified_bundles,
)
from client.verifying import TrustStore, VerificationFailed, b64_hash, establish_trust, get_field
from keys.note import Verifier, b64decode_exact
from ledger.errors import InvalidInput, LedgerError, ProofError
from ledger.records.entries import canonical, parse_entry, parse_json
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.cosigned import verify_cosigned
from ledger.tlog.merkle import record_hash
from ledger.tlog.verify import verify_consistency

EXIT_UNVERIFIED = 3
EXIT_FORKED = 4


# Errors, options and evidence ----------------------------------------------------


class Unverified(click.ClickException):
    exit_code = EXIT_UNVERIFIED


class Forked(click.ClickException):
    exit_code = EXIT_FORKED


def warn(message: str) -> None:
    click.echo(message, err=True)


def save_evidence(directory: Path, fork: ForkDetected) -> Path:
    """Write the fork's evidence files into a new ``fork-<UTC time>`` directory of ``directory``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(100):
        out = directory / (f"fork-{stamp}" + (f"-{n}" if n else ""))
        try:
            out.mkdir(parents=True)
            break
        except FileExistsError:
            continue
    else:
        raise ClientError(f"cannot create an evidence directory in {directory}")
    for name, data in fork.evidence.items():
        (out / name).write_bytes(data)
    (out / "README.txt").write_text(str(fork) + "\n")
    return out


@contextmanager
def cli_errors(evidence: Path | None = None) -> Iterator[None]:
    """Expected failures become one message and an exit status, never a traceback."""
    try:
        yield
    except ForkDetected as e:
        where = ""
        if evidence is not None:
            try:
                where = f"\nevidence saved in {save_evidence(evidence, e)}"
            except OSError as err:
                where = f"\ncould not save the evidence in {evidence}: {err.strerror}"
        raise Forked(f"ALERT: the log forked: {e}{where}") from None
    except VerificationFailed as e:
        raise Unverified(f"verification failed: {e}") from None
    except LedgerError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{e.filename or ''}: {e.strerror}") from None


def _url(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return check_base_url(value)
    except ClientError as e:
        raise click.BadParameter(str(e)) from None


def _vkey(_ctx: click.Context, _param: click.Parameter, value: str) -> Verifier:
    try:
        return Verifier.from_key(value.strip())
    except InvalidInput as e:
        raise click.BadParameter(str(e)) from None


def default_state() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "mdl", "state.json")


url_option = click.option(
    "--url", required=True, envvar="MDL_URL", callback=_url, help="The ledger's base URL (or $MDL_URL)."
)
vkey_option = click.option(
    "--vkey",
    required=True,
    envvar="MDL_VKEY",
    callback=_vkey,
    help="The log's verifier key (name+id+key), obtained out of band (or $MDL_VKEY).",
)
state_option = click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=default_state,
    show_default="$XDG_STATE_HOME/mdl/state.json",
    help="The state file (shared with submit) remembering the latest checkpoint seen of each log.",
)
jobs_option = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="the number of cores",
    help="Worker processes checking the entries (form, key, signature) for --full; 1: none, this process does.",
)
evidence_option = click.option(
    "--evidence",
    type=click.Path(file_okay=False, path_type=Path),
    default="mdl-evidence",
    show_default=True,
    help="Where to save the signed checkpoints proving a fork, if one is found.",
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def fetch_receipt(
    http: Http, verifier: Verifier, index: int | None, platform: str | None, record_id: str | None
) -> bytes:
    """Fetch an entry's inclusion proof from the log's JSON API, verify it, return the receipt."""
    if index is not None:
        path = f"/api/v1/entries/{index}"
    else:
        path = f"/api/v1/platforms/{quote(platform or '', safe='')}/records/{quote(record_id or '', safe='')}"
    ans = http.get_json(path)
    try:
        got = get_field(ans, "leaf_index", int)
        entry = b64decode_exact(get_field(ans, "entry", str), "entry")
        proof = tuple(b64_hash(h, "inclusion_path") for h in get_field(ans, "inclusion_path", list))
        note = get_field(get_field(ans, "checkpoint", dict), "signed_note", str).encode()
    except InvalidInput as e:
        raise VerificationFailed(f"malformed answer from {path}: {e}") from None
    if index is not None and got != index:
        raise VerificationFailed(f"asked for entry {index}, the log answered with entry {got}")
    if index is None:
        try:
            parsed = parse_entry(entry)
        except InvalidInput as exc:
            raise VerificationFailed(f"the log's entry {got} is not a ledger entry: {exc}") from None
        body = parsed.body
        if parsed.kind != "record" or (body.get("platform"), body.get("record_id")) != (platform, record_id):
            raise VerificationFailed(f"the log's entry {got} is not the record {platform}/{record_id}")
    receipt = TlogProof(got, proof, note, entry).encode()
    check_receipt(receipt, verifier)
    return receipt


# verify ------------------------------------------------------------------------------


@click.command()
@url_option
@vkey_option
@state_option
@click.option("--index", "indexes", type=click.IntRange(min=0), multiple=True, help="Check this entry (repeatable).")
@click.option(
    "--sample", type=click.IntRange(min=0), default=16, show_default=True, help="Check this many random entries."
)
@click.option(
    "--full", is_flag=True, help="Recompute the whole tree from every entry bundle, and check every signature."
)
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    help="A witness's cosignature/v1 verifier key (repeatable): require its cosignature on the checkpoint.",
)
@click.option(
    "--quorum",
    type=click.IntRange(min=0),
    default=None,
    help="How many of the --witness keys must have cosigned (default: all of them).",
)
@jobs_option
@evidence_option
def verify(
    url: str,
    vkey: Verifier,
    state: Path,
    indexes: tuple[int, ...],
    sample: int,
    full: bool,
    witnesses: tuple[str, ...],
    quorum: int | None,
    jobs: int,
    evidence: Path,
) -> None:
    """Verify the log: its checkpoint, its consistency with the last one seen, and its entries.

    The checkpoint must be signed by --vkey and extend the checkpoint
    remembered in --state, which is updated only when everything verified.
    With --witness, it must also carry cosignatures from --quorum of those
    witnesses (if the newest checkpoint is not cosigned yet, the newest
    cosigned one is verified instead). Entries (--index, --sample) are
    checked through the tiles against the checkpoint's root; --full
    recomputes the root from all entries.
    """
    with cli_errors(evidence), Http(url, on_retry=warn) as http:
        store = TrustStore(state)
        _, pinned = establish_trust(http, vkey.to_key(), store, warn)
        tiles = TileClient(http)
        note = tiles.checkpoint()
        cp = open_cp(note, vkey, "the log's checkpoint")
        cosigned = ""
        if witnesses:
            need = len(witnesses) if quorum is None else quorum
            try:
                verify_cosigned(note, vkey, list(witnesses), need)
            except ProofError:
                note = http.request("GET", "/api/v1/checkpoints/cosigned").content
                verify_cosigned(note, vkey, list(witnesses), need)
                cp = open_cp(note, vkey, "the log's newest cosigned checkpoint")
            cosigned = f"; cosigned by at least {need} of {len(witnesses)} witnesses"
        reader = TileHashReader(tiles, cp)
        out = [f"checkpoint: {cp.origin}, tree size {cp.size}, root {_b64(cp.root)}: signed by the log's key{cosigned}"]
        if pinned is not None:
            old = open_cp(pinned.encode(), vkey, f"the checkpoint remembered in {state}")
            if old.size > cp.size:
                raise VerificationFailed(
                    f"the log's checkpoint (size {cp.size}) is older than the one remembered in {state} "
                    f"(size {old.size}): it rolled back, or serves a stale view"
                )
            check_extends(reader, old, pinned.encode(), note)
            out.append(f"consistent with the checkpoint of size {old.size} remembered in {state}")
        for i in indexes:
            if i >= cp.size:
                raise ClientError(f"--index {i}: the log's tree has only {cp.size} entries")
        sampled = random.SystemRandom().sample(range(cp.size), min(sample, cp.size))
        for i, data in check_inclusion(reader, list(indexes)).items():
            out.append(f"entry {i}: in the tree: {describe_entry(data)}")
        check_inclusion(reader, sampled)
        if sampled:
            out.append(f"{len(sampled)} random entries: in the tree")
        if full:
            bar = click.progressbar(length=cp.size, label="verifying", file=sys.stderr, show_eta=True)
            with bar, ParallelEntryAudit(vkey, jobs) as audit:
                recompute_root(reader, audit, bar.update)
                checked = audit.finish()
            out.append(f"full: the root recomputed from all {cp.size} entries matches; {checked} signatures verify")
        store.put(http.base_url, vkey.to_key(), note.decode())
    click.echo("\n".join(out))


# monitor ---------------------------------------------------------------------------


def prove_step(http: Http, vkey: Verifier, old: tuple[Checkpoint, bytes], new: tuple[Checkpoint, bytes]) -> None:
    """Prove through the log's JSON API that the smaller of two checkpoints is
    a prefix of the larger; raise :class:`ForkDetected` with the evidence if not."""
    (small, small_note), (big, big_note) = sorted([old, new], key=lambda p: p[0].size)
    if small.size == big.size and small.root != big.root:
        raise fork(f"two different signed checkpoints of size {small.size}", old, new)
    if small.size in (0, big.size):
        return
    try:
        ans = http.get_json("/api/v1/proofs/consistency", {"first": small.size, "second": big.size})
        proof = [b64_hash(h, "consistency_path") for h in get_field(ans, "consistency_path", list)]
        notes = [
            get_field(get_field(ans, k, dict), "signed_note", str).encode() for k in ("first_checkpoint", "checkpoint")
        ]
    except (ProblemResponse, InvalidInput) as e:
        raise VerificationFailed(f"no consistency proof from size {small.size} to {big.size}: {e}") from None
    # The answer carries the log's own checkpoints of both sizes: if either
    # differs from ours, that pair alone proves the fork.
    for mine, theirs in zip(((small, small_note), (big, big_note)), notes, strict=True):
        cp = open_cp(theirs, vkey, f"the checkpoint in the consistency proof from size {small.size}")
        if cp.size == mine[0].size and cp.root != mine[0].root:
            raise fork(f"two different signed checkpoints of size {cp.size}", mine, (cp, theirs))
    try:
        verify_consistency(small, big, proof)
    except ProofError:
        raise fork(
            f"the log's checkpoints of sizes {small.size} and {big.size} are not consistent: the proof fails",
            (small, small_note),
            (big, big_note),
            extra={"consistency-proof.json": canonical(ans)},
        ) from None


@click.command()
@url_option
@vkey_option
@state_option
@click.option(
    "--interval", type=click.FloatRange(min=0), default=60.0, show_default=True, help="Seconds between polls."
)
@click.option("--count", type=click.IntRange(min=0), default=0, help="Stop after this many polls (0: never).")
@evidence_option
@click.option("--platform", help="Print new records (and registry events) of this platform.")
@click.option("--subject", help="Print new records about this account.subject_key.")
@click.option("--rule", help="Print new records applying this rule.id.")
def monitor(
    url: str,
    vkey: Verifier,
    state: Path,
    interval: float,
    count: int,
    evidence: Path,
    platform: str | None,
    subject: str | None,
    rule: str | None,
) -> None:
    """Watch the log: prove each new checkpoint consistent with the last.

    On a fork (two signed checkpoints no append-only history explains), the
    checkpoints are saved in --evidence and the exit status is 4. With
    --platform, --subject or --rule, new matching entries are printed, one
    line each: index, logged_at, platform/record_id, type, rule, subject, action.
    """
    watch = Watch(platform, subject, rule)
    with cli_errors(evidence), Http(url, on_retry=warn) as http:
        store = TrustStore(state)
        _, pinned = establish_trust(http, vkey.to_key(), store, warn)
        tiles = TileClient(http)
        prev = None
        if pinned is not None:
            prev = (open_cp(pinned.encode(), vkey, f"the checkpoint remembered in {state}"), pinned.encode())
            warn(f"watching {prev[0].origin} from tree size {prev[0].size}, remembered in {state}")
        polls = 0
        while True:
            polls += 1
            try:
                note = tiles.checkpoint()
                prev = _step(http, tiles, vkey, watch, prev, (open_cp(note, vkey, "the log's checkpoint"), note))
            except (Unreachable, ProblemResponse) as e:
                # Not an answer at all: try again at the next poll, from the same checkpoint.
                warn(f"poll {polls}: {e}")
            else:
                store.put(http.base_url, vkey.to_key(), prev[1].decode())
            if count and polls >= count:
                break
            time.sleep(interval)


def _step(
    http: Http,
    tiles: TileClient,
    vkey: Verifier,
    watch: Watch,
    prev: tuple[Checkpoint, bytes] | None,
    new: tuple[Checkpoint, bytes],
) -> tuple[Checkpoint, bytes]:
    """One poll: prove ``new`` consistent with ``prev``, print what is new; return the larger."""
    cp = new[0]
    if prev is None:
        warn(f"watching {cp.origin} from tree size {cp.size}")
        return new
    prove_step(http, vkey, prev, new)
    if cp.size < prev[0].size:
        warn(f"the log served an older checkpoint (size {cp.size}, consistent with size {prev[0].size})")
        return prev
    if cp.size > prev[0].size:
        warn(f"tree size {cp.size}: {cp.size - prev[0].size} new entries, consistent with size {prev[0].size}")
        if watch:
            for batch in verified_bundles(TileHashReader(tiles, cp), prev[0].size, cp.size):
                for i, data, _ in batch:
                    line = watch.line(i, data)
                    if line:
                        click.echo(line)
    return new


# receipts -----------------------------------------------------------------------------


@click.command()
@url_option
@vkey_option
@click.option("--index", type=click.IntRange(min=0), help="The entry's leaf index.")
@click.option("--platform", help="With --record-id: the record's platform.")
@click.option("--record-id", help="With --platform: the record's ID.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default="-",
    help="Where to write the receipt (default: stdout); suggested extension .tlog-proof.",
)
def receipt(
    url: str, vkey: Verifier, index: int | None, platform: str | None, record_id: str | None, out: Path
) -> None:
    """Write an offline receipt for an entry: a c2sp.org/tlog-proof carrying the entry.

    The entry's inclusion proof and signed checkpoint are verified before
    the file is written; check-receipt verifies it again with no network.
    """
    by_id = (platform, record_id) != (None, None)
    if (index is None) != by_id or (by_id and None in (platform, record_id)):
        raise click.UsageError("give either --index, or --platform and --record-id")
    with cli_errors(), Http(url, on_retry=warn) as http:
        data = fetch_receipt(http, vkey, index, platform, record_id)
        if str(out) == "-":
            click.echo(data.decode(), nl=False)
        else:
            tmp = out.with_name(f".{out.name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(out)
            warn(f"wrote {out}")


@click.command(name="check-receipt")
@vkey_option
@click.option("--print-entry", is_flag=True, help="Also print the entry (its JSON) on a line of its own.")
@click.argument("file", type=click.File("rb"))
def check_receipt_cmd(vkey: Verifier, print_entry: bool, file: BinaryIO) -> None:
    """Verify receipts offline against the log's key: exit 0 if each proves its entry is in the log.

    FILE is a receipt as ``receipt`` writes it (a c2sp.org/tlog-proof), or
    the NDJSON receipts ``submit --receipts`` writes, one a line.
    """
    data = file.read()
    with cli_errors():
        proofs = [data] if data.startswith(PROOF_HEADER.encode()) else receipt_lines(data)
        checked = [check_receipt(p, vkey) for p in proofs]
    for p, cp in checked:
        entry = p.extra or b""
        click.echo(
            f"verified: entry {p.index}, {describe_entry(entry)}, is in the tree of {cp.origin} of size {cp.size}"
        )
        if print_entry:
            click.echo(entry.decode("utf-8", "replace"))


def receipt_lines(data: bytes) -> list[bytes]:
    """The tlog-proofs of an NDJSON receipts file, each checked to say what its line says."""
    out = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = parse_json(line)
            proof = get_field(obj, "tlog_proof", str).encode()
            p = parse_tlog_proof(proof)
            said = (get_field(obj, "leaf_index", int), b64_hash(obj.get("leaf_hash"), "leaf_hash"))
            said_cp = get_field(obj, "checkpoint", str).encode()
        except InvalidInput as e:
            raise InvalidInput(f"receipt line {n}: {e}") from None
        if said != (p.index, record_hash(p.extra or b"")) or said_cp != p.checkpoint:
            raise VerificationFailed(f"receipt line {n}: its fields do not match its tlog_proof")
        out.append(proof)
    if not out:
        raise InvalidInput("the file holds no receipt")
    return out


COMMANDS = [verify, monitor, receipt, check_receipt_cmd]
