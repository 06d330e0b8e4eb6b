"""``mdl``: the command line over the client library.

Each command parses its options and files, calls the library
(:mod:`client.signing`, :mod:`client.submitting`, :mod:`client.verifying`,
:mod:`client.mirror`, ...) and maps its errors to one clean message and an
exit status. Installed as the console script ``mdl`` (pyproject.toml);
``python -m client`` runs the same group.
"""

from __future__ import annotations

import click

from client.audit import COMMANDS as AUDIT_COMMANDS
from client.cli.dsa import dsa_check, dsa_import
from client.cli.platform import keygen, pubkey, sign, submit
from client.coverage import coverage_statement_cmd
from client.evenness import evenness_cmd
from client.mirror import mirror_cmd
from client.witness import witness_cli


@click.group(name="mdl", context_settings={"help_option_names": ["-h", "--help"]})
def mdl() -> None:
    """Sign moderation-decision records and submit them to a transparency ledger;
    verify, mirror and audit the ledger."""


for _command in [
    keygen,
    pubkey,
    sign,
    submit,
    dsa_import,
    dsa_check,
    *AUDIT_COMMANDS,
    mirror_cmd,
    evenness_cmd,
    coverage_statement_cmd,
]:
    mdl.add_command(_command)
mdl.add_command(witness_cli)
