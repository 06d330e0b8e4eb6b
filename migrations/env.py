"""Alembic environment: runs migrations on the connection ledger/migrate.py
passes in, or on LEDGER_DATABASE_URL when alembic is run by hand."""

from __future__ import annotations

import os

from alembic import context

from ledger.db import make_engine, metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = os.environ.get("LEDGER_DATABASE_URL")
    if not url:
        raise SystemExit("set LEDGER_DATABASE_URL to the database to migrate")
    engine = make_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()


run()
