"""The operator's commands: ``flask --app app ledger ...``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from keys.records import public_key_from_text
from ledger.audit import audit
from ledger.bundle_cache import check as check_bundle_cache
from ledger.errors import LedgerError
from ledger.log import LogProvider
from ledger.records.entries import format_time
from ledger.records.times import date_time_ms
from ledger.registry import list_platforms

ledger_cli = AppGroup("ledger", help="Operate the ledger: initialise it, show its key, audit it, manage platforms.")
platform_cli = AppGroup("platform", help="Register platforms and their keys. Every change is appended to the log.")
ledger_cli.add_command(platform_cli)


def _provider() -> LogProvider:
    return current_app.extensions["ledger"]  # type: ignore[no-any-return]


@ledger_cli.command("init")
def init_command() -> None:
    """Create or migrate the database, create the log key if absent, sign checkpoint 0."""
    provider = _provider()
    log, created = provider.initialise()
    if created:
        click.echo(f"created a new log signing key in {provider.key_file} (mode 0600; back it up)")
    with log.read() as s:
        cp = log.latest(s)
    click.echo(f"log {log.origin} ready at tree size {cp.size}")
    click.echo(f"verifier key: {log.verifier.to_key()}")


@ledger_cli.command("vkey")
def vkey_command() -> None:
    """Print the log's verifier key (c2sp.org/signed-note)."""
    click.echo(_provider().log.verifier.to_key())


@ledger_cli.command("audit")
@click.option("--quiet", is_flag=True, help="Print only problems.")
@click.option(
    "--jobs",
    type=click.IntRange(min=0),
    default=None,
    help="Worker processes auditing batches of entries (default: one per core, up to 4; 0: none).",
)
def audit_command(quiet: bool, jobs: int | None) -> None:
    """Recompute the whole tree from the stored entries and check every hash and checkpoint."""
    log = _provider().log
    with log.read() as s:
        size = log.latest(s).size
        with _audit_progress(size, quiet) as progress:
            report = audit(s, log.verifier, progress, jobs=jobs)
    problems = report.problems
    if report.ok:
        # The kept bundle files are derived from entries the audit just checked.
        problems += [f"bundle cache: {p}" for p in check_bundle_cache(log, current_app.extensions["bundle_cache"])]
    for p in problems:
        click.echo(f"PROBLEM: {p}", err=True)
    if problems:
        raise SystemExit(1)
    if not quiet:
        click.echo(
            f"audit ok: {report.entries} entries, {report.checkpoints} checkpoints, size {report.size}; "
            "every derived row and every kept bundle file matches its entries"
        )


#: Seconds between the audit's progress lines when stderr is not a terminal.
PROGRESS_SECONDS = 10.0


@contextmanager
def _audit_progress(size: int, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """The audit's progress, on stderr: a bar on a terminal, else a line
    every :data:`PROGRESS_SECONDS` (a log file or a CI job shows that the
    audit of a large log is moving, and how fast); nothing with ``--quiet``."""
    if quiet:
        yield None
        return
    if sys.stderr.isatty():
        with click.progressbar(length=size, label="auditing", file=sys.stderr) as bar:
            last = [0]

            def advance(done: int, total: int) -> None:
                bar.update(done - last[0])
                last[0] = done

            yield advance
        return
    t0 = time.monotonic()
    due = [t0 + PROGRESS_SECONDS]

    def line(done: int, total: int) -> None:
        now = time.monotonic()
        if now >= due[0]:
            due[0] = now + PROGRESS_SECONDS
            rate = done / (now - t0) if now > t0 else 0.0
            click.echo(f"audited {done:,} of {total:,} entries ({rate:,.0f}/s)", err=True)

    yield line


def _public_key(value: str) -> bytes:
    """A public key given as base64, or @FILE holding the base64 (as `keygen` prints it)."""
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    return public_key_from_text(text)


def _report(what: str, res: object) -> None:
    first = res.first  # type: ignore[attr-defined]
    click.echo(f"{what}: log entry {first}, tree size {res.checkpoint.size}")  # type: ignore[attr-defined]


@ledger_cli.command("reindex")
def reindex_command() -> None:
    """Add the feed's query-index rows missing for the log's entries.

    The index is append-only: existing rows are never rewritten. Rows that
    differ from their entries are reported by `ledger audit`.
    """
    log = _provider().log
    from sqlalchemy.orm import Session

    from ledger.db import writer
    from ledger.derived import fill_index

    with Session(writer(log.engine)) as s, s.begin():
        size = log.latest(s).size
        with click.progressbar(length=size, label="reindexing", file=sys.stderr) as bar:
            done = [0]

            def progress(i: int) -> None:
                bar.update(i - done[0])
                done[0] = i

            count = fill_index(s, size, progress)
    click.echo(f"added {count} missing index rows for {size} log entries; `ledger audit` compares the rest")


@platform_cli.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="The platform's display name.")
@click.option("--public-key", "public_key", required=True, help="Its first Ed25519 public key: base64, or @FILE.")
def platform_add(slug: str, name: str, public_key: str) -> None:
    """Register platform SLUG with its first signing key."""
    try:
        res = _provider().log.registry.add_platform(slug, name, _public_key(public_key))
    except LedgerError as e:
        raise click.ClickException(str(e)) from None
    _report(f"registered platform {slug}", res)


@platform_cli.command("add-key")
@click.argument("slug")
@click.option("--public-key", "public_key", required=True, help="The new Ed25519 public key: base64, or @FILE.")
def platform_add_key(slug: str, public_key: str) -> None:
    """Add a signing key to platform SLUG (key rotation)."""
    try:
        res = _provider().log.registry.add_key(slug, _public_key(public_key))
    except LedgerError as e:
        raise click.ClickException(str(e)) from None
    _report(f"added a key to {slug}", res)


@platform_cli.command("revoke-key")
@click.argument("key_id")
@click.option("--reason", required=True, help="Why, in a sentence: it is published in the log.")
@click.option("--from", "from_", default=None, help="RFC 3339 UTC time from which the key is invalid (default: now).")
def platform_revoke_key(key_id: str, reason: str, from_: str | None) -> None:
    """Revoke KEY_ID from a time (now, or earlier for a compromised key)."""
    try:
        at = date_time_ms(from_) if from_ else time.time_ns() // 1_000_000
        res = _provider().log.registry.revoke_key(key_id, at, reason)
    except LedgerError as e:
        raise click.ClickException(str(e)) from None
    _report(f"revoked key {key_id} from {format_time(at)}", res)


@platform_cli.command("list")
def platform_list() -> None:
    """List platforms and their keys."""
    log = _provider().log
    with log.read() as s:
        plats = list_platforms(s)
    if not plats:
        click.echo("no platforms registered yet: see `flask --app app ledger platform add --help`")
    for p in plats:
        click.echo(f"{p['platform']}  {p['display_name']}  (registered {p['registered_at']}, entry {p['leaf_index']})")
        for k in p["keys"]:
            state = f"revoked from {k['revoked_from']}: {k['revocation_reason']}" if k["revoked_from"] else "valid"
            click.echo(f"  key {k['key_id']}  {k['public_key']}  from {k['valid_from']}  {state}")


@ledger_cli.command("cosign")
@click.option("--follow", is_flag=True, help="Keep cosigning new checkpoints, every --interval seconds.")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help="Seconds between rounds."
)
@click.option("--count", type=click.IntRange(min=1), default=None, help="With --follow: stop after this many rounds.")
def cosign_command(follow: bool, interval: float, count: int | None) -> None:
    """Ask the configured witnesses (LEDGER_WITNESSES) to cosign the latest checkpoint.

    Each witness gets the checkpoint with a consistency proof from the size
    it last cosigned; its cosignatures are verified, stored and served with
    /checkpoint. Exits 1 if any witness failed in the last round.
    """
    from ledger.cosign import Cosigner, parse_witnesses

    if count is not None and not follow:
        raise click.UsageError("--count needs --follow")
    try:
        witnesses = parse_witnesses(current_app.config.get("WITNESSES", []))
    except LedgerError as e:
        raise click.ClickException(f"LEDGER_WITNESSES: {e}") from None
    if not witnesses:
        raise click.ClickException('no witnesses configured: set LEDGER_WITNESSES to [{"url": ..., "vkey": ...}]')
    failed = False
    with Cosigner(_provider().log, witnesses) as cosigner:
        rounds = 0
        while True:
            results = cosigner.run()
            for r in results:
                click.echo(r.message if r.ok else f"FAILED: {r.message}", err=not r.ok)
            failed = not all(r.ok for r in results)
            rounds += 1
            if not follow or (count is not None and rounds >= count):
                break
            time.sleep(interval)
    if failed:
        raise SystemExit(1)


@ledger_cli.command("publish-stats")
@click.option("--tree-size", "tree_size", type=click.IntRange(min=0), default=None, help="A checkpointed tree size.")
@click.option(
    "--method-version",
    type=click.IntRange(1, 2),
    default=1,
    show_default=True,
    help="1: the account comparisons; 2: also the protection section. Each version is published on its own.",
)
def publish_stats_command(tree_size: int | None, method_version: int) -> None:
    """Append the SHA-256 of the evenness statistics of a checkpoint to the log.

    Computes the unfiltered evenness document (method version 1, or the one
    --method-version names) of the checkpoint of --tree-size (default: the
    latest) and appends a registry entry, signed by the log's key, recording
    its digest. Anyone can recompute the document from the log and compare.
    """
    from ledger.evenness_store import publish

    try:
        res, document = publish(_provider().log, tree_size, method_version)
    except LedgerError as e:
        raise click.ClickException(str(e)) from None
    size = document.document["checkpoint"]["tree_size"]
    click.echo(f"evenness statistics (method version {method_version}) of tree size {size}: sha256 {document.sha256}")
    _report("published", res)


@ledger_cli.command("dump")
@click.option("--tree-size", "tree_size", type=click.IntRange(min=0), default=None, help="A checkpointed tree size.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write (default: LEDGER_DUMPS_DIR).",
)
def dump_command(tree_size: int | None, directory: Path | None) -> None:
    """Write a full dump of a checkpoint: CSV, Parquet, NDJSON and SHA256SUMS.

    Into <dir>/<tree size>/, for the checkpoint of --tree-size (default: the
    latest); /downloads and /api/v1/dumps list and serve it. A dump already
    written is left as it is.
    """
    from ledger.dumps import write_dump

    where = directory or Path(str(current_app.config["DUMPS_DIR"]))
    try:
        folder, written = write_dump(_provider().log, where, tree_size)
    except LedgerError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{'wrote' if written else 'already there:'} {folder}")


@ledger_cli.command("publish-tiles")
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The directory a static web server serves as the log's /checkpoint and /tile/.",
)
@click.option("--follow", is_flag=True, help="Keep publishing new checkpoints, every --interval seconds.")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True, help="Seconds between rounds."
)
@click.option("--count", type=click.IntRange(min=1), default=None, help="With --follow: stop after this many rounds.")
def publish_tiles_command(directory: Path, follow: bool, interval: float, count: int | None) -> None:
    """Write the log's tiles, entry bundles and latest checkpoint to DIR (c2sp.org/tlog-tiles).

    Writes only what the tree gained since DIR's own checkpoint, verifies the
    files against the new checkpoint, and replaces DIR/checkpoint last. Files
    are never replaced; partial tiles are deleted once their full tile exists.
    Exits 1 if DIR disagrees with the log (another log's, or a fork).
    """
    from ledger.tile_directory import TileDirectory
    from ledger.tile_publisher import LogTileSource, publish

    if count is not None and not follow:
        raise click.UsageError("--count needs --follow")
    log = _provider().log
    source, tiles = LogTileSource(log), TileDirectory(directory)
    bar: Any = None

    def progress(done: int, total: int) -> None:
        # The first round's catch-up may write millions of files.
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="writing tiles and bundles", file=sys.stderr).__enter__()
        bar.update(done - bar.pos)

    rounds = 0
    try:
        while True:
            try:
                res = publish(source, tiles, log.verifier, progress if rounds == 0 else None)
            except LedgerError as e:
                raise click.ClickException(str(e)) from None
            finally:
                if bar is not None:
                    bar.__exit__(None, None, None)
                    bar = None
            if res.checkpoint_written:
                click.echo(f"published tree size {res.size} to {directory} ({res.added} new files since {res.old})")
            elif rounds == 0:
                click.echo(f"{directory} is at the log's latest checkpoint, tree size {res.size}")
            rounds += 1
            if not follow or (count is not None and rounds >= count):
                return
            time.sleep(interval)
    finally:
        tiles.unlock()
