"""The application factory and the operator's commands.

Configuration: the defaults below, then ``LEDGER_*`` environment variables
(``LEDGER_DATABASE_URL`` sets ``DATABASE_URL``), then ``test_config``.
Nothing is read at import time. Every key is documented in README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, Response, current_app
from flask.cli import AppGroup

import api
import web
from ledger.audit import audit
from ledger.log import LogProvider

ROOT = Path(__file__).resolve().parent

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": f"sqlite:///{ROOT / 'data' / 'ledger.sqlite3'}",
    "ORIGIN": "localhost/moderation-ledger",
    "KEY_FILE": str(ROOT / "data" / "log.key"),
    # Bodies above this are refused with 413 before they are read.
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("LEDGER")
    if test_config:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    app.extensions["ledger"] = LogProvider(
        str(app.config["DATABASE_URL"]), str(app.config["KEY_FILE"]), str(app.config["ORIGIN"])
    )
    api.init_app(app)
    web.init_app(app)
    app.after_request(_security_headers)
    app.cli.add_command(ledger_cli)
    return app


def _security_headers(resp: Response) -> Response:
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("Access-Control-Allow-Origin", "*")  # the log is public; let any verifier fetch it
    return resp


def _provider() -> LogProvider:
    return current_app.extensions["ledger"]  # type: ignore[no-any-return]


ledger_cli = AppGroup("ledger", help="Operate the ledger: initialise it, show its key, audit it.")


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
def audit_command(quiet: bool) -> None:
    """Recompute the whole tree from the stored entries and check every hash and checkpoint."""
    log = _provider().log
    with log.read() as s:
        size = log.latest(s).size
        with click.progressbar(length=size, label="auditing", file=sys.stderr if not quiet else None) as bar:
            last = [0]

            def progress(done: int, total: int) -> None:
                bar.update(done - last[0])
                last[0] = done

            report = audit(s, log.verifier, progress)
    for p in report.problems:
        click.echo(f"PROBLEM: {p}", err=True)
    if not report.ok:
        raise SystemExit(1)
    if not quiet:
        click.echo(f"audit ok: {report.entries} entries, {report.checkpoints} checkpoints, size {report.size}")
