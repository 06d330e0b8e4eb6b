"""``python -m client``: the platform's command line (``mdl``).

Files are this module's business: key files, NDJSON in and out, receipts.
What the commands do to records and to the log lives in
:mod:`client.platform`. Expected failures print one clean message (or one
line per bad input line) and exit non-zero, never with a traceback:
1 for bad input or a rejected batch, 3 when the log's answer fails
verification.
"""

from __future__ import annotations

import base64
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

import click

from client.audit import COMMANDS as AUDIT_COMMANDS
from client.coverage import coverage_statement_cmd
from client.dsa import AGREES, DIFFERS, EMPTY_MAPPING, DsaMapping, compare, import_statements, statements_of
from client.evenness import evenness_cmd
from client.http import ClientError, check_base_url
from client.mirror import mirror_cmd
from client.platform import MAX_BATCH, SignedItem, VerificationFailed, sign_record, submit_items
from client.witness import witness_cli
from keys.keyfile import ExposedKeyFile, read_private_text, write_private_text
from keys.records import PlatformKey
from ledger.errors import InvalidInput, LedgerError
from ledger.records.entries import parse_json

T = TypeVar("T")
#: At most this many bad lines are listed; the rest are counted.
MAX_REPORTED = 20
EXIT_UNVERIFIED = 3


class Unverified(click.ClickException):
    """The log's answer failed verification: exit 3, apart from input errors."""

    exit_code = EXIT_UNVERIFIED


# Key files ---------------------------------------------------------------------


def write_platform_key(path: Path, key: PlatformKey) -> None:
    """Write ``key`` to a new file with mode 0600 (keys/keyfile.py); never overwrite.

    Raises ``FileExistsError`` if ``path`` exists.
    """
    write_private_text(path, key.to_text() + "\n")


def read_platform_key(path: Path) -> PlatformKey:
    """Read a platform key, refusing a file that others can read or write."""
    try:
        return PlatformKey.from_text(read_private_text(path))
    except OSError as e:
        raise ClientError(f"cannot read key file {path}: {e.strerror}") from None
    except ExposedKeyFile as e:
        raise ClientError(str(e)) from None
    except InvalidInput as e:
        raise ClientError(f"key file {path}: {e}") from None


# NDJSON ------------------------------------------------------------------------


def parse_lines(lines: Iterable[bytes], parse: Callable[[Any, int], T]) -> Iterator[tuple[int, T | InvalidInput]]:
    """Parse NDJSON strictly (:func:`ledger.records.entries.parse_json`), one value a line.

    Yields (line number, ``parse(value, line number)`` or the error), so a
    caller can report every bad line before writing anything. Blank lines
    are skipped but counted.
    """
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield n, parse(parse_json(line), n)
        except InvalidInput as e:
            yield n, e


class BadLines:
    """Collects ``line N: message`` for the first few bad lines (or other
    ``unit``: statements), counts the rest."""

    def __init__(self, unit: str = "line") -> None:
        self.unit = unit
        self.messages: list[str] = []
        self.count = 0

    def add(self, n: int, e: InvalidInput) -> None:
        self.count += 1
        if len(self.messages) < MAX_REPORTED:
            self.messages.append(f"{self.unit} {n}: {e}")

    def exit_if_any(self) -> None:
        """Print them and exit 1, if there were any."""
        if not self.count:
            return
        for msg in self.messages:
            click.echo(msg, err=True)
        if self.count > len(self.messages):
            click.echo(f"... and {self.count - len(self.messages)} more bad {self.unit}s", err=True)
        sys.exit(1)


@contextmanager
def all_or_nothing(path: Path) -> Iterator[IO[bytes]]:
    """A sink for ``path`` ("-" is stdout) whose bytes appear only if the block completes.

    Stdout is buffered in memory; a file is written beside ``path`` and
    renamed over it, so a reader never sees a partial file.
    """
    if str(path) == "-":
        buf = io.BytesIO()
        yield buf
        with click.open_file("-", "wb") as out:
            out.write(buf.getvalue())
        return
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)  # noqa: SIM115
    try:
        with tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, path)
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)


def _public(key: PlatformKey) -> None:
    click.echo(f"key_id: {key.key_id}")
    click.echo(f"public_key: {base64.b64encode(key.public_key).decode()}")


def _key(path: Path) -> PlatformKey:
    try:
        return read_platform_key(path)
    except ClientError as e:
        raise click.ClickException(str(e)) from None


# Commands ----------------------------------------------------------------------

KEY_HELP = "The platform's private key file (mode 0600), as written by keygen."


@click.group(name="mdl")
def mdl() -> None:
    """Sign moderation-decision records and submit them to a transparency ledger."""


@mdl.command()
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


@mdl.command()
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), required=True, help=KEY_HELP)
def pubkey(key_file: Path) -> None:
    """Print a key's ID and base64 public key."""
    _public(_key(key_file))


@mdl.command()
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), required=True, help=KEY_HELP)
@click.argument("infile", type=click.File("rb"), default="-")
@click.argument("outfile", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default="-")
def sign(key_file: Path, infile: BinaryIO, outfile: Path) -> None:
    """Sign records for submission.

    Reads NDJSON records (one JSON object a line) from INFILE and writes
    one submission item {"record", "signature"} a line to OUTFILE; "-" (the
    default) is stdin or stdout. If any line is bad, every bad line is
    reported as "line N: message" and nothing is written.
    """
    key = _key(key_file)
    bad = BadLines()
    with all_or_nothing(outfile) as sink:
        for n, item in parse_lines(infile, lambda obj, n: sign_record(key, obj, n)):
            if isinstance(item, InvalidInput):
                bad.add(n, item)
            elif not bad.count:
                sink.write(item.to_bytes() + b"\n")
        bad.exit_if_any()


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


def _submit_options(url_required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
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


def _submit_file(
    url: str, vkey: str | None, batch_size: int, state: Path, receipts: IO[str] | None, file: Path
) -> None:
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


@mdl.command()
@_submit_options(url_required=True)
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
    _submit_file(url, vkey, batch_size, state, receipts, file)


# The DSA Transparency Database (client/dsa.py) ---------------------------------


def _json_file(f: BinaryIO, what: str) -> Any:
    try:
        return parse_json(f.read())
    except InvalidInput as e:
        raise click.ClickException(f"{what} {f.name}: {e}") from None


@mdl.command(name="dsa-import")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), required=True, help=KEY_HELP)
@click.option(
    "--mapping",
    type=click.File("rb"),
    help="JSON giving what the statements lack: {platform, defaults, statements: {puid: {...}}} (docs/records.md).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the signed submission items (NDJSON, as sign writes them).",
)
@_submit_options(url_required=False)
@click.argument("statements", type=click.File("rb"))
def dsa_import(
    key_file: Path,
    mapping: BinaryIO | None,
    out: Path,
    url: str | None,
    vkey: str | None,
    batch_size: int,
    state: Path,
    receipts: IO[str] | None,
    statements: BinaryIO,
) -> None:
    """Turn DSA statements of reasons into signed records, and submit them.

    STATEMENTS is JSON in the DSA Transparency Database API's form: one
    statement, a list, or {"statements": [...]}. Each becomes a schema-v1
    decision (docs/records.md, "The DSA Transparency Database"), completed
    from --mapping and any "ledger" object in the statement, then signed
    into --out. With --url the items are then submitted and verified as
    submit does. A statement no record can say faithfully is refused: every
    refusal is listed and nothing is written.
    """
    key = _key(key_file)
    try:
        dsa_map = DsaMapping.from_json(_json_file(mapping, "mapping")) if mapping else EMPTY_MAPPING
        sts = statements_of(_json_file(statements, "statements"))
    except InvalidInput as e:
        raise click.ClickException(str(e)) from None
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    bad = BadLines("statement")
    items = []
    for n, rec in enumerate(import_statements(sts, dsa_map, now=now), 1):
        try:
            if isinstance(rec, InvalidInput):
                raise rec
            items.append(sign_record(key, rec, n))
        except InvalidInput as e:
            bad.add(n, e)
    bad.exit_if_any()
    with all_or_nothing(out) as sink:
        for item in items:
            sink.write(item.to_bytes() + b"\n")
    click.echo(f"imported and signed {len(items)} statements into {out}", err=True)
    if url is not None:
        _submit_file(url, vkey, batch_size, state, receipts, out)


@mdl.command(name="dsa-check")
@click.argument("record", type=click.File("rb"))
@click.argument("statement", type=click.File("rb"))
def dsa_check(record: BinaryIO, statement: BinaryIO) -> None:
    """Check that a logged record and its DSA statement of reasons agree.

    RECORD is a record's JSON (or an object holding it under "record": a
    submission item, an export line); STATEMENT is the statement as the DSA
    Transparency Database serves it. Prints each field both can hold as
    agreeing, differing or absent; exits 1 if any differs.
    """
    rec = _json_file(record, "record")
    if isinstance(rec, dict) and isinstance(rec.get("record"), dict):
        rec = rec["record"]
    st = _json_file(statement, "statement")
    if not isinstance(rec, dict) or not isinstance(st, dict):
        raise click.ClickException("the record and the statement must each be a JSON object")
    try:
        results = compare(rec, st)
    except InvalidInput as e:
        raise click.ClickException(str(e)) from None
    for r in results:
        click.echo(r.line())
    differing = [r for r in results if r.status == DIFFERS]
    if differing:
        raise click.ClickException(f"{len(differing)} of {len(results)} fields differ")
    agreeing = sum(r.status == AGREES for r in results)
    click.echo(f"no field differs: {agreeing} agree, {len(results) - agreeing} absent from one side or both")


# The auditor's commands (client/audit.py, client/mirror.py, client/evenness.py).
for _command in [*AUDIT_COMMANDS, mirror_cmd, evenness_cmd, coverage_statement_cmd]:
    mdl.add_command(_command)
mdl.add_command(witness_cli)

if __name__ == "__main__":
    mdl()
