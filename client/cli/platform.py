"""``mdl keygen``, ``pubkey``, ``sign`` and ``submit``: the platform's commands.

What the commands do to records and to the log lives in the library
(:mod:`client.signing`, :mod:`client.submitting`); exit 1 for bad input or
a rejected batch, 3 when the log's answer fails verification.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

import click

from client.cli.files import BadLines, all_or_nothing, parse_lines, read_platform_key, read_records, write_platform_key
from client.http import ClientError, check_base_url
from client.signing import SignedItem, sign_record
from client.submitting import MAX_BATCH, submit_items
from client.verifying import VerificationFailed
from keys.records import PlatformKey
from ledger.errors import InvalidInput, LedgerError

EXIT_UNVERIFIED = 3


class Unverified(click.ClickException):
    """The log's answer failed verification: exit 3, apart from input errors."""

    exit_code = EXIT_UNVERIFIED


def _public(key: PlatformKey) -> None:
    click.echo(f"key_id: {key.key_id}")
    click.echo(f"public_key: {base64.b64encode(key.public_key).decode()}")


def load_key(path: Path) -> PlatformKey:
    try:
        return read_platform_key(path)
    except ClientError as e:
        raise click.ClickException(str(e)) from None


# Commands ----------------------------------------------------------------------

KEY_HELP = "The platform's private key file (mode 0600), as written by keygen."


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the new key (mode 0600). Never overwritten.",
)
def keygen(out: Path) -> None:
    """Generate a platform signing key.

    Prints the key ID and the base64 public key: give both to the ledger
    operator, who registers them for your platform.
    """
    key = PlatformKey.generate()
    try:
        write_platform_key(out, key)
    except FileExistsError:
        raise click.ClickException(f"{out} already exists; refusing to overwrite a key") from None
    except OSError as e:
        raise click.ClickException(f"cannot write {out}: {e.strerror}") from None
    click.echo(f"wrote a new platform key to {out} (mode 0600): keep it secret, and back it up", err=True)
    _public(key)


@click.command()
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), required=True, help=KEY_HELP)
def pubkey(key_file: Path) -> None:
    """Print a key's ID and base64 public key."""
    _public(load_key(key_file))


@click.command()
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), required=True, help=KEY_HELP)
@click.option(
    "--out",
    "-o",
    "outfile",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default="-",
    show_default="stdout",
    help="Where to write the signed items (NDJSON, one submission item a line).",
)
@click.argument("infiles", nargs=-1, type=click.File("rb"))
def sign(key_file: Path, outfile: Path, infiles: tuple[BinaryIO, ...]) -> None:
    """Sign records for submission.

    Each INFILE ("-" or none: stdin) holds one record (a JSON object), an
    array of records, or NDJSON (one record a line); pretty-printed JSON is
    fine. Writes one submission item {"record", "signature"} a line, the
    records in the order given: put decisions before the appeals and
    amendments that refer to them. If any record is bad, each is reported
    as "record N: message" or "line N: message" (after the file's name when
    there are several) and nothing is written.
    """
    key = load_key(key_file)
    bad = BadLines()
    items: list[SignedItem] = []
    for f in infiles or (click.open_file("-", "rb"),):
        # Name the file only when there are several to tell apart.
        name = f"{f.name}: " if len(infiles) > 1 else ""
        for where, rec, line in read_records(f.read()):
            try:
                if isinstance(rec, InvalidInput):
                    raise rec
                items.append(sign_record(key, rec, line))
            except InvalidInput as e:
                bad.add_message(f"{name}{where}: {e}")
    bad.exit_if_any()
    with all_or_nothing(outfile) as sink:
        for item in items:
            sink.write(item.to_bytes() + b"\n")
    if str(outfile) != "-":
        click.echo(f"signed {len(items)} records into {outfile}", err=True)


def _url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:  # only where --url is optional
        return None
    try:
        return check_base_url(value)
    except ClientError as e:
        raise click.BadParameter(str(e)) from None


def _warn(message: str) -> None:
    # On a terminal the progress bar holds the current line: start a new one.
    click.echo(("\n" if sys.stderr.isatty() else "") + message, err=True)


def _default_state() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "mdl", "state.json")


def _read_items(path: Path) -> int:
    """Check every line of a signed NDJSON file before anything is sent; return the count."""
    bad = BadLines()
    count = 0
    with path.open("rb") as f:
        for n, item in parse_lines(f, SignedItem.from_json):
            if isinstance(item, InvalidInput):
                bad.add(n, item)
            count += 1
    bad.exit_if_any()
    return count


def _items(f: BinaryIO) -> Iterator[SignedItem]:
    for n, item in parse_lines(f, SignedItem.from_json):
        if isinstance(item, InvalidInput):
            raise ClientError(f"line {n} changed while submitting: {item}")
        yield item


def submit_options(url_required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of ``submit``, shared by every command that submits."""
    url_help = "The ledger's base URL, e.g. https://ledger.example" + (" (or $MDL_URL)." if url_required else ".")
    options = [
        click.option(
            "--url",
            required=url_required,
            envvar="MDL_URL" if url_required else None,
            callback=_url,
            help=url_help if url_required else url_help + " Given, the signed items are then submitted as submit does.",
        ),
        click.option(
            "--vkey",
            envvar="MDL_VKEY",
            help="The log's verifier key (name+id+key), obtained out of band (or $MDL_VKEY). Without it, the key "
            "pinned in --state is used, or else the one the log serves is pinned on first use, with a warning.",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(1, MAX_BATCH),
            default=500,
            show_default=True,
            help=f"Records per request, 1 to {MAX_BATCH}; a batch the log finds too large is split in two.",
        ),
        click.option(
            "--state",
            type=click.Path(dir_okay=False, path_type=Path),
            default=_default_state,
            show_default="$XDG_STATE_HOME/mdl/state.json",
            help="File pinning each log's key and the latest checkpoint seen, so the log cannot later show a "
            "forked history.",
        ),
        click.option(
            "--receipts",
            type=click.File("w"),
            help="Write one NDJSON receipt per record here: its inclusion proof and checkpoint.",
        ),
    ]

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return apply


def submit_file(url: str, vkey: str | None, batch_size: int, state: Path, receipts: IO[str] | None, file: Path) -> None:
    """Submit the signed items of ``file``, verifying every answer (the body of ``submit``)."""
    total = _read_items(file)
    if not total:
        click.echo(f"{file} holds no records; nothing to submit", err=True)
        return
    start = time.monotonic()
    with (
        file.open("rb") as f,
        click.progressbar(
            length=total, label="submitting", file=sys.stderr, show_pos=True, show_eta=True, item_show_func=lambda s: s
        ) as bar,
    ):

        def progress(n: int) -> None:
            rate = (bar.pos + n) / max(time.monotonic() - start, 1e-3)
            bar.update(n, f"{rate:.0f} records/s")

        try:
            summary = submit_items(
                url,
                _items(f),
                vkey=vkey,
                batch_size=batch_size,
                progress=progress,
                receipts=receipts,
                state=state,
                warn=_warn,
            )
        except VerificationFailed as e:
            raise Unverified(f"verification failed: {e}") from None
        except LedgerError as e:  # ClientError, or any other expected failure: no traceback
            raise click.ClickException(str(e)) from None
    click.echo(
        f"{summary.created + summary.existing} records: {summary.created} created, {summary.existing} already logged; "
        f"all verified in the log's tree of size {summary.tree_size}"
    )


@click.command()
@submit_options(url_required=True)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def submit(url: str, vkey: str | None, batch_size: int, state: Path, receipts: IO[str] | None, file: Path) -> None:
    """Submit signed items and verify the log's answers.

    FILE holds NDJSON submission items, as written by sign. Every
    checkpoint signature, every record's entry hash and inclusion proof, and
    the consistency of successive checkpoints are checked. Safe to re-run
    after a failure: records already logged come back as "existing" and are
    not appended twice. Exits 1 if the log rejects a batch, 3 if an answer
    fails verification.
    """
    submit_file(url, vkey, batch_size, state, receipts, file)
