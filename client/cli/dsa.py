"""``mdl dsa-import`` and ``mdl dsa-check``: the DSA Transparency Database (client/dsa.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any, BinaryIO

import click

from client.cli.files import BadLines, all_or_nothing
from client.cli.platform import KEY_HELP, load_key, submit_file, submit_options
from client.dsa import AGREES, DIFFERS, EMPTY_MAPPING, DsaMapping, compare, import_statements, statements_of
from client.signing import sign_record
from ledger.errors import InvalidInput
from ledger.records.entries import parse_json


def _json_file(f: BinaryIO, what: str) -> Any:
    try:
        return parse_json(f.read())
    except InvalidInput as e:
        raise click.ClickException(f"{what} {f.name}: {e}") from None


@click.command(name="dsa-import")
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
@submit_options(url_required=False)
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
    key = load_key(key_file)
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
        submit_file(url, vkey, batch_size, state, receipts, out)


@click.command(name="dsa-check")
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
