"""``coverage-statement``: a platform builds a coverage statement from a month's records and its own totals.

The statement (docs/records.md, "Coverage fields") declares how many
decisions the platform took under one rule in one calendar month, per
account class, action and exemption applied. The counts must come from the
platform's own systems (``--totals``): counting only the records it logged
would declare exactly what the log holds, which is no statement about what
it left out. The records are read to refuse totals below them (such a
statement would be contradicted the moment both are logged) and, without
``--totals``, to count them (then the command says so).

The output is one unsigned record on one line, ready for ``mdl sign``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ledger.errors import InvalidInput
from ledger.records.coverage import build_statement, counts_of
from ledger.records.entries import canonical, parse_json
from ledger.records.vocab import COVERAGE_CRITERIA, PATTERNS


def _records(path: Path) -> list[dict[str, Any]]:
    """Records, one JSON object a line: bare records or signed items ``{"record", "signature"}``."""
    out = []
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = parse_json(line)
        except InvalidInput as e:
            raise click.ClickException(f"{path}:{n}: {e}") from None
        out.append(obj["record"] if isinstance(obj, dict) and isinstance(obj.get("record"), dict) else obj)
    return out


def _check(pattern: str, flag: str, value: str) -> str:
    if not re.fullmatch(PATTERNS[pattern], value):
        raise click.BadParameter(f"must match {PATTERNS[pattern]}", param_hint=flag)
    return value


@click.command(name="coverage-statement")
@click.option(
    "--records",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The platform's records (NDJSON: records or signed items), the month's at least.",
)
@click.option(
    "--totals",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='The platform\'s own counts, as the statement writes them: {"legislator": {"label": '
    '{"exempted": 120, "not_exempted": 4}}}. Without it, the records are counted.',
)
@click.option("--platform", required=True, help="The platform's slug.")
@click.option("--period", required=True, help="The calendar month, UTC: YYYY-MM.")
@click.option("--rule-id", required=True, help="The rule id.")
@click.option("--record-id", required=True, help="The statement's own record id.")
@click.option("--description", required=True, help="The inclusion criterion in words (at most 500 characters).")
@click.option(
    "--criterion",
    type=click.Choice(COVERAGE_CRITERIA),
    default="listed_classes",
    show_default=True,
    help="Which decisions are counted (docs/records.md, Coverage fields).",
)
@click.option("--supersedes", help="The record id of the earlier statement this one corrects.")
@click.option("--submitted-at", help="RFC 3339 UTC time (default: now).")
def coverage_statement_cmd(
    records: Path,
    totals: Path | None,
    platform: str,
    period: str,
    rule_id: str,
    record_id: str,
    description: str,
    criterion: str,
    supersedes: str | None,
    submitted_at: str | None,
) -> None:
    """Build a coverage statement for one platform, month and rule; print it as one line of JSON."""
    _check("platform", "--platform", platform)
    _check("month", "--period", period)
    _check("rule_id", "--rule-id", rule_id)
    _check("record_id", "--record-id", record_id)
    declared = None
    if totals is not None:
        try:
            nested = json.loads(totals.read_text(encoding="utf-8"))
            declared = counts_of(nested)
        except (ValueError, AttributeError, KeyError) as e:
            raise click.ClickException(f"{totals}: not counts in the statement's form ({e})") from None
    else:
        click.echo("no --totals: counting the records, which declares only what was logged", err=True)
    when = submitted_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        statement = build_statement(
            _records(records),
            platform=platform,
            record_id=record_id,
            period=period,
            rule_id=rule_id,
            submitted_at=when,
            description=description,
            criterion=criterion,
            totals=declared,
            supersedes=supersedes,
        )
    except InvalidInput as e:
        raise click.ClickException(str(e)) from None
    click.echo(canonical(statement).decode())
