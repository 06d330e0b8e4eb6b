"""``python -m client witness``: a small witness (c2sp.org/tlog-witness).

It cosigns a log's checkpoints with ``cosignature/v1`` (c2sp.org/tlog-cosignature)
once it has checked that each extends the last one it cosigned, so the log
cannot show it, or anyone who trusts it, two different histories.

What it is trusted with: its key vouches that every checkpoint it cosigned
for a log is consistent with every earlier one it cosigned. That holds only
while its state file does: a witness restarted from an older copy of the
file could be made to cosign a fork. The state file is therefore replaced
atomically (write, fsync, rename, fsync the directory) before each answer,
and locked so that two witness processes never share it.

The protocol decisions are in :mod:`ledger.tlog.witness`; this module adds the
key file, the state file and the HTTP server (standard library only).
"""

from __future__ import annotations

import base64
import fcntl
import ipaddress
import json
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import click

from keys.cosignature import CosignatureSigner
from keys.keyfile import ExposedKeyFile, read_private_text, write_private_text
from keys.note import NoteVerifier, Verifier, b64decode_exact
from ledger.errors import InvalidInput, LedgerError, ProofError
from ledger.tlog.witness import (
    SIZE_CONTENT_TYPE,
    SizeConflict,
    TreeHead,
    UnknownLog,
    UntrustedCheckpoint,
    check_add_checkpoint,
    format_cosignatures,
    format_size,
    parse_add_checkpoint,
)

DEFAULT_LISTEN = "127.0.0.1:7380"
#: Request bodies above this are refused unread (a checkpoint with 100
#: signatures and a 63-line proof is well under it).
MAX_BODY = 64 * 1024
STATE_VERSION = 1

#: Error class -> HTTP status, per c2sp.org/tlog-witness. First match wins,
#: so subclasses come before their bases.
STATUS: list[tuple[type[LedgerError], int]] = [
    (UnknownLog, 404),
    (UntrustedCheckpoint, 403),
    (SizeConflict, 409),
    (ProofError, 422),
    (InvalidInput, 400),
]


class WitnessSetupError(LedgerError):
    """The witness cannot start: a bad key file, state file or option."""


# Key files ---------------------------------------------------------------------


def write_witness_key(path: Path, signer: CosignatureSigner) -> None:
    """Write ``signer`` to a new file with mode 0600 (keys/keyfile.py); never
    overwrite (``FileExistsError``)."""
    write_private_text(path, signer.to_key() + "\n")


def read_witness_key(path: Path) -> CosignatureSigner:
    """Read a witness key, refusing a file that others can read or write."""
    try:
        return CosignatureSigner.from_key(read_private_text(path).strip())
    except OSError as e:
        raise WitnessSetupError(f"cannot read key file {path}: {e.strerror}") from None
    except ExposedKeyFile as e:
        raise WitnessSetupError(str(e)) from None
    except InvalidInput as e:
        raise WitnessSetupError(f"key file {path}: {e}") from None


# The state file ----------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _parse_state(text: str) -> dict[str, TreeHead]:
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates)
        if not isinstance(doc, dict) or set(doc) != {"version", "logs"} or doc["version"] != STATE_VERSION:
            raise ValueError(f"expected {{'version': {STATE_VERSION}, 'logs': {{...}}}}")
        heads = {}
        for origin, head in doc["logs"].items():
            if not isinstance(head, dict) or set(head) != {"size", "root"}:
                raise ValueError(f"log {origin!r}: expected size and root")
            size, root = head["size"], head["root"]
            if type(size) is not int or not isinstance(root, str):
                raise ValueError(f"log {origin!r}: size must be an integer, root base64")
            heads[origin] = TreeHead(size, b64decode_exact(root, "root"))
        return heads
    except (ValueError, AttributeError, InvalidInput) as e:
        raise WitnessSetupError(f"malformed state file: {e}") from None


class StateFile:
    """Per log origin, the size and root the witness last cosigned.

    Opening takes an exclusive lock (``<state>.lock``) for the life of the
    object; :meth:`put` returns only once the new state is durable.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_file: IO[bytes] | None = open(path.with_name(path.name + ".lock"), "ab")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.close()
            raise WitnessSetupError(f"state file {path} is in use by another witness") from None
        try:
            self.heads = _parse_state(path.read_text()) if path.exists() else {}
        except BaseException:
            self.close()
            raise

    def put(self, origin: str, head: TreeHead) -> None:
        """Record ``head`` for ``origin`` durably (write, fsync, rename, fsync the directory)."""
        heads = {**self.heads, origin: head}
        doc = {
            "version": STATE_VERSION,
            "logs": {o: {"size": h.size, "root": base64.b64encode(h.root).decode()} for o, h in sorted(heads.items())},
        }
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        try:
            with open(tmp, "x") as f:
                f.write(json.dumps(doc, indent=1) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        # Only now, with the file durable, does the witness act on the new head.
        self.heads = heads

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None


# The witness -------------------------------------------------------------------


class Witness:
    """Decides add-checkpoint requests and cosigns the accepted ones."""

    def __init__(
        self,
        signer: CosignatureSigner,
        logs: Sequence[Verifier],
        state: StateFile,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.state = state
        self.trusted: dict[str, list[NoteVerifier]] = {}
        for v in logs:
            self.trusted.setdefault(v.name, []).append(v)
        self._clock = clock
        # Held from reading the known head to persisting the new one, so two
        # requests cannot roll the state back (c2sp.org/tlog-witness).
        self._lock = threading.Lock()

    def add_checkpoint(self, body: bytes) -> bytes:
        """Answer an add-checkpoint body with cosignature lines, or raise (see :data:`STATUS`)."""
        req = parse_add_checkpoint(body)
        with self._lock:
            accepted = check_add_checkpoint(req, self.trusted, self.state.heads.get(req.origin))
            self.state.put(req.origin, accepted.head)
            sig = self.signer.cosign(accepted.note.text, int(self._clock()))
        return format_cosignatures([sig])


def status_for(e: LedgerError) -> int:
    for cls, status in STATUS:
        if isinstance(e, cls):
            return status
    return 500


class _Handler(BaseHTTPRequestHandler):
    server_version = "mdl-witness/1"
    protocol_version = "HTTP/1.1"  # keep-alive, as the spec recommends
    witness: Witness  # set on the subclass make_server builds
    verbose = False

    def do_POST(self) -> None:
        if self.path != "/add-checkpoint":
            self._send(404, b"not found\n")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send(411, b"Content-Length required\n", close=True)
            return
        if int(length) > MAX_BODY:
            self._send(413, b"request body too large\n", close=True)
            return
        body = self.rfile.read(int(length))
        try:
            self._send(200, self.witness.add_checkpoint(body))
        except SizeConflict as e:
            self._send(409, format_size(e.size), content_type=SIZE_CONTENT_TYPE)
        except LedgerError as e:
            self._send(status_for(e), f"{e}\n".encode())
        except OSError as e:  # the state file could not be written: nothing was cosigned
            self._send(500, f"cannot persist the witness state: {e.strerror}\n".encode())

    def do_GET(self) -> None:
        self._send(404, b"not found\n")

    def _send(
        self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8", close: bool = False
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            super().log_message(format, *args)


class _ServerV6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def make_server(witness: Witness, host: str, port: int, verbose: bool = False) -> ThreadingHTTPServer:
    """An HTTP server for ``witness`` on (host, port); port 0 picks a free one."""
    handler = type("WitnessHandler", (_Handler,), {"witness": witness, "verbose": verbose})
    server_class = _ServerV6 if ":" in host else ThreadingHTTPServer
    server = server_class((host, port), handler)
    server.daemon_threads = True
    return server


def parse_listen(value: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _address(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    host = host.decode() if isinstance(host, bytes) else host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Commands ----------------------------------------------------------------------

KEY_HELP = "The witness's private key file (mode 0600), as written by `witness keygen`."


@click.group("witness")
def witness_cli() -> None:
    """Run a witness that cosigns a log's checkpoints (c2sp.org/tlog-witness)."""


@witness_cli.command("keygen")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to write the key.")
@click.option("--name", required=True, help="The witness's name, a schema-less URL such as witness.example/w1.")
def keygen_cmd(out: Path, name: str) -> None:
    """Generate a witness key (mode 0600) and print its cosignature verifier key."""
    try:
        signer = CosignatureSigner.generate(name)
        write_witness_key(out, signer)
    except InvalidInput as e:
        raise click.ClickException(str(e)) from None
    except FileExistsError:
        raise click.ClickException(f"{out} already exists; refusing to overwrite a key") from None
    except OSError as e:
        raise click.ClickException(f"cannot write {out}: {e.strerror}") from None
    click.echo(f"wrote a new witness key to {out} (mode 0600): keep it secret, and back it up", err=True)
    click.echo(signer.verifier.to_key())


@witness_cli.command("vkey")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), required=True, help=KEY_HELP)
def vkey_cmd(key_file: Path) -> None:
    """Print the witness's verifier key, for logs and clients to configure."""
    try:
        click.echo(read_witness_key(key_file).verifier.to_key())
    except LedgerError as e:
        raise click.ClickException(str(e)) from None


def _log_keys(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[Verifier]:
    try:
        return [Verifier.from_key(v) for v in values]
    except InvalidInput as e:
        raise click.BadParameter(str(e)) from None


@witness_cli.command("serve")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), required=True, help=KEY_HELP)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The state file: per log, the last size and root cosigned. Keep it; never restore an old copy.",
)
@click.option(
    "--log",
    "logs",
    multiple=True,
    required=True,
    callback=_log_keys,
    help="A log's verifier key (origin+id+key) to witness; repeat for more logs or keys.",
)
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, help="HOST:PORT to listen on.")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def serve_cmd(key_file: Path, state: Path, logs: list[Verifier], listen: str, verbose: bool) -> None:
    """Serve POST /add-checkpoint until interrupted."""
    host, port = parse_listen(listen)
    try:
        signer = read_witness_key(key_file)
        store = StateFile(state)
    except (LedgerError, OSError) as e:
        raise click.ClickException(str(e)) from None
    try:
        server = make_server(Witness(signer, logs, store), host, port, verbose)
    except OSError as e:
        store.close()
        raise click.ClickException(f"cannot listen on {listen}: {e.strerror}") from None
    if not _is_loopback(host):
        click.echo(f"warning: listening on {host}, beyond this machine", err=True)
    click.echo(
        f"witness {signer.name} listening on http://{_address(server)}/add-checkpoint; "
        f"verifier key: {signer.verifier.to_key()}",
        err=True,
    )
    # SIGTERM stops it as Ctrl-C does. Either way a request in flight has
    # either persisted its state or not: the file is replaced atomically.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.close()
